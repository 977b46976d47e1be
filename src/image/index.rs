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
//! manifest digest; layer count and each diff size; the entry count and
//! the total length of their paths (so the paths unpack into one buffer of
//! the right size); entries in path order, each path front-coded against
//! the previous one (bytes shared, then the rest), a flags byte (kind, has
//! data), uid, gid, mode, size, layer and the data's layer and entry; links
//! the same way; skipped names; the four account files (flag, bytes); kept
//! contents by layer and entry.

use std::path::{Path, PathBuf};

use crate::image::fsview::{DataRef, FsView, Kind, Meta};
use crate::image::paths::{Frozen, Paths};
use crate::store::sealed;

const KIND: &[u8; 8] = b"kilnidx\0";
/// Raised whenever the body or what the view holds changes.
const VERSION: u32 = 3;
/// Largest index read back, and most bytes of paths it may unpack into.
const MAX_INDEX: u64 = 1 << 30;
/// Longest path an index may hold: far past what a runtime can create.
const MAX_PATH: usize = 64 << 10;

/// Where the index of the image whose manifest is `manifest` lives.
pub fn path(cache_dir: &Path, manifest: &str) -> Option<PathBuf> {
    crate::oci::sha256_hex(manifest).map(|hex| cache_dir.join("base-index").join(hex))
}

/// The view and diff sizes of the image with `layers` layers whose manifest
/// is `manifest`, if a sound index of it is cached.
pub fn load(cache_dir: &Path, manifest: &str, layers: usize) -> Option<(FsView, Vec<u64>)> {
    let started = std::time::Instant::now();
    let path = path(cache_dir, manifest)?;
    let bytes = sealed::read(&path, MAX_INDEX)?;
    let found = sealed::open(KIND, VERSION, &bytes).and_then(|b| decode(b, manifest, layers));
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
    put(&mut w, fs.entries.len() as u64);
    put(&mut w, fs.entries.keys().map(|p| p.len() as u64).sum());
    let mut prev = "";
    for (path, m) in &fs.entries {
        put_path(&mut w, prev, path);
        prev = path;
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
            put(&mut w, n);
        }
        if let Some(d) = m.data {
            put(&mut w, d.layer as u64);
            put(&mut w, d.entry);
        }
    }
    put(&mut w, fs.links.len() as u64);
    put(&mut w, fs.links.keys().map(|p| p.len() as u64).sum());
    let mut prev = "";
    for (path, target) in &fs.links {
        put_path(&mut w, prev, path);
        prev = path;
        put_bytes(&mut w, target.as_bytes());
    }
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

/// The view an index body holds; None unless it is whole, for `manifest`
/// and `layers` layers, its paths sorted, and every layer number in range.
pub fn decode(body: &[u8], manifest: &str, layers: usize) -> Option<(FsView, Vec<u64>)> {
    let mut r = Reader { rest: body };
    if r.bytes()? != manifest.as_bytes() || r.count()? != layers {
        return None;
    }
    let diff_sizes = (0..layers).map(|_| r.num()).collect::<Option<Vec<_>>>()?;
    let layer = |n: u64| usize::try_from(n).ok().filter(|l| *l < layers);
    let mut fs = FsView::default();
    let mut paths = r.paths()?;
    let mut metas = Vec::with_capacity(paths.count);
    for _ in 0..paths.count {
        paths.next(&mut r)?;
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
        metas.push(Meta {
            kind,
            uid,
            gid,
            mode,
            size,
            layer: at,
            data,
        });
    }
    fs.entries = paths.finish(metas)?;
    let mut paths = r.paths()?;
    let mut targets = Vec::with_capacity(paths.count);
    for _ in 0..paths.count {
        paths.next(&mut r)?;
        targets.push(r.string()?);
    }
    fs.links = paths.finish(targets)?;
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
    r.rest.is_empty().then_some((fs, diff_sizes))
}

fn put(w: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        w.push(n as u8 | 0x80);
        n >>= 7;
    }
    w.push(n as u8);
}

fn put_bytes(w: &mut Vec<u8>, bytes: &[u8]) {
    put(w, bytes.len() as u64);
    w.extend_from_slice(bytes);
}

fn put_path(w: &mut Vec<u8>, prev: &str, path: &str) {
    let shared = prev
        .bytes()
        .zip(path.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    // Cut on a character boundary, so each part is UTF-8 on its own.
    let shared = (0..=shared)
        .rev()
        .find(|i| path.is_char_boundary(*i))
        .unwrap_or(0);
    put(w, shared as u64);
    put_bytes(w, &path.as_bytes()[shared..]);
}

/// Reads a body; every read is bounded by what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(*first)
    }

    #[inline]
    fn num(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A count of items, each at least a byte long: no more than what is left.
    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.num()?)
            .ok()
            .filter(|n| *n <= self.rest.len())
    }

    #[inline]
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.num()?).ok()?;
        if len > self.rest.len() {
            return None;
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(bytes)
    }

    fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_string)
    }

    /// The count and total length of a list of paths, to read them into.
    fn paths(&mut self) -> Option<PathList> {
        let count = self.count()?;
        let total = usize::try_from(self.num()?)
            .ok()
            .filter(|t| *t as u64 <= MAX_INDEX)?;
        Some(PathList {
            count,
            total,
            names: Vec::with_capacity(total),
            ends: Vec::with_capacity(count),
        })
    }
}

/// Paths being read, laid end to end as `paths::Frozen` keeps them.
struct PathList {
    count: usize,
    total: usize,
    names: Vec<u8>,
    ends: Vec<usize>,
}

impl PathList {
    /// Read the next path, front-coded against the one before it.
    fn next(&mut self, r: &mut Reader) -> Option<()> {
        let start = self.ends.len().checked_sub(2).map_or(0, |i| self.ends[i]);
        let prev = start..self.names.len();
        let shared = usize::try_from(r.num()?).ok()?;
        let tail = r.bytes()?;
        if shared > prev.len() || shared + tail.len() > MAX_PATH {
            return None;
        }
        if self.names.len() + shared + tail.len() > self.total {
            return None;
        }
        self.names.extend_from_within(start..start + shared);
        self.names.extend_from_slice(tail);
        self.ends.push(self.names.len());
        Some(())
    }

    /// The paths with their values; None unless they are as declared and
    /// sound (`Frozen::from_parts`).
    fn finish<V>(self, values: Vec<V>) -> Option<Paths<V>> {
        (self.names.len() == self.total)
            .then(|| Frozen::from_parts(self.names, self.ends, values))?
            .map(Paths::Frozen)
    }
}

#[cfg(test)]
mod tests;
