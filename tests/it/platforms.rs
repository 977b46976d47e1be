//! Multi-platform builds and `kiln index`, against Debian's docker-registry,
//! with skopeo, umoci and podman as the verifiers. The arm64 base is a
//! stand-in made here by umoci (a config that says arm64); nothing runs it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use serde_json::{Value, json};

const ARCHES: [&str; 2] = ["amd64", "arm64"];
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A two-platform base in the registry, and what each platform holds.
struct Base {
    /// `HOST/base:1`
    reference: String,
    /// The index's digest.
    digest: String,
    /// Per architecture: the manifest digest and its layer digests.
    images: BTreeMap<&'static str, (String, Vec<String>)>,
}

/// A test's temp dir and registry, with the two-platform base pushed there.
struct Fixture {
    work: tempfile::TempDir,
    registry: Registry,
    base: Base,
}

/// The fixture, or None (the test skipped) when a tool is missing.
fn fixture(tools: &[&str]) -> Option<Fixture> {
    let (work, registry) = with_registry(tools)?;
    let base = push_multi_base(&registry, work.path());
    Some(Fixture {
        work,
        registry,
        base,
    })
}

/// Two single-platform images made by umoci, each with an /etc/passwd and an
/// /etc/base-arch naming its architecture, the arm64 one with a config that
/// says arm64; a hand-written OCI index over both, pushed with
/// `skopeo copy --all` as HOST/base:1.
fn push_multi_base(registry: &Registry, work: &Path) -> Base {
    let layout = work.join("base-layout");
    umoci_init(&layout);
    let mut entries = Vec::new();
    let mut images = BTreeMap::new();
    for arch in ARCHES {
        let root = work.join(format!("base-root-{arch}"));
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), BASE_PASSWD).unwrap();
        fs::write(root.join("etc/base-arch"), format!("{arch}\n")).unwrap();
        let image = umoci_new(&layout, arch, &root);
        run(Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--os",
            "linux",
            "--architecture",
            arch,
        ]));
        let (config, _) = skopeo_json(&["--config", &format!("oci:{image}")]);
        assert_eq!(config["architecture"], arch, "umoci made {config}");
        let desc = layout_index(&layout)["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == arch)
            .unwrap()
            .clone();
        let layers = layer_digests(&read_json(&layout_blob(&layout, &desc["digest"])));
        images.insert(arch, (desc["digest"].as_str().unwrap().to_string(), layers));
        entries.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": desc["digest"],
            "size": desc["size"],
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    }))
    .unwrap();
    let digest = kiln::oci::digest::sha256(&index);
    fs::write(layout_blob(&layout, &json!(digest)), &index).unwrap();
    let index_path = layout.join("index.json");
    let mut top = read_json(&index_path);
    top["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": OCI_INDEX,
        "digest": digest,
        "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": "multi"},
    }));
    fs::write(&index_path, serde_json::to_vec(&top).unwrap()).unwrap();
    let reference = format!("{}/base:1", registry.addr);
    skopeo_copy(
        &format!("oci:{}:multi", layout.display()),
        &docker(&reference),
        &["--all"],
    );
    let (served, served_digest) = served_raw(&reference);
    assert_eq!(
        served_digest, digest,
        "the registry serves another index: {served}"
    );
    Base {
        reference,
        digest,
        images,
    }
}

const SPEC: &str = r#"[image]
name = "app"
base = "BASE"
format = "FORMAT"
platforms = ["linux/amd64", "linux/arm64"]

[user]
name = "app"
uid = 10001

[[copy]]
src = "share/"
dest = "/share/"

[[copy]]
src = "dist/${TARGETARCH}/marker"
dest = "/app/marker"

[config]
entrypoint = ["/app/marker"]
env = { TARGET = "${TARGETOS}/${TARGETARCH}" }
labels = { "org.example.platform" = "${TARGETPLATFORM}" }

[policy]
enforce = false
"#;

/// The shared data every platform gets: incompressible, so that an upload
/// is visible in the byte counts.
fn share_bytes() -> Vec<u8> {
    noise_bytes(256 * 1024, 7)
}

fn marker(arch: &str) -> String {
    format!("the {arch} build\n")
}

