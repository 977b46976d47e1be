//! The on-disk cache: a content-addressed blob store laid out like an OCI
//! layout's (`blobs/sha256/<hex>`), so base images read from it exactly as
//! from a layout. Blobs enter only whole and verified (temp file + rename).

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::oci::{self, Descriptor};

pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).ctx("create the cache directory", &blobs)?;
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

    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self
            .blob_path(digest)
            .expect("kiln computes sha256 digests");
        crate::layout::write_atomic(&path, bytes)
    }
}
