//! `kiln build --format json`: what CI reads, checked against the image
//! itself (the layout's manifest) and against the registry (skopeo).

use std::process::Command;

use crate::common::{Registry, have, kiln, layout_manifest, run, web_fixture};
use serde_json::Value;

fn build_json(args: &[&str]) -> Value {
    let stdout = run(kiln().arg("build").args(args).args(["--format", "json"]));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

#[test]
fn json_matches_the_layout_written() {
    let dir = web_fixture();
    let spec = dir.path().join("kiln.toml");
    let out = dir.path().join("out");
    let tar = dir.path().join("web.tar");
    let cache = dir.path().join("cache");
    let json = build_json(&[
        spec.to_str().unwrap(),
        "--oci",
        out.to_str().unwrap(),
        "--tar",
        tar.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    let manifest = layout_manifest(&out);
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(json["manifest"]["digest"], index["manifests"][0]["digest"]);
    assert_eq!(json["manifest"]["size"], index["manifests"][0]["size"]);
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["manifest"], json["manifest"]);
    assert_eq!(images[0]["platform"], "linux/amd64");
    assert_eq!(images[0]["config"]["digest"], manifest["config"]["digest"]);
    assert_eq!(images[0]["config"]["size"], manifest["config"]["size"]);
    let layers = images[0]["layers"].as_array().unwrap();
    let want = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), want.len());
    for (got, want) in layers.iter().zip(want) {
        assert_eq!(got["digest"], want["digest"]);
        assert_eq!(got["size"], want["size"]);
        assert_eq!(got["media_type"], want["mediaType"]);
        assert_eq!(got["from_base"], false);
        assert!(got["diff_size"].as_u64().unwrap() >= 1024);
    }
    assert_eq!(
        json["references"][0].as_str().unwrap(),
        format!(
            "web:latest@{}",
            json["manifest"]["digest"].as_str().unwrap()
        )
    );
    assert_eq!(json["oci"].as_str().unwrap(), out.to_str().unwrap());
    assert_eq!(json["tar"].as_str().unwrap(), tar.to_str().unwrap());
    assert!(json["push"].is_null());
    let t = &json["timings_ms"];
    let total = t["total"].as_u64().unwrap();
    for part in ["resolve", "layers", "assemble", "push"] {
        assert!(t[part].as_u64().unwrap() <= total, "{t}");
    }
    assert!(json["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn json_counts_what_a_push_uploaded_and_skipped() {
    if !have(&["docker-registry", "skopeo"]) {
        return;
    }
    let registry = Registry::start();
    let dir = web_fixture();
    let spec = dir.path().join("kiln.toml");
    let cache = dir.path().join("cache");
    let target = format!("{}/web:1", registry.addr);
    let args = [
        spec.to_str().unwrap(),
        "--push",
        &target,
        "--tag",
        "stable",
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let first = build_json(&args);
    let digest = first["manifest"]["digest"].as_str().unwrap();
    let refs: Vec<&str> = first["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            format!("{}/web:1@{digest}", registry.addr),
            format!("{}/web:stable@{digest}", registry.addr)
        ]
    );
    let push = &first["push"];
    assert_eq!(push["reference"], refs[0]);
    let image = &first["images"][0];
    let layers = image["layers"].as_array().unwrap();
    let blob_bytes: u64 = layers
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum::<u64>()
        + image["config"]["size"].as_u64().unwrap();
    assert_eq!(push["uploaded"], layers.len() + 1, "{push}");
    assert_eq!(push["uploaded_bytes"], blob_bytes, "{push}");
    assert_eq!(push["skipped"], 0, "{push}");

    // The registry serves the digest the JSON names, under both tags.
    for tag in ["1", "stable"] {
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{}/web:{tag}", registry.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
    }

    // Pushed again unchanged: nothing uploaded, every blob skipped.
    let again = build_json(&args);
    assert_eq!(again["manifest"]["digest"], first["manifest"]["digest"]);
    let push = &again["push"];
    assert_eq!(push["uploaded"], 0, "{push}");
    assert_eq!(push["uploaded_bytes"], 0, "{push}");
    assert_eq!(push["skipped"], layers.len() + 1, "{push}");
    assert_eq!(push["skipped_bytes"], blob_bytes, "{push}");
}
