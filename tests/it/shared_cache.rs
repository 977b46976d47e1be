//! The layer cache shared through a registry (`--cache-repo`): separate
//! build processes with separate local caches stand in for CI runners on
//! different machines, against Debian's docker-registry; the registry's
//! log and kiln's JSON say what was compressed, uploaded and mounted, and
//! skopeo and umoci check what was pushed or written.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use serde_json::Value;

const SPEC: &str = r#"[image]
name = "app"

[user]
name = "app"
uid = 10001

[[copy]]
src = "data1/"
dest = "/data1/"

[[copy]]
src = "data2/"
dest = "/data2/"

[[copy]]
src = "app/"
dest = "/app/"

[config]
entrypoint = ["/app/version"]

[policy]
enforce = false
"#;

const TOOLS: &[&str] = &["skopeo", "umoci", "docker-registry"];

/// The repository the runners share their layers through.
fn cache_repo(registry: &Registry) -> String {
    format!("{}/kiln-cache", registry.addr)
}

/// Layers, in spec order: accounts, data1/, data2/, app/.
const LAYERS: usize = 4;
const MIB: usize = 1024 * 1024;

fn data1() -> Vec<u8> {
    noise_bytes(3 * MIB, 1)
}

fn data2() -> Vec<u8> {
    noise_bytes(2 * MIB, 2)
}

/// The project a runner checks out: two layers of incompressible data and a small app.
fn checkout(dir: &Path, version: &str) -> PathBuf {
    fs::create_dir_all(dir.join("data1")).unwrap();
    fs::create_dir_all(dir.join("data2")).unwrap();
    fs::create_dir_all(dir.join("app")).unwrap();
    fs::write(dir.join("data1/a.bin"), data1()).unwrap();
    fs::write(dir.join("data2/b.bin"), data2()).unwrap();
    fs::write(dir.join("app/version"), version).unwrap();
    fs::write(dir.join("kiln.toml"), SPEC).unwrap();
    dir.join("kiln.toml")
}

/// Another runner's checkout of the same tree: a copy in another
/// directory, every file with another mtime (and inode).
fn copy_checkout(from: &Path, to: &Path, mtime: u64) -> PathBuf {
    copy_tree(from.parent().unwrap(), to);
    set_mtimes(to, mtime);
    to.join("kiln.toml")
}

/// Runner NAME (`w/runner-NAME`): a checkout of `spec`'s tree with every
/// mtime `mtime`, an empty cache, and a build of it that must succeed.
fn runner(w: &Path, name: &str, spec: &Path, mtime: u64, extra: &[&str]) -> (Value, String) {
    let dir = w.join(format!("runner-{name}"));
    let spec = copy_checkout(spec, &dir.join("checkout"), mtime);
    build_json_stderr(&spec, &dir.join("cache"), extra)
}

/// A warning on stderr names `needle`.
#[track_caller]
fn assert_warns(stderr: &str, needle: &str) {
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains(needle)),
        "no warning naming {needle}:\n{stderr}"
    );
}

fn sources(json: &Value) -> Vec<String> {
    layers(json)
        .iter()
        .map(|l| l["source"].as_str().unwrap().to_string())
        .collect()
}

fn layers(json: &Value) -> Vec<Value> {
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    images[0]["layers"].as_array().unwrap().clone()
}