/// The app's source tree in `dir`: shared data and one marker per platform.
fn app_tree(dir: &Path, base: &str, format: &str) -> PathBuf {
    fs::create_dir_all(dir.join("share")).unwrap();
    fs::write(dir.join("share/data.bin"), share_bytes()).unwrap();
    for arch in ARCHES {
        fs::create_dir_all(dir.join("dist").join(arch)).unwrap();
        fs::write(dir.join("dist").join(arch).join("marker"), marker(arch)).unwrap();
    }
    let spec = dir.join("kiln.toml");
    fs::write(&spec, SPEC.replace("BASE", base).replace("FORMAT", format)).unwrap();
    spec
}

fn docker(reference: &str) -> String {
    format!("docker://{reference}")
}

/// The manifest digest a `--format json` report names.
fn manifest_digest(json: &Value) -> String {
    json["manifest"]["digest"].as_str().unwrap().to_string()
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Layer digests of a manifest.
fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// One platform of `source` (docker://... or oci:DIR) pulled into `work`
/// by `skopeo copy --override-arch`, which checks every blob's digest, then
/// unpacked by umoci; checks what that platform must hold. Returns the
/// pulled manifest.
fn pull_and_check_platform(source: &str, arch: &str, base: &Base, work: &Path) -> Value {
    let pulled = pull_and_unpack(
        source,
        work,
        &["--override-os", "linux", "--override-arch", arch],
    );
    let (config, _) = skopeo_json(&["--config", &pulled.image]);
    assert_eq!(config["architecture"], arch, "{source}: {config}");
    assert_eq!(config["os"], "linux", "{source}: {config}");
    assert_eq!(
        config["config"]["Labels"]["org.example.platform"],
        format!("linux/{arch}"),
        "${{TARGETPLATFORM}} in a label: {config}"
    );
    assert!(
        str_list(&config["config"]["Env"]).contains(&format!("TARGET=linux/{arch}")),
        "${{TARGETOS}}/${{TARGETARCH}} in env: {config}"
    );
    let (manifest, _) = skopeo_json(&["--raw", &pulled.image]);
    let layers = layer_digests(&manifest);
    let base_layers = &base.images[arch].1;
    assert_eq!(
        &layers[..base_layers.len()],
        &base_layers[..],
        "{arch}: the image does not start with the {arch} base's layers"
    );
    assert_eq!(layers.len(), base_layers.len() + 3, "{manifest}");

    let rootfs = pulled.rootfs();
    assert_eq!(
        fs::read_to_string(rootfs.join("app/marker")).unwrap(),
        marker(arch),
        "dist/${{TARGETARCH}}/marker"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/base-arch")).unwrap(),
        format!("{arch}\n"),
        "built on the wrong platform's base"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/passwd")).unwrap(),
        format!("{BASE_PASSWD}app:x:10001:10001::/nonexistent:/sbin/nologin\n")
    );
    assert!(fs::read(rootfs.join("share/data.bin")).unwrap() == share_bytes());
    manifest
}

#[test]
fn multi_platform_build_on_a_multi_platform_base_pushes_a_manifest_list() {
    let Some(fx) = fixture(&["skopeo", "umoci", "docker-registry"]) else {
        return;
    };
    let (w, registry, base) = (fx.work.path(), &fx.registry, &fx.base);
    let spec = app_tree(&w.join("src"), &base.reference, "docker");
    let target = format!("{}/app:1", registry.addr);
    let digest_file = w.join("digest");
    let (json, log) = registry.log_during(|| {
        build_json(
            &spec,
            &w.join("cache"),
            &[
                "--push",
                &target,
                "--tag",
                "latest",
                "--digest-file",
                digest_file.to_str().unwrap(),
            ],
        )
    });
    let index_digest = manifest_digest(&json);
    assert_eq!(json["manifest"]["media_type"], DOCKER_LIST);
    assert_eq!(
        str_list(&json["references"]),
        [
            format!("{target}@{index_digest}"),
            format!("{}/app:latest@{index_digest}", registry.addr)
        ]
    );
    assert_eq!(
        fs::read_to_string(&digest_file).unwrap(),
        format!("{target}@{index_digest}\n")
    );

    // The registry has a Docker manifest list, byte for byte the one kiln
    // reported, with one entry per platform.
    let (list, served) = served_raw(&target);
    assert_eq!(served, index_digest);
    assert_eq!(list["mediaType"], DOCKER_LIST);
    assert_eq!(list["schemaVersion"], 2);
    let entries = list["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{list}");
    let images = json["images"].as_array().unwrap();
    for (i, arch) in ARCHES.iter().enumerate() {
        assert_eq!(
            entries[i]["platform"],
            json!({"architecture": arch, "os": "linux"}),
            "{list}"
        );
        assert_eq!(entries[i]["mediaType"], DOCKER_MANIFEST);
        assert_eq!(entries[i]["digest"], images[i]["manifest"]["digest"]);
        assert_eq!(images[i]["platform"], format!("linux/{arch}"));
    }
    let (latest, _) = served_raw(&format!("{}/app:latest", registry.addr));
    assert_eq!(latest, list);
    // The per-platform manifests are pushed by digest: the tags are the index's.
    let (tags, _) = run_json(Command::new("skopeo").args([
        "list-tags",
        "--tls-verify=false",
        &docker(&format!("{}/app", registry.addr)),
    ]));
    let mut tags = str_list(&tags["Tags"]);
    tags.sort();
    assert_eq!(tags, ["1", "latest"]);

    // Each platform pulls back digest-checked, on its own base, with its own marker.
    let mut manifests = BTreeMap::new();
    for arch in ARCHES {
        let pulled = pull_and_check_platform(&docker(&target), arch, base, &w.join(arch));
        manifests.insert(arch, pulled);
    }

    // The accounts and share/ layers are the same on both platforms: one
    // digest, uploaded once. The marker layers differ, each uploaded once.
    let amd = layer_digests(&manifests["amd64"]);
    let arm = layer_digests(&manifests["arm64"]);
    let b = base.images["amd64"].1.len();
    assert_eq!(amd[b..b + 2], arm[b..b + 2], "the shared layers differ");
    assert_ne!(amd[b + 2], arm[b + 2], "the marker layers are the same");
    for layer in amd[b..].iter().chain(&arm[b + 2..]) {
        assert_eq!(
            uploads_of(&log, Some("app"), layer),
            1,
            "{layer} was not uploaded exactly once"
        );
    }
    // The base layers are mounted from the base's repository, not uploaded.
    for arch in ARCHES {
        for layer in &base.images[arch].1 {
            assert_eq!(
                uploads_of(&log, None, layer),
                0,
                "{arch} base layer uploaded"
            );
            assert_eq!(
                mounts_of(&log, "app", layer),
                1,
                "{arch} base layer not mounted"
            );
        }
    }
    // 3 new layers + 1 marker + 2 configs uploaded, 2 base layers mounted.
    let push = &json["push"];
    assert_eq!(push["uploaded"], 6, "{push}");
    assert_eq!(push["mounted"], 2, "{push}");
    assert_eq!(all_uploads(&log), 6);
    let shared_size = images[0]["layers"][b + 1]["size"].as_u64().unwrap();
    assert!(
        shared_size > 256 * 1024,
        "share/ was compressed: {shared_size}"
    );
    assert!(
        push["uploaded_bytes"].as_u64().unwrap() < 2 * shared_size,
        "share/ counted twice: {push}"
    );
}

/// `kiln build` with SOURCE_DATE_EPOCH set, as CI sets it; the printed digest.
fn build_at(spec: &Path, cache: &Path, epoch: &str, extra: &[&str]) -> String {
    let mut cmd = kiln();
    cmd.env("SOURCE_DATE_EPOCH", epoch)
        .arg("build")
        .arg(spec)
        .arg("--cache-dir")
        .arg(cache)
        .args(extra);
    let line = run(&mut cmd).trim().to_string();
    line.rsplit_once('@').expect("REF@DIGEST").1.to_string()
}

#[test]
fn the_oci_layout_holds_the_index_and_a_rebuild_gives_the_same_digest() {
    let Some(fx) = fixture(&["skopeo", "umoci", "docker-registry"]) else {
        return;
    };
    let (w, registry, base) = (fx.work.path(), &fx.registry, &fx.base);
    let spec = app_tree(&w.join("src"), &base.reference, "docker");
    let target = format!("{}/app:1", registry.addr);
    let out1 = w.join("out1");
    let epoch = "1700000000";
    let digest = build_at(
        &spec,
        &w.join("cache1"),
        epoch,
        &["--oci", out1.to_str().unwrap(), "--push", &target],
    );

    // index.json names one thing: the index, a blob of the layout.
    let top = layout_index(&out1);
    let entries = top["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{top}");
    assert_eq!(entries[0]["mediaType"], DOCKER_LIST);
    assert_eq!(entries[0]["digest"], digest.as_str());
    let (list, raw_digest) = skopeo_json(&["--raw", &format!("oci:{}", out1.display())]);
    assert_eq!(raw_digest, digest);
    assert_eq!(list["mediaType"], DOCKER_LIST);
    let platforms: Vec<&Value> = list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["platform"])
        .collect();
    assert_eq!(
        platforms,
        [
            &json!({"architecture": "amd64", "os": "linux"}),
            &json!({"architecture": "arm64", "os": "linux"})
        ]
    );
    // The layout and the registry hold the same index.
    let (served, _) = served_raw(&target);
    assert_eq!(served, list);
    // Every blob of both platforms is in the layout, digest-checked.
    skopeo_copy(
        &format!("oci:{}", out1.display()),
        &format!("oci:{}:all", w.join("copy-all").display()),
        &["--all"],
    );
    for arch in ARCHES {
        let source = format!("oci:{}", out1.display());
        pull_and_check_platform(&source, arch, base, &w.join(format!("layout-{arch}")));
    }

    // Another checkout (another path, other mtimes), another cache, the
    // platforms given on the command line: the same index, byte for byte.
    let src2 = w.join("elsewhere/checkout");
    copy_tree(&w.join("src"), &src2);
    set_mtimes(&src2, 1_000_000_000);
    let out2 = w.join("out2");
    let again = build_at(
        &src2.join("kiln.toml"),
        &w.join("cache2"),
        epoch,
        &[
            "--oci",
            out2.to_str().unwrap(),
            "--platform",
            "linux/amd64,linux/arm64",
        ],
    );
    assert_eq!(again, digest, "not reproducible");
    assert_eq!(
        fs::read(out2.join("index.json")).unwrap(),
        fs::read(out1.join("index.json")).unwrap()
    );
    // The build time is in the configs: another SOURCE_DATE_EPOCH, another index.
    let later = build_at(
        &src2.join("kiln.toml"),
        &w.join("cache2"),
        "1700000001",
        &["--oci", w.join("out3").to_str().unwrap()],
    );
    assert_ne!(later, digest);
}

