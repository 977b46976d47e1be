//! `kiln init`: the starter spec it writes for a project directory holds
//! the guesses the files allow, validates against `kiln schema`, passes
//! `kiln check` with no error-level finding, and builds when the build
//! output exists. An existing kiln.toml is kept unless --force.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{kiln, layout_blob, layout_manifest, read_json, write_tree};
use serde_json::Value;

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn shown(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A project directory whose name has spaces and capitals to clean up.
fn project() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("My Project ")
        .tempdir()
        .unwrap()
}

/// `kiln init DIR`; the spec it wrote, checked against the schema.
fn init(dir: &Path) -> String {
    let out = output(kiln().arg("init").arg(dir));
    assert!(out.status.success(), "kiln init: {}", shown(&out));
    let text = fs::read_to_string(dir.join("kiln.toml")).unwrap();
    assert_schema_valid(&text);
    text
}

fn assert_schema_valid(text: &str) {
    assert!(
        crate::common::schema::as_json(text).is_some(),
        "the starter is TOML:\n{text}"
    );
    let errors = crate::common::schema::errors(&crate::common::schema::validator(), text);
    assert!(errors.is_empty(), "{errors:?}\n{text}");
}

/// `kiln check DIR/kiln.toml`: it must pass, with no error-level finding.
fn check(dir: &Path) -> String {
    let out = output(kiln().arg("check").arg(dir.join("kiln.toml")));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stdout.lines().any(|l| l.starts_with("error[")),
        "{}",
        shown(&out)
    );
    assert_eq!(out.status.code(), Some(0), "kiln check: {}", shown(&out));
    stdout
}

/// `kiln build` into a temp layout; the image config.
fn build(dir: &Path) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("oci");
    let out = output(
        kiln()
            .env("SOURCE_DATE_EPOCH", "0")
            .arg("build")
            .arg(dir.join("kiln.toml"))
            .arg("--oci")
            .arg(&layout)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache")),
    );
    assert!(out.status.success(), "kiln build: {}", shown(&out));
    let manifest = layout_manifest(&layout);
    read_json(&layout_blob(&layout, &manifest["config"]["digest"]))["config"].clone()
}

fn assert_has(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "no {w:?} in:\n{text}");
    }
}

#[test]
fn empty_dir_gets_commented_examples() {
    let dir = project();
    let text = init(dir.path());
    let suffix =
        dir.path().file_name().unwrap().to_str().unwrap()["My Project ".len()..].to_lowercase();
    assert_has(
        &text,
        &[
            &format!("name = \"my-project-{suffix}\""),
            "base = \"scratch\"",
            "# base = \"debian:12-slim@sha256:...\"",
            "uid = 10001",
            "# [[copy]]",
            "# entrypoint = [",
            "# expose = [\"8080/tcp\"]",
            "# [healthcheck]",
            "\"org.opencontainers.image.version\" = \"${VERSION}\"",
        ],
    );
    check(dir.path());
}

#[test]
fn dist_executable_and_dockerfile_port() {
    let dir = project();
    write_tree(
        dir.path(),
        &[
            ("dist/server", "a stand-in for a static server\n", 0o755),
            ("dist/index.html", "<p>hi</p>\n", 0o644),
            ("Dockerfile", "FROM scratch\nEXPOSE 9090\n", 0o644),
        ],
    );
    let text = init(dir.path());
    assert_has(
        &text,
        &[
            "src = \"dist/\"",
            "dest = \"/app/\"",
            "owner = \"app:app\"",
            "entrypoint = [\"/app/server\"]",
            "expose = [\"9090/tcp\"]",
            "from EXPOSE in Dockerfile",
            "http://127.0.0.1:9090/health",
        ],
    );
    assert!(!text.contains("env = {"), "{text}");
    let findings = check(dir.path());
    assert!(findings.contains("KILN-NO-HEALTHCHECK"), "{findings}");

    let config = build(dir.path());
    assert_eq!(config["Entrypoint"], serde_json::json!(["/app/server"]));
    assert_eq!(config["User"], "10001:10001");
    assert!(config["ExposedPorts"]["9090/tcp"].is_object(), "{config}");
    assert_eq!(config["WorkingDir"], "/app");
}

#[test]
fn env_file_port_is_exposed_and_set() {
    let dir = project();
    write_tree(
        dir.path(),
        &[(".env", "DEBUG=1\nexport PORT=\"3000\"\n", 0o600)],
    );
    let text = init(dir.path());
    assert_has(
        &text,
        &[
            "expose = [\"3000/tcp\"]",
            "from PORT in .env",
            "env = { PORT = \"3000\" }",
            "http://127.0.0.1:3000/health",
        ],
    );
    check(dir.path());
}

#[test]
fn cargo_project_copies_its_release_binary() {
    let dir = project();
    write_tree(
        dir.path(),
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"hello-svc\"\nversion = \"0.1.0\"\n",
                0o644,
            ),
            (
                "target/release/hello-svc",
                "a stand-in for a static binary\n",
                0o755,
            ),
            ("target/release/hello-svc.d", "deps\n", 0o644),
            ("target/release/deps/libx.rlib", "x", 0o644),
        ],
    );
    let text = init(dir.path());
    assert_has(
        &text,
        &[
            "src = \"target/release/hello-svc\"",
            "dest = \"/app/hello-svc\"",
            "entrypoint = [\"/app/hello-svc\"]",
        ],
    );
    check(dir.path());
    let config = build(dir.path());
    assert_eq!(config["Entrypoint"], serde_json::json!(["/app/hello-svc"]));
}

#[test]
fn existing_spec_is_kept_unless_forced() {
    let dir = project();
    let spec = dir.path().join("kiln.toml");
    fs::write(&spec, "# mine\n").unwrap();

    let out = output(kiln().arg("init").arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&spec.display().to_string()), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(fs::read_to_string(&spec).unwrap(), "# mine\n");

    let out = output(kiln().arg("init").arg(dir.path()).arg("--force"));
    assert!(out.status.success(), "{}", shown(&out));
    let text = fs::read_to_string(&spec).unwrap();
    assert!(text.contains("[image]"), "{text}");
    assert!(!text.contains("# mine"), "{text}");
}

#[test]
fn missing_dir_is_a_usage_error() {
    let dir = project();
    let out = output(kiln().arg("init").arg(dir.path().join("nope")));
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(!dir.path().join("nope").exists());
}
