//! The base index: an image's filesystem view (`FsView`, with the bytes of
//! the files `contents::kept` names) and its layers' uncompressed sizes,
//! kept in the cache under the manifest's digest. A warm build reads this
//! one file, in one read, instead of decompressing every layer of its base.
//!
//! The entry is sealed (`store::sealed`: kind, version, sha256) and its body
//! decoded as hostile input: a damaged, truncated or inconsistent index is a
//! miss, and the layers are read again.
//!
//! Body, integers as LEB128 varints, strings and byte strings length-prefixed:
//! manifest digest; layer count and each diff size; the entries as
//! `paths::pack` writes them (a count, then each path front-coded, whole
//! every `paths::RESTART`th, with its value: a flags byte (kind, has data), uid, gid,
//! mode, size, layer and the data's layer and entry); links the same way
//! (the target as the value); skipped names; the four account files (flag,
//! bytes); kept contents by layer and entry. The entries and links are
//! not unpacked when loaded, only checked: the view reads them in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::image::fsview::{DataRef, FsView, Kind, Meta};
use crate::image::paths::{Packed, Paths, Reader, pack, put, put_bytes};
use crate::store::sealed;

const KIND: &[u8; 8] = b"kilnidx\0";
/// Raised whenever the body or what the view holds changes.
const VERSION: u32 = 5;
/// Largest index read back.
const MAX_INDEX: u64 = 1 << 30;

/// Where the index of the image whose manifest is `manifest` lives.
pub fn path(cache_dir: &Path, manifest: &str) -> Option<PathBuf> {
    crate::oci::sha256_hex(manifest).map(|hex| cache_dir.join("base-index").join(hex))
}

/// The view and diff sizes of the image with `layers` layers whose manifest
/// is `manifest`, if a sound index of it is cached.
pub fn load(cache_dir: &Path, manifest: &str, layers: usize) -> Option<(FsView, Vec<u64>)> {
    let started = std::time::Instant::now();
    let path = path(cache_dir, manifest)?;
    let bytes = Arc::new(sealed::read(&path, MAX_INDEX)?);
    let found =
        sealed::open(KIND, VERSION, &bytes).and_then(|b| decode(&bytes, b, manifest, layers));
    match &found {
        None => tracing::debug!(
            "base index `{}` is damaged; reading the layers",
            path.display()
        ),
        Some((fs, _)) => tracing::debug!(
            "base index loaded in {:.2} ms ({} paths, {} bytes)",
            started.elapsed().as_secs_f64() * 1000.0,
            fs.entries.len(),
            bytes.len()
        ),
    }
    found
}

/// Keep the index; a failure only costs the next build a slower start.
pub fn save(cache_dir: &Path, manifest: &str, fs: &FsView, diff_sizes: &[u64]) {
    let Some(path) = path(cache_dir, manifest) else {
        return;
    };
    let body = encode(manifest, fs, diff_sizes);
    if let Err(e) = sealed::write(&path, KIND, VERSION, &body) {
        tracing::debug!("base index not saved: {e}");
    }
}

pub fn encode(manifest: &str, fs: &FsView, diff_sizes: &[u64]) -> Vec<u8> {
    let mut w = Vec::with_capacity(64 * fs.entries.len() + 1024);
    put_bytes(&mut w, manifest.as_bytes());
    put(&mut w, diff_sizes.len() as u64);
    for size in diff_sizes {
        put(&mut w, *size);
    }
    pack(&mut w, &fs.entries, &mut put_meta);
    pack(&mut w, &fs.links, &mut |w, target| {
        put_bytes(w, target.as_bytes())
    });
    put(&mut w, fs.skipped.len() as u64);
    for (name, layer) in &fs.skipped {
        put_bytes(&mut w, name.as_bytes());
        put(&mut w, *layer as u64);
    }
    for account in [&fs.passwd, &fs.group, &fs.shadow, &fs.gshadow] {
        match account {
            Some(bytes) => {
                w.push(1);
                put_bytes(&mut w, bytes);
            }
            None => w.push(0),
        }
    }
    put(&mut w, fs.contents.len() as u64);
    for (at, bytes) in &fs.contents {
        put(&mut w, at.layer as u64);
        put(&mut w, at.entry);
        put_bytes(&mut w, bytes);
    }
    w
}

fn put_meta(w: &mut Vec<u8>, m: &Meta) {
    let kind = match m.kind {
        Kind::Dir => 0,
        Kind::File => 1,
        Kind::Symlink => 2,
        Kind::Other => 3,
    };
    w.push(kind | if m.data.is_some() { 0x10 } else { 0 });
    for n in [
        m.uid as u64,
        m.gid as u64,
        m.mode as u64,
        m.size,
        m.layer as u64,
    ] {
        put(w, n);
    }
    if let Some(d) = m.data {
        put(w, d.layer as u64);
        put(w, d.entry);
    }
}

fn read_meta(r: &mut Reader, layers: usize) -> Option<Meta> {
    let layer = |n: u64| usize::try_from(n).ok().filter(|l| *l < layers);
    let flags = r.byte()?;
    let kind = match flags & 0x0f {
        0 => Kind::Dir,
        1 => Kind::File,
        2 => Kind::Symlink,
        3 => Kind::Other,
        _ => return None,
    };
    let id = |n: u64| u32::try_from(n).ok();
    let (uid, gid, mode) = (id(r.num()?)?, id(r.num()?)?, id(r.num()?)?);
    let (size, at) = (r.num()?, layer(r.num()?)?);
    let data = match flags & !0x0f {
        0 => None,
        0x10 => Some(DataRef {
            layer: layer(r.num()?)?,
            entry: r.num()?,
        }),
        _ => return None,
    };
    Some(Meta {
        kind,
        uid,
        gid,
        mode,
        size,
        layer: at,
        data,
    })
}

fn read_link(r: &mut Reader, _layers: usize) -> Option<String> {
    r.string()
}

/// The view an index body (a part of `buf`) holds; None unless it is
/// whole, for `manifest` and `layers` layers, its paths sorted, and every
/// layer number in range. Its entries and links stay in `buf`.
pub fn decode(
    buf: &Arc<Vec<u8>>,
    body: &[u8],
    manifest: &str,
    layers: usize,
) -> Option<(FsView, Vec<u64>)> {
    let mut r = Reader::new(body);
    if r.bytes()? != manifest.as_bytes() || r.count()? != layers {
        return None;
    }
    let diff_sizes = (0..layers).map(|_| r.num()).collect::<Option<Vec<_>>>()?;
    let layer = |n: u64| usize::try_from(n).ok().filter(|l| *l < layers);
    let mut fs = FsView::default();
    let n = r.count()?;
    fs.entries = Paths::Packed(Packed::load(buf, &mut r, n, layers, read_meta)?);
    let n = r.count()?;
    fs.links = Paths::Packed(Packed::load(buf, &mut r, n, layers, read_link)?);
    for _ in 0..r.count()? {
        fs.skipped.push((r.string()?, layer(r.num()?)?));
    }
    for slot in [
        &mut fs.passwd,
        &mut fs.group,
        &mut fs.shadow,
        &mut fs.gshadow,
    ] {
        *slot = match r.byte()? {
            0 => None,
            1 => Some(r.bytes()?.to_vec()),
            _ => return None,
        };
    }
    for _ in 0..r.count()? {
        let at = DataRef {
            layer: layer(r.num()?)?,
            entry: r.num()?,
        };
        if fs.contents.insert(at, r.bytes()?.to_vec()).is_some() {
            return None;
        }
    }
    r.is_empty().then_some((fs, diff_sizes))
}

#[cfg(test)]
mod tests;
