//! The layer cache shared through a registry (`--cache-repo REF`), so that
//! a fresh CI runner reuses the layers another runner made.
//!
//! For each layer, a key over its content (paths, owners, modes, every
//! file's bytes, and the compression settings; not mtimes or inodes, which
//! differ between checkouts) names a tag `layer-<key>` in the cache
//! repository. The tag holds a small OCI manifest whose one layer is the
//! finished blob, with its diff_id in an annotation. A hit is mounted into
//! the push target (same registry) or downloaded, never rebuilt.
//!
//! The cache is an optimisation only: any failure to read or write it is a
//! miss, logged once as a warning, and the build goes on.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::layer::write::{LayerBlob, Source};
use crate::oci::reference::Reference;
use crate::oci::{self, Descriptor, Manifest};
use crate::plan::LayerPlan;
use crate::progress::{Bar, Step};
use crate::registry::Client;
use crate::store::cache::Cache;

const DIFF_ID: &str = "dev.kiln.layer.diff-id";
const DIFF_SIZE: &str = "dev.kiln.layer.diff-size";
const KEY: &str = "dev.kiln.layer.key";
/// The empty JSON object, the config of the pointer manifests.
const EMPTY: &[u8] = b"{}";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The `artifactType` of the pointer manifests: image-spec 1.1 requires one
/// when the config is the empty descriptor. Manifests kiln wrote before it
/// set one have none, and are read all the same.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.layer-cache.v1";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

pub struct RemoteCache {
    handle: Handle,
    client: Arc<Client>,
    host: String,
    repo: String,
    local: Option<Cache>,
    /// The push target's registry: hits there are mounted, not downloaded.
    push_host: Option<String>,
    /// Look layers up (off with --no-cache, which still records them).
    read: bool,
    /// Layers this build wrote, to record once the push is done.
    written: Mutex<Vec<(String, LayerBlob, String)>>,
    broken: AtomicBool,
}

/// What a layer's inputs are, for the shared key.
pub struct KeyInputs<'a> {
    pub plan: &'a LayerPlan,
    pub settings: String,
}

impl RemoteCache {
    pub fn new(
        handle: Handle,
        client: Arc<Client>,
        repo: &Reference,
        local: Option<Cache>,
        push_host: Option<&str>,
        read: bool,
    ) -> RemoteCache {
        RemoteCache {
            read,
            handle,
            client,
            host: repo.registry.clone(),
            repo: repo.repository.clone(),
            local,
            push_host: push_host.map(str::to_string),
            written: Mutex::new(Vec::new()),
            broken: AtomicBool::new(false),
        }
    }

