//! `[[copy]] image = "REF"`: files taken out of another image, as a
//! Dockerfile's `COPY --from=IMAGE` takes them. The source images are made
//! by umoci (not by kiln) and served by Debian's docker-registry or read as
//! OCI layouts that skopeo wrote; the results are checked by podman running
//! them, by umoci unpacking them, and by `kiln inspect --files`.
//!
//! umoci writes one layer per `umoci insert`, so the source image has its
//! whiteout (site-packages/b.py) in layer 2 and its opaque directory
//! (lib/old, replaced by one new file) in layer 3.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use serde_json::Value;

/// The source image: umoci's OCI layout `work/src-layout`, tag `1`.
struct Source {
    layout: PathBuf,
    /// Its manifest digest, as kiln must name it.
    digest: String,
}

impl Source {
    /// `skopeo copy` the source to `dest` (a `docker://` or `oci:` target).
    fn copy_to(&self, dest: &str) {
        skopeo_copy(&format!("oci:{}:1", self.layout.display()), dest, &[]);
    }
}

/// Layer 1 holds a venv, a tool, uv behind a `/bin -> usr/local/bin` link
/// and two wheels; layer 2 whites out site-packages/b.py; layer 3 makes
/// lib/old opaque, leaving only new.txt. The modes are odd on purpose
/// (0700, 0600, setuid): a copy normalises them as it does local files.
fn source_image(work: &Path) -> Source {
    let root = work.join("src-root");
    write_tree(
        &root,
        &[
            ("app/.venv/bin/python", "#!/bin/sh\necho python\n", 0o700),
            ("app/.venv/bin/python3", "-> python", 0),
            ("app/.venv/lib/site-packages/a.py", "a = 1\n", 0o600),
            ("app/.venv/lib/site-packages/b.py", "b = 2\n", 0o644),
            ("app/.venv/lib/old/x.txt", "x\n", 0o644),
            ("app/.venv/lib/old/y.txt", "y\n", 0o644),
            ("app/one-1.0.whl", "wheel one\n", 0o644),
            ("app/two-2.0.whl", "wheel two\n", 0o644),
            ("app/notes.txt", "not a wheel\n", 0o644),
            ("opt/tool", "#!/bin/sh\necho tool\n", 0o4755),
            ("usr/local/bin/uv", "#!/bin/sh\necho uv 0.8.22\n", 0o755),
            ("bin", "-> usr/local/bin", 0),
        ],
    );
    let opaque = work.join("src-old");
    write_tree(&opaque, &[("new.txt", "new\n", 0o644)]);

    let layout = work.join("src-layout");
    umoci_layers(
        &layout,
        "1",
        &[
            (&root, "/", &[]),
            (work, "/app/.venv/lib/site-packages/b.py", &["--whiteout"]),
            (&opaque, "/app/.venv/lib/old", &["--opaque"]),
        ],
    );

    // The layers really hold what this test is about.
    let manifest = layout_manifest(&layout);
    let layers: Vec<Vec<String>> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| tar_names(&layout_blob(&layout, &l["digest"])))
        .collect();
    assert_eq!(layers.len(), 3, "{layers:?}");
    assert!(layers[0].iter().any(|n| n == "bin"), "{:?}", layers[0]);
    assert_eq!(layers[1], ["app/.venv/lib/site-packages/.wh.b.py"]);
    assert!(
        layers[2].contains(&"app/.venv/lib/old/.wh..wh..opq".to_string())
            && layers[2].contains(&"app/.venv/lib/old/new.txt".to_string()),
        "{:?}",
        layers[2]
    );

    let digest = layout_index(&layout)["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    Source { layout, digest }
}

