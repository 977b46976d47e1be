//! Files taken out of another image for `[[copy]] image = ...` (Dockerfile
//! `COPY --from=IMAGE`).
//!
//! Nothing is unpacked. The image's layers are read, every blob checked
//! against its digest, into an in-memory view of its filesystem
//! (`fsview`): whiteouts, opaque directories, hard links and symlinks act
//! there, on names, so an image cannot reach a host path however its
//! entries are named or linked. The copy picks its paths in that view
//! (`pick`); the bytes of the files it picks are then copied out of their
//! layers into the cache, each stored under its own SHA-256, a name kiln
//! makes. The layer writer reads those as it reads local files.
//!
//! What a copy picked is remembered in the cache under a key of the image
//! digest and the copy's fields, so an unchanged rebuild reads no layer.

mod pick;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::image::fsview::{DataRef, read_entries};
use crate::image::inspect::{self, Opened};
use crate::oci::digest::{self, HashWriter};
use crate::plan::sources::{Found, FoundKind, Stamp};
use crate::spec::validate::{Copy, Platform};

pub use pick::{Pick, What};

/// Bumped when what a record means changes.
const RECORD_VERSION: u32 = 2;

/// What a copy takes from an image.
pub struct Extracted {
    /// The manifest digest the image reference resolved to.
    pub digest: String,
    /// Every path, parents first; a file's `origin` is its bytes in the cache.
    pub found: Vec<Found>,
}

/// One picked path as the cache remembers it.
#[derive(Serialize, Deserialize)]
struct Item {
    dest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    executable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    symlink: Option<String>,
    /// The permission bits in the image.
    #[serde(default)]
    mode: u32,
}

#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    items: Vec<Item>,
}

/// Pick what `copy` names from `opened` and put the bytes in
/// `cache_dir/extract/`. Without a `cache_dir` nothing is written: the
/// picks come back with each file's image path as its origin (for `kiln check`).
/// `index`: the cache directory whose base index serves the image's view.
pub fn extract(
    copy: &Copy,
    opened: &Opened,
    text: &str,
    platform: &Platform,
    (cache_dir, index): (Option<&Path>, Option<&Path>),
) -> Result<Extracted> {
    let c = &opened.config;
    if c.os != platform.os || c.architecture != platform.arch {
        return Err(image_error(
            text,
            format!(
                "is {}/{}, but the build is for {platform}",
                c.os, c.architecture
            ),
        )
        .with_hint("name an image (or index) that has this platform"));
    }
    let digest = opened
        .manifest
        .as_ref()
        .map_or_else(|| opened.config_digest.clone(), |m| m.digest.to_string());
    let key = record_key(&digest, copy);
    let store = cache_dir.map(Store::open).transpose()?;
    if let Some(found) = store.as_ref().and_then(|s| s.load(&key)) {
        return Ok(Extracted { digest, found });
    }

    let fs_view = inspect::read_files(opened, text, index)?;
    let fail = |msg: String| image_error(text, format!("{msg} ({digest})"));
    let picks = pick::pick(&fs_view, copy, &fail)?;
    let Some(store) = store else {
        let found = picks.into_iter().map(unstored).collect();
        return Ok(Extracted { digest, found });
    };
    let wanted: BTreeMap<DataRef, u64> = picks
        .iter()
        .filter_map(|p| match p.what {
            What::File { data, size, .. } => Some((data, size)),
            _ => None,
        })
        .collect();
    let stored = store.fill(opened, &wanted, text)?;
    let items: Vec<Item> = picks
        .into_iter()
        .map(|p| match p.what {
            What::Dir => Item::dir(p.dest, p.mode),
            What::Symlink(target) => Item {
                symlink: Some(target),
                ..Item::dir(p.dest, p.mode)
            },
            What::File {
                data,
                size,
                executable,
            } => Item {
                sha256: Some(stored[&data].clone()),
                size,
                executable,
                ..Item::dir(p.dest, p.mode)
            },
        })
        .collect();
    let record = Record {
        version: RECORD_VERSION,
        items,
    };
    let found = store.found(&record).ok_or_else(|| {
        image_error(text, "the bytes copied out of the image went missing")
            .with_hint("is something else cleaning the cache? build again")
    })?;
    store.save(&key, &record)?;
    Ok(Extracted { digest, found })
}

/// A pick as the plan takes it when no bytes were stored.
fn unstored(p: Pick) -> Found {
    let kind = match p.what {
        What::Dir => FoundKind::Dir,
        What::Symlink(target) => FoundKind::Symlink(target),
        What::File {
            size, executable, ..
        } => FoundKind::File {
            size,
            executable,
            stamp: Stamp::default(),
        },
    };
    Found {
        origin: PathBuf::from(&p.dest),
        dest: p.dest,
        kind,
        mode: p.mode,
    }
}

impl Item {
    fn dir(dest: String, mode: u32) -> Item {
        Item {
            dest,
            sha256: None,
            size: 0,
            executable: false,
            symlink: None,
            mode,
        }
    }
}

/// The record's name: the image digest and every field of the copy that
/// changes what it picks.
fn record_key(digest: &str, copy: &Copy) -> String {
    let mut text = format!(
        "{RECORD_VERSION}\0{digest}\0{}\0{}\0{}\0{}",
        copy.src, copy.dest, copy.dest_is_dir, copy.follow_symlinks
    );
    for e in &copy.exclude {
        text.push('\0');
        text.push_str(e);
    }
    digest::sha256(text.as_bytes())
        .trim_start_matches("sha256:")
        .to_string()
}

