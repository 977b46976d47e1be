//! The on-disk cache: a content-addressed blob store laid out like an OCI
//! layout's (`blobs/sha256/<hex>`), so base images read from it exactly as
//! from a layout. Blobs enter only whole and verified (temp file + rename),
//! and temp files a killed run left are collected when the cache opens.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::layer::write::LayerBlob;
use crate::oci::{self, Descriptor};

pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).ctx("create the cache directory", &blobs)?;
        // What a killed run left: temp blobs, entries, files copied out of images, staging.
        for sub in [
            "",
            "blobs/sha256",
            "layers",
            "extract/files",
            "extract/picks",
            "staging",
        ] {
            crate::tmp::collect(&dir.join(sub));
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
    pub fn default_dir() -> PathBuf {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        match (var("XDG_CACHE_HOME"), var("HOME")) {
            (Some(x), _) => x.join("kiln"),
            (None, Some(h)) => h.join(".cache/kiln"),
            (None, None) => std::env::temp_dir().join("kiln-cache"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        oci::sha256_hex(digest).map(|hex| self.dir.join("blobs/sha256").join(hex))
    }

    /// Present with the right size (digests are checked when it is read).
    pub fn has(&self, desc: &Descriptor) -> bool {
        self.blob_path(&desc.digest)
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() == desc.size)
    }

    /// The finished blob for a layer whose inputs hash to `key`, if cached.
    /// Its digest is checked by the caller before use.
    pub fn layer(&self, key: &str) -> Option<LayerBlob> {
        let text = std::fs::read(self.dir.join("layers").join(key)).ok()?;
        let entry: LayerEntry = serde_json::from_slice(&text).ok()?;
        let path = self.blob_path(&entry.digest)?;
        let len = std::fs::metadata(&path).ok()?.len();
        (len == entry.size).then_some(LayerBlob {
            path,
            digest: entry.digest,
            size: entry.size,
            diff_id: entry.diff_id,
            diff_size: entry.diff_size,
            verified: false,
            source: crate::layer::write::Source::Cache,
            mount_from: None,
        })
    }

    /// Remember a freshly written layer: its blob (hard-linked where possible)
    /// and the entry that maps `key` to it, each put in place by a rename.
    pub fn store_layer(&self, key: &str, blob: &LayerBlob) -> Result<()> {
        let dest = self
            .blob_path(&blob.digest)
            .expect("kiln computes sha256 digests");
        // Always replace: a blob already there may be a damaged copy.
        let blobs = self.dir.join("blobs/sha256");
        let tmp = crate::tmp::TempFile::copy_of(&blob.path, &blobs, "layer")?;
        tmp.persist(&dest)
            .ctx("store a layer in the cache", &dest)?;
        let dir = self.dir.join("layers");
        std::fs::create_dir_all(&dir).ctx("create", &dir)?;
        let entry = LayerEntry {
            digest: blob.digest.clone(),
            size: blob.size,
            diff_id: blob.diff_id.clone(),
            diff_size: blob.diff_size,
        };
        crate::tmp::write_atomic(
            &dir.join(key),
            &serde_json::to_vec(&entry).expect("entry serializes"),
        )
    }

    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self
            .blob_path(digest)
            .expect("kiln computes sha256 digests");
        crate::tmp::write_atomic(&path, bytes)
    }
}

#[derive(Serialize, Deserialize)]
struct LayerEntry {
    digest: String,
    size: u64,
    diff_id: String,
    diff_size: u64,
}
