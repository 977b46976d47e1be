//! `kiln init --from Dockerfile`: for each Dockerfile in testdata/dockerfiles
//! (the seeds' release stages and Dockerfiles written as projects write
//! them), init succeeds, names every RUN part it cannot express on stderr
//! with its line, and the spec it writes builds against a local base. What
//! a running container sees (user, home, workdir, owners and modes) and the
//! image config are then checked: against podman's build of the same
//! Dockerfile from the same base where podman can build it offline, else
//! against the values the Dockerfile means, written below.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{Podman, base_layout, have, kiln, kiln_build, repo, run, umoci_image};

/// A copy of testdata/dockerfiles/NAME (modes kept) in a temp dir.
fn context(name: &str, work: &Path) -> PathBuf {
    let ctx = work.join("ctx");
    copy_dir(&repo().join("testdata/dockerfiles").join(name), &ctx);
    ctx
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// `kiln init --from CTX/Dockerfile EXTRA`, which must succeed with a spec
/// the JSON Schema accepts: the spec and stderr.
fn init_from(ctx: &Path, extra: &[&str]) -> (String, String) {
    let out = kiln()
        .arg("init")
        .arg("--from")
        .arg(ctx.join("Dockerfile"))
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kiln init --from: {stderr}");
    let spec = fs::read_to_string(ctx.join("kiln.toml")).unwrap();
    // What editors check it against: `kiln schema`.
    let errors = crate::common::schema::errors(&crate::common::schema::validator(), &spec);
    assert!(errors.is_empty(), "{errors:?}\n{spec}");
    (spec, stderr)
}

/// The Dockerfile lines stderr reports as left out, in order.
fn reported_lines(stderr: &str) -> Vec<usize> {
    stderr
        .lines()
        .filter_map(|l| {
            l.split_once("Dockerfile:")?
                .1
                .split_once(": not in the spec")?
                .0
                .parse()
                .ok()
        })
        .collect()
}

/// The spec with its base line naming `base`.
fn with_base(spec: &str, base: &str) -> String {
    spec.lines()
        .map(|l| {
            if l.starts_with("base = ") {
                format!("base = {base:?}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// For each `STAGE_*_IMAGE` arg (a stage kiln does not build), a local image
/// holding every path the spec copies out of it; the --build-arg for each.
fn stage_images(spec: &str, work: &Path) -> Vec<String> {
    let doc: toml::Value = toml::from_str(spec).unwrap();
    let mut out = Vec::new();
    let Some(args) = doc.get("args").and_then(|a| a.as_table()) else {
        return out;
    };
    for name in args.keys().filter(|k| k.starts_with("STAGE_")) {
        let root = work.join(format!("{name}-root"));
        fs::create_dir_all(&root).unwrap();
        let wanted = format!("${{{name}}}");
        for c in doc["copy"].as_array().unwrap() {
            if c.get("image").and_then(|i| i.as_str()) != Some(wanted.as_str()) {
                continue;
            }
            let src = c["src"].as_str().unwrap().trim_start_matches('/');
            let path = root.join(src);
            let leaf = src.rsplit('/').next().unwrap();
            if leaf.contains('.') && !leaf.starts_with('.') {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, "built\n").unwrap();
            } else {
                fs::create_dir_all(&path).unwrap();
                fs::write(path.join("built.txt"), "built\n").unwrap();
            }
        }
        let image = umoci_image(&work.join(format!("{name}-layout")), "v1", &root);
        out.push(format!("{name}=oci:{image}"));
    }
    out
}

/// Build `spec` (written into CTX/kiln.toml) to WORK/out: the layout's reference.
fn build(ctx: &Path, work: &Path, spec: &str, build_args: &[String]) -> String {
    fs::write(ctx.join("kiln.toml"), spec).unwrap();
    let mut extra: Vec<String> = Vec::new();
    for a in build_args {
        extra.extend(["--build-arg".to_string(), a.clone()]);
    }
    // kiln check reads it as build does: findings (exit 1) are fine, bad input (2) is not.
    let check = kiln()
        .arg("check")
        .arg(ctx.join("kiln.toml"))
        .args(&extra)
        .output()
        .unwrap();
    assert_ne!(
        check.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let out = work.join("out");
    extra.extend([
        "--oci".into(),
        out.display().to_string(),
        "--no-check".into(),
    ]);
    extra.extend(["--tar".into(), work.join("out.tar").display().to_string()]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let built = kiln_build(&ctx.join("kiln.toml"), &work.join("cache"), &extra);
    assert!(
        built.status.success(),
        "{}\n{spec}",
        String::from_utf8_lossy(&built.stderr)
    );
    format!("oci:{}", out.display())
}

/// The image config as written (--raw: skopeo's OCI view drops the healthcheck).
fn config(reference: &str) -> Value {
    let text = run(Command::new("skopeo").args(["inspect", "--config", "--raw", reference]));
    serde_json::from_str::<Value>(&text).unwrap()["config"].clone()
}

/// The image in `tar` (a docker-archive) loaded into podman: its name.
fn load(podman: &Podman, tar: &Path) -> String {
    let out = podman.run(&["load", "-i", &tar.display().to_string()]);
    out.lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load: {out}"))
        .trim()
        .to_string()
}

/// What a process in the container sees: ids, names, HOME, cwd, and owner
/// and mode of each path.
fn seen(podman: &Podman, image: &str, paths: &[&str]) -> String {
    let script = format!(
        "id -u; id -g; id -un; echo \"$HOME\"; pwd; for p in {}; do stat -c '%n %u:%g %a' \"$p\"; done; true",
        paths.join(" ")
    );
    podman.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/busybox",
        image,
        "sh",
        "-c",
        &script,
    ])
}

struct Case {
    name: &'static str,
    /// Lines stderr must report as not in the spec.
    reported: &'static [usize],
    /// `seen` of the paths below: `id -u`, `id -g`, `id -un`, HOME, cwd, then `stat` lines.
    paths: &'static [&'static str],
    seen: &'static str,
    /// Config fields, as JSON pointers into skopeo's `config`.
    config: Vec<(&'static str, Value)>,
    /// `Env` entries that must be there (`K=V`; a trailing `*` matches a prefix).
    env: &'static [&'static str],
}

/// Init, build and run one Dockerfile whose RUN lines podman cannot run
/// here (apt-get, pip, useradd/adduser are not in the offline busybox
/// base): what it means is written in the case.
fn check_case(case: Case) {
    if !have(&["skopeo", "umoci", "podman", "runc"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let ctx = context(case.name, w);
    let (spec, stderr) = init_from(&ctx, &[]);
    assert_eq!(reported_lines(&stderr), case.reported, "{stderr}\n{spec}");
    for line in case.reported {
        assert!(spec.contains(&format!("#   line {line}: ")), "{spec}");
    }
    let base = base_layout(w);
    let spec = with_base(&spec, &base);
    let args = stage_images(&spec, w);
    let image = build(&ctx, w, &spec, &args);
    let cfg = config(&image);
    for (pointer, want) in &case.config {
        assert_eq!(
            cfg.pointer(pointer),
            Some(want),
            "{pointer} in {cfg:#}\n{spec}"
        );
    }
    let env: Vec<&str> = cfg["Env"]
        .as_array()
        .map_or(vec![], |e| e.iter().filter_map(Value::as_str).collect());
    for want in case.env {
        let found = match want.strip_suffix('*') {
            Some(prefix) => env.iter().any(|e| e.starts_with(prefix)),
            None => env.contains(want),
        };
        assert!(found, "{want} not in {env:?}\n{spec}");
    }
    let podman = Podman::new();
    let loaded = load(&podman, &w.join("out.tar"));
    assert_eq!(seen(&podman, &loaded, case.paths), case.seen, "{spec}");
}

/// Nanoseconds, as image configs write durations.
fn secs(n: u64) -> Value {
    json!(n * 1_000_000_000)
}

#[test]
fn seed_000_django_release() {
    check_case(Case {
        name: "seed-000-django-release",
        reported: &[],
        paths: &[
            "/home/app",
            "/src/manage.py",
            "/src/config/asgi.py",
            "/src/staticfiles",
            "/usr/local/lib/python3.13/site-packages",
        ],
        seen: "1000\n1000\napp\n/home/app\n/src\n/home/app 1000:1000 755\n/src/manage.py 1000:1000 644\n\
               /src/config/asgi.py 1000:1000 644\n/src/staticfiles 1000:1000 755\n/usr/local/lib/python3.13/site-packages 0:0 755\n",
        config: vec![
            ("/User", json!("1000:1000")),
            ("/WorkingDir", json!("/src")),
            (
                "/Cmd",
                json!(["uvicorn", "config.asgi:application", "--host", "0.0.0.0"]),
            ),
        ],
        env: &[],
    });
}

#[test]
fn seed_001_fastapi_todo() {
    // `useradd -m appuser` names no uid: Debian's useradd takes 1000 on a fresh base.
    // WORKDIR /code comes after USER appuser: BuildKit makes it as appuser.
    check_case(Case {
        name: "seed-001-fastapi-todo",
        reported: &[],
        paths: &[
            "/home/appuser",
            "/home/appuser/.local",
            "/code",
            "/code/app/main.py",
        ],
        seen: "1000\n1000\nappuser\n/home/appuser\n/code\n/home/appuser 1000:1000 755\n\
               /home/appuser/.local 0:0 755\n/code 1000:1000 755\n/code/app/main.py 0:0 644\n",
        config: vec![
            ("/User", json!("1000:1000")),
            ("/WorkingDir", json!("/code")),
            ("/ExposedPorts", json!({"8000/tcp": {}})),
            (
                "/Cmd",
                json!([
                    "uvicorn",
                    "app.main:app",
                    "--host",
                    "0.0.0.0",
                    "--port",
                    "8000"
                ]),
            ),
        ],
        env: &["PATH=/home/appuser/.local/bin:*"],
    });
}

#[test]
fn seed_002_dashtam_api() {
    check_case(Case {
        name: "seed-002-dashtam-api",
        // apt-get update, apt-get install, rm -rf: one RUN, three commands.
        reported: &[34, 34, 34],
        paths: &["/app/.venv", "/app/alembic.ini", "/app/src/main.py"],
        seen: "1000\n1000\nappuser\n/home/appuser\n/app\n/app/.venv 1000:1000 755\n\
               /app/alembic.ini 1000:1000 644\n/app/src/main.py 1000:1000 644\n",
        config: vec![
            ("/User", json!("1000:1000")),
            (
                "/Healthcheck",
                json!({"Test": ["CMD-SHELL", "curl -f https://localhost:8000/health --insecure || exit 1"], "Interval": secs(30), "Timeout": secs(3)}),
            ),
            (
                "/Cmd",
                json!([
                    "sh",
                    "-c",
                    "alembic upgrade head && uvicorn src.main:app --host 0.0.0.0 --port 8000"
                ]),
            ),
        ],
        env: &[],
    });
}

#[test]
fn seed_003_ecs_service() {
    // groupadd/useradd --system name no ids: Debian hands out 999 first.
    // chown -R appuser:appuser /app comes after the copies, so they are the user's.
    check_case(Case {
        name: "seed-003-ecs-service",
        reported: &[6, 7, 8, 10],
        paths: &[
            "/app",
            "/app/templates/index.html",
            "/app/startup.sh",
            "/app/requirements.txt",
        ],
        seen: "999\n999\nappuser\n/nonexistent\n/app\n/app 999:999 755\n/app/templates/index.html 999:999 644\n\
               /app/startup.sh 999:999 644\n/app/requirements.txt 999:999 644\n",
        config: vec![
            ("/User", json!("999:999")),
            ("/Entrypoint", json!(["bash", "startup.sh"])),
        ],
        env: &[],
    });
}

#[test]
fn seed_004_hardened_python() {
    // useradd without -m names /home/appuser without making it: kiln writes /nonexistent.
    check_case(Case {
        name: "seed-004-hardened-python",
        reported: &[],
        paths: &[
            "/app",
            "/app/data",
            "/app/logs",
            "/app/.venv",
            "/app/main.py",
        ],
        seen: "10001\n10001\nappuser\n/nonexistent\n/app\n/app 10001:10001 755\n/app/data 10001:10001 755\n\
               /app/logs 10001:10001 755\n/app/.venv 10001:10001 755\n/app/main.py 10001:10001 644\n",
        config: vec![
            ("/User", json!("10001:10001")),
            ("/ExposedPorts", json!({"8000/tcp": {}})),
            ("/Labels/org.opencontainers.image.version", json!("latest")),
            (
                "/Labels/org.opencontainers.image.authors",
                json!("your-team@example.com"),
            ),
            ("/Healthcheck/Test/0", json!("CMD-SHELL")),
            ("/Healthcheck/Interval", secs(30)),
            ("/Healthcheck/Timeout", secs(10)),
            ("/Healthcheck/StartPeriod", secs(5)),
            ("/Healthcheck/Retries", json!(3)),
            (
                "/Cmd/2",
                json!(
                    "uvicorn main:app --host 0.0.0.0 --port ${PORT} --workers ${WORKERS} --timeout-keep-alive ${KEEP_ALIVE} --access-log --log-level info"
                ),
            ),
        ],
        env: &[
            "PORT=8000",
            "WORKERS=4",
            "MAX_REQUESTS_JITTER=100",
            "PATH=/app/.venv/bin:*",
        ],
    });
}

#[test]
fn seed_004_hardened_alpine() {
    check_case(Case {
        name: "seed-004-hardened-alpine",
        reported: &[],
        paths: &["/home/appuser", "/app", "/app/src", "/app/main.py"],
        seen: "10001\n10001\nappuser\n/home/appuser\n/app\n/home/appuser 10001:10001 755\n/app 10001:10001 755\n\
               /app/src 10001:10001 755\n/app/main.py 10001:10001 644\n",
        config: vec![
            ("/User", json!("10001:10001")),
            (
                "/Healthcheck/Test",
                json!([
                    "CMD-SHELL",
                    "wget --spider -q http://localhost:8000/health || exit 1"
                ]),
            ),
            (
                "/Cmd",
                json!(["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]),
            ),
        ],
        env: &["PORT=8000", "PYTHONUNBUFFERED=1"],
    });
}

#[test]
fn node_alpine_system_user() {
    // adduser -H -h /srv names /srv without making it: kiln writes /nonexistent.
    check_case(Case {
        name: "node-alpine",
        reported: &[],
        paths: &[
            "/srv/data",
            "/srv/tmp",
            "/srv/dist",
            "/srv/node_modules",
            "/srv/config",
            "/srv/config/app.json",
        ],
        seen: "1001\n1001\nnodeapp\n/nonexistent\n/srv\n/srv/data 1001:1001 755\n/srv/tmp 1001:1001 700\n\
               /srv/dist 1001:1001 755\n/srv/node_modules 0:0 755\n/srv/config 0:0 755\n/srv/config/app.json 1001:1001 640\n",
        config: vec![
            ("/User", json!("1001:1001")),
            ("/ExposedPorts", json!({"3000/tcp": {}})),
            ("/Volumes", json!({"/srv/data": {}})),
            ("/StopSignal", json!("SIGQUIT")),
            ("/Entrypoint", json!(["node"])),
            ("/Cmd", json!(["dist/server.js"])),
            ("/Labels/org.opencontainers.image.title", json!("orders")),
            (
                "/Healthcheck",
                json!({"Test": ["CMD", "wget", "--spider", "-q", "http://127.0.0.1:3000/healthz"],
                "Interval": secs(15), "Timeout": secs(2), "StartPeriod": secs(20), "StartInterval": secs(2), "Retries": 5}),
            ),
        ],
        env: &["NODE_ENV=production"],
    });
}

#[test]
fn go_scratch_with_args_before_from() {
    // 65532 is in no /etc/passwd: `id -un` prints the number and HOME is /.
    check_case(Case {
        name: "go-scratch",
        reported: &[],
        paths: &["/usr/local/bin/server", "/usr/share/app/static"],
        seen: "65532\n65532\n65532\n/\n/\n/usr/local/bin/server 0:0 755\n/usr/share/app/static 0:0 444\n",
        config: vec![
            ("/User", json!("65532:65532")),
            ("/Entrypoint", json!(["/usr/local/bin/server"])),
            ("/Labels/org.opencontainers.image.version", json!("dev")),
            ("/Healthcheck/Test", json!(["NONE"])),
            ("/ExposedPorts", json!({"8080/tcp": {}})),
        ],
        env: &[],
    });
}

#[test]
fn debian_system_user() {
    check_case(Case {
        name: "debian-system-user",
        reported: &[6, 7, 8],
        paths: &[
            "/var/lib/worker",
            "/var/log/worker",
            "/usr/local/bin/worker",
            "/etc/worker/worker.conf",
        ],
        seen: "998\n998\nworker\n/var/lib/worker\n/var/lib/worker\n/var/lib/worker 998:998 755\n\
               /var/log/worker 998:998 755\n/usr/local/bin/worker 998:998 755\n/etc/worker/worker.conf 998:998 644\n",
        config: vec![
            ("/User", json!("998:998")),
            ("/StopSignal", json!("SIGINT")),
            ("/Labels/maintainer", json!("ops@example.com")),
            (
                "/Healthcheck",
                json!({"Test": ["CMD-SHELL", "/usr/local/bin/worker --check"], "Interval": secs(60), "Timeout": secs(5), "Retries": 2}),
            ),
            (
                "/Cmd",
                json!([
                    "/bin/sh",
                    "-c",
                    "/usr/local/bin/worker --config /etc/worker/worker.conf"
                ]),
            ),
        ],
        env: &["APP_HOME=/var/lib/worker", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"],
    });
}

#[test]
fn escape_directive_heredoc_and_add() {
    // The heredoc RUN, ADD of a URL and of a tar, and `addgroup web wheel`
    // are reported; the excluded *.tmp is not copied (no stat line).
    check_case(Case {
        name: "escape-heredoc",
        reported: &[7, 11, 12, 18],
        paths: &[
            "/home/web",
            "/opt/web/settings.ini",
            "/opt/web/public/index.html",
            "/opt/web/public/scratch.tmp",
        ],
        seen: "2000\n2000\nweb\n/home/web\n/opt/web\n/home/web 2000:2000 755\n/opt/web/settings.ini 100:101 644\n\
               /opt/web/public/index.html 0:0 644\n",
        config: vec![
            ("/User", json!("2000:2000")),
            (
                "/Entrypoint",
                json!(["/bin/sh", "-c", "/sbin/tini -- /opt/web/run.sh"]),
            ),
            ("/ExposedPorts", json!({"8080/tcp": {}, "8443/tcp": {}})),
        ],
        env: &["GREETING=hello world", "EMPTY="],
    });
}

/// The config fields both builders write, with the labels each adds of its
/// own (buildah's version; kiln's base name and digest) left out.
fn comparable(cfg: &Value) -> Value {
    let mut c = json!({});
    for key in [
        "User",
        "Env",
        "WorkingDir",
        "ExposedPorts",
        "Volumes",
        "Labels",
        "StopSignal",
        "Healthcheck",
        "Entrypoint",
        "Cmd",
    ] {
        c[key] = cfg.get(key).cloned().unwrap_or(Value::Null);
    }
    if let Some(labels) = c["Labels"].as_object_mut() {
        for own in [
            "io.buildah.version",
            "org.opencontainers.image.base.name",
            "org.opencontainers.image.base.digest",
        ] {
            labels.remove(own);
        }
    }
    if let Some(env) = c["Env"].as_array_mut() {
        env.sort_by_key(|e| e.to_string());
    }
    c
}

/// A Dockerfile with no RUN: podman builds it offline from the same local
/// base, and what a container sees of the two images must be the same. The
/// stage it copies from is built by kiln too, from `init --from --target`.
#[test]
fn same_as_podman_build() {
    if !have(&["skopeo", "umoci", "podman", "runc"]) {
        return;
    }
    // podman names an oci: base after its path, which must be lowercase.
    let work = tempfile::Builder::new()
        .prefix(&format!("kiln-init-from-{}", std::process::id()))
        .rand_bytes(0)
        .tempdir()
        .unwrap();
    let w = work.path();
    let base = base_layout(w);
    let base_arg = format!("BASE={base}");

    let stage_work = w.join("stage");
    let stage_ctx = context("podman-plain", &stage_work);
    let (stage_spec, _) = init_from(&stage_ctx, &["--target", "assets"]);
    assert!(
        stage_spec.contains("src = \"assets/\"") && stage_spec.contains("dest = \"/out/\""),
        "{stage_spec}"
    );
    let stage = build(
        &stage_ctx,
        &stage_work,
        &stage_spec,
        std::slice::from_ref(&base_arg),
    );

    let ctx = context("podman-plain", w);
    let (spec, stderr) = init_from(&ctx, &[]);
    assert_eq!(reported_lines(&stderr), Vec::<usize>::new(), "{stderr}");
    assert!(spec.contains("base = \"${BASE}\""), "{spec}");
    let image = build(
        &ctx,
        w,
        &spec,
        &[base_arg.clone(), format!("STAGE_ASSETS_IMAGE={stage}")],
    );

    let podman = Podman::new();
    let kiln_image = load(&podman, &w.join("out.tar"));
    podman.run(&[
        "build",
        "--pull=never",
        "--format",
        "docker",
        "--build-arg",
        &base_arg,
        "-t",
        "localhost/podman-plain:1",
        &ctx.display().to_string(),
    ]);
    let podman_tar = w.join("podman.tar");
    podman.run(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        &podman_tar.display().to_string(),
        "localhost/podman-plain:1",
    ]);

    let ours = comparable(&config(&image));
    let theirs = comparable(&config(&format!("docker-archive:{}", podman_tar.display())));
    assert_eq!(ours, theirs, "kiln: {ours:#}\npodman: {theirs:#}\n{spec}");

    let paths = [
        "/usr/local/bin/serve",
        "/srv",
        "/srv/www",
        "/srv/www/index.html",
        "/srv/www/assets",
        "/srv/www/assets/logo.txt",
    ];
    let from_kiln = seen(&podman, &kiln_image, &paths);
    let from_podman = seen(&podman, "localhost/podman-plain:1", &paths);
    // The one difference, which the spec says: WORKDIR made /srv/www and
    // Docker's COPY --chown into it leaves it root's, kiln's copy owns it.
    let note = "line 17: COPY into /srv/www, which WORKDIR made: Docker leaves that directory root-owned, kiln's [[copy]] gives it to 10001:10001";
    assert!(spec.contains(note), "{spec}");
    let from_podman = from_podman.replace("/srv/www 0:0 755", "/srv/www 10001:10001 755");
    assert_eq!(from_kiln, from_podman, "{spec}");
}

/// An existing kiln.toml is kept unless --force; an unknown --target is bad
/// input (exit 2) naming the stages there are.
#[test]
fn keeps_a_spec_and_names_the_stages() {
    let work = tempfile::tempdir().unwrap();
    let ctx = context("node-alpine", work.path());
    fs::write(ctx.join("kiln.toml"), "# mine\n").unwrap();
    let dockerfile = ctx.join("Dockerfile");
    let out = kiln()
        .arg("init")
        .arg("--from")
        .arg(&dockerfile)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(
        fs::read_to_string(ctx.join("kiln.toml")).unwrap(),
        "# mine\n"
    );

    let (spec, _) = init_from(&ctx, &["--force"]);
    assert!(spec.contains("name = \"nodeapp\""), "{spec}");

    let out = kiln()
        .arg("init")
        .arg("--from")
        .arg(&dockerfile)
        .args(["--target", "nope", "--force"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no stage named `nope`") && stderr.contains("stages: build"),
        "{stderr}"
    );
}

/// The spec may go elsewhere than the Dockerfile's directory: sources are
/// then written relative to the spec.
#[test]
fn spec_in_a_parent_directory() {
    let work = tempfile::tempdir().unwrap();
    let ctx = context("debian-system-user", work.path());
    let out = kiln()
        .arg("init")
        .arg("--from")
        .arg(ctx.join("Dockerfile"))
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spec = fs::read_to_string(work.path().join("kiln.toml")).unwrap();
    assert!(
        spec.contains("src = \"ctx/bin/worker\"") && spec.contains("src = \"ctx/conf/\""),
        "{spec}"
    );
    // With a base that needs no registry, kiln check reads it as build does.
    fs::write(work.path().join("kiln.toml"), with_base(&spec, "scratch")).unwrap();
    let checked = kiln()
        .arg("check")
        .arg(work.path().join("kiln.toml"))
        .output()
        .unwrap();
    assert_ne!(
        checked.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Dockerfile text echoed to the terminal has its control characters escaped.
#[test]
fn echoed_text_is_escaped() {
    let work = tempfile::tempdir().unwrap();
    fs::write(
        work.path().join("Dockerfile"),
        "FROM scratch\nRUN echo \x1b[2J\x1b]0;pwned\x07 && printf '\u{202e}x'\nCOPY --evil\x1b[31m=1 a /a\n",
    )
    .unwrap();
    let out = kiln()
        .arg("init")
        .arg("--from")
        .arg(work.path().join("Dockerfile"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\x07') && !stderr.contains('\u{202e}'),
        "{stderr:?}"
    );
    assert!(
        stderr.contains("Dockerfile:2: not in the spec: RUN … echo \\x1b[2J"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Dockerfile:3: not in the spec: COPY --evil\\x1b[31m=1 a /a"),
        "{stderr}"
    );
    let spec = fs::read_to_string(work.path().join("kiln.toml")).unwrap();
    assert!(!spec.contains('\x1b'), "{spec:?}");
}
