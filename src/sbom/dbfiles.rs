//! The files whose bytes the SBOM reads: package databases and os-release.
//! [`package_db`] names every one of them, so that a cache of what a base
//! holds can keep exactly these; [`read`] is the one place their bytes are
//! read, from the base's layers or from what kiln adds, every read bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};

use crate::image::base::{Base, Kind};
use crate::image::fsview::{DataRef, read_entries};
pub use crate::image::packages::{Db, package_db};
use crate::plan::{Content, LayerPlan};
use crate::shown::escape as shown;

/// Largest package database read whole (dpkg `status`, apk `installed`):
/// a full Ubuntu's status is a few MiB. A bigger one is read this far.
pub const MAX_DB: u64 = 64 << 20;
/// Largest single small record: a distroless `status.d/` file, a
/// METADATA (whose headers come first; the long description after them
/// is not needed), os-release.
pub const MAX_RECORD: u64 = 1 << 20;
/// Most records of one kind (`status.d/` files, METADATA files) read; a
/// base with more is described by the first ones in path order.
pub const MAX_RECORDS: usize = 20_000;
/// Most bytes read in all, whatever the files claim to hold.
pub const MAX_TOTAL: u64 = 512 << 20;

/// How much of one database file of kind `db` is read.
fn cap_of(db: Db) -> u64 {
    match db {
        Db::Dpkg | Db::Apk => MAX_DB,
        Db::DpkgRecord | Db::Python | Db::OsRelease => MAX_RECORD,
    }
}

/// One database file as the final image holds it.
pub struct DbFile {
    pub path: String,
    pub db: Db,
    pub bytes: Vec<u8>,
    /// Cut at the kind's cap: the last record may be partial.
    pub truncated: bool,
    /// Whether kiln added it (else it is the base's).
    pub added: bool,
}

/// Read every database file of the image: the base's, unless a new layer
/// replaces it, and those the new layers add. Sorted by path. Failures to
/// read a base layer are warnings: an SBOM without packages beats no image.
pub fn read(base: &Base, plans: &[LayerPlan]) -> Vec<DbFile> {
    let mut added: BTreeMap<&str, (Db, &Content)> = BTreeMap::new();
    for plan in plans {
        for (path, entry) in &plan.entries {
            if let Some(db) = package_db(path) {
                added.insert(path, (db, &entry.content));
            }
        }
    }
    let mut wanted: BTreeMap<DataRef, (String, Db)> = BTreeMap::new();
    let mut counts: BTreeMap<Db, usize> = BTreeMap::new();
    for (path, meta) in base.fs.entries.iter() {
        let Some(db) = package_db(&path) else {
            continue;
        };
        if added.contains_key(&*path) || meta.kind != Kind::File {
            continue;
        }
        if let Some(data) = meta.data {
            if counted(&mut counts, db, &path) {
                wanted.insert(data, (path.to_string(), db));
            }
        }
    }
    // /etc/os-release is usually a link to ../usr/lib/os-release.
    let release = base.fs.follow("/etc/os-release");
    if release != "/etc/os-release" && package_db(&release).is_some() {
        if let Some(data) = base.fs.entries.get(&release).and_then(|m| m.data) {
            wanted.insert(data, ("/etc/os-release".into(), Db::OsRelease));
        }
    }
    let mut budget = MAX_TOTAL;
    let mut out = read_base(base, &wanted, &mut budget);
    for (path, (db, content)) in added {
        if !counted(&mut counts, db, path) {
            continue;
        }
        let cap = cap_of(db).min(budget);
        let read = match content {
            Content::Bytes(b) => Ok(b[..b.len().min(cap as usize + 1)].to_vec()),
            Content::File { src, .. } => std::fs::File::open(src).and_then(|f| {
                let mut bytes = Vec::new();
                f.take(cap + 1).read_to_end(&mut bytes)?;
                Ok(bytes)
            }),
            Content::Dir | Content::Symlink(_) => continue,
        };
        match read {
            Ok(bytes) => out.push(file(path.to_string(), db, bytes, cap, true, &mut budget)),
            Err(e) => tracing::warn!("SBOM: cannot read `{}`: {e}", shown(path)),
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Count a record of its kind; false past MAX_RECORDS (warned once).
fn counted(counts: &mut BTreeMap<Db, usize>, db: Db, path: &str) -> bool {
    if !matches!(db, Db::DpkgRecord | Db::Python) {
        return true;
    }
    let n = counts.entry(db).or_default();
    *n += 1;
    if *n == MAX_RECORDS + 1 {
        tracing::warn!(
            "SBOM: more than {MAX_RECORDS} package records like `{}`; the rest are not listed",
            shown(path)
        );
    }
    *n <= MAX_RECORDS
}

fn file(
    path: String,
    db: Db,
    mut bytes: Vec<u8>,
    cap: u64,
    added: bool,
    budget: &mut u64,
) -> DbFile {
    let truncated = bytes.len() as u64 > cap;
    bytes.truncate(cap as usize);
    *budget = budget.saturating_sub(bytes.len() as u64);
    if truncated && db != Db::Python {
        tracing::warn!(
            "SBOM: `{}` is larger than {cap} bytes; only the packages in its first {cap} are listed",
            shown(&path)
        );
    }
    DbFile {
        path,
        db,
        bytes,
        truncated,
        added,
    }
}

/// The base's database files, each layer read once, up to the last entry wanted.
fn read_base(
    base: &Base,
    wanted: &BTreeMap<DataRef, (String, Db)>,
    budget: &mut u64,
) -> Vec<DbFile> {
    let mut by_layer: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    let mut out = Vec::new();
    for (d, (path, db)) in wanted {
        // The base index keeps these files' bytes: a warm build reads no layer.
        match base.fs.contents.get(d) {
            Some(bytes) => {
                let cap = cap_of(*db).min(*budget);
                let bytes = bytes[..bytes.len().min(cap as usize + 1)].to_vec();
                out.push(file(path.clone(), *db, bytes, cap, false, budget));
            }
            None => {
                by_layer.entry(d.layer).or_default().insert(d.entry);
            }
        }
    }
    for (layer, entries) in by_layer {
        let Some(l) = base.layers.get(layer) else {
            continue;
        };
        let result = std::fs::File::open(&l.blob).and_then(|f| {
            let decoder = crate::image::decode::decoder(BufReader::new(f), l.compression)?;
            let tar = crate::image::decode::ZeroTail::new(decoder);
            read_entries(tar, &entries, &mut |entry, data| {
                let (path, db) = &wanted[&DataRef { layer, entry }];
                let cap = cap_of(*db).min(*budget);
                let mut bytes = Vec::new();
                data.take(cap + 1).read_to_end(&mut bytes)?;
                out.push(file(path.clone(), *db, bytes, cap, false, budget));
                Ok(())
            })
        });
        if let Err(e) = result {
            tracing::warn!(
                "SBOM: reading package databases from layer {} of {}: {e}",
                layer + 1,
                shown(&base.reference)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
