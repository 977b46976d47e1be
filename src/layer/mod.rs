//! Every planned layer, built several at once, or taken from the cache when
//! its inputs are unchanged: an unchanged rebuild compresses nothing.

pub mod compress;
#[cfg(feature = "isal")]
mod isal;
pub mod local;
pub mod remote;
pub mod stream;
pub mod write;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::layer::remote::{KeyInputs, RemoteCache};
use crate::oci::Compression;
use crate::oci::digest::HashReader;
use crate::plan::{Content, LayerPlan};
use crate::progress::{Bar, Step};
use crate::store::Staging;
use crate::store::cache::Cache;
use write::LayerBlob;

/// Bumped whenever the bytes kiln writes for the same inputs change.
const FORMAT: &str = "kiln-layer-1";

pub struct Settings<'a> {
    pub mtime: u64,
    pub compression: Compression,
    pub level: u32,
    pub cache: Option<&'a Cache>,
    /// Re-hash cache hits now. Off for a push-only build: a hit the registry
    /// already has is never read, and an upload verifies before sending.
    pub verify_hits: bool,
    /// Where a layer's compressed bytes also go while it is written (an upload).
    pub tee: Option<&'a (dyn Fn(usize) -> Option<Box<dyn std::io::Write + Send>> + Sync)>,
    /// Layers already made in this run, by key: a layer that is the same on
    /// every platform is written once, cache or no cache.
    pub made: &'a Mutex<BTreeMap<String, LayerBlob>>,
    /// The layer cache shared through a registry, and whether a hit there
    /// must be downloaded (a layout or archive is written).
    pub remote: Option<&'a RemoteCache>,
    pub need_bytes: bool,
    /// The media type the image gives new layers (for the shared cache's records).
    pub media_type: &'a str,
    /// The platform, named in progress lines when a build makes several.
    pub platform: Option<String>,
}

pub fn build(
    plans: &[LayerPlan],
    staging: &Staging,
    settings: &Settings,
) -> Result<Vec<LayerBlob>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(plans.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<LayerBlob>>>> =
        Mutex::new((0..plans.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(plan) = plans.get(i) else { break };
                    let result = one(plan, i, staging, settings);
                    results.lock().expect("no panics while holding the lock")[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no panics while holding the lock")
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::Output {
                    path: staging.path().to_path_buf(),
                    msg: "a layer was not written".into(),
                })
            })
        })
        .collect()
}

fn one(plan: &LayerPlan, i: usize, staging: &Staging, s: &Settings) -> Result<LayerBlob> {
    let key = cache_key(plan, s);
    let platform = s
        .platform
        .as_ref()
        .map(|p| format!("{p} "))
        .unwrap_or_default();
    let name = match plan.created_by.first() {
        Some(line) => format!(
            "{platform}layer {} {}",
            i + 1,
            line.trim_end_matches(" # kiln")
        ),
        None => format!("{platform}layer {}", i + 1),
    };
    // Tar bytes: a header and padded content per entry, two zero blocks at the end.
    let total: u64 = 1024
        + plan
            .entries
            .values()
            .map(|e| 512 + e.content.size().div_ceil(512) * 512)
            .sum::<u64>();
    let bar = Bar::start(Step::Build, &name, total);
    let made = s
        .made
        .lock()
        .expect("no panics while holding the lock")
        .get(&key)
        .cloned();
    if let Some(blob) = made {
        bar.done(blob.size, "same as for another platform");
        return Ok(blob);
    }
    if let Some(cached) = s.cache.and_then(|c| local::find(c, &key)) {
        if !s.verify_hits {
            bar.done(cached.size, "cached");
            return Ok(cached);
        }
        if verify(&cached) {
            bar.done(cached.size, "cached");
            return Ok(LayerBlob {
                verified: true,
                ..cached
            });
        }
        tracing::warn!(
            "cached layer {} is damaged; building it again",
            cached.digest
        );
        let _ = std::fs::remove_file(&cached.path);
    }
    let shared = s.remote.and_then(|r| {
        let inputs = KeyInputs {
            plan,
            settings: settings_text(s),
        };
        r.key(&inputs).map(|k| (r, k))
    });
    if let Some((remote, shared_key)) = &shared {
        let dest = staging.scratch_path();
        if let Some(hit) = remote.lookup(shared_key, s.need_bytes, &dest) {
            let blob = match hit.path == dest {
                true => LayerBlob {
                    path: staging.store().adopt(&dest, &hit.digest)?,
                    ..hit
                },
                false => hit,
            };
            if blob.path.is_file() {
                if let Some(cache) = s.cache {
                    let _ = local::remember(cache, &key, &blob);
                }
            }
            s.made
                .lock()
                .expect("no panics while holding the lock")
                .insert(key.clone(), blob.clone());
            bar.done(blob.size, "from the cache repository");
            return Ok(blob);
        }
    }
    let tee = s.tee.and_then(|t| t(i));
    let blob = write::write(
        plan,
        &staging.scratch_path(),
        s.mtime,
        s.compression,
        s.level,
        tee,
        &bar,
    )?;
    let path = staging.store().adopt(&blob.path, &blob.digest)?;
    let blob = LayerBlob { path, ..blob };
    s.made
        .lock()
        .expect("no panics while holding the lock")
        .insert(key.clone(), blob.clone());
    bar.done(blob.size, &crate::oci::digest::short(&blob.digest));
    if let Some((remote, shared_key)) = shared {
        remote.remember(shared_key, &blob, s.media_type);
    }
    if let Some(cache) = s.cache {
        if let Err(e) = local::remember(cache, &key, &blob) {
            tracing::warn!("cannot cache layer {}: {e}", blob.digest);
        }
    }
    Ok(blob)
}

