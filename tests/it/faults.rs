//! The fault matrix: a fault-injecting proxy in front of the real registry
//! breaks one step of a push at a time (blob HEAD, upload start, upload
//! body, upload commit, manifest PUT) in each of the ways registries fail.
//! Every push either succeeds with an image skopeo pulls back digest-checked,
//! or fails with one clear error and leaves no manifest behind.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::proxy::{Fault, Proxy};
use crate::common::*;

/// Two layers big enough that a reset lands mid-body.
fn spec(dir: &Path) -> std::path::PathBuf {
    let mut data = Vec::new();
    let mut x: u32 = 7;
    while data.len() < 600_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.extend_from_slice(format!("{x:08x} line of a build artifact\n").as_bytes());
    }
    fs::create_dir_all(dir.join("a")).unwrap();
    fs::create_dir_all(dir.join("b")).unwrap();
    fs::write(dir.join("a/data.txt"), &data).unwrap();
    fs::write(
        dir.join("b/data.bin"),
        data.iter().map(|b| b.wrapping_mul(31)).collect::<Vec<u8>>(),
    )
    .unwrap();
    let spec = dir.join("kiln.toml");
    fs::write(&spec, "[image]\nname = \"m\"\n[[copy]]\nsrc = \"a/\"\ndest = \"/a/\"\n[[copy]]\nsrc = \"b/\"\ndest = \"/b/\"\n[policy]\nenforce = false\n").unwrap();
    spec
}

fn push(spec: &Path, target: &str) -> Output {
    kiln()
        .arg("build")
        .arg(spec)
        .args(["--no-cache", "--push", target])
        .output()
        .unwrap()
}

/// The step's requests: (method, path fragment).
const STEPS: [(&str, &str, &str); 5] = [
    ("blob HEAD", "HEAD", "/blobs/sha256:"),
    ("upload start", "POST", "/blobs/uploads/"),
    ("upload body", "PATCH", "/blobs/uploads/"),
    ("upload commit", "PUT", "/blobs/uploads/"),
    ("manifest PUT", "PUT", "/manifests/"),
];

fn faults() -> Vec<(&'static str, Fault)> {
    vec![
        ("500", Fault::Status(500, None)),
        ("502", Fault::Status(502, None)),
        ("503", Fault::Status(503, None)),
        ("429 Retry-After", Fault::Status(429, Some(1))),
        ("reset", Fault::ResetMidBody),
        ("stall", Fault::Stall(Duration::from_millis(500))),
        ("lost reply", Fault::LoseReply),
    ]
}

fn matrix(step: usize) {
    if !have(&["skopeo", "docker-registry"]) {
        return;
    }
    let (label, method, path) = STEPS[step];
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    for (n, (fault_name, fault)) in faults().into_iter().enumerate() {
        proxy.clear();
        proxy.fault(method, path, 2, fault);
        let repo = format!("matrix/s{step}f{n}");
        let out = push(&spec, &format!("{}/{repo}:1", proxy.addr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{label} / {fault_name}: the push failed:\n{stderr}"
        );
        let printed = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .to_string();
        let digest = printed.rsplit_once('@').unwrap().1;
        // Straight from the registry, not through the proxy.
        let direct = format!("docker://{}/{repo}:1", registry.addr);
        let raw =
            run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &direct]));
        assert_eq!(
            kiln::oci::digest::sha256(raw.as_bytes()),
            digest,
            "{label} / {fault_name}"
        );
        let copy = work.path().join(format!("copy-{step}-{n}"));
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false", &direct])
            .arg(format!("dir:{}", copy.display())));
        let fired = proxy
            .requests()
            .iter()
            .filter(|r| r.fault.is_some())
            .count();
        assert!(
            fired >= 1,
            "{label} / {fault_name}: the fault never fired, so this case proved nothing"
        );
    }
}

#[test]
fn faults_on_blob_head() {
    matrix(0);
}

#[test]
fn faults_on_upload_start() {
    matrix(1);
}

#[test]
fn faults_on_upload_body() {
    matrix(2);
}

#[test]
fn faults_on_upload_commit() {
    matrix(3);
}

#[test]
fn faults_on_manifest_put() {
    matrix(4);
}

