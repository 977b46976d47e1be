//! OCI image layouts written byte by byte, for images no builder would
//! make: control characters in every string, odd /etc/passwd lines. Needs
//! no tool, so the tests that use it always run.

use std::fs;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One tar entry: a path (no leading `/`), what it is, and uid:gid.
pub struct Entry<'a> {
    pub path: &'a str,
    pub kind: Kind<'a>,
    pub uid: u64,
    pub gid: u64,
}

pub enum Kind<'a> {
    Dir,
    File(&'a [u8], u32),
    Link(&'a str),
}

pub fn dir(path: &str) -> Entry<'_> {
    Entry {
        path,
        kind: Kind::Dir,
        uid: 0,
        gid: 0,
    }
}

pub fn file<'a>(path: &'a str, content: &'a [u8]) -> Entry<'a> {
    Entry {
        path,
        kind: Kind::File(content, 0o644),
        uid: 0,
        gid: 0,
    }
}

pub fn link<'a>(path: &'a str, target: &'a str) -> Entry<'a> {
    Entry {
        path,
        kind: Kind::Link(target),
        uid: 0,
        gid: 0,
    }
}

/// A layout in `dir` holding one image tagged `tag`: one gzip layer of
/// `entries`, and `config` (its `config` object, `history`, anything else)
/// completed with os, architecture and rootfs. `annotations` go on the
/// manifest. Returns `oci:DIR:TAG`.
pub fn layout(
    dir: &Path,
    tag: &str,
    entries: &[Entry],
    config: Value,
    annotations: Value,
) -> String {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let tar = tar_of(entries);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let layer = gz.finish().unwrap();

    let mut config = config;
    let obj = config.as_object_mut().expect("config is an object");
    obj.entry("os").or_insert(json!("linux"));
    obj.entry("architecture").or_insert(json!(host_arch()));
    obj.insert(
        "rootfs".into(),
        json!({ "type": "layers", "diff_ids": [format!("sha256:{}", hex(&tar))] }),
    );
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
        "annotations": annotations,
    }))
    .unwrap();
    for blob in [&layer, &config, &manifest] {
        fs::write(dir.join("blobs/sha256").join(hex(blob)), blob).unwrap();
    }
    let mut top = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
    top["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    let index = json!({ "schemaVersion": 2, "manifests": [top] });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    format!("oci:{}:{tag}", dir.display())
}

fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(0);
        let data: &[u8] = match e.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                &[]
            }
            Kind::File(content, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(mode);
                content
            }
            Kind::Link(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name(target).unwrap();
                &[]
            }
        };
        h.set_size(data.len() as u64);
        b.append_data(&mut h, e.path, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn desc(media_type: &str, bytes: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": format!("sha256:{}", hex(bytes)), "size": bytes.len() })
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// This machine's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