    /// A miss from now on, with one warning.
    fn give_up(&self, what: &str, err: &Error) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "cache repository {}/{}: cannot {what} ({err}); building without it",
                self.host,
                self.repo
            );
        }
    }

    /// The content key of a layer: reads every file it copies.
    pub fn key(&self, inputs: &KeyInputs) -> Option<String> {
        match content_key(inputs) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::debug!("no shared cache key: {e}");
                None
            }
        }
    }

    /// The finished layer for `key`, if another build recorded it. With
    /// `need_bytes` (a layout or archive is written, or the push goes to
    /// another registry), the blob is downloaded into `dest`.
    pub fn lookup(&self, key: &str, need_bytes: bool, dest: &Path) -> Option<LayerBlob> {
        if !self.read || self.broken.load(Ordering::Relaxed) {
            return None;
        }
        let tag = tag(key);
        let found = self
            .handle
            .block_on(self.client.find_manifest(&self.host, &self.repo, &tag));
        let bytes = match found {
            Ok(Some((bytes, _))) => bytes,
            Ok(None) => return None,
            Err(e) => {
                self.give_up("look up layers", &e);
                return None;
            }
        };
        let desc = match pointer(&bytes, key) {
            Some(d) => d,
            None => {
                tracing::warn!("cache repository tag {tag} is not a kiln layer pointer; ignored");
                return None;
            }
        };
        let diff_id = desc.annotations.get(DIFF_ID)?.clone();
        let diff_size = desc.annotations.get(DIFF_SIZE)?.parse().ok()?;
        // A tag whose blob is gone (garbage-collected, deleted) is a miss;
        // building the layer again records it afresh.
        let exists = self.handle.block_on(self.client.blob_exists(
            &self.host,
            &self.repo,
            &desc.digest,
        ));
        match exists {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    "cache repository tag {tag} names {}, which {}/{} no longer has; building the layer again",
                    desc.digest,
                    self.host,
                    self.repo
                );
                return None;
            }
            Err(e) => {
                self.give_up("look up layers", &e);
                return None;
            }
        }
        let mountable = self.push_host.as_deref() == Some(self.host.as_str());
        let path = match (need_bytes || !mountable, &self.local) {
            (true, _) => {
                let bar = Bar::start(
                    Step::Pull,
                    &crate::oci::digest::short(&desc.digest),
                    desc.size,
                );
                let fetched = self.handle.block_on(
                    self.client
                        .fetch_blob(&self.host, &self.repo, &desc, dest, &bar),
                );
                if let Err(e) = fetched {
                    self.give_up("download a layer", &e);
                    return None;
                }
                bar.done(desc.size, "from the cache repository");
                dest.to_path_buf()
            }
            (false, Some(local)) => local.blob_path(&desc.digest)?,
            (false, None) => dest.to_path_buf(),
        };
        Some(LayerBlob {
            path,
            digest: desc.digest.to_string(),
            size: desc.size,
            diff_id,
            diff_size,
            verified: true,
            source: Source::CacheRepo,
            mount_from: mountable.then(|| (self.host.clone(), self.repo.clone())),
        })
    }

    /// Note a layer this build wrote, to record after the push.
    pub fn remember(&self, key: String, blob: &LayerBlob, media_type: &str) {
        self.written
            .lock()
            .expect("no panics while holding the lock")
            .push((key, blob.clone(), media_type.to_string()));
    }

    /// Record every layer written: the blob goes into the cache repository
    /// (mounted from a destination in `pushed_to` on the same registry),
    /// then a pointer manifest under the layer's tag.
    pub fn record(&self, pushed_to: &[Reference]) {
        let written = std::mem::take(&mut *self.written.lock().expect("no panics"));
        if written.is_empty() || self.broken.load(Ordering::Relaxed) {
            return;
        }
        let from = pushed_to
            .iter()
            .find(|t| t.registry == self.host && t.repository != self.repo)
            .map(|t| t.repository.clone());
        let result = self.handle.block_on(async {
            self.put_blob(EMPTY_DIGEST, EMPTY.len() as u64, None, None)
                .await?;
            for (key, blob, media_type) in &written {
                self.put_blob(&blob.digest, blob.size, Some(&blob.path), from.as_deref())
                    .await?;
                let manifest = pointer_manifest(key, blob, media_type);
                self.client
                    .put_manifest(
                        &self.host,
                        &self.repo,
                        &tag(key),
                        &manifest,
                        oci::OCI_MANIFEST,
                    )
                    .await?;
            }
            Ok::<(), Error>(())
        });
        match result {
            Ok(()) => tracing::info!(
                "recorded {} layer(s) in the cache repository {}/{}",
                written.len(),
                self.host,
                self.repo
            ),
            Err(e) => self.give_up("record layers", &e),
        }
    }

    async fn put_blob(
        &self,
        digest: &str,
        size: u64,
        path: Option<&Path>,
        mount_from: Option<&str>,
    ) -> Result<()> {
        let (host, repo) = (self.host.as_str(), self.repo.as_str());
        if self.client.blob_exists(host, repo, digest).await? {
            return Ok(());
        }
        if let Some(from) = mount_from {
            if self.client.mount(host, repo, from, digest).await? {
                return Ok(());
            }
        }
        let staged;
        let path = match path {
            Some(p) => p,
            None => {
                // The empty config: through the local cache dir, as a file.
                let dir = self.local.as_ref().map(|c| c.dir().to_path_buf());
                let dir = dir.unwrap_or_else(std::env::temp_dir);
                staged = crate::tmp::TempFile::new_in(&dir, "empty")?;
                std::fs::write(staged.path(), EMPTY).map_err(|e| Error::Io {
                    action: "write",
                    path: staged.path().to_path_buf(),
                    source: e,
                })?;
                staged.path()
            }
        };
        let bar = Bar::start(Step::Push, &crate::oci::digest::short(digest), size);
        self.client
            .upload(host, repo, digest, size, path, &bar)
            .await?;
        bar.done(size, "to the cache repository");
        Ok(())
    }
}

