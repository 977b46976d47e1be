//! Blob files already hashed and found whole, remembered by a stamp of the
//! file: device, inode, size and modification time. A warm build from a
//! base index reads none of its base's layers, so without this nothing
//! would notice a layout's blob replaced since the last build, and an OCI
//! layout output hard-links those blobs. Renaming another file over a
//! blob or writing to it changes its stamp, and the file is hashed again.
//! (Not the change time: hard-linking a blob into an output changes it.)
//!
//! One sealed record per file and digest, in `verified/` of the cache.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::oci::digest::HashReader;
use crate::store::sealed;

const KIND: &[u8; 8] = b"kilnver\0";
const VERSION: u32 = 1;

/// Whether the file at `path` holds the blob `digest` of `size` bytes:
/// known from an earlier hash while its stamp is unchanged, else hashed
/// now (and remembered when it matches).
pub fn check(cache: &Path, path: &Path, digest: &str, size: u64) -> bool {
    let record = record_path(cache, path, digest);
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let stamp = stamp(&meta, digest, size);
    if sealed::read(&record, 1024).is_some_and(|b| sealed::open(KIND, VERSION, &b) == Some(&stamp))
    {
        return true;
    }
    let Ok(file) = File::open(path) else {
        return false;
    };
    // The stamp of the file read, not of whatever is at the path by now.
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let hashed = HashReader::new(std::io::BufReader::with_capacity(1 << 20, file)).finish();
    if !hashed.is_ok_and(|(d, n)| d == digest && n == size) {
        return false;
    }
    remember_stamp(&record, &self::stamp(&meta, digest, size));
    true
}

/// Remember that `file`, at `path`, was just read whole and hashed to
/// `digest` and `size` by the caller.
pub fn remember(cache: &Path, path: &Path, file: &File, digest: &str, size: u64) {
    if let Ok(meta) = file.metadata() {
        remember_stamp(
            &record_path(cache, path, digest),
            &stamp(&meta, digest, size),
        );
    }
}

fn remember_stamp(record: &Path, stamp: &[u8]) {
    if let Err(e) = sealed::write(record, KIND, VERSION, stamp) {
        tracing::debug!("blob check not remembered: {e}");
    }
}

/// One record per absolute path and digest.
fn record_path(cache: &Path, path: &Path, digest: &str) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut key = absolute.into_os_string().into_encoded_bytes();
    key.push(0);
    key.extend_from_slice(digest.as_bytes());
    let key = crate::oci::digest::sha256(&key);
    cache
        .join("verified")
        .join(key.trim_start_matches("sha256:"))
}

fn stamp(meta: &Metadata, digest: &str, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(digest.len() + 40);
    out.extend_from_slice(digest.as_bytes());
    for n in [size, meta.len(), meta.dev(), meta.ino()] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&meta.mtime().to_le_bytes());
    out.extend_from_slice(&meta.mtime_nsec().to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_hashed_once_until_it_is_replaced_or_written() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, blob) = (dir.path().join("cache"), dir.path().join("blob"));
        std::fs::write(&blob, b"layer").unwrap();
        let digest = crate::oci::digest::sha256(b"layer");
        assert!(check(&cache, &blob, &digest, 5));
        assert!(!check(&cache, &blob, &digest, 6), "wrong size");
        let record = record_path(&cache, &blob, &digest);
        assert!(record.is_file());
        // Trusted by its stamp: a record of another file's stamp is not enough.
        std::fs::write(dir.path().join("other"), b"other").unwrap();
        std::fs::rename(dir.path().join("other"), &blob).unwrap();
        assert!(!check(&cache, &blob, &digest, 5), "replaced by rename");
        std::fs::write(&blob, b"layer").unwrap();
        assert!(check(&cache, &blob, &digest, 5));
        // Written in place, same size: the mtime moves.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&blob, b"LAYER").unwrap();
        assert!(!check(&cache, &blob, &digest, 5), "written in place");
        // A damaged record is a miss, never a pass.
        std::fs::write(&blob, b"layer").unwrap();
        assert!(check(&cache, &blob, &digest, 5));
        std::fs::write(&record, b"junk").unwrap();
        assert!(check(&cache, &blob, &digest, 5));
        std::fs::remove_file(&blob).unwrap();
        assert!(!check(&cache, &blob, &digest, 5), "gone");
    }
}
