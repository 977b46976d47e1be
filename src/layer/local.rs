//! The local layer cache: finished layers by the hash of their inputs,
//! each a record (`layers/<key>`) naming a blob in the cache's store.

use serde::{Deserialize, Serialize};

use super::write::{LayerBlob, Source};
use crate::error::{IoContext, Result};
use crate::store::cache::Cache;

#[derive(Serialize, Deserialize)]
struct Record {
    digest: String,
    size: u64,
    diff_id: String,
    diff_size: u64,
}

/// The finished blob for a layer whose inputs hash to `key`, if cached.
/// Its digest is checked by the caller before use.
pub fn find(cache: &Cache, key: &str) -> Option<LayerBlob> {
    let text = std::fs::read(cache.dir().join("layers").join(key)).ok()?;
    let record: Record = serde_json::from_slice(&text).ok()?;
    let path = cache.blob_path(&record.digest)?;
    let len = std::fs::metadata(&path).ok()?.len();
    (len == record.size).then_some(LayerBlob {
        path,
        digest: record.digest,
        size: record.size,
        diff_id: record.diff_id,
        diff_size: record.diff_size,
        verified: false,
        source: Source::Cache,
        mount_from: None,
    })
}

/// Remember a freshly written layer: its blob (copied, replacing whatever
/// is there) and the record that maps `key` to it, each put in place by a
/// rename.
pub fn remember(cache: &Cache, key: &str, blob: &LayerBlob) -> Result<()> {
    cache.store().copy_in(&blob.path, &blob.digest)?;
    let dir = cache.dir().join("layers");
    std::fs::create_dir_all(&dir).ctx("create", &dir)?;
    let record = Record {
        digest: blob.digest.clone(),
        size: blob.size,
        diff_id: blob.diff_id.clone(),
        diff_size: blob.diff_size,
    };
    crate::tmp::write_atomic(
        &dir.join(key),
        &serde_json::to_vec(&record).expect("record serializes"),
    )
}
