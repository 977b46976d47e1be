//! Every seed spec in specs/ builds on a stand-in for its python base image,
//! pulled from a real registry on 127.0.0.1, is pushed back there, and the
//! pushed image passes the checks its own seed document lists: it runs as
//! the seed's user (`whoami`, `id`), keeps the base's accounts byte for byte,
//! the seed's app files belong to that user, and it is healthy where the
//! seed has a HEALTHCHECK.
//!
//! A seed whose Dockerfile copies from a builder stage has that stage as
//! specs/NAME/builder/kiln.toml. kiln builds it first (on a stand-in for the
//! stage's own base) and pushes it; the seed's spec then takes its files out
//! of that image with `[[copy]] image = "${BUILDER}"`, given the pushed
//! image by digest with `--build-arg BUILDER=...`.
//!
//! The stand-in bases are made here with umoci: a static busybox, Debian- or
//! Alpine-like account files, and tiny shell scripts in /usr/local/bin that
//! stand in for uvicorn, python, curl and alembic.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;

/// One seed spec and what its document checks.
struct Seed {
    /// The directory under specs/.
    spec: &'static str,
    /// The python image tag its `base` names (docker.io/library/python:TAG).
    base: &'static str,
    user: &'static str,
    group: &'static str,
    uid: u32,
    gid: u32,
    /// Paths the seed chowns (or creates) for the user: `stat` shows user:group.
    owned: &'static [&'static str],
    /// The seed has a HEALTHCHECK that must pass.
    healthcheck: bool,
    /// The base of its builder stage, the one specs/NAME/builder/kiln.toml
    /// names, written out in full (registry host included), when the seed
    /// copies from one.
    builder: Option<&'static str>,
}

#[rustfmt::skip]
const SEEDS: &[Seed] = &[
    Seed { spec: "django-release", base: "3.13-slim-bookworm", user: "app", group: "app", uid: 1000, gid: 1000,
           owned: &["/src", "/src/manage.py", "/src/static/css/README", "/src/frontend/css/tailwind.css", "/home/app"],
           healthcheck: false, builder: Some("docker.io/library/python:3.13-slim-bookworm") },
    Seed { spec: "fastapi-todo", base: "3.13-slim", user: "appuser", group: "appuser", uid: 1000, gid: 1000,
           owned: &["/code", "/home/appuser", "/home/appuser/.local", "/home/appuser/.local/bin/README"],
           healthcheck: false, builder: Some("docker.io/library/python:3.13-slim") },
    Seed { spec: "dashtam-api", base: "3.13-slim", user: "appuser", group: "appuser", uid: 1000, gid: 1000,
           owned: &["/app", "/app/.venv", "/app/.venv/bin/README", "/app/alembic.ini", "/app/src/main.py", "/home/appuser"],
           healthcheck: true, builder: Some("ghcr.io/astral-sh/uv:0.8.22-python3.13-trixie-slim") },
    Seed { spec: "ecs-service", base: "3.13-slim", user: "appuser", group: "appuser", uid: 999, gid: 999,
           owned: &["/app", "/app/startup.sh", "/app/templates/index.html"],
           healthcheck: false, builder: None },
    Seed { spec: "hardened-python", base: "3.12-slim", user: "appuser", group: "appgroup", uid: 10001, gid: 10001,
           owned: &["/app", "/app/data", "/app/logs", "/app/.venv", "/app/src/__init__.py", "/app/main.py"],
           healthcheck: true, builder: Some("ghcr.io/astral-sh/uv:python3.12-slim") },
    Seed { spec: "hardened-alpine", base: "3.12-alpine", user: "appuser", group: "appgroup", uid: 10001, gid: 10001,
           owned: &["/app", "/app/.venv", "/app/src/__init__.py", "/app/main.py", "/home/appuser"],
           healthcheck: true, builder: Some("ghcr.io/astral-sh/uv:python3.12-alpine") },
];