fn tag(key: &str) -> String {
    format!("layer-{key}")
}

/// The layer descriptor of a pointer manifest, if it is one for `key`.
fn pointer(bytes: &[u8], key: &str) -> Option<Descriptor> {
    let manifest: Manifest = serde_json::from_slice(bytes).ok()?;
    if manifest.annotations.get(KEY).map(String::as_str) != Some(key) {
        return None;
    }
    // Without an artifactType: written by an older kiln, still a pointer.
    if manifest
        .artifact_type
        .as_deref()
        .is_some_and(|t| t != ARTIFACT_TYPE)
    {
        return None;
    }
    let [layer] = manifest.layers.as_slice() else {
        return None;
    };
    oci::sha256_hex(&layer.digest)?;
    Some(layer.clone())
}

fn pointer_manifest(key: &str, blob: &LayerBlob, media_type: &str) -> Vec<u8> {
    let mut layer = Descriptor {
        media_type: media_type.to_string(),
        digest: crate::oci::Digest::computed(blob.digest.clone()),
        size: blob.size,
        urls: None,
        annotations: Default::default(),
        platform: None,
    };
    layer
        .annotations
        .insert(DIFF_ID.to_string(), blob.diff_id.clone());
    layer
        .annotations
        .insert(DIFF_SIZE.to_string(), blob.diff_size.to_string());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.to_string()),
        artifact_type: Some(ARTIFACT_TYPE.to_string()),
        config: Descriptor {
            media_type: EMPTY_TYPE.to_string(),
            digest: crate::oci::Digest::computed(EMPTY_DIGEST.to_string()),
            size: EMPTY.len() as u64,
            urls: None,
            annotations: Default::default(),
            platform: None,
        },
        layers: vec![layer],
        annotations: [(KEY.to_string(), key.to_string())].into(),
    };
    serde_json::to_vec(&manifest).expect("manifest serializes")
}

/// Paths, owners, modes, link targets and file contents, in plan order.
fn content_key(inputs: &KeyInputs) -> std::io::Result<String> {
    let mut buf = vec![0u8; 1 << 20];
    let contents = &mut |src: &Path, size: u64, _: &crate::plan::sources::Stamp| {
        let mut file = std::fs::File::open(src)?;
        let mut h = Sha256::new();
        h.update(size.to_le_bytes());
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().to_vec())
    };
    crate::layer::entries_key(
        &["kiln-shared-layer-1", &inputs.settings],
        inputs.plan,
        contents,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_config_digest_is_right() {
        assert_eq!(crate::oci::digest::sha256(EMPTY), EMPTY_DIGEST);
    }

    fn blob() -> LayerBlob {
        LayerBlob {
            path: "/nonexistent".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 3,
            diff_id: format!("sha256:{}", "b".repeat(64)),
            diff_size: 5,
            verified: true,
            source: Source::Built,
            mount_from: None,
        }
    }

    #[test]
    fn pointers_are_read_with_and_without_an_artifact_type() {
        let written = pointer_manifest("k1", &blob(), oci::OCI_LAYER_GZIP);
        let json: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(json["artifactType"], ARTIFACT_TYPE);
        assert!(pointer(&written, "k1").is_some());
        let mut older = json.clone();
        older.as_object_mut().unwrap().remove("artifactType");
        assert!(pointer(&serde_json::to_vec(&older).unwrap(), "k1").is_some());
        let mut other = json;
        other["artifactType"] = "application/vnd.example.sbom".into();
        assert!(pointer(&serde_json::to_vec(&other).unwrap(), "k1").is_none());
    }
}
