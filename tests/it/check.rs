//! `kiln check` and the checks `kiln build` runs first: each rule fires on
//! the spec that breaks it, names the spec line, and stops a build when it
//! is an error, unless [policy] or --no-check says otherwise.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::common::*;

const BAD: &str = r#"[image]
name = "bad"
[args]
API_TOKEN = "hunter2-value"
[user]
name = "app"
uid = 100
shell = "/bin/bash"
[[copy]]
src = "bin/"
dest = "/app/bin/"
mode = 0o4755
[[dir]]
path = "/app/data"
owner = "app:app"
[[copy]]
src = "seed.txt"
dest = "/app/data/seed.txt"
[[dir]]
path = "/shared"
mode = 0o777
[config]
user = "app"
expose = ["80"]
entrypoint = ["/app/bin/server"]
env = { AWS_KEY = "AKIAIOSFODNN7EXAMPLE1" }
[healthcheck]
test = ["CMD", "/usr/bin/curl", "-f", "http://localhost/"]
"#;

fn setup(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("bin")).unwrap();
    fs::write(
        dir.path().join("bin/server"),
        "a stand-in for a static server\n",
    )
    .unwrap();
    fs::set_permissions(
        dir.path().join("bin/server"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    fs::write(dir.path().join("seed.txt"), "seed\n").unwrap();
    fs::write(dir.path().join("kiln.toml"), spec).unwrap();
    dir
}

fn check_cmd(dir: &Path, extra: &[&str]) -> Output {
    kiln()
        .arg("check")
        .arg(dir.join("kiln.toml"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn every_rule_fires_on_the_spec_that_breaks_it() {
    let dir = setup(BAD);
    let out = check_cmd(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = findings.iter().map(|f| f["id"].as_str().unwrap()).collect();
    for id in [
        "KILN-USER-NOT-NUMERIC",
        "KILN-LOW-UID",
        "KILN-HEALTHCHECK-NOT-IN-IMAGE",
        "KILN-SECRET",
        "KILN-MISSING-LABEL",
        "KILN-SETUID",
        "KILN-WORLD-WRITABLE",
        "KILN-PRIVILEGED-PORT",
        "KILN-ROOT-OWNED-IN-APP-DIR",
        "KILN-LOGIN-SHELL",
    ] {
        assert!(ids.contains(&id), "{id} did not fire: {ids:?}");
    }
    let secret = findings.iter().filter(|f| f["id"] == "KILN-SECRET").count();
    assert_eq!(secret, 2, "the token arg and the AWS key: {findings:?}");
    let text = String::from_utf8_lossy(&check_cmd(dir.path(), &[]).stdout).into_owned();
    assert!(
        text.contains("error[KILN-HEALTHCHECK-NOT-IN-IMAGE] "),
        "{text}"
    );
    assert!(
        text.contains("kiln.toml:28: healthcheck runs `/usr/bin/curl`, which is not in the image"),
        "{text}"
    );
    assert!(text.contains("same as: hadolint DL3064"), "{text}");
    assert!(!text.contains("hunter2"), "a secret was printed:\n{text}");

    let sarif: serde_json::Value =
        serde_json::from_slice(&check_cmd(dir.path(), &["--format", "sarif"]).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    let health = results
        .iter()
        .find(|r| r["ruleId"] == "KILN-HEALTHCHECK-NOT-IN-IMAGE")
        .unwrap();
    assert_eq!(health["level"], "error");
    assert_eq!(
        health["locations"][0]["physicalLocation"]["region"]["startLine"],
        28
    );
}

#[test]
fn root_and_missing_healthcheck() {
    let dir = setup("[[copy]]\nsrc = \"seed.txt\"\ndest = \"/seed.txt\"\n");
    let out = check_cmd(dir.path(), &["--format", "json"]);
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = findings.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert!(
        ids.contains(&"KILN-ROOT-USER") && ids.contains(&"KILN-NO-HEALTHCHECK"),
        "{ids:?}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn build_stops_on_errors_unless_told_otherwise() {
    let dir = setup(BAD);
    let out_dir = dir.path().join("out");
    let build = |extra: &[&str]| {
        kiln()
            .arg("build")
            .arg(dir.path().join("kiln.toml"))
            .arg("--oci")
            .arg(&out_dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = build(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The same code `kiln check` gives for the same findings.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the image fails 3 check(s): KILN-HEALTHCHECK-NOT-IN-IMAGE"),
        "{stderr}"
    );
    assert!(stderr.contains("--no-check"), "{stderr}");
    assert!(!out_dir.exists(), "a failed check wrote output");
    check(&kiln(), &build(&["--no-check"]));

    // [policy] allow takes rules out, with a reason.
    let policy = |body: &str| {
        fs::write(
            dir.path().join("kiln.toml"),
            format!("{BAD}[policy]\n{body}\n"),
        )
        .unwrap()
    };
    policy("allow = [\"KILN-HEALTHCHECK-NOT-IN-IMAGE\", \"KILN-SECRET\"]\nreason = \"a fixture\"");
    check(&kiln(), &build(&[]));
    policy("allow = [\"KILN-SECRET\"]");
    assert!(String::from_utf8_lossy(&build(&[]).stderr).contains("[policy] allow needs a reason"));
    policy("allow = [\"KILN-NOPE\"]\nreason = \"x\"");
    assert!(
        String::from_utf8_lossy(&build(&[]).stderr).contains("`KILN-NOPE` is not a check rule")
    );
}

#[test]
fn the_example_passes_and_strict_pins_bases() {
    // A copy with the busybox it needs: specs/web/bin is not in the repository.
    let fx = web_fixture();
    let out = kiln()
        .arg("check")
        .arg(fx.path().join("kiln.toml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 error(s), 0 warning(s)"));

    let rules = kiln().args(["check", "--list"]).output().unwrap();
    let list = String::from_utf8_lossy(&rules.stdout);
    assert!(
        list.contains("KILN-BASE-NOT-PINNED") && list.contains("DL3007"),
        "{list}"
    );
}

/// Each platform is checked: a healthcheck program only one platform's
/// artifacts provide is an error for the other, and shared findings are
/// listed once.
#[test]
fn every_platform_is_checked() {
    let spec = r#"[image]
name = "multi"
platforms = ["linux/amd64", "linux/arm64"]
[user]
name = "app"
uid = 10001
[[copy]]
src = "dist/${TARGETARCH}/"
dest = "/app/"
[config]
entrypoint = ["/app/server"]
[healthcheck]
test = ["CMD", "/app/probe"]
"#;
    let dir = setup(spec);
    // Executable, as the runtime needs them.
    let script = |path: &Path| {
        fs::write(path, "a stand-in for a static server\n").unwrap();
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    for arch in ["amd64", "arm64"] {
        let d = dir.path().join("dist").join(arch);
        fs::create_dir_all(&d).unwrap();
        script(&d.join("server"));
    }
    script(&dir.path().join("dist/amd64/probe"));
    let out = check_cmd(dir.path(), &["--format", "json"]);
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    let missing: Vec<&serde_json::Value> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "KILN-HEALTHCHECK-NOT-IN-IMAGE")
        .collect();
    assert_eq!(missing.len(), 1, "{findings:#}");
    let message = missing[0]["message"].as_str().unwrap();
    assert!(message.ends_with("(on linux/arm64)"), "{message}");
    assert_eq!(out.status.code(), Some(1), "{findings:#}");
    // The same finding on both platforms (missing labels) is listed once.
    let labels = ids.iter().filter(|i| **i == "KILN-MISSING-LABEL").count();
    assert_eq!(labels, 4, "{findings:#}");

    // amd64 alone has its probe: no error.
    let out = check_cmd(dir.path(), &["--platform", "linux/amd64"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // arm64 alone lacks it.
    let out = check_cmd(dir.path(), &["--platform", "linux/arm64"]);
    assert_eq!(out.status.code(), Some(1));
}
