//! Read a docker-archive (`docker save`, `podman save`, `kiln build --tar`)
//! in place: one pass over the tar notes where each member starts, and the
//! config and layers are then read straight from those offsets.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use super::{Bytes, LayerBlob, Opened, image_error};
use crate::error::{IoContext, Result};
use crate::oci::digest;

/// Largest manifest.json or config read into memory.
const MAX_JSON: u64 = 16 << 20;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub fn open(path: &Path, text: &str) -> Result<Opened> {
    let members = scan(path, text)?;
    let find = |name: &str| {
        let name = name.trim_start_matches("./");
        members.get(name).copied().ok_or_else(|| {
            image_error(text, format!("the archive has no member `{name}`"))
                .with_hint("is this a docker-archive (`docker save`, `podman save`)?")
        })
    };
    let read_small = |name: &str| -> Result<Vec<u8>> {
        let (offset, len) = find(name)?;
        if len > MAX_JSON {
            return Err(image_error(text, format!("`{name}` is too large for JSON")));
        }
        let mut bytes = Vec::new();
        Bytes::Section {
            file: path.to_path_buf(),
            offset,
            len,
        }
        .open()
        .and_then(|mut r| r.read_to_end(&mut bytes))
        .ctx("read", path)?;
        Ok(bytes)
    };
    let entries: Vec<Entry> = serde_json::from_slice(&read_small("manifest.json")?)
        .map_err(|e| image_error(text, format!("manifest.json is not valid: {e}")))?;
    let entry = match entries.as_slice() {
        [one] => one,
        [] => return Err(image_error(text, "manifest.json lists no image")),
        [first, ..] => {
            tracing::warn!(
                "{text} holds {} images; showing the first ({})",
                entries.len(),
                first.repo_tags.as_deref().unwrap_or_default().join(", ")
            );
            first
        }
    };
    let config_bytes = read_small(&entry.config)?;
    let config = serde_json::from_slice(&config_bytes)
        .map_err(|e| image_error(text, format!("config `{}` is not valid: {e}", entry.config)))?;
    let layers = entry
        .layers
        .iter()
        .map(|name| {
            let (offset, len) = find(name)?;
            Ok(LayerBlob {
                digest: stored_digest(name),
                media_type: None,
                size: len,
                at: Bytes::Section {
                    file: path.to_path_buf(),
                    offset,
                    len,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Opened {
        kind: "docker-archive",
        index: None,
        manifest: None,
        config_digest: digest::sha256(&config_bytes),
        config,
        layers,
    })
}

/// Newer `docker save` names members `blobs/sha256/<hex>`: that is their digest.
fn stored_digest(name: &str) -> Option<String> {
    let hex = name
        .trim_start_matches("./")
        .strip_prefix("blobs/sha256/")?;
    let digest = format!("sha256:{hex}");
    crate::oci::sha256_hex(&digest).is_some().then_some(digest)
}

/// Every regular member's data offset and length; symlinked members (older
/// `docker save` links repeated layers) point at their target's data.
fn scan(path: &Path, text: &str) -> Result<BTreeMap<String, (u64, u64)>> {
    // A missing file is a wrong target, like a missing layout: name it so.
    let file = File::open(path).map_err(|e| {
        let err = image_error(text, format!("cannot open `{}`: {e}", path.display()));
        match e.kind() {
            std::io::ErrorKind::NotFound => err.with_hint(
                "tar: names a docker-archive file, e.g. from `podman save -o FILE IMAGE`",
            ),
            _ => err,
        }
    })?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut files = BTreeMap::new();
    let mut links = Vec::new();
    let bad = |e: std::io::Error| image_error(text, format!("not a readable tar: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                files.insert(name, (entry.raw_file_position(), entry.size()));
            }
            kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                if let Some(target) = entry.link_name_bytes() {
                    let target = String::from_utf8_lossy(&target).into_owned();
                    // A hard link names its target from the archive's root.
                    let dir = match kind {
                        tar::EntryType::Link => "",
                        _ => name.rsplit_once('/').map_or("", |(d, _)| d),
                    };
                    let joined = crate::image::base::resolve_dots(&format!("/{dir}/{target}"));
                    links.push((name, joined.trim_start_matches('/').to_string()));
                }
            }
            _ => {}
        }
    }
    for (name, target) in links {
        if let Some(&at) = files.get(&target) {
            files.insert(name, at);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_archive_names_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nothing.tar");
        let err = open(&path, "tar:nothing.tar").err().expect("no file");
        assert_eq!(err.exit_code(), crate::error::EXIT_BAD_INPUT);
        assert!(err.to_string().contains("tar:nothing.tar"), "{err}");
        assert!(err.hint().is_some_and(|h| h.contains("podman save")));
    }
}