/// The names in a gzip'd layer tar, as GNU tar lists them. umoci 0.4 ends
/// its layers without tar's closing zero blocks, so tar's own exit status
/// (it complains about the missing end) is not the point.
fn tar_names(blob: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tzf").arg(blob).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches('/').trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `kiln build` into the OCI layout `out` with the cache `cache`; the digest.
fn build_to_layout(spec: &Path, out: &Path, cache: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "--oci",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    args.extend(extra);
    build(spec, &args)
}

/// The spec of the issue: a static busybox and the app user, the venv owned
/// by the user, uv through the image's `/bin` link, a glob of wheels with a
/// mode, and a setuid tool. `IMAGE` is replaced by the source reference.
const SPEC: &str = r#"[image]
name = "copied"
base = "scratch"

[user]
name = "appuser"
uid = 10001

[[copy]]
src = "busybox"
dest = "/bin/busybox"

[[symlink]]
path = "/bin/sh"
target = "busybox"

[[copy]]
image = "IMAGE"
src = "/app/.venv"
dest = "/app/.venv/"
owner = "appuser:appuser"

[[copy]]
image = "IMAGE"
src = "/bin/uv"
dest = "/usr/bin/uv"

[[copy]]
image = "IMAGE"
src = "/app/*.whl"
dest = "/wheels/"
owner = "10001:10001"
mode = 0o600

[[copy]]
image = "IMAGE"
src = "/opt/tool"
dest = "/opt/"

[config]
entrypoint = ["/usr/bin/uv"]
"#;

/// A spec directory holding SPEC (with `image`), busybox and a
/// .dockerignore naming what the image copies take: it is for local files
/// only, so it must not filter what comes out of an image.
fn spec_dir(work: &Path, image: &str) -> PathBuf {
    let dir = work.join("spec");
    let spec = write_spec(&dir, &SPEC.replace("IMAGE", image));
    fs::copy(busybox(), dir.join("busybox")).unwrap();
    fs::write(dir.join(".dockerignore"), "app\n.venv\n**/*.whl\nopt\n").unwrap();
    spec
}

/// What the copies must give, as `stat -c '%u:%g %a %F %n'` prints it:
/// owners from the spec, modes normalised (0700 -> 755, 0600 -> 644, the
/// setuid bit dropped) unless `mode` is set, the link kept as a link.
const STAT: &[&str] = &[
    "0:0 755 directory /app",
    "10001:10001 755 directory /app/.venv",
    "10001:10001 755 directory /app/.venv/bin",
    "10001:10001 755 regular file /app/.venv/bin/python",
    "10001:10001 777 symbolic link /app/.venv/bin/python3",
    "10001:10001 755 directory /app/.venv/lib",
    "10001:10001 755 directory /app/.venv/lib/old",
    "10001:10001 644 regular file /app/.venv/lib/old/new.txt",
    "10001:10001 755 directory /app/.venv/lib/site-packages",
    "10001:10001 644 regular file /app/.venv/lib/site-packages/a.py",
    "0:0 755 directory /opt",
    "0:0 755 regular file /opt/tool",
    "0:0 755 regular file /usr/bin/uv",
    "0:0 755 directory /wheels",
    "10001:10001 600 regular file /wheels/one-1.0.whl",
    "10001:10001 600 regular file /wheels/two-2.0.whl",
];

#[test]
fn files_from_a_umoci_image_in_a_registry_run_in_podman_with_the_new_owner() {
    let Some((work, registry)) =
        with_registry(&["umoci", "skopeo", "docker-registry", "podman", "runc"])
    else {
        return;
    };
    let w = work.path();
    let source = source_image(w);
    let src_ref = format!("{}/src:1", registry.addr);
    source.copy_to(&format!("docker://{src_ref}"));

    let spec = spec_dir(w, &src_ref);
    let image = format!("{}/copied:1", registry.addr);
    let layout = w.join("out");
    build_to_layout(&spec, &layout, &w.join("cache"), &["--push", &image]);

    // podman pulls the pushed image and runs it as the app user.
    let podman = Podman::new();
    podman.run(&["pull", "-q", "--tls-verify=false", &image]);
    let sh = |argv: &[&str]| {
        let mut all = vec!["/bin/busybox"];
        all.extend(argv);
        podman.exec(&image, &all)
    };
    assert_eq!(sh(&["id", "-u"]).trim(), "10001");
    let mut stat = vec!["stat", "-c", "%u:%g %a %F %n"];
    stat.extend(STAT.iter().map(|l| l.rsplit(' ').next().unwrap()));
    let expected: String = STAT.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(sh(&stat), expected);
    // b.py is whited out; lib/old has only what the opaque layer put there.
    assert_eq!(sh(&["ls", "-A", "/app/.venv/lib/site-packages"]), "a.py\n");
    let old = sh(&["ls", "-lnA", "/app/.venv/lib/old"]);
    let old: Vec<&str> = old.lines().filter(|l| !l.starts_with("total")).collect();
    assert_eq!(old.len(), 1, "{old:?}");
    let fields: Vec<&str> = old[0].split_whitespace().collect();
    assert_eq!(
        (fields[0], fields[2], fields[3], *fields.last().unwrap()),
        ("-rw-r--r--", "10001", "10001", "new.txt"),
        "{old:?}"
    );
    assert_eq!(sh(&["readlink", "/app/.venv/bin/python3"]), "python\n");
    assert_eq!(sh(&["cat", "/app/.venv/lib/old/new.txt"]), "new\n");
    assert_eq!(sh(&["ls", "/wheels"]), "one-1.0.whl\ntwo-2.0.whl\n");
    // uv, copied through the image's /bin link, runs (it is the entrypoint).
    let uv = podman.run(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(uv, "uv 0.8.22\n");

    // kiln inspect reads the same from the OCI layout written beside the push.
    let report = inspect_files(&format!("oci:{}", layout.display()));
    let files = files_under(&report, &["/app", "/usr/bin/uv", "/opt", "/wheels"]);
    let expected_files: Vec<String> = STAT
        .iter()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let (owner, mode, rest) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let (kind, path) = rest.rsplit_once(' ').unwrap();
            let kind = match kind {
                "directory" => "dir",
                "regular file" => "file",
                _ => "symlink",
            };
            let link = if kind == "symlink" { " -> python" } else { "" };
            format!("{path} {kind} {owner} 0{mode}{link}")
        })
        .collect();
    assert_eq!(files, expected_files);

    // Each copy's history line names the image by the digest it resolved to.
    let history = created_by(&report);
    let from = format!("--from={src_ref}@{}", source.digest);
    assert!(
        history.contains(&format!(
            "COPY {from} --chown=10001:10001 /app/.venv /app/.venv/ # kiln"
        )),
        "{history:#?}"
    );
    assert!(
        history.contains(&format!("COPY {from} /bin/uv /usr/bin/uv # kiln")),
        "{history:#?}"
    );
    assert!(
        history.contains(&format!(
            "COPY {from} --chown=10001:10001 /app/*.whl /wheels/ # kiln"
        )),
        "{history:#?}"
    );
}

