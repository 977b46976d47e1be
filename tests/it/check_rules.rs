//! One pair of fixtures per `kiln check` rule, in testdata/check/RULE-ID/:
//! `fail/kiln.toml` breaks the rule and must produce its finding, `pass/`
//! is the closest spec that does not. All but KILN-BASE-NOT-PINNED build on
//! scratch; that one needs a registry base (served by a local registry as a
//! docker.io mirror) and, to pass, a local OCI layout made with umoci.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const BASE_RULE: &str = "KILN-BASE-NOT-PINNED";

fn fixtures() -> PathBuf {
    repo().join("testdata/check")
}

/// The rule directories under testdata/check, sorted.
fn rule_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    dirs
}

/// A copy of testdata/check/RULE/KIND in a fresh temp dir.
fn copy_fixture(rule: &str, kind: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join(rule).join(kind), dir.path());
    dir
}

/// `kiln check --format json` on DIR/kiln.toml: the finding IDs.
fn finding_ids(dir: &Path, extra: &[&str]) -> Vec<String> {
    let out = kiln()
        .arg("check")
        .arg(dir.join("kiln.toml"))
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "kiln check {} exited {}:\n{stdout}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<serde_json::Value> =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"));
    findings
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_fail_and_pass(rule: &str, fail: &[String], pass: &[String]) {
    assert!(
        fail.iter().any(|id| id == rule),
        "{rule}/fail did not produce {rule}: {fail:?}"
    );
    assert!(
        !pass.iter().any(|id| id == rule),
        "{rule}/pass produced {rule}: {pass:?}"
    );
}

#[test]
fn every_rule_has_a_fail_and_a_pass_fixture() {
    let source = fs::read_to_string(repo().join("src/spec/rules.rs")).unwrap();
    let rules = source.lines().filter(|l| l.trim() == "Rule {").count();
    let dirs = rule_dirs();
    assert_eq!(
        dirs.len(),
        rules,
        "testdata/check has {} rule directories, src/check.rs {rules} rules: {dirs:?}",
        dirs.len()
    );
    for rule in &dirs {
        assert!(
            source.contains(&format!("id: \"{rule}\",")),
            "testdata/check/{rule} names no rule in src/check.rs"
        );
        for kind in ["fail", "pass"] {
            let spec = fixtures().join(rule).join(kind).join("kiln.toml");
            assert!(spec.is_file(), "missing {}", spec.display());
        }
    }
    let listed = run(kiln().args(["check", "--list"]));
    for rule in &dirs {
        assert!(listed.contains(rule.as_str()), "{rule} not in:\n{listed}");
    }
}

#[test]
fn each_scratch_fixture_fails_or_passes_its_rule() {
    let mut checked = 0;
    for rule in rule_dirs() {
        if rule == BASE_RULE {
            continue;
        }
        let fail = copy_fixture(&rule, "fail");
        let pass = copy_fixture(&rule, "pass");
        assert_fail_and_pass(
            &rule,
            &finding_ids(fail.path(), &[]),
            &finding_ids(pass.path(), &[]),
        );
        checked += 1;
    }
    assert_eq!(checked, rule_dirs().len() - 1);
}

/// fail: `stand-in:1`, a tag, served for docker.io by a local registry.
/// pass: the same image as a local OCI layout (`oci:base-layout:v1`).
#[test]
fn base_not_pinned_fixture() {
    if !have(&["skopeo", "umoci", "docker-registry"]) {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let cache = cache.to_str().unwrap();

    let pass = copy_fixture(BASE_RULE, "pass");
    let layout = base_layout(pass.path());
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(&layout)
        .arg(format!("docker://{}/library/stand-in:1", registry.addr)));

    let fail = copy_fixture(BASE_RULE, "fail");
    let mirror = format!("docker.io={}", registry.addr);
    let flags = [
        "--registry-mirror",
        &mirror,
        "--registry-mirror-only",
        "--cache-dir",
        cache,
    ];
    let fail_ids = finding_ids(fail.path(), &flags);
    let pass_ids = finding_ids(pass.path(), &flags);
    assert_fail_and_pass(BASE_RULE, &fail_ids, &pass_ids);

    // Strict makes it an error: exit 1 where the warning alone exits 0.
    let strict = |dir: &Path| {
        kiln()
            .arg("check")
            .arg(dir.join("kiln.toml"))
            .args(flags)
            .arg("--strict")
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(strict(fail.path()), Some(1), "{fail_ids:?}");
    assert_eq!(strict(pass.path()), Some(0), "{pass_ids:?}");
}
