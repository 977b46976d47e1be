//! One blob store: blobs by digest under `DIR/blobs/sha256/<hex>`, as an
//! OCI image layout keeps them. kiln's cache, the layout being written
//! (`Staging`) and a layout read back (a base, an image a copy takes files
//! from) are each one of these. A digest that is not sha256 gets no path:
//! the caller says so as an error, never a panic.

pub mod cache;
pub mod sealed;
mod staging;
pub mod verified;

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::oci;

pub use staging::Staging;

pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// The store rooted at `dir`, as it is (for reading).
    pub fn at(dir: &Path) -> BlobStore {
        BlobStore {
            dir: dir.to_path_buf(),
        }
    }

    /// The store rooted at `dir`, its blob directory created if need be.
    pub fn create(dir: &Path) -> Result<BlobStore> {
        let store = BlobStore::at(dir);
        let blobs = store.blobs();
        fs::create_dir_all(&blobs).ctx("create directory", &blobs)?;
        Ok(store)
    }

    /// The root: an OCI layout's directory, or the cache's.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blobs themselves are.
    pub fn blobs(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    /// A blob's file, or None for a digest that is not sha256.
    pub fn path(&self, digest: &str) -> Option<PathBuf> {
        oci::sha256_hex(digest).map(|hex| self.blobs().join(hex))
    }

    /// The same, for a digest kiln itself computed or already checked.
    pub fn path_of(&self, digest: &str) -> Result<PathBuf> {
        self.path(digest).ok_or_else(|| Error::Output {
            path: self.blobs(),
            msg: format!("`{digest}` is not a sha256 digest"),
        })
    }

    /// Present with the right size (its digest is checked when it is read).
    pub fn has(&self, digest: &str, size: u64) -> bool {
        self.path(digest)
            .and_then(|p| fs::metadata(p).ok())
            .is_some_and(|m| m.len() == size)
    }

    /// Write a blob whole (temp file, then rename).
    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path_of(digest)?;
        crate::tmp::write_atomic(&path, bytes)?;
        Ok(path)
    }

    /// Move a finished file in under its digest.
    pub fn adopt(&self, file: &Path, digest: &str) -> Result<PathBuf> {
        let path = self.path_of(digest)?;
        fs::rename(file, &path).ctx("move blob into", &path)?;
        Ok(path)
    }

    /// Copy a file in under its digest, replacing what is there (a blob
    /// already there may be a damaged copy).
    pub fn copy_in(&self, file: &Path, digest: &str) -> Result<PathBuf> {
        let path = self.path_of(digest)?;
        let tmp = crate::tmp::TempFile::copy_of(file, &self.blobs(), "blob")?;
        tmp.persist(&path).ctx("store a blob", &path)?;
        Ok(path)
    }

    /// Bring in a blob from another store: a hard link where the filesystem
    /// allows, else a copy. One already there is kept.
    pub fn link_in(&self, file: &Path, digest: &str) -> Result<()> {
        let path = self.path_of(digest)?;
        if path.exists() {
            return Ok(());
        }
        if fs::hard_link(file, &path).is_err() {
            fs::copy(file, &path).ctx("copy blob", file)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_that_are_not_sha256_get_no_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::create(dir.path()).unwrap();
        assert!(store.path("sha512:abcd").is_none());
        assert!(store.path("sha256:../../etc").is_none());
        assert!(store.put("md5:00", b"x").is_err());
        let digest = crate::oci::digest::sha256(b"hello");
        let path = store.put(&digest, b"hello").unwrap();
        assert!(store.has(&digest, 5));
        assert!(!store.has(&digest, 4));
        assert_eq!(path.parent().unwrap(), store.blobs());
    }
}
