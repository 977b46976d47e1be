//! An image's filesystem as its layers leave it, held in memory: each path
//! with its kind, owner, mode and size, each symlink's target, and for each
//! regular file the layer entry that holds its bytes.
//!
//! Layers are applied as a runtime applies them (containerd, runc's tools):
//! entries are read through their effective fields (PAX and GNU long names
//! and link targets, PAX sizes and ids, GNU sparse maps); names are cleaned
//! so they never rise above `/`; symlinked parents are resolved inside the
//! image; a hard link shares its target's bytes and metadata; whiteouts and
//! opaque directories remove what lower layers put there. All of it happens
//! in this map. No name from an image ever becomes a host path.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::image::paths::Paths;
use crate::shown::escape as shown;

/// Largest account file (/etc/passwd, /etc/group, /etc/shadow, /etc/gshadow) kept from an image.
pub const MAX_ACCOUNT_FILE: u64 = 16 << 20;

/// Symlinks followed while resolving one path, as Linux's MAXSYMLINKS.
const MAX_HOPS: usize = 40;

/// Longest name read from a layer, Linux's PATH_MAX: no runtime could
/// create a longer one, and each name costs memory for every directory in it.
const MAX_NAME: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// Devices, FIFOs and entry types kiln does not copy.
    Other,
}

/// Where a regular file's bytes are: the layer (from 0) and the entry's
/// number in that layer's tar, counting the entries `tar` yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataRef {
    pub layer: usize,
    pub entry: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Bytes of a regular file; 0 for the rest.
    pub size: u64,
    /// Which layer (from 0) last wrote the path.
    pub layer: usize,
    /// A regular file's bytes.
    pub data: Option<DataRef>,
}

/// The image's filesystem as the last of its layers leaves it.
#[derive(Default)]
pub struct FsView {
    pub entries: Paths<Meta>,
    pub passwd: Option<Vec<u8>>,
    pub group: Option<Vec<u8>>,
    pub shadow: Option<Vec<u8>>,
    pub gshadow: Option<Vec<u8>>,
    /// Symlink targets, to resolve destinations through the base's links (`/bin` -> `usr/bin`).
    pub links: Paths<String>,
    /// Names that are not UTF-8, skipped: (the lossy name, layer).
    pub skipped: Vec<(String, usize)>,
    /// The bytes of the files `contents::kept` names, by where they are.
    pub contents: BTreeMap<DataRef, Vec<u8>>,
    /// How many bytes were put in `contents`, for its cap.
    pub kept_bytes: u64,
}

pub const ACCOUNT_FILES: [&str; 4] = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"];

impl FsView {
    /// Resolve symlinks among the ancestors of `path` the way a runtime
    /// extracting a layer would, staying inside the image's root.
    pub fn resolve_parents(&self, path: &str) -> String {
        self.resolve(path, false)
            .unwrap_or_else(|| path.to_string())
    }

    /// `path` with every symlink on the way resolved inside the image, the
    /// last one too (as `COPY --from` reads a named link).
    pub fn follow(&self, path: &str) -> String {
        self.resolve(path, true).unwrap_or_else(|| path.to_string())
    }