fn layer_digests(json: &Value) -> Vec<String> {
    layers(json)
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The pushed image pulled back by skopeo (every blob digest-checked),
/// unpacked by umoci; checks the data files and the version file.
fn pull_and_check(reference: &str, version: &str, work: &Path) {
    let pulled = pull_and_unpack(&format!("docker://{reference}"), work, &[]);
    check_rootfs(&pulled.rootfs(), version);
}

fn check_rootfs(rootfs: &Path, version: &str) {
    assert!(fs::read(rootfs.join("data1/a.bin")).unwrap() == data1());
    assert!(fs::read(rootfs.join("data2/b.bin")).unwrap() == data2());
    assert_eq!(
        fs::read_to_string(rootfs.join("app/version")).unwrap(),
        version
    );
}

fn cache_tags(registry: &Registry) -> Vec<String> {
    let (json, _) = run_json(
        Command::new("skopeo")
            .args(["list-tags", "--tls-verify=false"])
            .arg(format!("docker://{}", cache_repo(registry))),
    );
    json["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Runner A: builds from scratch and pushes to HOST/app:1, recording its
/// layers in HOST/kiln-cache. Returns its JSON and the checkout's spec.
fn runner_a(registry: &Registry, w: &Path) -> (Value, PathBuf) {
    let spec = checkout(&w.join("runner-a/src"), "1.0\n");
    let json = build_json(
        &spec,
        &w.join("runner-a/cache"),
        &[
            "--push",
            &format!("{}/app:1", registry.addr),
            "--cache-repo",
            &cache_repo(registry),
        ],
    );
    assert_eq!(sources(&json), ["built"; LAYERS]);
    (json, spec)
}

#[test]
fn a_fresh_runner_mounts_every_layer_another_runner_made() {
    let Some((work, registry)) = with_registry(TOOLS) else {
        return;
    };
    let w = work.path();
    let cache_repo = cache_repo(&registry);
    let (a, a_spec) = runner_a(&registry, w);
    let a_layers = layer_digests(&a);
    let a_digest = a["manifest"]["digest"].as_str().unwrap();
    assert_eq!(cache_tags(&registry).len(), LAYERS, "A recorded its layers");

    // Runner B: its own checkout (another path, other mtimes), an empty cache.
    let b_target = format!("{}/app-b:1", registry.addr);
    let ((b, _), log) = registry.log_during(|| {
        runner(
            w,
            "b",
            &a_spec,
            1_000_000_000,
            &["--push", &b_target, "--cache-repo", &cache_repo],
        )
    });
    assert_eq!(sources(&b), ["cache-repo"; LAYERS], "B built layers itself");
    assert_eq!(layer_digests(&b), a_layers);
    assert_eq!(
        b["manifest"]["digest"], a_digest,
        "same content, another image"
    );
    let push = &b["push"];
    let config_size = b["images"][0]["config"]["size"].as_u64().unwrap();
    assert_eq!(push["uploaded"], 1, "only the config goes up: {push}");
    assert_eq!(push["uploaded_bytes"], config_size, "{push}");
    assert_eq!(push["mounted"], LAYERS, "{push}");
    let layer_bytes: u64 = layers(&b).iter().map(|l| l["size"].as_u64().unwrap()).sum();
    assert_eq!(push["mounted_bytes"], layer_bytes, "{push}");
    assert!(
        layer_bytes > 5 * MIB as u64,
        "the data was compressed: {layer_bytes}"
    );
    // The registry saw no upload of any layer, only the config's; each layer
    // was mounted from the cache repository.
    for d in &a_layers {
        assert_eq!(uploads_of(&log, None, d), 0, "{d} uploaded again");
        assert_eq!(mounts_of(&log, "app-b", d), 1, "{d} not mounted");
    }
    assert_eq!(all_uploads(&log), 1, "B uploaded more than its config");
    assert!(
        !log.iter().any(|l| l.contains("\"PATCH /v2/")),
        "B streamed a layer"
    );
    pull_and_check(&b_target, "1.0\n", &w.join("runner-b"));

    // Runner C: an empty cache, no push, an OCI layout: the layers are downloaded.
    let out = w.join("runner-c/out");
    let ((c, _), log) = registry.log_during(|| {
        runner(
            w,
            "c",
            &a_spec,
            1_100_000_000,
            &["--oci", out.to_str().unwrap(), "--cache-repo", &cache_repo],
        )
    });
    assert_eq!(sources(&c), ["cache-repo"; LAYERS], "C built layers itself");
    assert_eq!(c["manifest"]["digest"], a_digest);
    for d in &a_layers {
        assert!(
            blob_gets(&log, "kiln-cache", d)
                .iter()
                .any(|l| l.contains("\" 200 ")),
            "{d} was not downloaded from the cache repository"
        );
    }
    assert_eq!(all_uploads(&log), 0, "a build without --push uploaded");
    let (raw, raw_digest) = skopeo_json(&["--raw", &format!("oci:{}", out.display())]);
    assert_eq!(raw_digest, a_digest, "{raw}");
    let bundle = unpack(&out, &w.join("runner-c"));
    check_rootfs(&bundle.join("rootfs"), "1.0\n");

    // Runner D: one file changed. Only its layer is built (and uploaded),
    // and recorded for the next runner.
    let d_spec = copy_checkout(&a_spec, &w.join("runner-d/checkout"), 1_200_000_000);
    fs::write(d_spec.parent().unwrap().join("app/version"), "1.1\n").unwrap();
    let d_target = format!("{}/app-d:1", registry.addr);
    let ((d, _), log) = registry.log_during(|| {
        build_json_stderr(
            &d_spec,
            &w.join("runner-d/cache"),
            &["--push", &d_target, "--cache-repo", &cache_repo],
        )
    });
    assert_eq!(
        sources(&d),
        ["cache-repo", "cache-repo", "cache-repo", "built"]
    );
    let d_layers = layer_digests(&d);
    assert_eq!(d_layers[..3], a_layers[..3]);
    assert_ne!(d_layers[3], a_layers[3]);
    assert_eq!(d["push"]["uploaded"], 2, "{}", d["push"]);
    assert_eq!(d["push"]["mounted"], 3, "{}", d["push"]);
    for big in &a_layers[1..3] {
        assert_eq!(uploads_of(&log, None, big), 0, "{big} uploaded again");
    }
    assert_eq!(uploads_of(&log, Some("app-d"), &d_layers[3]), 1);
    assert_eq!(
        cache_tags(&registry).len(),
        LAYERS + 1,
        "D's layer not recorded"
    );
    pull_and_check(&d_target, "1.1\n", &w.join("runner-d"));
}

#[test]
fn a_cache_repository_on_another_registry_is_downloaded_then_pushed() {
    let Some((work, cache_registry)) = with_registry(TOOLS) else {
        return;
    };
    let w = work.path();
    let (a, a_spec) = runner_a(&cache_registry, w);
    let a_layers = layer_digests(&a);

    // B pushes to another registry: nothing to mount from, so the layers
    // come down from the cache and go up to the target, uncompressed by B.
    let registry = Registry::start();
    let target = format!("{}/app:1", registry.addr);
    let ((b, _), cache_log) = cache_registry.log_during(|| {
        runner(
            w,
            "b",
            &a_spec,
            1_000_000_000,
            &[
                "--push",
                &target,
                "--cache-repo",
                &cache_repo(&cache_registry),
            ],
        )
    });
    assert_eq!(sources(&b), ["cache-repo"; LAYERS]);
    assert_eq!(b["manifest"]["digest"], a["manifest"]["digest"]);
    assert_eq!(b["push"]["uploaded"], LAYERS + 1, "{}", b["push"]);
    assert_eq!(all_uploads(&cache_log), 0, "B wrote to the cache registry");
    let log = registry_log(&registry);
    for d in &a_layers {
        assert!(
            !blob_gets(&cache_log, "kiln-cache", d).is_empty(),
            "{d} not downloaded from the cache"
        );
        assert_eq!(uploads_of(&log, Some("app"), d), 1, "{d}");
    }
    pull_and_check(&target, "1.0\n", &w.join("runner-b"));
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_cache_repository_that_is_down_is_a_miss_with_a_warning() {
    if !have(&["skopeo", "umoci", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let spec = checkout(&w.join("src"), "1.0\n");
    let plain = w.join("plain");
    let without = build_json(
        &spec,
        &w.join("cache-plain"),
        &["--oci", plain.to_str().unwrap()],
    );
    let down = format!("127.0.0.1:{}/kiln-cache", closed_port());

    let out = w.join("out");
    let (json, stderr) = build_json_stderr(
        &spec,
        &w.join("cache-1"),
        &["--oci", out.to_str().unwrap(), "--cache-repo", &down],
    );
    assert_warns(&stderr, &down);
    assert!(!stderr.lines().any(|l| l.starts_with("error")), "{stderr}");
    assert_eq!(sources(&json), ["built"; LAYERS]);
    assert_eq!(json["manifest"], without["manifest"], "another image");
    let bundle = unpack(&out, w);
    check_rootfs(&bundle.join("rootfs"), "1.0\n");

    // With a push to a registry that is up: pushed, and pulled back whole.
    let registry = Registry::start();
    let target = format!("{}/app:1", registry.addr);
    let (json, stderr) = build_json_stderr(
        &spec,
        &w.join("cache-2"),
        &["--push", &target, "--cache-repo", &down],
    );
    assert_warns(&stderr, &down);
    assert_eq!(json["manifest"], without["manifest"]);
    assert_eq!(json["push"]["uploaded"], LAYERS + 1);
    pull_and_check(&target, "1.0\n", &w.join("pushed"));
}

/// Which cache tag points at which layer: reads every pointer manifest.
fn tag_of(registry: &Registry, layer: &str) -> String {
    for tag in cache_tags(registry) {
        let (pointer, _) = served_raw(&format!("{}/kiln-cache:{tag}", registry.addr));
        if pointer["layers"][0]["digest"] == layer {
            return tag;
        }
    }
    panic!("no cache tag points at {layer}");
}

/// A small image that has nothing to do with the app, made by umoci.
fn unrelated_image(work: &Path) -> String {
    let root = work.join("unrelated-root");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/motd"), "something else entirely\n").unwrap();
    format!("oci:{}", umoci_image(&work.join("unrelated"), "1", &root))
}

#[test]
fn another_image_under_a_cache_tag_is_ignored() {
    let Some((work, registry)) = with_registry(TOOLS) else {
        return;
    };
    let w = work.path();
    let cache_repo = cache_repo(&registry);
    let (a, a_spec) = runner_a(&registry, w);
    let a_layers = layer_digests(&a);
    // data1/'s tag now holds an unrelated image.
    let tag = tag_of(&registry, &a_layers[1]);
    skopeo_copy(
        &unrelated_image(w),
        &format!("docker://{cache_repo}:{tag}"),
        &[],
    );

    let target = format!("{}/app-b:1", registry.addr);
    let (b, stderr) = runner(
        w,
        "b",
        &a_spec,
        1_000_000_000,
        &["--push", &target, "--cache-repo", &cache_repo],
    );
    assert_warns(&stderr, &tag);
    assert_eq!(
        sources(&b),
        ["cache-repo", "built", "cache-repo", "cache-repo"]
    );
    assert_eq!(b["manifest"]["digest"], a["manifest"]["digest"]);
    pull_and_check(&target, "1.0\n", &w.join("runner-b"));
}

/// DELETE a blob from a repository (the registry unlinks it there); the status.
fn delete_blob(registry: &Registry, repo: &str, digest: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(&registry.addr).unwrap();
    write!(
        stream,
        "DELETE /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        registry.addr
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"))
}

#[test]
fn a_cache_tag_whose_layer_is_gone_is_a_miss() {
    let Some((work, registry)) = with_registry(TOOLS) else {
        return;
    };
    let w = work.path();
    let cache_repo = cache_repo(&registry);
    let (a, a_spec) = runner_a(&registry, w);
    let a_layers = layer_digests(&a);
    // data2/'s tag is still there, but its blob is gone from the cache repository.
    assert_eq!(delete_blob(&registry, "kiln-cache", &a_layers[2]), 202);

    // Downloading it (an OCI layout) misses, and the layer is built.
    let out = w.join("runner-c/out");
    let (c, stderr) = runner(
        w,
        "c",
        &a_spec,
        1_000_000_000,
        &["--oci", out.to_str().unwrap(), "--cache-repo", &cache_repo],
    );
    assert_warns(&stderr, &cache_repo);
    assert_eq!(sources(&c)[2], "built", "{stderr}");
    assert_eq!(c["manifest"]["digest"], a["manifest"]["digest"]);
    let bundle = unpack(&out, &w.join("runner-c"));
    check_rootfs(&bundle.join("rootfs"), "1.0\n");

    // Mounting it into a push target must miss the same way, not fail the build.
    let target = format!("{}/app-b:1", registry.addr);
    let (b, stderr) = runner(
        w,
        "b",
        &a_spec,
        1_100_000_000,
        &["--push", &target, "--cache-repo", &cache_repo],
    );
    assert_eq!(b["manifest"]["digest"], a["manifest"]["digest"], "{stderr}");
    pull_and_check(&target, "1.0\n", &w.join("runner-b"));
}

#[test]
fn no_cache_builds_every_layer_even_with_a_cache_repository() {
    let Some((work, registry)) = with_registry(TOOLS) else {
        return;
    };
    let w = work.path();
    let (a, a_spec) = runner_a(&registry, w);
    // `--no-cache`: "build every layer again, even when its inputs did not change".
    let out = w.join("out");
    let (b, stderr) = build_json_stderr(
        &a_spec,
        &w.join("runner-b/cache"),
        &[
            "--no-cache",
            "--oci",
            out.to_str().unwrap(),
            "--cache-repo",
            &cache_repo(&registry),
        ],
    );
    assert_eq!(sources(&b), ["built"; LAYERS], "{stderr}");
    assert_eq!(b["manifest"]["digest"], a["manifest"]["digest"]);
}

#[test]
fn a_multi_platform_build_takes_both_platforms_layers_from_the_cache() {
    let Some((work, registry)) = with_registry(&["skopeo", "docker-registry"]) else {
        return;
    };
    let w = work.path();
    let cache_repo = cache_repo(&registry);
    let src = w.join("runner-a/src");
    let spec = checkout(&src, "1.0\n");
    for arch in ["amd64", "arm64"] {
        fs::create_dir_all(src.join("dist").join(arch)).unwrap();
        fs::write(src.join("dist").join(arch).join("server"), arch).unwrap();
    }
    let multi = SPEC.replacen(
        "name = \"app\"\n",
        "name = \"app\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
        1,
    ) + "[[copy]]\nsrc = \"dist/${TARGETARCH}/server\"\ndest = \"/app/server\"\n";
    fs::write(&spec, multi).unwrap();
    let a = build_json(
        &spec,
        &w.join("runner-a/cache"),
        &[
            "--push",
            &format!("{}/app:1", registry.addr),
            "--cache-repo",
            &cache_repo,
        ],
    );
    // 4 shared layers and one server layer per platform.
    assert_eq!(cache_tags(&registry).len(), LAYERS + 2);

    let target = format!("{}/app-b:1", registry.addr);
    let ((b, _), log) = registry.log_during(|| {
        runner(
            w,
            "b",
            &spec,
            1_000_000_000,
            &["--push", &target, "--cache-repo", &cache_repo],
        )
    });
    assert_eq!(b["manifest"]["digest"], a["manifest"]["digest"]);
    let images = b["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for image in images {
        for layer in image["layers"].as_array().unwrap() {
            assert_eq!(layer["source"], "cache-repo", "{image}");
            let d = layer["digest"].as_str().unwrap();
            assert_eq!(uploads_of(&log, None, d), 0, "{d} uploaded again");
        }
    }
    // Two configs, nothing else.
    assert_eq!(all_uploads(&log), 2);
    assert_eq!(b["push"]["uploaded"], 2, "{}", b["push"]);
    let (index, digest) = served_raw(&target);
    assert_eq!(digest, b["manifest"]["digest"].as_str().unwrap());
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    for arch in ["amd64", "arm64"] {
        skopeo_copy(
            &format!("docker://{target}"),
            &format!("oci:{}:x", w.join(arch).display()),
            &["--override-arch", arch],
        );
    }
}

/// PUT `body` as an OCI manifest under `repo:tag`, byte for byte; the status.
fn put_manifest(registry: &Registry, repo: &str, tag: &str, body: &[u8]) -> u16 {
    let mut stream = std::net::TcpStream::connect(&registry.addr).unwrap();
    write!(
        stream,
        "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        registry.addr,
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"))
}

#[test]
fn cache_manifests_carry_an_artifact_type_and_older_ones_without_it_still_hit() {
    let Some((work, registry)) = with_registry(TOOLS) else {
        return;
    };
    let w = work.path();
    let cache_repo = cache_repo(&registry);
    let (a, a_spec) = runner_a(&registry, w);
    let tags = cache_tags(&registry);
    assert_eq!(tags.len(), LAYERS, "{tags:?}");
    for tag in &tags {
        let (pointer, _) = served_raw(&format!("{cache_repo}:{tag}"));
        assert_eq!(
            pointer["artifactType"],
            kiln::layer::remote::ARTIFACT_TYPE,
            "{pointer}"
        );
        assert_eq!(
            pointer["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        // Rewritten the way a kiln from before artifactType wrote it.
        let mut older = pointer.clone();
        older.as_object_mut().unwrap().remove("artifactType");
        let body = serde_json::to_vec(&older).unwrap();
        assert_eq!(put_manifest(&registry, "kiln-cache", tag, &body), 201);
        let (served, _) = served_raw(&format!("{cache_repo}:{tag}"));
        assert!(served.get("artifactType").is_none(), "{served}");
    }

    let target = format!("{}/app-b:1", registry.addr);
    let (b, stderr) = runner(
        w,
        "b",
        &a_spec,
        1_000_000_000,
        &["--push", &target, "--cache-repo", &cache_repo],
    );
    assert_eq!(sources(&b), ["cache-repo"; LAYERS], "{stderr}");
    assert_eq!(b["manifest"]["digest"], a["manifest"]["digest"]);
    pull_and_check(&target, "1.0\n", &w.join("runner-b"));
}