/// `PATH TYPE UID:GID MODE[ -> LINK]` for every file at or under `roots`.
fn files_under(report: &Value, roots: &[&str]) -> Vec<String> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let p = f["path"].as_str().unwrap();
            roots
                .iter()
                .any(|r| p == *r || p.starts_with(&format!("{r}/")))
        })
        .map(|f| {
            let link = f["link"]
                .as_str()
                .map(|l| format!(" -> {l}"))
                .unwrap_or_default();
            format!(
                "{} {} {}:{} {}{link}",
                f["path"].as_str().unwrap(),
                f["type"].as_str().unwrap(),
                f["uid"],
                f["gid"],
                f["mode"].as_str().unwrap()
            )
        })
        .collect()
}

fn created_by(report: &Value) -> Vec<String> {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["created_by"].as_str())
        .flat_map(|s| s.split("; ").map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn files_from_oci_layouts_made_by_skopeo_and_by_kiln() {
    if !have(&["umoci", "skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let source = source_image(w);
    let dir = w.join("spec");
    fs::create_dir_all(&dir).unwrap();
    // skopeo writes the source into a layout next to the spec, under tag v2.
    source.copy_to(&format!("oci:{}:v2", dir.join("from-skopeo").display()));

    // A docker-format image that kiln built into an OCI layout: what the
    // seed specs' builder/ makes.
    let builder = w.join("builder");
    write_tree(
        &builder,
        &[
            ("dist/server", "#!/bin/sh\necho served\n", 0o755),
            ("dist/static/site.css", "body {}\n", 0o644),
        ],
    );
    let builder_spec = write_spec(
        &builder,
        r#"[image]
name = "builder"
base = "scratch"
[[copy]]
src = "dist/"
dest = "/build/dist/"
[policy]
allow = ["KILN-ROOT-USER", "KILN-NO-HEALTHCHECK"]
reason = "a build stage: never run, only copied from"
"#,
    );
    build_to_layout(&builder_spec, &dir.join("kiln-made"), &w.join("cache"), &[]);

    let spec = write_spec(
        &dir,
        r#"[image]
name = "from-layouts"
base = "scratch"
format = "oci"

[args]
LAYOUT = "from-skopeo"

[user]
name = "appuser"
uid = 10001

[[copy]]
image = "oci:${LAYOUT}:v2"
src = "/app/.venv/"
dest = "/app/.venv/"
owner = "appuser:appuser"

[[copy]]
image = "oci:${LAYOUT}:v2"
src = "/bin/uv"
dest = "/usr/local/bin/"

[[copy]]
image = "oci:kiln-made:latest"
src = "/build/dist"
dest = "/srv/"
owner = "appuser"
"#,
    );
    let layout = w.join("out");
    build_to_layout(&spec, &layout, &w.join("cache"), &[]);

    // umoci unpacks the result as a runtime would see it.
    let r = unpack(&layout, w).join("rootfs");
    let venv = r.join("app/.venv");
    assert_eq!(stat(&venv), "10001:10001 755");
    assert_eq!(stat(&venv.join("bin/python")), "10001:10001 755");
    assert_eq!(
        fs::read_link(venv.join("bin/python3")).unwrap(),
        Path::new("python")
    );
    assert_eq!(
        stat(&venv.join("lib/site-packages/a.py")),
        "10001:10001 644"
    );
    assert!(!venv.join("lib/site-packages/b.py").exists());
    assert_eq!(names(&venv.join("lib/old")), ["new.txt"]);
    assert_eq!(stat(&venv.join("lib/old/new.txt")), "10001:10001 644");
    assert_eq!(stat(&r.join("usr/local/bin/uv")), "0:0 755");
    assert_eq!(
        fs::read_to_string(r.join("usr/local/bin/uv")).unwrap(),
        "#!/bin/sh\necho uv 0.8.22\n"
    );
    assert_eq!(names(&r.join("srv")), ["server", "static"]);
    assert_eq!(stat(&r.join("srv/server")), "10001:10001 755");
    assert_eq!(stat(&r.join("srv/static/site.css")), "10001:10001 644");
    assert!(!r.join("app/one-1.0.whl").exists() && !r.join("opt").exists());

    // The digest of the manifest skopeo wrote, which kiln resolved `v2` to.
    let index = layout_index(&dir.join("from-skopeo"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let history = created_by(&inspect_files(&format!("oci:{}", layout.display())));
    let line = format!("COPY --from=oci:from-skopeo:v2@{digest} /bin/uv /usr/local/bin/ # kiln");
    assert!(history.contains(&line), "{history:#?}");
}

/// The names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// One copy out of `image` into /x/, with `extra` lines in the copy table.
fn one_copy(dir: &Path, image: &str, src: &str, extra: &str) -> PathBuf {
    write_spec(
        dir,
        &format!(
            "[image]\nname = \"bad\"\nbase = \"scratch\"\n\n[user]\nname = \"app\"\nuid = 10001\n\n[[copy]]\nimage = \"{image}\"\nsrc = \"{src}\"\ndest = \"/x/\"\n{extra}"
        ),
    )
}

#[test]
fn wrong_sources_are_refused_with_exit_2() {
    let Some((work, registry)) = with_registry(&["umoci", "skopeo", "docker-registry"]) else {
        return;
    };
    let w = work.path();
    let source = source_image(w);
    let src_ref = format!("{}/src:1", registry.addr);
    source.copy_to(&format!("docker://{src_ref}"));
    let cache = w.join("cache");
    let out = w.join("out");
    let args = [
        "--oci",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];

    // A src the image lacks: the image's digest, and the nearest paths it has.
    let spec = one_copy(w, &src_ref, "/app/.venv/lib/site-package", "");
    let stderr = build_refused(&spec, &args);
    assert!(
        stderr.contains("src `/app/.venv/lib/site-package` does not exist in the image")
            && stderr.contains(&source.digest),
        "{stderr}"
    );
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("no hint:\n{stderr}"));
    assert!(
        hint.contains("/app/.venv/lib/site-packages") && hint.contains("/app/.venv/lib/old"),
        "{hint}"
    );
    // The nearest come first: the one a letter away leads.
    assert!(
        hint.find("site-packages").unwrap() < hint.find("/old").unwrap(),
        "{hint}"
    );

    // The same for a path whose parents are missing too, and in an OCI layout.
    let spec = one_copy(
        &w.join("layout-spec"),
        &format!("oci:{}:1", source.layout.display()),
        "/srv/www/index.html",
        "",
    );
    let stderr = build_refused(&spec, &args);
    assert!(stderr.contains(&source.digest), "{stderr}");
    assert!(
        stderr.contains("hint: ") && stderr.contains("/app") && stderr.contains("/opt"),
        "{stderr}"
    );

    // Sources in an image are absolute paths.
    let spec = one_copy(w, &src_ref, "app/.venv", "");
    let stderr = build_refused(&spec, &args);
    assert!(
        stderr.contains("src `app/.venv` must be absolute in the image")
            && stderr.contains("hint: write \"/app/.venv\""),
        "{stderr}"
    );

    // follow-symlinks is for local sources.
    let spec = one_copy(w, &src_ref, "/app/.venv", "follow-symlinks = true\n");
    let stderr = build_refused(&spec, &args);
    assert!(
        stderr.contains("follow-symlinks is for local sources"),
        "{stderr}"
    );

    // An image of another platform: a layout whose config says arm64.
    let arm = w.join("arm-layout");
    run(Command::new("cp").arg("-a").arg(&source.layout).arg(&arm));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &format!("{}:1", arm.display()),
        "--architecture",
        "arm64",
    ]));
    let spec = one_copy(w, &format!("oci:{}:1", arm.display()), "/app", "");
    let mut amd64 = args.to_vec();
    amd64.extend(["--platform", "linux/amd64"]);
    let stderr = build_refused(&spec, &amd64);
    assert!(
        stderr.contains("is linux/arm64, but the build is for linux/amd64")
            && stderr.contains("hint: "),
        "{stderr}"
    );

    assert!(!out.exists(), "a failed build left its output");
}

/// A glob that matches nothing in the image says so in the image's terms:
/// the src as written and the image's digest, not a directory of kiln's cache.
#[test]
fn a_glob_matching_nothing_in_the_image_names_the_image() {
    if !have(&["umoci", "skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let source = source_image(w);
    let cache = w.join("cache");
    let spec = one_copy(w, "oci:src-layout:1", "/app/*.zip", "");
    let stderr = build_refused(
        &spec,
        &[
            "--oci",
            w.join("out").to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert!(
        stderr.contains("`/app/*.zip`") && stderr.contains(&source.digest),
        "{stderr}"
    );
    assert!(
        !stderr.contains(cache.to_str().unwrap()),
        "the cache's unpacked tree leaks into the error:\n{stderr}"
    );
}

#[test]
fn a_rebuild_reuses_the_copy_layer_and_pulls_nothing_again() {
    let Some((work, registry)) = with_registry(&["umoci", "skopeo", "docker-registry"]) else {
        return;
    };
    let w = work.path();
    let source = source_image(w);
    // Named as a docker.io image and pulled through --registry-mirror.
    source.copy_to(&format!("docker://{}/kiln-test/src:1", registry.addr));
    let spec = write_spec(
        &w.join("spec"),
        r#"[image]
name = "cached"
base = "scratch"

[args]
SRC = "kiln-test/src:1"

[user]
name = "appuser"
uid = 10001

[[copy]]
image = "${SRC}"
src = "/app/.venv"
dest = "/app/.venv/"
owner = "appuser:appuser"
"#,
    );
    let cache = w.join("cache");
    let mirror = format!("docker.io={}", registry.addr);
    let build_once = |out: &str| -> (String, String) {
        let out = w.join(out);
        let args = [
            "--registry-mirror",
            &mirror,
            "--registry-mirror-only",
            "--oci",
            out.to_str().unwrap(),
        ];
        let output = kiln_build(&spec, &cache, &args);
        check(&Command::new("kiln"), &output);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let digest = stdout.lines().last().unwrap().rsplit_once('@').unwrap().1;
        (
            digest.to_string(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (first, stderr1) = build_once("out1");
    let (second, stderr2) = build_once("out2");
    assert_eq!(first, second, "the same inputs gave another image");

    let copy_line = |stderr: &str| -> String {
        stderr
            .lines()
            .find(|l| l.contains("COPY --from="))
            .unwrap_or_else(|| panic!("no copy layer in:\n{stderr}"))
            .to_string()
    };
    let from = format!("COPY --from=kiln-test/src:1@{}", source.digest);
    assert!(copy_line(&stderr1).contains(&from), "{stderr1}");
    assert!(
        !copy_line(&stderr1).contains(", cached"),
        "a cold cache had the layer:\n{stderr1}"
    );
    assert!(
        copy_line(&stderr2).contains(", cached"),
        "the second build wrote the copy layer again:\n{stderr2}"
    );
    let history = created_by(&inspect_files(&format!("oci:{}", w.join("out2").display())));
    assert!(
        history.contains(&format!(
            "{from} --chown=10001:10001 /app/.venv /app/.venv/ # kiln"
        )),
        "{history:#?}"
    );

    // Every blob of the source image came from the registry once, for both builds.
    let log = registry_log(&registry);
    let manifest = layout_manifest(&source.layout);
    let blobs: Vec<&str> = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(blobs.len(), 4);
    for blob in blobs {
        let gets = blob_gets(&log, "kiln-test/src", blob).len();
        assert_eq!(gets, 1, "{blob} was pulled {gets} times");
    }
}

#[test]
fn each_platform_copies_from_its_own_image_of_an_index() {
    let Some((work, registry)) = with_registry(&["umoci", "skopeo", "docker-registry"]) else {
        return;
    };
    let w = work.path();
    // A two-platform index, each image with its own /build/arch.
    let src_spec = write_spec(
        &w.join("src"),
        r#"[image]
name = "multi"
base = "scratch"
platforms = ["linux/amd64", "linux/arm64"]
[[file]]
path = "/build/arch"
content = "${TARGETARCH}\n"
[policy]
allow = ["KILN-ROOT-USER", "KILN-NO-HEALTHCHECK"]
reason = "a build stage: never run, only copied from"
"#,
    );
    let cache = w.join("cache");
    let src_ref = format!("{}/multi:1", registry.addr);
    build(
        &src_spec,
        &["--push", &src_ref, "--cache-dir", cache.to_str().unwrap()],
    );

    let spec = write_spec(
        &w.join("spec"),
        &format!(
            r#"[image]
name = "per-platform"
base = "scratch"
platforms = ["linux/amd64", "linux/arm64"]

[user]
name = "app"
uid = 10001

[[copy]]
image = "{src_ref}"
src = "/build/arch"
dest = "/etc/built-for"
"#
        ),
    );
    let image = format!("{}/per-platform:1", registry.addr);
    build(
        &spec,
        &["--push", &image, "--cache-dir", cache.to_str().unwrap()],
    );
    for arch in ["amd64", "arm64"] {
        let pulled = pull_and_unpack(
            &format!("docker://{image}"),
            &w.join(arch),
            &["--override-arch", arch],
        );
        assert_eq!(
            fs::read_to_string(pulled.rootfs().join("etc/built-for")).unwrap(),
            format!("{arch}\n")
        );
    }
}

/// A hard link in a layer whose target lies outside the copied tree: Docker
/// copies the file's bytes (`COPY --from` copies what the path holds); a
/// venv or cache filled by uv's hard-link mode looks like this.
#[test]
fn hard_links_to_files_outside_the_copied_tree_are_copied_as_files() {
    if !have(&["umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    write_tree(&root, &[("app/.venv/lib/pkg.py", "data = 1\n", 0o644)]);
    fs::create_dir_all(root.join("root/.cache/uv")).unwrap();
    // umoci walks /app first: pkg.py is the file, the cache's name the link.
    fs::hard_link(
        root.join("app/.venv/lib/pkg.py"),
        root.join("root/.cache/uv/pkg.py"),
    )
    .unwrap();
    let dir = w.join("spec");
    fs::create_dir_all(&dir).unwrap();
    let layout = dir.join("src");
    umoci_image(&layout, "1", &root);
    let listing = Command::new("tar")
        .arg("-tvzf")
        .arg(layout_blob(
            &layout,
            &layout_manifest(&layout)["layers"][0]["digest"],
        ))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("root/.cache/uv/pkg.py link to app/.venv/lib/pkg.py"),
        "{listing}"
    );

    for (src, dest) in [
        ("/root/.cache/uv", "/x/pkg.py"),
        ("/root/.cache/uv/pkg.py", "/x/pkg.py"),
    ] {
        let spec = one_copy(&dir, "oci:src:1", src, "");
        let out = w.join("out");
        let _ = fs::remove_dir_all(&out);
        build_to_layout(&spec, &out, &w.join("cache"), &[]);
        let report = inspect_files(&format!("oci:{}", out.display()));
        assert_eq!(
            files_under(&report, &["/x"]),
            ["/x dir 0:0 0755", &format!("{dest} file 0:0 0644")],
            "copying {src}"
        );
        let file = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == dest)
            .unwrap();
        assert_eq!(file["size"], 9, "copying {src}: {file}");
    }
}