    /// Resolve links in `path` (in its last part too with `last`); None
    /// after more than MAX_HOPS links.
    fn resolve(&self, path: &str, last: bool) -> Option<String> {
        let mut hops = 0;
        let mut current = resolve_dots(path);
        'outer: loop {
            let parts: Vec<&str> = current.split('/').filter(|p| !p.is_empty()).collect();
            let upto = if last {
                parts.len()
            } else {
                parts.len().saturating_sub(1)
            };
            let mut prefix = String::new();
            for (i, part) in parts.iter().enumerate().take(upto) {
                prefix.push('/');
                prefix.push_str(part);
                if let Some(target) = self.links.get(&prefix) {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return None;
                    }
                    let parent = split(&prefix).0;
                    let joined = if target.starts_with('/') {
                        target.clone()
                    } else {
                        format!("{parent}/{target}")
                    };
                    let rest = parts[i + 1..].join("/");
                    current = resolve_dots(&format!("{joined}/{rest}"));
                    continue 'outer;
                }
            }
            return Some(current);
        }
    }

    /// Account files whose bytes were not read with the layers: a hard link
    /// put them there. `contents::finish` reads them.
    pub fn unread_accounts(&self) -> Vec<(&'static str, DataRef)> {
        ACCOUNT_FILES
            .iter()
            .filter(|p| self.account(p).is_none())
            .filter_map(|p| Some((*p, self.entries.get(p)?.data?)))
            .collect()
    }

    pub fn set_account(&mut self, path: &str, bytes: Vec<u8>) {
        if let Some(slot) = self.account_slot(path) {
            *slot = Some(bytes);
        }
    }

    fn account(&self, path: &str) -> Option<&Vec<u8>> {
        match path {
            "/etc/passwd" => self.passwd.as_ref(),
            "/etc/group" => self.group.as_ref(),
            "/etc/shadow" => self.shadow.as_ref(),
            "/etc/gshadow" => self.gshadow.as_ref(),
            _ => None,
        }
    }

    fn account_slot(&mut self, path: &str) -> Option<&mut Option<Vec<u8>>> {
        match path {
            "/etc/passwd" => Some(&mut self.passwd),
            "/etc/group" => Some(&mut self.group),
            "/etc/shadow" => Some(&mut self.shadow),
            "/etc/gshadow" => Some(&mut self.gshadow),
            _ => None,
        }
    }

    /// Remove `path` and everything under it.
    fn remove_tree(&mut self, path: &str) {
        let doomed: Vec<String> = std::iter::once(path.to_string())
            .chain(self.under(path))
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }

    /// The paths strictly under `dir`.
    pub fn under(&self, dir: &str) -> impl Iterator<Item = String> + '_ {
        let prefix = child_prefix(dir);
        self.entries
            .from(&prefix)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| *k != "/")
            .map(|(k, _)| k.into_owned())
    }

    /// The names directly in `dir`, sorted. What is under each child is
    /// stepped over, not read: `name/...` sorts just before `name0`.
    pub fn children(&self, dir: &str) -> Vec<String> {
        let prefix = child_prefix(dir);
        let mut out = BTreeSet::new();
        // The next path at or after `from`, or strictly after it.
        let (mut from, mut after) = (prefix.clone(), false);
        loop {
            let next = self
                .entries
                .from(&from)
                .find(|(k, _)| !(after && *k == from))
                .map(|(k, _)| k.into_owned());
            let Some(key) = next else { break };
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            // A child and where to look next: past it, or past all under it.
            let (child, skip) = match rest.split_once('/') {
                _ if rest.is_empty() => (None, None),
                None => (Some(rest.to_string()), None),
                Some((name, _)) => (Some(name.to_string()), Some(format!("{prefix}{name}0"))),
            };
            out.extend(child);
            (from, after) = match skip {
                Some(skip) => (skip, false),
                None => (key, true),
            };
        }
        out.into_iter().collect()
    }

    fn remove(&mut self, path: &str) {
        self.entries.remove(path);
        self.links.remove(path);
        if let Some(slot) = self.account_slot(path) {
            *slot = None;
        }
    }
}

/// Collapse `.` and `..` in a path, never going above `/`; the result is absolute.
pub fn resolve_dots(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    format!("/{}", out.join("/"))
}

/// What a layer entry named `name` in directory `parent` means, if it is a whiteout.
pub enum Whiteout {
    /// `.wh..wh..opq`: what earlier layers put in `parent` is gone.
    Opaque,
    /// `.wh.NAME`: this path (and what is under it) is gone.
    Remove(String),
}

