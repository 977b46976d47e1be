//! No repeated work: an unchanged rebuild takes every layer from the cache,
//! a changed file rebuilds its layer, and a damaged cache entry is noticed
//! and rebuilt. zstd layers come out with the OCI media type.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

const SPEC: &str = r#"[image]
name = "cached"
[[copy]]
src = "a/"
dest = "/a/"
[[copy]]
src = "b/"
dest = "/b/"
[policy]
enforce = false
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in [
        ("a/one.txt", "one\n".repeat(1000)),
        ("b/two.txt", "two\n".repeat(1000)),
    ] {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    fs::write(dir.path().join("kiln.toml"), SPEC).unwrap();
    dir
}

fn build_v(dir: &Path, extra: &[&str]) -> (String, String) {
    let out: Output = kiln()
        .args(["-v", "build"])
        .arg(dir.join("kiln.toml"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--oci")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .unwrap();
    check(&kiln(), &out);
    let digest = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string();
    (digest, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn unchanged_layers_come_from_the_cache_and_damage_is_caught() {
    let dir = setup();
    let d = dir.path();
    let (first, log) = build_v(d, &[]);
    assert_eq!(log.matches(", cached").count(), 0, "{log}");

    let (again, log) = build_v(d, &[]);
    assert_eq!(again, first);
    assert_eq!(log.matches(", cached").count(), 2, "{log}");

    // One file changes: only its layer is built again.
    fs::write(d.join("b/two.txt"), "TWO\n".repeat(1000)).unwrap();
    let (changed, log) = build_v(d, &[]);
    assert_ne!(changed, first);
    assert_eq!(log.matches(", cached").count(), 1, "{log}");

    // Damage every cached blob without changing its size: caught, rebuilt, same image.
    fs::write(d.join("b/two.txt"), "two\n".repeat(1000)).unwrap();
    for e in fs::read_dir(d.join("cache/blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        let mut bytes = fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&p, bytes).unwrap();
    }
    let (rebuilt, log) = build_v(d, &[]);
    assert_eq!(rebuilt, first);
    assert!(log.contains("is damaged; building it again"), "{log}");
    let (healed, log) = build_v(d, &[]);
    assert_eq!(healed, first);
    assert_eq!(
        log.matches(", cached").count(),
        2,
        "the damaged entries stayed: {log}"
    );

    // --no-cache builds everything.
    let (fresh, log) = build_v(d, &["--no-cache"]);
    assert_eq!(fresh, first);
    assert_eq!(log.matches(", cached").count(), 0, "{log}");
}

#[test]
fn zstd_layers_in_oci_images_and_gzip_kept_for_docker_format() {
    if !have(&["skopeo"]) {
        return;
    }
    let dir = setup();
    let d = dir.path();
    fs::write(
        d.join("kiln.toml"),
        SPEC.replace(
            "name = \"cached\"",
            "name = \"cached\"\nformat = \"oci\"\ncompression = \"zstd\"",
        ),
    )
    .unwrap();
    build_v(d, &[]);
    let manifest = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:latest", d.join("out").display())));
    assert_eq!(
        manifest
            .matches("application/vnd.oci.image.layer.v1.tar+zstd")
            .count(),
        2,
        "{manifest}"
    );
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:latest", d.join("out").display()))
        .arg(format!("dir:{}", d.join("copy").display())));

    fs::write(d.join("kiln.toml"), SPEC).unwrap();
    let (_, log) = build_v(d, &["--compression", "zstd"]);
    assert!(log.contains("this Docker-format image keeps gzip"), "{log}");
    let manifest = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}", d.join("out").display())));
    assert_eq!(
        manifest
            .matches("application/vnd.docker.image.rootfs.diff.tar.gzip")
            .count(),
        2,
        "{manifest}"
    );
}

#[test]
fn a_push_only_build_checks_a_cache_hit_before_uploading_it() {
    if !have(&["docker-registry"]) {
        return;
    }
    let dir = setup();
    let d = dir.path();
    let registry = Registry::start();
    let push = |repo: &str| {
        kiln()
            .arg("build")
            .arg(d.join("kiln.toml"))
            .arg("--cache-dir")
            .arg(d.join("cache"))
            .args(["--push", &format!("{}/{repo}:1", registry.addr)])
            .output()
            .unwrap()
    };
    check(&kiln(), &push("first"));
    // Damage the cache; a push to a repository that lacks the layers must notice.
    for e in fs::read_dir(d.join("cache/blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        let mut bytes = fs::read(&p).unwrap();
        bytes[0] ^= 0xff;
        fs::write(&p, bytes).unwrap();
    }
    let out = push("second");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the cached layer is damaged; nothing was pushed"),
        "{stderr}"
    );
    // The damaged entry is gone, so the next build writes it afresh and pushes.
    let out = push("second");
    check(&kiln(), &out);
}