/// Whether a blob's bytes still hash to its digest.
pub fn verify_file(path: &std::path::Path, digest: &str, size: u64) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let reader = HashReader::new(std::io::BufReader::with_capacity(1 << 20, file));
    reader.finish().is_ok_and(|(d, n)| d == digest && n == size)
}

fn verify(blob: &LayerBlob) -> bool {
    verify_file(&blob.path, &blob.digest, blob.size)
}

fn settings_text(s: &Settings) -> String {
    format!("{:?} {} {}", s.compression, s.level, s.mtime)
}

/// A hash of everything that decides a layer's bytes. Files count by path,
/// size, mtime, ctime, inode and device rather than by reading them.
pub fn cache_key(plan: &LayerPlan, s: &Settings) -> String {
    let stamp = &mut |src: &std::path::Path, size: u64, stamp: &crate::plan::sources::Stamp| {
        let mut id = src.as_os_str().as_encoded_bytes().to_vec();
        id.extend(
            format!(
                " {size} {} {} {} {}",
                stamp.mtime_ns, stamp.ctime_ns, stamp.inode, stamp.device
            )
            .bytes(),
        );
        Ok(id)
    };
    entries_key(&[FORMAT, &settings_text(s)], plan, stamp).expect("stamps need no reads")
}

/// What stands for a file's bytes in a key: given its source, size and stamp.
pub type FileId<'a> =
    dyn FnMut(&std::path::Path, u64, &crate::plan::sources::Stamp) -> std::io::Result<Vec<u8>> + 'a;

/// A hash over `header` and a layer's entries in plan order: path, owner,
/// mode, and content (`file` says what stands for a file's bytes).
pub fn entries_key(
    header: &[&str],
    plan: &LayerPlan,
    file: &mut FileId,
) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut put = |field: &[u8]| {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field);
    };
    for field in header {
        put(field.as_bytes());
    }
    for (path, e) in &plan.entries {
        put(path.as_bytes());
        put(format!("{} {} {:o}", e.uid, e.gid, e.mode).as_bytes());
        if e.caps != 0 {
            put(format!("caps {:x}", e.caps).as_bytes());
        }
        match &e.content {
            Content::Dir => put(b"dir"),
            Content::File {
                hardlink: Some(target),
                ..
            } => {
                put(b"hardlink");
                put(target.as_bytes());
            }
            Content::File {
                src, size, stamp, ..
            } => {
                put(b"file");
                put(&file(src, *size, stamp)?);
            }
            Content::Bytes(b) => {
                put(b"bytes");
                put(b);
            }
            Content::Symlink(t) => {
                put(b"symlink");
                put(t.as_bytes());
            }
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