#[test]
fn format_oci_gives_an_oci_index() {
    let Some(fx) = fixture(&["skopeo", "umoci", "docker-registry"]) else {
        return;
    };
    let (w, registry, base) = (fx.work.path(), &fx.registry, &fx.base);
    let spec = app_tree(&w.join("src"), &base.reference, "oci");
    let target = format!("{}/app-oci:1", registry.addr);
    let out = w.join("out");
    let json = build_json(
        &spec,
        &w.join("cache"),
        &["--push", &target, "--oci", out.to_str().unwrap()],
    );
    let digest = manifest_digest(&json);
    assert_eq!(json["manifest"]["media_type"], OCI_INDEX);

    let (index, served) = served_raw(&target);
    assert_eq!(served, digest);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    for (entry, arch) in entries.iter().zip(ARCHES) {
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
        assert_eq!(
            entry["platform"],
            json!({"architecture": arch, "os": "linux"})
        );
        let (manifest, _) = served_raw(&format!(
            "{}/app-oci@{}",
            registry.addr,
            entry["digest"].as_str().unwrap()
        ));
        assert_eq!(manifest["mediaType"], OCI_MANIFEST);
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
    }
    for arch in ARCHES {
        pull_and_check_platform(&docker(&target), arch, base, &w.join(arch));
    }
    // The layout: index.json -> the same OCI index.
    let (local, local_digest) = skopeo_json(&["--raw", &format!("oci:{}", out.display())]);
    assert_eq!(local_digest, digest);
    assert_eq!(local, index);
}

