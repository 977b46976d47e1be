//! The image config follows the spec the way a Dockerfile's instructions
//! would: ENV expansion, ENTRYPOINT resetting CMD, ports, volumes, labels.

use std::fs;
use std::path::Path;

use crate::common::*;

fn config(layout: &Path) -> serde_json::Value {
    let manifest = layout_manifest(layout);
    serde_json::from_slice(&fs::read(layout_blob(layout, &manifest["config"]["digest"])).unwrap())
        .unwrap()
}

#[test]
fn config_follows_dockerfile_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("kiln.toml");
    fs::write(
        &spec,
        r#"
[args]
VERSION = "1.0"
[config]
env = { PATH = "/app/.venv/bin:$PATH", APP_HOME = "/app", DATA = "${APP_HOME}/data", PRICE = "$$5", V = "v${VERSION}" }
entrypoint = ["/app/run"]
expose = ["8000", "53/udp"]
volumes = ["/app/data/"]
labels = { "org.opencontainers.image.version" = "${VERSION}" }
stop-signal = "SIGINT"
user = "1000:1000"
[policy]
enforce = false
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    build(
        &spec,
        &["--oci", out.to_str().unwrap(), "--build-arg", "VERSION=2.0"],
    );
    let c = &config(&out)["config"];
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "PATH=/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP_HOME=/app",
            "DATA=/app/data",
            "PRICE=$5",
            "V=v2.0"
        ]
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["/app/run"]));
    assert!(c.get("Cmd").is_none());
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8000/tcp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/app/data": {}}));
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "2.0");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["User"], "1000:1000");
}

#[test]
fn env_naming_nothing_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("kiln.toml");
    fs::write(
        &spec,
        "[config]\nenv = { A = \"$NOPE/bin\" }\n[policy]\nenforce = false\n",
    )
    .unwrap();
    let out = kiln()
        .arg("build")
        .arg(&spec)
        .arg("--oci")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kiln.toml:2:13: `$NOPE` is set neither in [args] nor in the image's env"),
        "{stderr}"
    );
}
