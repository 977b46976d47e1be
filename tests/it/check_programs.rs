//! The checks for what fails only when the container starts, on real
//! binaries: a dynamically linked host program (/bin/true) copied onto
//! scratch has no loader to run it, on a base with its loader it does, and
//! a static busybox needs none. Programs named without a `/` are found
//! through the image's PATH, the spec's env expanded over the base's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::handmade::{self, Entry, Kind, dir, file, link};
use crate::common::*;

/// A dynamically linked host program and its interpreter, as `file` names it.
fn dynamic_host_binary() -> Option<(PathBuf, String)> {
    for candidate in ["/bin/true", "/usr/bin/env"] {
        let out = Command::new("file")
            .arg("-L")
            .arg(candidate)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(rest) = text.split("interpreter ").nth(1) {
            let interp = rest.split([',', ' ', '\n']).next().unwrap_or_default();
            if interp.starts_with('/') {
                return Some((PathBuf::from(candidate), interp.to_string()));
            }
        }
    }
    None
}

fn executable(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// `kiln check --format json` on SPEC: the exit code and the findings.
fn check(spec: &Path) -> (Option<i32>, Vec<Value>) {
    check_json(spec)
}

fn with_id<'a>(findings: &'a [Value], id: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["id"] == id).collect()
}

const APP: &str = r#"[image]
name = "programs"
base = "BASE"
[user]
name = "app"
uid = 10001
[[copy]]
src = "bin/app"
dest = "/app/app"
mode = 0o755
[config]
user = "10001:10001"
entrypoint = ["/app/app"]
labels = { "org.opencontainers.image.source" = "s", "org.opencontainers.image.revision" = "r", "org.opencontainers.image.version" = "v", "org.opencontainers.image.created" = "c" }
[healthcheck]
test = ["CMD", "/app/app"]
"#;

/// The line of `entrypoint =` in APP.
fn entrypoint_line() -> u64 {
    APP.lines()
        .position(|l| l.starts_with("entrypoint"))
        .unwrap() as u64
        + 1
}

