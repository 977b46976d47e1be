//! `--registry-mirror REGISTRY=HOST[:PORT][/PATH]`: bases are pulled from a
//! registry's mirrors in order (a path is a repository prefix, as Harbor's
//! proxy-cache projects and Artifactory remotes need), then from the
//! registry itself unless `--registry-mirror-only`. A mirror that misses or
//! cannot be reached costs one warning line. Real docker-registry
//! instances on 127.0.0.1 play the upstream and the mirrors; every request
//! is counted in their logs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// A one-file image pushed to `target`; returns its manifest digest.
fn seed(work: &Path, target: &str, content: &str) -> String {
    let dir = work.join(format!("seed-{}", target.replace(['/', ':'], "_")));
    write_files(&dir, &[("hello.txt", content)]);
    let spec = write_spec(
        &dir,
        "[image]\nname = \"seed\"\n[[copy]]\nsrc = \"hello.txt\"\ndest = \"/hello.txt\"\n[policy]\nenforce = false\n",
    );
    let out = kiln_build(&spec, &work.join("seed-cache"), &["--push", target]);
    assert!(out.status.success(), "seeding {target}: {}", stderr(&out));
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    line.rsplit_once('@').unwrap().1.to_string()
}

/// A spec on `base`, built into an OCI layout with `flags`.
fn build_on(work: &Path, name: &str, base: &str, flags: &[&str]) -> (Output, PathBuf) {
    let dir = work.join(name);
    let spec = write_spec(
        &dir,
        &format!("[image]\nbase = \"{base}\"\n[policy]\nenforce = false\n"),
    );
    let out_dir = dir.join("out");
    let mut args = vec!["--oci", out_dir.to_str().unwrap()];
    args.extend_from_slice(flags);
    let out = kiln_build(&spec, &dir.join("cache"), &args);
    (out, out_dir)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The bytes of /hello.txt in a built layout.
fn hello(layout: &Path) -> String {
    let work = tempfile::tempdir().unwrap();
    let pulled = pull_and_unpack(&format!("oci:{}", layout.display()), work.path(), &[]);
    fs::read_to_string(pulled.rootfs().join("hello.txt")).unwrap()
}

/// Requests for the v2 API of `repo` (manifests or blobs) in `lines`.
fn api_requests(lines: &[String], repo: &str) -> usize {
    let m = format!(" /v2/{repo}/manifests/");
    let b = format!(" /v2/{repo}/blobs/");
    lines
        .iter()
        .filter(|l| l.contains(&m) || l.contains(&b))
        .count()
}

fn warnings(text: &str, word: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("WARN") && l.contains(word))
        .count()
}

/// A port with nothing listening on it.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[test]
fn mirrors_are_tried_in_order_with_their_prefix_then_the_registry() {
    if !have(&["docker-registry", "skopeo", "umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let upstream = Registry::start();
    let mirror = Registry::start();
    let dead = closed_port();
    let base = format!("{}/team/app:1", upstream.addr);
    seed(work, &base, "from upstream\n");
    seed(
        work,
        &format!("{}/hub-cache/team/app:1", mirror.addr),
        "from the mirror\n",
    );

    // A dead mirror, then the live one under its prefix: the image comes from
    // the live mirror, the upstream is never asked, and one line names the dead one.
    let flags = [
        "--registry-mirror",
        &format!("{}={dead}", upstream.addr),
        "--registry-mirror",
        &format!("{}={}/hub-cache", upstream.addr, mirror.addr),
    ];
    let flags: Vec<&str> = flags.iter().map(|s| s.as_ref()).collect();
    let up_before = registry_log(&upstream);
    let ((out, layout), mirror_lines) = mirror.log_during(|| build_on(work, "a", &base, &flags));
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(hello(&layout), "from the mirror\n");
    assert!(
        api_requests(&mirror_lines, "hub-cache/team/app") >= 3,
        "{mirror_lines:#?}"
    );
    let up_lines = registry_log(&upstream)[up_before.len()..].to_vec();
    assert_eq!(api_requests(&up_lines, "team/app"), 0, "{up_lines:#?}");
    assert_eq!(warnings(&text, &format!("mirror {dead}")), 1, "{text}");

    // The mirror lacks the tag: one line, and the upstream serves it.
    let base2 = format!("{}/team/app:2", upstream.addr);
    seed(work, &base2, "only upstream\n");
    let (out, layout) = build_on(work, "b", &base2, &flags);
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(hello(&layout), "only upstream\n");
    assert_eq!(
        warnings(&text, &format!("mirror {}", mirror.addr)),
        1,
        "{text}"
    );
    assert_eq!(warnings(&text, &format!("mirror {dead}")), 1, "{text}");
}

#[test]
fn mirror_only_never_reaches_the_registry() {
    if !have(&["docker-registry", "skopeo", "umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let upstream = Registry::start();
    let mirror = Registry::start();
    let base = format!("{}/team/app:1", upstream.addr);
    seed(work, &base, "from upstream\n");
    let mirror_flag = format!("{}={}/cache", upstream.addr, mirror.addr);
    let up_before = registry_log(&upstream).len();
    let (out, layout) = build_on(
        work,
        "a",
        &base,
        &["--registry-mirror", &mirror_flag, "--registry-mirror-only"],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("no mirror has it"), "{text}");
    assert!(
        text.contains(&format!("{}/cache/team/app", mirror.addr)),
        "{text}"
    );
    assert!(text.contains("--registry-mirror-only"), "{text}");
    assert!(!layout.exists());
    let up_lines = registry_log(&upstream)[up_before..].to_vec();
    assert_eq!(api_requests(&up_lines, "team/app"), 0, "{up_lines:#?}");
}

/// Docker Hub names (`python:3.13-slim`, `docker.io/...`, `index.docker.io/...`)
/// all go to a docker.io mirror, under `library/` for official images.
#[test]
fn docker_hub_names_go_to_a_docker_io_mirror() {
    if !have(&["docker-registry", "skopeo", "umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let mirror = Registry::start();
    seed(
        work,
        &format!("{}/dockerhub/library/python:3.13-slim", mirror.addr),
        "py\n",
    );
    seed(
        work,
        &format!("{}/dockerhub/astral-sh/uv:0.5", mirror.addr),
        "uv\n",
    );
    let flag = format!("docker.io={}/dockerhub/", mirror.addr);
    // --registry-mirror-only: nothing may fall through to the real Docker Hub here.
    let flags = ["--registry-mirror", flag.as_str(), "--registry-mirror-only"];
    for (n, (base, want)) in [
        ("python:3.13-slim", "py\n"),
        ("docker.io/library/python:3.13-slim", "py\n"),
        ("index.docker.io/astral-sh/uv:0.5", "uv\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let (out, layout) = build_on(work, &format!("h{n}"), base, &flags);
        assert!(out.status.success(), "{base}: {}", stderr(&out));
        assert_eq!(hello(&layout), want, "{base}");
    }
}

#[test]
fn malformed_mirrors_are_usage_errors() {
    let work = tempfile::tempdir().unwrap();
    for bad in [
        "docker.io",
        "docker.io=",
        "docker.io=https://mirror.example",
        "docker.io=mirror.example/Hub",
        "docker.io=mirror.example:port",
    ] {
        let (out, _) = build_on(work.path(), "x", "scratch", &["--registry-mirror", bad]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {text}");
        assert!(
            text.contains("REGISTRY=HOST[:PORT][/PATH]"),
            "{bad}: {text}"
        );
    }
}