const TOOLS: &[&str] = &["skopeo", "umoci", "podman", "runc", "docker-registry"];

#[test]
fn django_release() {
    check_seed("django-release");
}

#[test]
fn fastapi_todo() {
    check_seed("fastapi-todo");
}

#[test]
fn dashtam_api() {
    check_seed("dashtam-api");
}

#[test]
fn ecs_service() {
    check_seed("ecs-service");
}

#[test]
fn hardened_python() {
    check_seed("hardened-python");
}

#[test]
fn hardened_alpine() {
    check_seed("hardened-alpine");
}

#[test]
fn the_table_names_every_seed_spec() {
    let mut dirs: Vec<String> = fs::read_dir(repo().join("specs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "web")
        .collect();
    dirs.sort();
    let mut table: Vec<String> = SEEDS.iter().map(|s| s.spec.to_string()).collect();
    table.sort();
    assert_eq!(dirs, table);
}

/// Build the seed on its stand-in base through a local registry, push it,
/// and check the pushed image the way the seed's document does.
fn check_seed(name: &str) {
    if !have(TOOLS) {
        return;
    }
    let seed = SEEDS.iter().find(|s| s.spec == name).unwrap();
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    push_stand_in(
        &registry,
        &format!("library/python:{}", seed.base),
        work.path(),
    );
    let builder = seed
        .builder
        .map(|base| build_builder(&registry, seed, base, work.path()));
    let build_args: Vec<String> = builder
        .iter()
        .map(|b| format!("--build-arg=BUILDER={b}"))
        .collect();
    let (image, digest) = build_and_push(&registry, seed, &build_args, work.path());
    assert_pulls_back_as(&image, &digest, work.path());
    assert_expected_findings(&registry, seed, &build_args, work.path());
    if let Some(builder) = &builder {
        assert_copies_from(seed, &image, builder);
    }

    let podman = Podman::new();
    podman.run(&["pull", "-q", "--tls-verify=false", &image]);
    let exec = |argv: &[&str]| podman.exec(&image, argv);

    let (user, group, uid, gid) = (seed.user, seed.group, seed.uid, seed.gid);
    assert_eq!(exec(&["whoami"]).trim(), user);
    assert_eq!(
        exec(&["id"]).trim(),
        format!("uid={uid}({user}) gid={gid}({group}) groups={gid}({group})")
    );

    // The base's account lines stay byte for byte; the user and group follow.
    let (passwd, group_file, _) = accounts(seed.base);
    let added = exec(&["cat", "/etc/passwd"]);
    let added = added.strip_prefix(passwd).unwrap_or_else(|| {
        panic!("the base's /etc/passwd lines changed:\n{added}");
    });
    assert!(
        added.starts_with(&format!("{user}:x:{uid}:{gid}:")) && added.lines().count() == 1,
        "{added}"
    );
    let added = exec(&["cat", "/etc/group"]);
    let added = added.strip_prefix(group_file).unwrap_or_else(|| {
        panic!("the base's /etc/group lines changed:\n{added}");
    });
    assert_eq!(added, format!("{group}:x:{gid}:\n"));
    assert_eq!(
        exec(&["stat", "-c", "%a %U:%G", "/etc/shadow"]).trim(),
        "640 root:shadow"
    );

    let mut stat = vec!["stat", "-c", "%U:%G %n"];
    stat.extend(seed.owned);
    let expected: String = seed
        .owned
        .iter()
        .map(|p| format!("{user}:{group} {p}\n"))
        .collect();
    assert_eq!(exec(&stat), expected);

    if seed.healthcheck {
        healthy(&podman, &image, seed.spec);
    }
    if seed.spec == "ecs-service" {
        // `bash startup.sh`, its own entrypoint, finds the script in the workdir.
        podman.run(&["run", "--rm", "--network", "none", &image]);
    }
}

/// `kiln build` specs/NAME/builder/kiln.toml in place on a stand-in for
/// its base (`base`, pushed to the registry, which kiln reaches as a mirror
/// of the base's own registry), and push it. Returns the pushed image as
/// `REF:TAG@DIGEST`, for `--build-arg BUILDER=`.
fn build_builder(registry: &Registry, seed: &Seed, base: &str, work: &Path) -> String {
    let (host, path) = base.split_once('/').unwrap();
    push_stand_in(registry, path, work);
    let image = format!("{}/seeds/{}-builder:1", registry.addr, seed.spec);
    let spec = repo()
        .join("specs")
        .join(seed.spec)
        .join("builder/kiln.toml");
    let (_, pinned) = build_pushed(registry, host, &spec, &[], &image, work);
    assert!(pinned.starts_with(&format!("{image}@sha256:")), "{pinned}");
    pinned
}

/// `kiln build SPEC ARGS` in `work`, with `host`'s images pulled through the
/// registry as its mirror, pushed to `image` with a digest file. Returns
/// the last stdout line and the digest file, both trimmed.
fn build_pushed(
    registry: &Registry,
    host: &str,
    spec: &Path,
    build_args: &[String],
    image: &str,
    work: &Path,
) -> (String, String) {
    let name = image.rsplit('/').next().unwrap().replace(':', "-");
    let digest_file = work.join(format!("{name}.digest"));
    let stdout = run(kiln()
        .current_dir(work)
        .arg("build")
        .arg(spec)
        .args(build_args)
        .arg("--registry-mirror-only")
        .arg("--registry-mirror")
        .arg(format!("{host}={}", registry.addr))
        .args(["--push", image, "--cache-dir"])
        .arg(work.join("cache"))
        .arg("--digest-file")
        .arg(&digest_file));
    let printed = stdout.lines().last().expect("kiln prints the image");
    let written = fs::read_to_string(&digest_file).unwrap();
    (printed.to_string(), written.trim().to_string())
}

/// The pushed image's history has a `COPY --from=BUILDER` line for each
/// copy out of the builder, naming it as it was given (by digest).
fn assert_copies_from(seed: &Seed, image: &str, builder: &str) {
    let spec = fs::read_to_string(repo().join("specs").join(seed.spec).join("kiln.toml")).unwrap();
    let wanted = spec.matches("image = \"${BUILDER}\"").count();
    assert!(wanted > 0, "{} copies nothing from ${{BUILDER}}", seed.spec);
    let (config, _) = skopeo_json(&[
        "--config",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    let from = format!("COPY --from={builder} ");
    let copies = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .flat_map(|c| c.split("; "))
        .filter(|c| c.starts_with(&from))
        .count();
    assert_eq!(copies, wanted, "`{from}...` in {:#}", config["history"]);
}

/// `kiln build` the spec in place, pulling the base through the registry as
/// a docker.io mirror and pushing the result there. Returns the pushed
/// reference (with tag) and the manifest digest kiln reported.
fn build_and_push(
    registry: &Registry,
    seed: &Seed,
    build_args: &[String],
    work: &Path,
) -> (String, String) {
    let image = format!("{}/seeds/{}:1", registry.addr, seed.spec);
    let spec = repo().join("specs").join(seed.spec).join("kiln.toml");
    let (printed, written) = build_pushed(registry, "docker.io", &spec, build_args, &image, work);
    assert_eq!(written, printed);
    let (reference, digest) = printed.rsplit_once('@').expect("REF@DIGEST");
    assert_eq!(reference, image);
    assert!(digest.starts_with("sha256:"), "{printed}");
    (image, digest.to_string())
}

/// `kiln check` on the seed spec, with the build's mirror, cache and build
/// args, finds what specs/NAME/expected-findings.txt lists: the finding IDs,
/// sorted, one a line. KILN_BLESS=1 rewrites the file instead.
fn assert_expected_findings(registry: &Registry, seed: &Seed, build_args: &[String], work: &Path) {
    let dir = repo().join("specs").join(seed.spec);
    let out = kiln()
        .current_dir(work)
        .arg("check")
        .arg(dir.join("kiln.toml"))
        .args(build_args)
        .args([
            "--format",
            "json",
            "--registry-mirror-only",
            "--registry-mirror",
        ])
        .arg(format!("docker.io={}", registry.addr))
        .arg("--cache-dir")
        .arg(work.join("cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "kiln check {} exited {}:\n{stdout}\n{}",
        seed.spec,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = parse_json(&stdout);
    let mut ids: Vec<&str> = findings
        .as_array()
        .unwrap_or_else(|| panic!("not a list of findings:\n{stdout}"))
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let actual: String = ids.iter().map(|id| format!("{id}\n")).collect();
    let expected_file = dir.join("expected-findings.txt");
    if std::env::var("KILN_BLESS").is_ok_and(|v| v == "1") {
        fs::write(&expected_file, &actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&expected_file)
        .unwrap_or_else(|e| panic!("{}: {e} (KILN_BLESS=1 writes it)", expected_file.display()));
    assert_eq!(
        actual,
        expected,
        "kiln check {} found other rules than {} (KILN_BLESS=1 rewrites it):\n{stdout}",
        seed.spec,
        expected_file.display()
    );
}

/// skopeo pulls the pushed image back, checking every blob, and the
/// manifest it gets has the digest kiln printed. `dir:` keeps the manifest's
/// bytes; skopeo 1.9 rewrites a Docker schema2 manifest as OCI for `oci:`.
fn assert_pulls_back_as(image: &str, digest: &str, work: &Path) {
    let copy = work.join("pulled");
    skopeo_copy(
        &format!("docker://{image}"),
        &format!("dir:{}", copy.display()),
        &[],
    );
    let manifest = fs::read(copy.join("manifest.json")).unwrap();
    assert_eq!(kiln::oci::digest::sha256(&manifest), digest);
}

/// Start the image detached and run its healthcheck until it passes (30 s at most).
fn healthy(podman: &Podman, image: &str, name: &str) {
    if let Err(e) = podman.healthy_within(image, name, Duration::from_secs(30)) {
        panic!("{e}");
    }
}

const DEBIAN_PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
const DEBIAN_GROUP: &str = "\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
shadow:x:42:
nogroup:x:65534:
";
const DEBIAN_SHADOW: &str = "\
root:*:20000:0:99999:7:::
daemon:*:20000:0:99999:7:::
bin:*:20000:0:99999:7:::
sys:*:20000:0:99999:7:::
nobody:*:20000:0:99999:7:::
";
const ALPINE_PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
";
const ALPINE_GROUP: &str = "\
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
shadow:x:42:
nogroup:x:65533:
nobody:x:65534:
";
const ALPINE_SHADOW: &str = "\
root:*::0:::::
bin:!::0:::::
daemon:!::0:::::
nobody:!::0:::::
";

/// The base's /etc/passwd, /etc/group and /etc/shadow.
fn accounts(tag: &str) -> (&'static str, &'static str, &'static str) {
    if tag.ends_with("-alpine") {
        (ALPINE_PASSWD, ALPINE_GROUP, ALPINE_SHADOW)
    } else {
        (DEBIAN_PASSWD, DEBIAN_GROUP, DEBIAN_SHADOW)
    }
}

/// The stand-ins for the python image's tools, each a busybox sh script.
const STAND_INS: &[(&str, &str)] = &[
    // uvicorn: whatever app it is asked for, serve /health on port 8000.
    (
        "uvicorn",
        "exec /bin/busybox httpd -f -p 8000 -h /usr/local/share/stand-in-www",
    ),
    // python: only the healthchecks' `python -c "...urlopen('URL')"`, with busybox wget.
    (
        "python",
        "url=$(echo \"$*\" | /bin/busybox sed -n \"s/.*urlopen('\\([^']*\\)').*/\\1/p\")\n\
         exec /bin/busybox wget -q -O /dev/null \"$url\"",
    ),
    // curl: `curl -f [--insecure] URL`, https served as plain http, with busybox wget.
    (
        "curl",
        "for a; do case $a in -*) ;; *) url=$a ;; esac; done\n\
         exec /bin/busybox wget -q -O /dev/null \"http://${url#*://}\"",
    ),
    // alembic: every migration succeeds.
    ("alembic", "exit 0"),
];

/// A stand-in for a python image, `REPO:TAG` (library/python:3.13-slim,
/// astral-sh/uv:python3.12-alpine; Debian, or Alpine for *-alpine), pushed
/// to REGISTRY/REPO:TAG, where kiln's mirror of the image's registry looks.
fn push_stand_in(registry: &Registry, repo_tag: &str, work: &Path) {
    let (repo, tag) = repo_tag.rsplit_once(':').unwrap();
    let name = repo_tag.replace(['/', ':'], "-");
    let root = work.join(format!("rootfs-{name}"));
    if root.exists() {
        return;
    }
    let alpine = tag.ends_with("-alpine");
    stand_in_rootfs(&root, alpine);
    let image = umoci_image(&work.join(format!("layout-{name}")), tag, &root);
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.env",
        "PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--config.cmd",
        "python3",
    ]));
    skopeo_copy(
        &format!("oci:{image}"),
        &format!("docker://{}/{repo}:{tag}", registry.addr),
        &[],
    );
}

/// A root filesystem with a static busybox, the base's account files and the stand-in tools.
fn stand_in_rootfs(root: &Path, alpine: bool) {
    let dir = |p: &str, mode: u32| {
        let path = root.join(p);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    let file = |p: &str, content: &str, mode: u32| {
        fs::write(root.join(p), content).unwrap();
        fs::set_permissions(root.join(p), fs::Permissions::from_mode(mode)).unwrap();
    };
    for (d, mode) in [
        ("etc", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("tmp", 0o1777),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("usr/local/bin", 0o755),
        ("usr/local/share/stand-in-www", 0o755),
    ] {
        dir(d, mode);
    }
    // Debian bookworm has a merged /usr; Alpine keeps /bin and /sbin.
    let bin = if alpine {
        dir("bin", 0o755);
        dir("sbin", 0o755);
        "bin"
    } else {
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("usr/sbin", root.join("sbin")).unwrap();
        "usr/bin"
    };
    fs::copy(busybox(), root.join(bin).join("busybox")).unwrap();
    for applet in [
        "sh", "id", "whoami", "ls", "stat", "cat", "wget", "env", "pwd", "sed",
    ] {
        symlink("busybox", root.join(bin).join(applet)).unwrap();
    }
    if !alpine {
        // Stands in for GNU bash (busybox has no `bash` applet) for `bash startup.sh`.
        file(
            "usr/bin/bash",
            "#!/bin/sh\nexec /bin/busybox sh \"$@\"\n",
            0o755,
        );
    }
    for (tool, body) in STAND_INS {
        let script = format!("#!/bin/sh\n# Stands in for the real {tool}.\n{body}\n");
        file(&format!("usr/local/bin/{tool}"), &script, 0o755);
    }
    // The base's cmd, as in the real image: `kiln check` looks it up.
    symlink("python", root.join("usr/local/bin/python3")).unwrap();
    file(
        "usr/local/share/stand-in-www/health",
        "{\"status\":\"healthy\"}\n",
        0o644,
    );

    let (passwd, group, shadow) = accounts(if alpine { "-alpine" } else { "" });
    file("etc/passwd", passwd, 0o644);
    file("etc/group", group, 0o644);
    file("etc/shadow", shadow, 0o640);
    run(Command::new("chown")
        .arg("0:42")
        .arg(root.join("etc/shadow")));
}