#[test]
fn a_dynamic_binary_on_scratch_is_refused_and_passes_with_its_loader() {
    let Some((binary, interp)) = dynamic_host_binary() else {
        eprintln!("no dynamically linked /bin/true or /usr/bin/env here");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let bytes = fs::read(&binary).unwrap();

    // On scratch: no loader.
    let scratch = work.path().join("scratch");
    executable(&scratch.join("bin/app"), &bytes);
    let spec = write_spec(&scratch, &APP.replace("BASE", "scratch"));
    let (code, findings) = check(&spec);
    assert_eq!(code, Some(1), "{findings:#?}");
    let found = with_id(&findings, "KILN-ENTRYPOINT-NOT-IN-IMAGE");
    assert_eq!(found.len(), 1, "{findings:#?}");
    let message = found[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("`{interp}`")), "{message}");
    assert!(message.contains("`/app/app`"), "{message}");
    assert_eq!(found[0]["line"], json!(entrypoint_line()), "{:#}", found[0]);
    assert!(
        found[0]["at"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", entrypoint_line())),
        "{:#}",
        found[0]
    );
    // The healthcheck runs the same program and fails the same way.
    let health = with_id(&findings, "KILN-HEALTHCHECK-NOT-IN-IMAGE");
    assert!(
        health.len() == 1 && health[0]["message"].as_str().unwrap().contains(&interp),
        "{findings:#?}"
    );

    // On a base with a file at the interpreter's path, reached through a
    // link as on Debian (/lib64/ld-linux-x86-64.so.2 -> /lib/...).
    let loader = format!("lib/real-loader/{}", interp.rsplit('/').next().unwrap());
    let interp_rel = interp.trim_start_matches('/').to_string();
    let interp_dir = interp_rel.rsplit_once('/').map(|(d, _)| d.to_string());
    let target = format!("/{loader}");
    let mut entries = vec![dir("lib"), dir("lib/real-loader")];
    if let Some(d) = interp_dir.as_deref().filter(|d| *d != "lib") {
        entries.push(dir(d));
    }
    entries.push(Entry {
        path: &loader,
        kind: Kind::File(b"loader", 0o755),
        uid: 0,
        gid: 0,
    });
    entries.push(link(&interp_rel, &target));
    handmade::layout(
        &work.path().join("base"),
        "v1",
        &entries,
        json!({}),
        json!({}),
    );
    let on_base = work.path().join("on-base");
    executable(&on_base.join("bin/app"), &bytes);
    let spec = write_spec(&on_base, &APP.replace("BASE", "oci:../base:v1"));
    let (code, findings) = check(&spec);
    assert_eq!(code, Some(0), "{findings:#?}");
    assert!(
        with_id(&findings, "KILN-ENTRYPOINT-NOT-IN-IMAGE").is_empty(),
        "{findings:#?}"
    );
}

#[test]
fn a_static_binary_on_scratch_passes() {
    let work = tempfile::tempdir().unwrap();
    let bytes = fs::read(busybox()).unwrap();
    executable(&work.path().join("bin/app"), &bytes);
    let spec = write_spec(work.path(), &APP.replace("BASE", "scratch"));
    let (code, findings) = check(&spec);
    assert_eq!(code, Some(0), "{findings:#?}");
    assert!(
        with_id(&findings, "KILN-ENTRYPOINT-NOT-IN-IMAGE").is_empty(),
        "{findings:#?}"
    );
}

/// A base holding a dynamic program of its own, a program without an
/// execute bit and one only root may run: the base's bytes are read from
/// its layer, its modes judged for the image's user.
#[test]
fn base_programs_are_judged_from_the_base_layer() {
    let Some((binary, interp)) = dynamic_host_binary() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let bytes = fs::read(&binary).unwrap();
    let entries = vec![
        dir("usr"),
        dir("usr/bin"),
        Entry {
            path: "usr/bin/tool",
            kind: Kind::File(&bytes, 0o755),
            uid: 0,
            gid: 0,
        },
        file("usr/bin/data", b"not a program"),
        Entry {
            path: "usr/bin/private",
            kind: Kind::File(b"#!/bin/sh\n", 0o700),
            uid: 0,
            gid: 0,
        },
    ];
    let config = json!({ "config": { "Env": ["PATH=/usr/bin"], "Cmd": ["tool"] } });
    handmade::layout(&work.path().join("base"), "v1", &entries, config, json!({}));
    let base_spec =
        "[image]\nname = \"b\"\nbase = \"oci:../base:v1\"\n[user]\nname = \"app\"\nuid = 10001\n";

    // The base's own cmd, found through the base's PATH.
    let spec = write_spec(&work.path().join("a"), base_spec);
    let (code, findings) = check(&spec);
    assert_eq!(code, Some(1), "{findings:#?}");
    let found = with_id(&findings, "KILN-ENTRYPOINT-NOT-IN-IMAGE");
    assert_eq!(found.len(), 1, "{findings:#?}");
    let message = found[0]["message"].as_str().unwrap();
    assert!(
        message.contains("`/usr/bin/tool`") && message.contains(&interp),
        "{message}"
    );
    assert_eq!(
        found[0]["line"],
        Value::Null,
        "the base's cmd has no spec line"
    );

    // Not executable.
    let spec = write_spec(
        &work.path().join("b"),
        &format!("{base_spec}[config]\ncmd = [\"data\"]\n"),
    );
    let (_, findings) = check(&spec);
    let found = with_id(&findings, "KILN-ENTRYPOINT-NOT-IN-IMAGE");
    assert!(
        found.len() == 1
            && found[0]["message"]
                .as_str()
                .unwrap()
                .contains("`/usr/bin/data`, which is not executable"),
        "{findings:#?}"
    );

    // Executable by root alone; the image runs as uid 10001.
    let spec = write_spec(
        &work.path().join("d"),
        &format!("{base_spec}[config]\ncmd = [\"private\"]\n"),
    );
    let (_, findings) = check(&spec);
    let found = with_id(&findings, "KILN-ENTRYPOINT-NOT-IN-IMAGE");
    assert!(
        found.len() == 1
            && found[0]["message"]
                .as_str()
                .unwrap()
                .contains("`/usr/bin/private`, which uid 10001 may not execute (mode 0700)"),
        "{findings:#?}"
    );

    // No command at all: scratch and a spec that sets none.
    let spec = write_spec(
        &work.path().join("c"),
        "[image]\nname = \"c\"\n[user]\nname = \"app\"\nuid = 10001\n",
    );
    let (_, findings) = check(&spec);
    assert_eq!(
        with_id(&findings, "KILN-NO-COMMAND").len(),
        1,
        "{findings:#?}"
    );
}

/// `PATH = "/app/venv/bin:$PATH"` puts the venv first and keeps the base's
/// directories; a CMD-SHELL healthcheck's program is looked up too.
#[test]
fn programs_are_found_through_the_expanded_path() {
    let work = tempfile::tempdir().unwrap();
    let bb = fs::read(busybox()).unwrap();
    let entries = vec![
        dir("bin"),
        Entry {
            path: "bin/busybox",
            kind: Kind::File(&bb, 0o755),
            uid: 0,
            gid: 0,
        },
        link("bin/sh", "busybox"),
        dir("usr"),
        dir("usr/local"),
        dir("usr/local/bin"),
        Entry {
            path: "usr/local/bin/python",
            kind: Kind::File(b"#!/bin/sh\n", 0o755),
            uid: 0,
            gid: 0,
        },
    ];
    let config = json!({ "config": { "Env": ["PATH=/usr/local/bin:/bin"] } });
    handmade::layout(&work.path().join("base"), "v1", &entries, config, json!({}));
    let spec = |dir: &str, healthcheck: &str| {
        let d = work.path().join(dir);
        executable(&d.join("venv/serve"), b"#!/bin/sh\n");
        write_spec(
            &d,
            &format!(
                "[image]\nname = \"p\"\nbase = \"oci:../base:v1\"\n[user]\nname = \"app\"\nuid = 10001\n\
                 [[copy]]\nsrc = \"venv/serve\"\ndest = \"/app/venv/bin/serve\"\nmode = 0o755\n\
                 [config]\nenv = {{ PATH = \"/app/venv/bin:$PATH\" }}\ncmd = [\"serve\"]\n\
                 [healthcheck]\ntest = {healthcheck}\n"
            ),
        )
    };
    // The venv's program and the base's python, both through PATH.
    let ok = spec("ok", r#"["CMD-SHELL", "python -c 'import sys' || exit 1"]"#);
    let (code, findings) = check(&ok);
    let errors: Vec<&Value> = findings
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(errors.is_empty() && code == Some(0), "{findings:#?}");

    // curl is in none of them.
    let curl = spec(
        "curl",
        r#"["CMD-SHELL", "curl -f http://localhost:8000/ || exit 1"]"#,
    );
    let (code, findings) = check(&curl);
    assert_eq!(code, Some(1), "{findings:#?}");
    let found = with_id(&findings, "KILN-HEALTHCHECK-NOT-IN-IMAGE");
    let message = found.first().map_or("", |f| f["message"].as_str().unwrap());
    assert!(
        message.contains("`curl`") && message.contains("/app/venv/bin:/usr/local/bin:/bin"),
        "{findings:#?}"
    );
    assert!(with_id(&findings, "KILN-ENTRYPOINT-NOT-IN-IMAGE").is_empty());
}

#[test]
fn a_password_in_a_url_is_a_secret_and_a_user_alone_is_not() {
    let work = tempfile::tempdir().unwrap();
    let spec = |dir: &str, url: &str| {
        write_spec(
            &work.path().join(dir),
            &format!(
                "[image]\nname = \"u\"\n[user]\nname = \"app\"\nuid = 10001\n\
                 [config]\nenv = {{ DATABASE_URL = \"{url}\" }}\n\
                 labels = {{ \"org.example.db\" = \"{url}\" }}\n"
            ),
        )
    };
    let (code, findings) = check(&spec("pass", "postgresql://user:hunter2@db/app"));
    assert_eq!(code, Some(1));
    let found = with_id(&findings, "KILN-SECRET");
    assert_eq!(found.len(), 2, "env and label: {findings:#?}");
    for f in &found {
        let message = f["message"].as_str().unwrap();
        assert!(message.contains("postgresql://user:***@db"), "{message}");
        assert!(
            !message.contains("hunter2"),
            "the password is shown: {message}"
        );
    }
    let (_, findings) = check(&spec("user", "postgresql://user@db/app"));
    assert!(
        with_id(&findings, "KILN-SECRET").is_empty(),
        "{findings:#?}"
    );
}

/// A script's `#!` interpreter must be in the image too, and so must the
/// program `#!/usr/bin/env NAME` asks for; the interpreter is judged as a
/// program itself (a dynamic one needs its loader).
#[test]
fn a_scripts_interpreter_must_be_in_the_image() {
    let work = tempfile::tempdir().unwrap();
    let case = |name: &str, script: &[u8], extra: &[(&str, &[u8])]| {
        let dir = work.path().join(name);
        executable(&dir.join("bin/app"), script);
        let mut spec = APP.replace("BASE", "scratch");
        for (i, (dest, bytes)) in extra.iter().enumerate() {
            executable(&dir.join(format!("extra/{i}")), bytes);
            spec.push_str(&format!(
                "[[copy]]\nsrc = \"extra/{i}\"\ndest = \"{dest}\"\nmode = 0o755\n"
            ));
        }
        check(&write_spec(&dir, &spec))
    };
    let busybox = fs::read(busybox()).unwrap();
    let message = |findings: &[Value]| {
        let found = with_id(findings, "KILN-ENTRYPOINT-NOT-IN-IMAGE");
        assert_eq!(found.len(), 1, "{findings:#?}");
        found[0]["message"].as_str().unwrap().to_string()
    };

    let (code, findings) = case("no-sh", b"#!/bin/sh\nexec true\n", &[]);
    assert_eq!(code, Some(1), "{findings:#?}");
    let m = message(&findings);
    assert!(m.contains("`/bin/sh`") && m.contains("script"), "{m}");
    assert!(m.contains("`/app/app`"), "{m}");

    let (code, findings) = case("sh", b"#!/bin/sh\nexec true\n", &[("/bin/sh", &busybox)]);
    assert_eq!(code, Some(0), "{findings:#?}");

    let (code, findings) = case(
        "env-python",
        b"#!/usr/bin/env python3\nprint()\n",
        &[("/usr/bin/env", &busybox)],
    );
    assert_eq!(code, Some(1), "{findings:#?}");
    let m = message(&findings);
    assert!(m.contains("`python3`") && m.contains("/usr/bin/env"), "{m}");

    let (code, findings) = case(
        "env-sh",
        b"#!/usr/bin/env sh\nexec true\n",
        &[("/usr/bin/env", &busybox), ("/bin/sh", &busybox)],
    );
    assert_eq!(code, Some(0), "{findings:#?}");

    if let Some((binary, interp)) = dynamic_host_binary() {
        let dynamic = fs::read(binary).unwrap();
        let (code, findings) = case("dynamic-sh", b"#!/bin/sh\n", &[("/bin/sh", &dynamic)]);
        assert_eq!(code, Some(1), "{findings:#?}");
        let m = message(&findings);
        assert!(m.contains(&format!("`{interp}`")), "{m}");
    }
}