#[test]
fn a_docker_archive_takes_one_platform() {
    let Some(fx) = fixture(&["skopeo", "umoci", "podman", "runc", "docker-registry"]) else {
        return;
    };
    let (w, base) = (fx.work.path(), &fx.base);
    let spec = app_tree(&w.join("src"), &base.reference, "docker");
    let cache = w.join("cache");
    let tar = w.join("app.tar");

    let out = kiln_build(&spec, &cache, &["--tar", tar.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("linux/amd64, linux/arm64"),
        "the message names the platforms:\n{stderr}"
    );
    assert!(
        stderr.contains("hint: ") && stderr.contains("--platform"),
        "the hint says to pick one with --platform:\n{stderr}"
    );
    assert!(!tar.exists(), "a failed build wrote {}", tar.display());

    // The index's arm64 image, for comparison.
    let all = build_json(&spec, &cache, &["--oci", w.join("out").to_str().unwrap()]);
    let arm = &all["images"][1];
    assert_eq!(arm["platform"], "linux/arm64");

    let one = build_json(
        &spec,
        &cache,
        &["--tar", tar.to_str().unwrap(), "--platform", "linux/arm64"],
    );
    assert_eq!(one["images"].as_array().unwrap().len(), 1);
    assert_eq!(
        one["manifest"], arm["manifest"],
        "not the index's arm64 image"
    );
    let archive = format!("docker-archive:{}", tar.display());
    let (inspect, _) = run_json(Command::new("skopeo").args(["inspect", &archive]));
    assert_eq!(inspect["Architecture"], "arm64", "{inspect}");
    assert_eq!(inspect["Os"], "linux", "{inspect}");
    let (config, config_digest) = skopeo_json(&["--config", "--raw", &archive]);
    assert_eq!(config_digest, arm["config"]["digest"].as_str().unwrap());
    assert_eq!(
        config["config"]["Labels"]["org.example.platform"],
        "linux/arm64"
    );

    let podman = Podman::new();
    podman.run(&["load", "-i", tar.to_str().unwrap()]);
    let seen = podman.run(&[
        "image",
        "inspect",
        "app:latest",
        "--format",
        "{{.Architecture}} {{.Os}} {{.Id}}",
    ]);
    let config_hex = config_digest.trim_start_matches("sha256:");
    assert_eq!(seen.trim(), format!("arm64 linux {config_hex}"));
}

/// One CI job: its own checkout and cache, one platform, pushed to `target`
/// with a digest file; returns the job's JSON and its digest file.
fn job(w: &Path, base: &Base, arch: &str, target: &str) -> (Value, PathBuf) {
    let name = target.rsplit('/').next().unwrap().replace(':', "-");
    let dir = w.join(format!("job-{name}"));
    let spec = app_tree(&dir.join("src"), &base.reference, "docker");
    let digest_file = dir.join(format!("{arch}.digest"));
    let json = build_json(
        &spec,
        &dir.join("cache"),
        &[
            "--platform",
            &format!("linux/{arch}"),
            "--push",
            target,
            "--digest-file",
            digest_file.to_str().unwrap(),
        ],
    );
    assert_eq!(json["images"].as_array().unwrap().len(), 1);
    (json, digest_file)
}

fn kiln_index(w: &Path, args: &[&str]) -> Output {
    kiln()
        .arg("index")
        .args(args)
        .arg("--cache-dir")
        .arg(w.join("index-cache"))
        .output()
        .unwrap()
}

/// The last stdout line of a `kiln index` that must succeed.
fn index_ok(w: &Path, args: &[&str]) -> String {
    let out = kiln_index(w, args);
    check(&kiln(), &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().unwrap().to_string()
}

#[test]
fn kiln_index_joins_images_that_separate_jobs_pushed() {
    let Some(fx) = fixture(&["skopeo", "umoci", "docker-registry"]) else {
        return;
    };
    let (w, registry, base) = (fx.work.path(), &fx.registry, &fx.base);
    let repo = format!("{}/app", registry.addr);
    let (amd, amd_file) = job(w, base, "amd64", &format!("{repo}:amd64"));
    let (arm, arm_file) = job(w, base, "arm64", &format!("{repo}:arm64"));
    let amd_digest = manifest_digest(&amd);
    let arm_digest = manifest_digest(&arm);
    assert_eq!(
        fs::read_to_string(&arm_file).unwrap(),
        format!("{repo}:arm64@{arm_digest}\n")
    );

    let index_file = w.join("index.digest");
    let printed = index_ok(
        w,
        &[
            &format!("{repo}:1"),
            "--from-digest-files",
            amd_file.to_str().unwrap(),
            arm_file.to_str().unwrap(),
            "--tag",
            "latest",
            "--digest-file",
            index_file.to_str().unwrap(),
        ],
    );
    let (reference, digest) = printed.rsplit_once('@').expect("REF@DIGEST");
    assert_eq!(reference, format!("{repo}:1"));
    assert_eq!(
        fs::read_to_string(&index_file).unwrap(),
        format!("{printed}\n")
    );
    let (list, served) = served_raw(reference);
    assert_eq!(served, digest);
    assert_eq!(list["mediaType"], DOCKER_LIST);
    assert_eq!(
        list["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["platform"].clone(), m["digest"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [
            (
                json!({"architecture": "amd64", "os": "linux"}),
                amd_digest.as_str()
            ),
            (
                json!({"architecture": "arm64", "os": "linux"}),
                arm_digest.as_str()
            ),
        ]
    );
    let (latest, _) = served_raw(&format!("{repo}:latest"));
    assert_eq!(latest, list);
    for arch in ARCHES {
        pull_and_check_platform(&docker(reference), arch, base, &w.join(arch));
    }

    // The other order, by digest: the same index.
    let before = registry_log(registry).len();
    let out = kiln_index(
        w,
        &[
            &format!("{repo}:2"),
            "--add",
            &format!("{repo}@{arm_digest}"),
            "--add",
            &format!("{repo}@{amd_digest}"),
            "--format",
            "json",
        ],
    );
    check(&kiln(), &out);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["digest"], digest);
    assert_eq!(json["media_type"], DOCKER_LIST);
    assert_eq!(json["references"], json!([format!("{repo}:2@{digest}")]));
    assert_eq!(
        json["manifests"],
        json!([
            {"platform": "linux/amd64", "digest": amd_digest},
            {"platform": "linux/arm64", "digest": arm_digest},
        ])
    );
    // A rerun (a retried CI job) changes nothing and uploads nothing.
    let rerun = index_ok(
        w,
        &[
            &format!("{repo}:1"),
            "--from-digest-files",
            arm_file.to_str().unwrap(),
            amd_file.to_str().unwrap(),
        ],
    );
    assert_eq!(rerun, printed);
    let (again, _) = served_raw(reference);
    assert_eq!(again, list);
    assert_eq!(all_uploads(&registry_log(registry)[before..]), 0);

    // One build for both platforms makes the same index as the two jobs.
    let spec = app_tree(&w.join("together"), &base.reference, "docker");
    let both = build_json(
        &spec,
        &w.join("together-cache"),
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--push",
            &format!("{repo}:both"),
        ],
    );
    assert_eq!(both["manifest"]["digest"], digest);
}

