//! Pull a base from a real registry, build on it, push the result: mounts
//! instead of uploads, nothing uploaded or pulled twice, the pushed digest
//! pulled back by skopeo and run by podman, and clear errors.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// The Debian-like base, pushed to `registry` as `repo:tag`.
fn push_base(registry: &Registry, work: &Path, repo: &str) {
    let image = base_layout(work);
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false", &image])
        .arg(format!("docker://{}/{repo}", registry.addr)));
}

const SPEC: &str = r#"[image]
name = "app"
base = "python:3.13-slim"
[user]
name = "app"
uid = 10001
home = "/home/app"
[[copy]]
src = "www/"
dest = "/www/"
owner = "app:app"
[config]
entrypoint = ["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]
[healthcheck]
test = ["CMD", "/bin/busybox", "wget", "--spider", "-q", "http://127.0.0.1:8000/health"]
interval = "30s"
"#;

fn app_dir(work: &Path, spec: &str) -> std::path::PathBuf {
    let dir = work.join("app");
    fs::create_dir_all(dir.join("www")).unwrap();
    fs::write(dir.join("www/health"), "ok\n").unwrap();
    fs::write(dir.join("kiln.toml"), spec).unwrap();
    dir.join("kiln.toml")
}

fn kiln_build(spec: &Path, registry: &Registry, cache: &Path, extra: &[&str]) -> Output {
    kiln()
        .arg("build")
        .arg(spec)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--registry-mirror-only")
        .arg("--registry-mirror")
        .arg(format!("docker.io={}", registry.addr))
        .args(extra)
        .output()
        .unwrap()
}

fn log_count(registry: &Registry, needle: &str) -> usize {
    let log = fs::read_to_string(registry.dir.path().join("registry.log")).unwrap();
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn build_on_a_pulled_base_push_mount_and_repush_nothing() {
    if !have(&["skopeo", "umoci", "podman", "runc", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let registry = Registry::start();
    push_base(&registry, w, "library/python:3.13-slim");
    let spec = app_dir(w, SPEC);
    let cache = w.join("cache");
    let target = format!("{}/team/app:1", registry.addr);
    let uploads_before = log_count(&registry, "PUT /v2/team/app/blobs/uploads/");

    let out = kiln_build(
        &spec,
        &registry,
        &cache,
        &[
            "--push",
            &target,
            "--tag",
            "latest",
            "--digest-file",
            w.join("digest").to_str().unwrap(),
        ],
    );
    check(&kiln(), &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed = stdout.lines().last().unwrap().to_string();
    let (reference, digest) = printed.rsplit_once('@').unwrap();
    assert_eq!(reference, target);
    assert_eq!(
        fs::read_to_string(w.join("digest")).unwrap().trim(),
        printed
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 mounted"),
        "the base layer was not mounted:\n{stderr}"
    );
    // The two new layers went up while they were written: one PATCH each.
    assert_eq!(
        log_count(&registry, "\"PATCH /v2/team/app/blobs/uploads/"),
        2
    );
    // The base's one layer is mounted; the two new layers and the config are uploaded.
    assert_eq!(
        log_count(&registry, "PUT /v2/team/app/blobs/uploads/") - uploads_before,
        3
    );

    // skopeo reads back exactly the manifest kiln printed, and checks every blob.
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{target}")));
    assert_eq!(kiln::oci::digest::sha256(raw.as_bytes()), digest);
    let latest = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/team/app:latest", registry.addr)));
    assert_eq!(latest, raw);
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{target}"))
        .arg(format!("oci:{}:x", w.join("pulled").display())));
    let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{target}"))))
    .unwrap();
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.base.name"],
        "docker.io/library/python:3.13-slim"
    );

    // podman runs it: the app user, the base's accounts kept, healthy.
    let podman = Podman::new();
    let id = podman.exec(&target, &["/bin/busybox", "id"]);
    assert_eq!(id.trim(), "uid=10001(app) gid=10001(app) groups=10001(app)");
    let passwd = podman.exec(&target, &["/bin/busybox", "cat", "/etc/passwd"]);
    assert_eq!(
        passwd,
        format!("{BASE_PASSWD}app:x:10001:10001::/home/app:/sbin/nologin\n")
    );
    let shadow = podman.exec(&target, &["/bin/busybox", "cat", "/etc/shadow"]);
    assert!(shadow.ends_with("app:!::0:99999:7:::\n"), "{shadow}");
    podman
        .healthy_within(&target, "app", std::time::Duration::from_secs(30))
        .unwrap();

    // Again, unchanged: no blob is pulled or uploaded, and the digest is the same.
    let pulls_before = log_count(&registry, "GET /v2/library/python/blobs/");
    let uploads_before = log_count(&registry, "PUT /v2/team/app/blobs/uploads/");
    let out = kiln_build(&spec, &registry, &cache, &["--push", &target]);
    check(&kiln(), &out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last().unwrap(),
        printed
    );
    assert_eq!(
        log_count(&registry, "GET /v2/library/python/blobs/"),
        pulls_before
    );
    assert_eq!(
        log_count(&registry, "PUT /v2/team/app/blobs/uploads/"),
        uploads_before
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 blobs uploaded"));
}

#[test]
fn registry_errors_are_one_line_with_a_hint_and_exit_1() {
    if !have(&["skopeo", "umoci", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let registry = Registry::start();
    push_base(&registry, w, "library/python:3.13-slim");
    let cache = w.join("cache");

    let expect = |out: Output, needles: &[&str]| {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(stderr.contains("hint: "), "{stderr}");
        for n in needles {
            assert!(stderr.contains(n), "expected {n:?} in:\n{stderr}");
        }
    };

    let missing = app_dir(w, &SPEC.replace("python:3.13-slim", "python:2-nothere"));
    expect(
        kiln_build(&missing, &registry, &cache, &[]),
        &["library/python:2-nothere", "not found", "MANIFEST_UNKNOWN"],
    );

    let spec = app_dir(w, SPEC);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    expect(
        kiln_build(
            &spec,
            &registry,
            &cache,
            &["--push", &format!("127.0.0.1:{closed}/x:1")],
        ),
        &["cannot connect", "that the registry is running"],
    );

    // An unknown host, resolved inside an empty network namespace so that
    // no lookup leaves this machine.
    let scratch = w.join("scratch.toml");
    fs::write(
        &scratch,
        "[image]\nname = \"x\"\n[[file]]\npath = \"/a\"\ncontent = \"a\"\n[policy]\nenforce = false\n",
    )
    .unwrap();
    let out = Command::new("unshare")
        .arg("--net")
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .arg("build")
        .arg(&scratch)
        .args(["--push", "nosuchhost.invalid/x:1", "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    expect(
        out,
        &[
            "nosuchhost.invalid",
            "unknown host",
            "check the registry's host name",
            "--registry-mirror",
        ],
    );

    let out = kiln_build(&spec, &registry, &cache, &["--platform", "linux/arm64"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is linux/amd64, but the build is for linux/arm64"),
        "{stderr}"
    );
}

#[test]
fn an_index_without_the_platform_lists_what_it_has() {
    if !have(&["skopeo", "umoci", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let registry = Registry::start();
    // An OCI index with one linux/amd64 image, pushed as a multi-platform tag.
    push_base(&registry, w, "library/python:3.13-slim");
    let layout = w.join("base-layout");
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&index_path).unwrap()).unwrap();
    let mut manifest = index["manifests"][0].clone();
    manifest.as_object_mut().unwrap().remove("annotations");
    manifest["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
    let inner = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest]})).unwrap();
    let inner_digest = kiln::oci::digest::sha256(&inner);
    fs::write(
        layout
            .join("blobs/sha256")
            .join(inner_digest.trim_start_matches("sha256:")),
        &inner,
    )
    .unwrap();
    index["manifests"][0] = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": inner_digest, "size": inner.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}});
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{}/library/multi:1", registry.addr)));

    let spec = app_dir(w, &SPEC.replace("python:3.13-slim", "multi:1"));
    let ok = kiln_build(&spec, &registry, &w.join("cache"), &[]);
    check(&kiln(), &ok);
    let out = kiln_build(
        &spec,
        &registry,
        &w.join("cache"),
        &["--platform", "linux/arm64/v8"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has no image for linux/arm64/v8 (it has: linux/amd64)"),
        "{stderr}"
    );
}
