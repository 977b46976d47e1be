//! `--push` given several times: two repositories on one docker-registry
//! and one on another. The registries' logs say what was uploaded and
//! mounted where; skopeo reads back what each destination serves.

mod common;

use std::fs;
use std::path::Path;

use common::*;
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