#[test]
fn kiln_index_mounts_an_image_from_another_repository() {
    let Some(fx) = fixture(&["skopeo", "umoci", "docker-registry"]) else {
        return;
    };
    let (w, registry, base) = (fx.work.path(), &fx.registry, &fx.base);
    let repo = format!("{}/app", registry.addr);
    let (amd, _) = job(w, base, "amd64", &format!("{repo}:amd64"));
    let (arm, _) = job(w, base, "arm64", &format!("{}/arm-team:1", registry.addr));
    let amd_digest = manifest_digest(&amd);
    let arm_digest = manifest_digest(&arm);
    // Before: the app repository has no arm64 image.
    assert!(
        !is_served(&format!("{repo}@{arm_digest}")),
        "the arm64 image is already in app"
    );

    let (printed, log) = registry.log_during(|| {
        index_ok(
            w,
            &[
                &format!("{repo}:1"),
                "--add",
                &format!("{repo}@{amd_digest}"),
                "--add",
                &format!("{}/arm-team@{arm_digest}", registry.addr),
            ],
        )
    });
    let (reference, digest) = printed.rsplit_once('@').unwrap();
    let (list, served) = served_raw(reference);
    assert_eq!(served, digest);
    assert_eq!(list["manifests"][1]["digest"], arm_digest);
    // The arm64 image's own blobs (its base layer, marker layer and config)
    // were mounted into app, never uploaded.
    let arm_image = &arm["images"][0];
    let only_arm: Vec<&str> = arm_image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .chain([arm_image["config"]["digest"].as_str().unwrap()])
        .filter(|d| {
            !amd["images"][0]["layers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["digest"] == *d)
        })
        .collect();
    assert_eq!(only_arm.len(), 3, "{arm_image}");
    for d in &only_arm {
        assert_eq!(mounts_of(&log, "app", d), 1, "{d} was not mounted into app");
    }
    assert_eq!(all_uploads(&log), 0, "kiln index uploaded blobs");
    // And the app repository serves all of it, digest-checked.
    pull_and_check_platform(&docker(reference), "arm64", base, &w.join("arm64"));
}

#[test]
fn kiln_index_refuses_two_of_a_platform_an_index_and_another_registry() {
    let Some(fx) = fixture(&["skopeo", "umoci", "docker-registry"]) else {
        return;
    };
    let (w, registry, base) = (fx.work.path(), &fx.registry, &fx.base);
    let repo = format!("{}/app", registry.addr);
    let (amd, _) = job(w, base, "amd64", &format!("{repo}:amd64"));
    let amd_digest = manifest_digest(&amd);
    let amd_ref = format!("{repo}@{amd_digest}");
    let base_repo = format!("{}/base", registry.addr);
    // The umoci-made amd64 base: another image for the same platform.
    let other_amd = format!("{base_repo}@{}", base.images["amd64"].0);
    let arm_base = format!("{base_repo}@{}", base.images["arm64"].0);
    let second = Registry::start();
    let elsewhere = format!("{}/app:arm64", second.addr);
    skopeo_copy(&docker(&arm_base), &docker(&elsewhere), &[]);
    let (_, elsewhere_digest) = served_raw(&elsewhere);

    let cases: [(&str, Vec<String>, Vec<String>); 3] = [
        (
            "two amd64 images",
            vec![amd_ref.clone(), other_amd.clone()],
            vec![
                "is linux/amd64, and so is".into(),
                "one image per platform".into(),
            ],
        ),
        (
            "an index",
            vec![amd_ref.clone(), format!("{base_repo}@{}", base.digest)],
            vec![
                format!("{base_repo}@{}", base.digest),
                "is already an index".into(),
            ],
        ),
        (
            "another registry",
            vec![
                amd_ref.clone(),
                format!("{}/app@{elsewhere_digest}", second.addr),
            ],
            vec![
                format!("is on {}", second.addr),
                format!("the index goes to {}", registry.addr),
            ],
        ),
    ];
    for (what, adds, needles) in cases {
        let bad = format!("{repo}:bad");
        let mut args = vec![bad.as_str()];
        for a in &adds {
            args.extend(["--add", a.as_str()]);
        }
        let out = kiln_index(w, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}:\n{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{what}:\n{stderr}");
        assert!(stderr.contains("hint: "), "{what}:\n{stderr}");
        for n in &needles {
            assert!(
                stderr.contains(n.as_str()),
                "{what}: expected {n:?} in:\n{stderr}"
            );
        }
        assert!(out.stdout.is_empty(), "{what}: printed a reference");
        // Nothing was tagged.
        assert!(!is_served(&bad), "{what}: {bad} exists");
    }
}

/// A spec that names no variant keeps the base's: an arm64 base that says
/// v8 gives an image that says v8, as the platform matcher expects.
#[test]
fn the_base_variant_is_kept_when_the_spec_names_none() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let base = crate::common::handmade::layout(
        &w.join("base"),
        "arm",
        &[crate::common::handmade::dir("etc")],
        serde_json::json!({ "architecture": "arm64", "variant": "v8" }),
        serde_json::json!({}),
    );
    let spec = write_spec(
        &w.join("app"),
        &format!(
            "[image]\nname = \"v\"\nbase = \"{base}\"\nplatform = \"linux/arm64\"\n[policy]\nenforce = false\n"
        ),
    );
    let out = w.join("out");
    let o = kiln_build(&spec, &w.join("cache"), &["--oci", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let index = read_json(&out.join("index.json"));
    let manifest = read_json(&layout_blob(&out, &index["manifests"][0]["digest"]));
    let config = read_json(&layout_blob(&out, &manifest["config"]["digest"]));
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
}
