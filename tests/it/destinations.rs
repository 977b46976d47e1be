//! `--push` given several times: two repositories on one docker-registry
//! and one on another. The registries' logs say what was uploaded and
//! mounted where; skopeo reads back what each destination serves.

use std::fs;
use std::path::Path;

use crate::common::*;
use serde_json::Value;

const SPEC: &str = r#"[image]
name = "app"

[[copy]]
src = "data/"
dest = "/data/"

[policy]
enforce = false
"#;

const TOOLS: &[&str] = &["skopeo", "docker-registry"];

fn project(dir: &Path) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::write(dir.join("data/a.bin"), noise_bytes(1 << 20, 7)).unwrap();
    fs::write(dir.join("kiln.toml"), SPEC).unwrap();
    dir.join("kiln.toml")
}

/// The image's layer digests and its config's.
fn blobs(json: &Value) -> Vec<String> {
    let image = &json["images"][0];
    let mut all: Vec<String> = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    all.push(image["config"]["digest"].as_str().unwrap().to_string());
    all
}

/// Requests that would change a registry: any PUT or POST.
fn writes(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.contains("\"PUT ") || l.contains("\"POST "))
        .collect()
}

#[test]
fn each_destination_gets_the_image_blobs_go_up_once_per_registry() {
    let Some((work, one)) = with_registry(TOOLS) else {
        return;
    };
    let two = Registry::start();
    let w = work.path();
    let spec = project(&w.join("src"));
    let digest_file = w.join("digest");
    let dests = [
        format!("{}/app-a:1", one.addr),
        format!("{}/app-b:1", one.addr),
        format!("{}/app:1", two.addr),
    ];
    let json = build_json(
        &spec,
        &w.join("cache"),
        &[
            "--push",
            &dests[0],
            "--push",
            &dests[1],
            "--push",
            &dests[2],
            "--tag",
            "stable",
            "--digest-file",
            digest_file.to_str().unwrap(),
        ],
    );
    let digest = json["manifest"]["digest"].as_str().unwrap().to_string();

    // Every destination serves the same manifest, under both tags.
    for d in &dests {
        let (_, served) = served_raw(d);
        assert_eq!(served, digest, "{d}");
        let stable = format!("{}:stable", d.rsplit_once(':').unwrap().0);
        let (_, served) = served_raw(&stable);
        assert_eq!(served, digest, "{stable}");
    }
    let references: Vec<&str> = json["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(references.len(), 6, "{references:?}");
    assert_eq!(
        json["push"]["destinations"],
        serde_json::json!(
            dests
                .iter()
                .map(|d| format!("{d}@{digest}"))
                .collect::<Vec<_>>()
        )
    );
    // The digest file: one REF@DIGEST line per destination, in --push order.
    let lines: Vec<String> = dests.iter().map(|d| format!("{d}@{digest}")).collect();
    assert_eq!(
        fs::read_to_string(&digest_file).unwrap(),
        format!("{}\n", lines.join("\n"))
    );

    // Each blob uploaded once per registry; the second repository mounts it.
    let (log_one, log_two) = (registry_log(&one), registry_log(&two));
    for b in blobs(&json) {
        assert_eq!(
            uploads_of(&log_one, None, &b),
            1,
            "{b} on the first registry"
        );
        assert_eq!(uploads_of(&log_one, Some("app-a"), &b), 1, "{b}");
        assert_eq!(
            mounts_of(&log_one, "app-b", &b),
            1,
            "{b} mounted into app-b"
        );
        assert_eq!(
            uploads_of(&log_two, Some("app"), &b),
            1,
            "{b} on the second registry"
        );
    }
    assert_eq!(all_uploads(&log_one), blobs(&json).len());
    assert_eq!(all_uploads(&log_two), blobs(&json).len());
}

#[test]
fn a_bad_tag_or_destination_is_refused_before_anything_is_pushed() {
    let Some((work, one)) = with_registry(TOOLS) else {
        return;
    };
    let two = Registry::start();
    let w = work.path();
    let spec = project(&w.join("src"));
    let first = format!("{}/app:1", one.addr);
    let bad_second = [
        format!("{}/App:1", two.addr),
        format!("{}/app:1@sha256:{}", two.addr, "a".repeat(64)),
    ];
    let cases: Vec<Vec<String>> = vec![
        vec![
            "--push".into(),
            first.clone(),
            "--tag".into(),
            "bad/tag:1".into(),
        ],
        vec![
            "--push".into(),
            first.clone(),
            "--push".into(),
            bad_second[0].clone(),
        ],
        vec![
            "--push".into(),
            first.clone(),
            "--push".into(),
            bad_second[1].clone(),
        ],
    ];
    let cache = w.join("cache");
    for case in cases {
        let mut args: Vec<&str> = vec!["--cache-dir", cache.to_str().unwrap()];
        args.extend(case.iter().map(String::as_str));
        let stderr = build_refused(&spec, &args);
        assert!(stderr.contains("error"), "{case:?}: {stderr}");
        assert!(writes(&registry_log(&one)).is_empty(), "{case:?}: {stderr}");
        assert!(writes(&registry_log(&two)).is_empty(), "{case:?}: {stderr}");
    }
    assert!(!is_served(&first));
}

fn platform_spec(dir: &Path, platforms: &str) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::write(dir.join("data/a.bin"), noise_bytes(256 << 10, 11)).unwrap();
    let spec = format!(
        "[image]\nname = \"app\"\n{platforms}\n[[copy]]\nsrc = \"data/\"\ndest = \"/data/\"\n[policy]\nenforce = false\n"
    );
    write_spec(dir, &spec)
}