pub fn whiteout(parent: &str, name: &str) -> Option<Whiteout> {
    if name == ".wh..wh..opq" {
        return Some(Whiteout::Opaque);
    }
    let hidden = name.strip_prefix(".wh.")?;
    if hidden.is_empty() {
        return None;
    }
    Some(Whiteout::Remove(if parent == "/" {
        format!("/{hidden}")
    } else {
        format!("{parent}/{hidden}")
    }))
}

pub fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

fn child_prefix(dir: &str) -> String {
    if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    }
}

fn refuse(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// Apply one layer's tar stream to `fs` as layer number `layer`.
pub fn apply_layer(reader: impl Read, fs: &mut FsView, layer: usize) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    let mut added = BTreeSet::new();
    for (number, entry) in archive.entries()?.enumerate() {
        let mut entry = entry?;
        let at = DataRef {
            layer,
            entry: number as u64,
        };
        apply_entry(&mut entry, at, fs, &mut added)?;
    }
    Ok(())
}

fn apply_entry(
    entry: &mut tar::Entry<impl Read>,
    at: DataRef,
    fs: &mut FsView,
    added: &mut BTreeSet<String>,
) -> std::io::Result<()> {
    let kind = entry.header().entry_type();
    if kind.is_pax_global_extensions() {
        return Ok(());
    }
    let raw = entry.path_bytes().into_owned();
    let Ok(name) = std::str::from_utf8(&raw) else {
        fs.skipped
            .push((String::from_utf8_lossy(&raw).into_owned(), at.layer));
        return Ok(());
    };
    if name.len() > MAX_NAME {
        return Err(refuse(format!(
            "an entry's name is {} bytes long, more than the {MAX_NAME} a runtime can create (it starts `{}`)",
            name.len(),
            shown(&name.chars().take(80).collect::<String>())
        )));
    }
    let named = resolve_dots(name);
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            if ext?.key_bytes().starts_with(b"GNU.sparse.") {
                return Err(refuse(format!(
                    "`{}` is a PAX sparse file, which kiln does not read",
                    shown(&named)
                )));
            }
        }
    }
    if named == "/" {
        // The root's own entry (`./`): its owner and mode, nothing to replace.
        if kind == tar::EntryType::Directory {
            let meta = Meta {
                kind: Kind::Dir,
                ..header_meta(entry.header(), at.layer)
            };
            fs.entries.insert(named, meta);
        }
        return Ok(());
    }
    let (parent, base) = split(&named);
    // Every directory in the map has only directories above it, so a
    // parent found there as a directory needs no resolving.
    let parent = match fs.entries.get(parent) {
        Some(m) if m.kind == Kind::Dir => parent.to_string(),
        _ => fs.follow(parent),
    };
    match whiteout(&parent, base) {
        Some(Whiteout::Opaque) => {
            let doomed: Vec<String> = fs.under(&parent).filter(|k| !added.contains(k)).collect();
            for k in doomed {
                fs.remove(&k);
            }
            return Ok(());
        }
        Some(Whiteout::Remove(target)) => {
            fs.remove_tree(&target);
            return Ok(());
        }
        None => {}
    }
    let path = if parent == "/" {
        format!("/{base}")
    } else {
        format!("{parent}/{base}")
    };
    make_parents(fs, &parent, at.layer, &path)?;
    let mut meta = header_meta(entry.header(), at.layer);
    let mut link = None;
    match kind {
        tar::EntryType::Directory => meta.kind = Kind::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            meta.kind = Kind::File;
            meta.size = entry.size();
            meta.data = Some(at);
        }
        tar::EntryType::Symlink => {
            meta.kind = Kind::Symlink;
            let target = entry.link_name_bytes().unwrap_or_default();
            let target = std::str::from_utf8(&target).map_err(|_| {
                refuse(format!(
                    "symlink `{}` has a target that is not UTF-8",
                    shown(&path)
                ))
            })?;
            link = Some(target.to_string());
        }
        tar::EntryType::Link => {
            let target = entry.link_name_bytes().unwrap_or_default();
            let target = resolve_dots(&String::from_utf8_lossy(&target));
            let real = fs.follow(&target);
            match fs.entries.get(&real) {
                Some(m) if m.kind == Kind::File => {
                    meta = Meta {
                        layer: at.layer,
                        ..m
                    };
                }
                _ => {
                    return Err(refuse(format!(
                        "hard link `{}` points to `{}`, which is not a regular file in the image",
                        shown(&path),
                        shown(&target)
                    )));
                }
            }
        }
        _ => {}
    }
    // A directory over a directory keeps what is in it; anything else replaces the path whole.
    let keeps_children = meta.kind == Kind::Dir
        && fs
            .entries
            .get(&path)
            .is_some_and(|old| old.kind == Kind::Dir);
    if keeps_children {
        fs.links.remove(&path);
    } else {
        fs.remove_tree(&path);
    }
    if let Some(target) = link {
        fs.links.insert(path.clone(), target);
    }
    if meta.kind == Kind::File && kind != tar::EntryType::Link {
        if let Some(slot) = fs.account_slot(&path) {
            let mut bytes = Vec::new();
            entry.take(MAX_ACCOUNT_FILE).read_to_end(&mut bytes)?;
            *slot = Some(bytes);
        } else if meta.size <= crate::image::contents::MAX_KEPT
            && fs.kept_bytes + meta.size <= crate::image::contents::MAX_KEPT_TOTAL
            && crate::image::contents::kept(&path)
        {
            let mut bytes = Vec::new();
            entry.take(meta.size).read_to_end(&mut bytes)?;
            fs.kept_bytes += bytes.len() as u64;
            fs.contents.insert(at, bytes);
        }
    }
    added.insert(path.clone());
    fs.entries.insert(path, meta);
    Ok(())
}