/// `cache_dir/extract`: `files/<sha256>` holds bytes, `picks/<key>.json` what a copy picked.
struct Store {
    files: PathBuf,
    picks: PathBuf,
}

impl Store {
    fn open(cache_dir: &Path) -> Result<Store> {
        let dir = cache_dir.join("extract");
        let store = Store {
            files: dir.join("files"),
            picks: dir.join("picks"),
        };
        for d in [&store.files, &store.picks] {
            fs::create_dir_all(d).ctx("create", d)?;
        }
        Ok(store)
    }

    /// A record made earlier, if it and every file it names are whole.
    fn load(&self, key: &str) -> Option<Vec<Found>> {
        let bytes = fs::read(self.picks.join(format!("{key}.json"))).ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        if record.version != RECORD_VERSION {
            return None;
        }
        self.found(&record)
    }

    /// The record as the plan takes it; None if a file it names is missing
    /// or no longer hashes to its name.
    fn found(&self, record: &Record) -> Option<Vec<Found>> {
        let mut checked = BTreeMap::new();
        record
            .items
            .iter()
            .map(|item| {
                let kind = match (&item.sha256, &item.symlink) {
                    (Some(sha), _) => {
                        let path = self.file(sha)?;
                        if !checked.contains_key(sha) {
                            checked.insert(sha.clone(), verify(&path, sha, item.size)?);
                        }
                        let stamp = checked[sha];
                        return Some(Found {
                            dest: item.dest.clone(),
                            kind: FoundKind::File {
                                size: item.size,
                                executable: item.executable,
                                stamp,
                            },
                            origin: path,
                            mode: item.mode,
                        });
                    }
                    (None, Some(target)) => FoundKind::Symlink(target.clone()),
                    (None, None) => FoundKind::Dir,
                };
                Some(Found {
                    dest: item.dest.clone(),
                    kind,
                    origin: PathBuf::from(&item.dest),
                    mode: item.mode,
                })
            })
            .collect()
    }

    /// The path of the file with this digest (64 hex digits, nothing else).
    fn file(&self, sha: &str) -> Option<PathBuf> {
        let hex = sha.strip_prefix("sha256:")?;
        let ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| self.files.join(hex))
    }

    fn save(&self, key: &str, record: &Record) -> Result<()> {
        let path = self.picks.join(format!("{key}.json"));
        let mut tmp = tempfile::NamedTempFile::new_in(&self.picks).ctx("write", &path)?;
        serde_json::to_writer(&mut tmp, record)
            .map_err(std::io::Error::from)
            .ctx("write", &path)?;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .ctx("write", &path)?;
        Ok(())
    }

    /// Copy the bytes of every entry in `wanted` out of its layer into
    /// `files/`, each layer read once; returns each entry's digest.
    fn fill(
        &self,
        opened: &Opened,
        wanted: &BTreeMap<DataRef, u64>,
        text: &str,
    ) -> Result<BTreeMap<DataRef, String>> {
        let mut by_layer: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
        for d in wanted.keys() {
            by_layer.entry(d.layer).or_default().insert(d.entry);
        }
        let mut stored = BTreeMap::new();
        for (layer, entries) in by_layer {
            let name = format!("{}", layer + 1);
            let blob = opened
                .layers
                .get(layer)
                .ok_or_else(|| image_error(text, format!("layer {name} is missing")))?;
            let (reader, compression) = blob.reader(&name, text)?;
            let fail = |e: std::io::Error| image_error(text, format!("layer {name}: {e}"));
            let decoder = crate::image::decode::decoder(reader, compression).map_err(fail)?;
            let tar = crate::image::decode::ZeroTail::new(decoder);
            read_entries(tar, &entries, &mut |entry, data| {
                let at = DataRef { layer, entry };
                let (sha, size) = self.put(data)?;
                if size != wanted[&at] {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "entry {} ends after {size} of its {} bytes",
                            entry + 1,
                            wanted[&at]
                        ),
                    ));
                }
                stored.insert(at, sha);
                Ok(())
            })
            .map_err(fail)?;
        }
        Ok(stored)
    }

    /// Store `data` under its digest: written to a temp file, then renamed.
    fn put(&self, data: &mut dyn Read) -> std::io::Result<(String, u64)> {
        let tmp = crate::tmp::TempFile::new_in(&self.files, "file")
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut writer = HashWriter::new(std::io::BufWriter::with_capacity(1 << 20, tmp.file()));
        std::io::copy(data, &mut writer)?;
        let (buffered, sha, size) = writer.finish();
        buffered.into_inner().map_err(|e| e.into_error())?;
        let path = self.file(&sha).expect("a sha256 digest");
        if !path.is_file() {
            tmp.persist(&path)?;
        }
        Ok((sha, size))
    }
}

/// The stamp of a stored file whose size and digest are as named.
fn verify(path: &Path, sha: &str, size: u64) -> Option<Stamp> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() != size {
        return None;
    }
    let (got, _) = digest::HashReader::new(fs::File::open(path).ok()?)
        .finish()
        .ok()?;
    (got == sha).then(|| Stamp::of(&meta))
}

fn image_error(text: &str, msg: impl Into<String>) -> Error {
    inspect::image_error(text, msg)
}

#[cfg(test)]
mod tests;