/// A multi-platform build pushed to two registries: both serve the same
/// index, and each serves every platform's manifest and blobs.
#[test]
fn an_index_goes_whole_to_every_destination() {
    let Some((work, one)) = with_registry(TOOLS) else {
        return;
    };
    let two = Registry::start();
    let w = work.path();
    let spec = platform_spec(
        &w.join("src"),
        "platforms = [\"linux/amd64\", \"linux/arm64\"]",
    );
    let dests = [
        format!("{}/multi:1", one.addr),
        format!("{}/multi:1", two.addr),
    ];
    let json = build_json(
        &spec,
        &w.join("cache"),
        &["--push", &dests[0], "--push", &dests[1], "--tag", "latest"],
    );
    let index = json["index"]["digest"]
        .as_str()
        .or_else(|| json["manifest"]["digest"].as_str())
        .unwrap()
        .to_string();
    for d in &dests {
        let (raw, served) = served_raw(d);
        assert_eq!(served, index, "{d}");
        let manifests = raw["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 2, "{raw}");
        // Each platform's image copies whole (skopeo checks every digest).
        for m in manifests {
            let by_digest = format!(
                "{}@{}",
                d.rsplit_once(':').unwrap().0,
                m["digest"].as_str().unwrap()
            );
            let copy = w.join(format!(
                "copy-{}",
                served_raw(&by_digest).1.replace(':', "-")
            ));
            skopeo_copy(
                &format!("docker://{by_digest}"),
                &format!("dir:{}", copy.display()),
                &["--src-tls-verify=false"],
            );
        }
        let latest = format!("{}:latest", d.rsplit_once(':').unwrap().0);
        assert_eq!(served_raw(&latest).1, index, "{latest}");
    }
}

/// One runner per platform pushes to two registries; `kiln index` takes
/// from each multi-line digest file the line of its own registry (its own
/// repository first), and asks the other registry nothing.
#[test]
fn kiln_index_takes_its_own_registrys_lines_from_digest_files() {
    let Some((work, one)) = with_registry(TOOLS) else {
        return;
    };
    let two = Registry::start();
    let w = work.path();
    let mut files = Vec::new();
    for arch in ["amd64", "arm64"] {
        let spec = platform_spec(&w.join(arch), &format!("platform = \"linux/{arch}\""));
        let file = w.join(format!("digest-{arch}"));
        let out = kiln_build(
            &spec,
            &w.join("cache"),
            &[
                "--push",
                &format!("{}/app:{arch}", one.addr),
                "--push",
                &format!("{}/app:{arch}", two.addr),
                "--digest-file",
                file.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(fs::read_to_string(&file).unwrap().lines().count(), 2);
        files.push(file);
    }
    for repo in ["app", "other"] {
        let target = format!("{}/{repo}:multi", two.addr);
        let ((out, lines_two), lines_one) = one.log_during(|| {
            two.log_during(|| {
                kiln()
                    .args(["index", &target, "--from-digest-files"])
                    .args(&files)
                    .output()
                    .unwrap()
            })
        });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{repo}: {stderr}");
        assert!(
            lines_one.is_empty(),
            "{repo}: the other registry was asked: {lines_one:#?}"
        );
        let (raw, _) = served_raw(&target);
        assert_eq!(raw["manifests"].as_array().unwrap().len(), 2, "{raw}");
        if repo == "other" {
            // Taken from app on the same registry: mounted, not uploaded.
            assert_eq!(all_uploads(&lines_two), 0, "{lines_two:#?}");
        }
    }
    // Both runners' files in one: still one line per image, none dropped.
    let all = w.join("digests");
    let text: String = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    fs::write(&all, text).unwrap();
    let target = format!("{}/app:combined", two.addr);
    let out = kiln()
        .args(["index", &target, "--from-digest-files"])
        .arg(&all)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        served_raw(&target).0["manifests"].as_array().unwrap().len(),
        2
    );
}

/// The shared layer cache lives on one registry and the image goes to two:
/// a rebuild on a fresh machine takes its layers from the cache repository,
/// mounts them on that registry and carries them over to the other.
#[test]
fn a_cache_repo_on_one_registry_serves_pushes_to_another() {
    let Some((work, one)) = with_registry(TOOLS) else {
        return;
    };
    let two = Registry::start();
    let w = work.path();
    let spec = project(&w.join("src"));
    let cache_repo = format!("{}/cache", one.addr);
    let dests = [format!("{}/app:1", one.addr), format!("{}/app:1", two.addr)];
    let args = |n: &str| {
        vec![
            "--cache-repo".to_string(),
            cache_repo.clone(),
            "--push".into(),
            dests[0].clone(),
            "--push".into(),
            format!("{}/app:{n}", two.addr),
        ]
    };
    let first = args("1");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let json = build_json(&spec, &w.join("cache-a"), &first);
    let digest = json["manifest"]["digest"].as_str().unwrap().to_string();

    // A fresh machine: an empty local cache, the same inputs.
    let second = args("2");
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let json = build_json(&spec, &w.join("cache-b"), &second);
    assert_eq!(json["manifest"]["digest"].as_str().unwrap(), digest);
    let layers = json["images"][0]["layers"].as_array().unwrap();
    assert!(
        layers.iter().any(|l| l["source"] == "cache-repo"),
        "no layer came from the cache repository: {json:#}"
    );
    for d in [&dests[0], &dests[1], &format!("{}/app:2", two.addr)] {
        assert_eq!(served_raw(d).1, digest, "{d}");
        let copy = w.join(format!("copy-{}", d.replace(['/', ':'], "-")));
        skopeo_copy(
            &format!("docker://{d}"),
            &format!("dir:{}", copy.display()),
            &["--src-tls-verify=false"],
        );
    }
}
