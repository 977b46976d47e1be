//! kiln's cache directory: a blob store (so a pulled base reads from it
//! exactly as from a layout), the layer records of `layer::local`, the
//! files `[[copy]] image` takes out of images, and an index of each base
//! read (`base-index/`, see `image::index`). Temp files a killed run left
//! are collected when it opens.

use std::path::{Path, PathBuf};

use super::BlobStore;
use crate::error::Result;
use crate::oci::Descriptor;

pub struct Cache {
    store: BlobStore,
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache> {
        let store = BlobStore::create(dir)?;
        // What a killed run left: temp blobs, entries, files copied out of images, staging.
        for sub in [
            "",
            "blobs/sha256",
            "layers",
            "base-index",
            "extract/files",
            "extract/picks",
            "staging",
        ] {
            crate::tmp::collect(&dir.join(sub));
        }
        Ok(Cache { store })
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
        self.store.dir()
    }

    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        self.store.path(digest)
    }

    /// Present with the right size (digests are checked when it is read).
    pub fn has(&self, desc: &Descriptor) -> bool {
        self.store.has(&desc.digest, desc.size)
    }

    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        self.store.put(digest, bytes).map(|_| ())
    }
}