/// Owner and mode as the header has them (PAX ids already applied by `tar`).
fn header_meta(header: &tar::Header, layer: usize) -> Meta {
    Meta {
        kind: Kind::Other,
        uid: u32::try_from(header.uid().unwrap_or(0)).unwrap_or(u32::MAX),
        gid: u32::try_from(header.gid().unwrap_or(0)).unwrap_or(u32::MAX),
        mode: header.mode().unwrap_or(0o755) & 0o7777,
        size: 0,
        layer,
        data: None,
    }
}

/// Directories a runtime creates for an entry whose parents no layer named;
/// a parent that is not a directory is refused, as runtimes refuse it.
fn make_parents(fs: &mut FsView, dir: &str, layer: usize, path: &str) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut current = dir.to_string();
    while current != "/" {
        match fs.entries.get(&current) {
            Some(m) if m.kind == Kind::Dir => break,
            Some(_) => {
                return Err(refuse(format!(
                    "`{}` is under `{}`, which is not a directory",
                    shown(path),
                    shown(&current)
                )));
            }
            None => missing.push(current.clone()),
        }
        current = split(&current).0.to_string();
    }
    for d in missing {
        fs.entries.insert(
            d,
            Meta {
                kind: Kind::Dir,
                uid: 0,
                gid: 0,
                mode: 0o755,
                size: 0,
                layer,
                data: None,
            },
        );
    }
    Ok(())
}

/// Hand each entry of one layer's tar stream that `wanted` names to `take`,
/// with its number and its bytes; reading stops after the last one.
pub fn read_entries(
    reader: impl Read,
    wanted: &BTreeSet<u64>,
    take: &mut dyn FnMut(u64, &mut dyn Read) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let Some(&last) = wanted.iter().next_back() else {
        return Ok(());
    };
    let mut archive = tar::Archive::new(reader);
    for (number, entry) in archive.entries()?.enumerate() {
        let mut entry = entry?;
        let number = number as u64;
        if wanted.contains(&number) {
            let size = entry.size();
            let mut limited = (&mut entry).take(size);
            take(number, &mut limited)?;
        }
        if number >= last {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