/// Faults that outlast the retries: one error, exit 1, and no manifest
/// naming a blob the registry does not have.
#[test]
fn lasting_faults_fail_cleanly_and_leave_no_manifest() {
    if !have(&["skopeo", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    for (n, (method, path, code)) in [
        ("PUT", "/blobs/uploads/", 500),
        ("PUT", "/manifests/", 503),
        ("POST", "/blobs/uploads/", 502),
    ]
    .into_iter()
    .enumerate()
    {
        proxy.clear();
        proxy.fault(method, path, 1000, Fault::Status(code, None));
        let repo = format!("lasting/c{n}");
        let out = push(&spec, &format!("{}/{repo}:1", proxy.addr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{stderr}"
        );
        assert!(stderr.contains(&format!("answered {code}")), "{stderr}");
        assert!(stderr.contains("hint: "), "{stderr}");
        let direct = format!("docker://{}/{repo}:1", registry.addr);
        let inspect = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", &direct])
            .output()
            .unwrap();
        assert!(
            !inspect.status.success(),
            "a manifest was left behind after: {stderr}"
        );
    }
}

/// A 4xx that retrying cannot fix is not retried.
#[test]
fn permanent_errors_are_not_retried() {
    if !have(&["docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    proxy.fault("PUT", "/manifests/", 1000, Fault::Status(400, None));
    let out = push(&spec, &format!("{}/perm/x:1", proxy.addr));
    assert_eq!(out.status.code(), Some(1));
    let tries = manifest_puts(&proxy);
    assert_eq!(tries, 1, "a 400 was retried");
}

/// A Retry-After longer than kiln waits fails at once and says how long.
#[test]
fn a_long_retry_after_fails_at_once_and_says_how_long() {
    if !have(&["docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    proxy.fault("PUT", "/manifests/", 1000, Fault::Status(429, Some(3600)));
    let started = std::time::Instant::now();
    let out = push(&spec, &format!("{}/limited/x:1", proxy.addr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Retry-After: 3600"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{stderr}"
    );
    let tries = manifest_puts(&proxy);
    assert_eq!(tries, 1, "a long Retry-After was waited out or retried");
}

/// A registry that fails every third request (503s with and without
/// Retry-After, resets) still takes a push of many blobs and serves the
/// pull back: each request is tried again on its own. Retrying only whole
/// blobs, every try of every blob would meet a fault.
#[test]
fn a_registry_failing_every_few_requests_takes_the_push_and_the_pull() {
    if !have(&["skopeo", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let mut spec = String::from("[image]\nname = \"m\"\n[policy]\nenforce = false\n");
    for i in 0..8 {
        let data = noise_bytes(200_000, i);
        fs::create_dir_all(dir.join(format!("l{i}"))).unwrap();
        fs::write(dir.join(format!("l{i}/data.bin")), data).unwrap();
        spec.push_str(&format!("[[copy]]\nsrc = \"l{i}/\"\ndest = \"/l{i}/\"\n"));
    }
    let spec = write_spec(dir, &spec);
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    proxy.fault_every(
        3,
        vec![
            Fault::Status(503, Some(1)),
            Fault::ResetMidBody,
            Fault::Status(503, None),
            Fault::Status(502, None),
        ],
    );
    let target = format!("{}/steady/app:1", proxy.addr);
    let out = push(&spec, &target);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the push failed:\n{stderr}");
    let printed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let digest = printed.rsplit_once('@').unwrap().1.to_string();
    let direct = format!("docker://{}/steady/app:1", registry.addr);
    let raw = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &direct]));
    assert_eq!(kiln::oci::digest::sha256(raw.as_bytes()), digest);
    let fired = |p: &Proxy| p.requests().iter().filter(|r| r.fault.is_some()).count();
    let pushed_faults = fired(&proxy);
    assert!(pushed_faults >= 8, "only {pushed_faults} faults fired");

    // And back: a build on that image pulls every blob through the same faults.
    let user = dir.join("user");
    fs::create_dir_all(&user).unwrap();
    let spec = write_spec(
        &user,
        &format!("[image]\nbase = \"{target}\"\n[policy]\nenforce = false\n"),
    );
    let out = dir.join("out");
    let built = kiln_build(
        &spec,
        &dir.join("pull-cache"),
        &["--oci", out.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "the pull failed:\n{stderr}");
    let blob_gets = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/sha256:"))
        .count();
    assert!(blob_gets >= 9, "{blob_gets} blob GETs");
    assert!(fired(&proxy) > pushed_faults + 2, "the pull met no faults");
}

/// How many manifest PUTs reached the proxy.
fn manifest_puts(proxy: &Proxy) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .count()
}
