//! Every regular file the new layers hold, with the SHA-1 (which SPDX
//! requires) and SHA-256 of its bytes, its owner and mode, and what in the
//! spec put it there. Each source file is read once, on as many threads as
//! the machine has, and must still be what the plan saw.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::plan::sources::Stamp;
use crate::plan::{Content, LayerPlan, Origin};

pub struct AddedFile {
    /// Absolute, in the image.
    pub path: String,
    pub size: u64,
    pub hashes: Hashes,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub origin: Option<Arc<Origin>>,
}

/// Lowercase hex digests of a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes {
    pub sha1: String,
    pub sha256: String,
}

/// The regular files of `plans`, sorted by path.
pub fn added(plans: &[LayerPlan]) -> Result<Vec<AddedFile>> {
    // Each source once, however many paths (hard links) it backs.
    let mut sources: BTreeMap<&Path, (u64, Stamp)> = BTreeMap::new();
    for plan in plans {
        for entry in plan.entries.values() {
            if let Content::File {
                src, size, stamp, ..
            } = &entry.content
            {
                sources.insert(src.as_path(), (*size, *stamp));
            }
        }
    }
    let sources: Vec<(&Path, (u64, Stamp))> = sources.into_iter().collect();
    let hashed = hash_all(&sources)?;
    let mut out = Vec::new();
    for plan in plans {
        for (path, entry) in &plan.entries {
            let hashes = match &entry.content {
                Content::File { src, .. } => hashed[src.as_path()].clone(),
                Content::Bytes(b) => hash_reader(&mut &b[..])
                    .map(|(h, _)| h)
                    .expect("reading memory does not fail"),
                Content::Dir | Content::Symlink(_) => continue,
            };
            out.push(AddedFile {
                path: path.clone(),
                size: match &entry.content {
                    Content::File { size, .. } => *size,
                    Content::Bytes(b) => b.len() as u64,
                    _ => 0,
                },
                hashes,
                uid: entry.uid,
                gid: entry.gid,
                mode: entry.mode,
                origin: plan.origins.get(path).cloned(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn hash_all<'a>(sources: &[(&'a Path, (u64, Stamp))]) -> Result<BTreeMap<&'a Path, Hashes>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(sources.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Hashes>>>> =
        Mutex::new((0..sources.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, (size, stamp))) = sources.get(i) else {
                        break;
                    };
                    let result = hash_file(path, *size, *stamp);
                    let failed = result.is_err();
                    results.lock().expect("no panics while holding the lock")[i] = Some(result);
                    if failed {
                        // Stop the others early: the build fails anyway.
                        next.store(sources.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut out = BTreeMap::new();
    let results = results
        .into_inner()
        .expect("no panics while holding the lock");
    for ((path, _), result) in sources.iter().zip(results) {
        match result {
            Some(r) => {
                out.insert(*path, r?);
            }
            None => continue,
        }
    }
    if out.len() != sources.len() {
        return Err(Error::source_path(
            Path::new("-"),
            "a source file could not be hashed for the SBOM",
        ));
    }
    Ok(out)
}

/// Hash one source file; it must hold `size` bytes and, where the plan
/// recorded one, still have the plan's stamp.
fn hash_file(path: &Path, size: u64, stamp: Stamp) -> Result<Hashes> {
    let file = std::fs::File::open(path).ctx("open", path)?;
    let (hashes, read) = hash_reader(&mut (&file).take(size + 1)).ctx("read", path)?;
    let now = file.metadata().ctx("read", path)?;
    let moved = stamp != Stamp::default() && {
        let s = Stamp::of(&now);
        (s.mtime_ns, s.ctime_ns, s.inode) != (stamp.mtime_ns, stamp.ctime_ns, stamp.inode)
    };
    if read != size || moved {
        return Err(Error::source_path(
            path,
            "changed while the image and its SBOM were being made",
        )
        .with_hint("build again once the file is complete"));
    }
    Ok(hashes)
}

fn hash_reader(r: &mut dyn Read) -> std::io::Result<(Hashes, u64)> {
    let mut sha1 = Sha1::new();
    let mut sha256 = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha1.update(&buf[..n]);
        sha256.update(&buf[..n]);
        total += n as u64;
    }
    Ok((
        Hashes {
            sha1: hex(&sha1.finalize()),
            sha256: hex(&sha256.finalize()),
        },
        total,
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SPDX package verification code: SHA-1 over the files' SHA-1s,
/// sorted, concatenated (SPDX 2.3 clause 7.9).
pub fn verification_code<'a>(sha1s: impl Iterator<Item = &'a str>) -> String {
    let mut sums: Vec<&str> = sha1s.collect();
    sums.sort_unstable();
    let mut h = Sha1::new();
    for s in sums {
        h.update(s.as_bytes());
    }
    hex(&h.finalize())
}
