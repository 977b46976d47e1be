//! What goes into each new layer: every path with its content, owner and
//! mode, decided before a byte is written. Owners are resolved here, the
//! layers are grouped, duplicates refused, and parent directories filled in
//! without clobbering the base's.

pub mod accounts;
pub mod extract;
pub mod sources;
mod system;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::image::base::{Base, Kind};
use crate::plan::accounts::Accounts;
use crate::plan::extract::Extracted;
use crate::spec::validate::{Id, Owner, Span, Spec};
use sources::{FoundKind, Stamp};

pub enum Content {
    Dir,
    File {
        src: PathBuf,
        size: u64,
        stamp: Stamp,
        /// Another path of the same layer, earlier in path order, that is the
        /// same source inode with the same owner, mode and capabilities: this
        /// entry is a hard link to it (see `Planner::hard_links`).
        hardlink: Option<String>,
    },
    Bytes(Vec<u8>),
    Symlink(String),
}

impl Content {
    /// Bytes of file content this entry puts in a layer.
    pub fn size(&self) -> u64 {
        match self {
            Content::File {
                hardlink: Some(_), ..
            } => 0,
            Content::File { size, .. } => *size,
            Content::Bytes(b) => b.len() as u64,
            Content::Dir | Content::Symlink(_) => 0,
        }
    }
}

pub struct Entry {
    pub content: Content,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// File capabilities (bit N: capability N), written as the
    /// `security.capability` xattr; 0 for none.
    pub caps: u64,
}

pub struct LayerPlan {
    /// Shown in history as what made the layer.
    pub created_by: Vec<String>,
    /// Absolute paths in the image, sorted: parents come before children.
    pub entries: BTreeMap<String, Entry>,
    /// What placed each file and link of `entries` (not the directories),
    /// for the SBOM.
    pub origins: BTreeMap<String, Arc<Origin>>,
}

/// What placed a path: the spec entry, for the duplicate-destination error
/// and the SBOM. One is shared by all the files of a copy entry, so that
/// big trees cost little memory.
#[derive(Debug)]
pub struct Origin {
    /// As messages name it: "the copy of `app/`", "[user]".
    pub what: String,
    /// The entry's place in the spec text; None for what kiln adds itself.
    pub at: Option<Span>,
    /// For a copy out of an image: the image as written and the manifest
    /// digest it resolved to.
    pub image: Option<(String, String)>,
}

impl Origin {
    fn new(what: impl Into<String>, at: Option<&Span>) -> Arc<Origin> {
        Arc::new(Origin {
            what: what.into(),
            at: at.cloned(),
            image: None,
        })
    }
}

const SYSTEM: &str = "";

/// `images[i]` holds what copy `i` takes from an image (see `extract`).
pub fn plan(
    spec: &Spec,
    base: &Base,
    accounts: &Accounts,
    images: &[Option<Extracted>],
) -> Result<Vec<LayerPlan>> {
    let mut p = Planner {
        spec,
        base,
        accounts,
        names: vec![SYSTEM.to_string()],
        layers: vec![LayerPlan {
            created_by: Vec::new(),
            entries: BTreeMap::new(),
            origins: BTreeMap::new(),
        }],
        dirs: BTreeMap::new(),
        inodes: BTreeMap::new(),
    };
    p.system()?;
    for (n, copy) in spec.copies.iter().enumerate() {
        let layer = match &copy.layer {
            Some(name) => p.layer(name),
            None => p.new_layer(),
        };
        let (uid, gid) = p.owner(copy.owner.as_ref())?;
        let err = |msg: String| spec.source.error(copy.at.clone(), msg);
        let from_image = copy
            .image
            .as_ref()
            .zip(images.get(n).and_then(Option::as_ref));
        let origin = Arc::new(match from_image {
            None => Origin {
                what: format!("the copy of `{}`", copy.src),
                at: Some(copy.at.clone()),
                image: None,
            },
            Some((source, e)) => Origin {
                what: format!("the copy of `{}` from {}", copy.src, source.text),
                at: Some(copy.at.clone()),
                image: Some((source.text.clone(), e.digest.clone())),
            },
        });
        let mut add = |f: sources::Found| {
            let (content, mode) = match f.kind {
                FoundKind::Dir => {
                    // A destination the base already has keeps its owner and mode, as with COPY.
                    if f.dest == copy.dest && p.base_dir(&f.dest) {
                        return Ok(());
                    }
                    let mode = match copy.preserve_mode {
                        true => preserved_dir(f.mode),
                        false => 0o755,
                    };
                    (Content::Dir, copy.dir_mode.unwrap_or(mode))
                }
                FoundKind::File {
                    size,
                    executable,
                    stamp,
                } => (
                    Content::File {
                        src: f.origin,
                        size,
                        stamp,
                        hardlink: None,
                    },
                    copy.mode.unwrap_or(match (copy.preserve_mode, executable) {
                        (true, _) => preserved_file(f.mode),
                        (false, true) => 0o755,
                        (false, false) => 0o644,
                    }),
                ),
                FoundKind::Symlink(target) => (Content::Symlink(target), 0o777),
            };
            // Local files that are hard links of one inode may stay so (see
            // `hard_links`); one file reached through followed symlinks is
            // copied, as docker copies it.
            let inode = match (&content, from_image) {
                (Content::File { stamp, .. }, None) if stamp.links > 1 => {
                    Some((stamp.device, stamp.inode))
                }
                _ => None,
            };
            let caps = match content {
                Content::File { .. } => copy.capabilities,
                _ => 0,
            };
            let entry = Entry {
                content,
                uid,
                gid,
                mode,
                caps,
            };
            p.add(layer, &f.dest, entry, origin.clone())?;
            if let Some((device, inode)) = inode {
                let path = p.base.fs.resolve_parents(&f.dest);
                p.inodes
                    .entry((layer, device, inode))
                    .or_default()
                    .push(path);
            }
            Ok(())
        };
        match from_image {
            None => sources::collect(copy, &spec.dir, spec.ignore.as_ref(), &err, &mut add)?,
            Some((_, e)) => {
                for f in &e.found {
                    add(f.clone())?;
                }
            }
        }
        let chown = copy
            .owner
            .as_ref()
            .map(|_| format!("--chown={uid}:{gid} "))
            .unwrap_or_default();
        let dest = if copy.dest_is_dir && copy.dest != "/" {
            format!("{}/", copy.dest)
        } else {
            copy.dest.clone()
        };
        let from = match from_image {
            Some((source, _)) if source.text.contains('@') => format!("--from={} ", source.text),
            Some((source, e)) => format!("--from={}@{} ", source.text, e.digest),
            None => String::new(),
        };
        p.layers[layer]
            .created_by
            .push(format!("COPY {from}{chown}{} {dest} # kiln", copy.src));
    }
    p.workdir()?;
    Ok(p.finish())
}

/// A source file's bits as `mode = "preserve"` keeps them: setuid and setgid
/// are taken off (an explicit octal mode can still set them).
fn preserved_file(mode: u32) -> u32 {
    mode & 0o1777
}

/// A source directory's bits: setgid (new files take the directory's group)
/// and sticky stay, setuid (meaningless on Linux) goes.
fn preserved_dir(mode: u32) -> u32 {
    mode & 0o3777
}

struct Planner<'a> {
    spec: &'a Spec,
    base: &'a Base,
    accounts: &'a Accounts,
    names: Vec<String>,
    layers: Vec<LayerPlan>,
    /// Directories someone asked for, with their final owner and mode.
    dirs: BTreeMap<String, (u32, u32, u32)>,
    /// The paths of local source files by layer, device and inode.
    inodes: BTreeMap<(usize, u64, u64), Vec<String>>,
}

impl Planner<'_> {
    fn new_layer(&mut self) -> usize {
        self.names.push(String::new());
        self.layers.push(LayerPlan {
            created_by: Vec::new(),
            entries: BTreeMap::new(),
            origins: BTreeMap::new(),
        });
        self.layers.len() - 1
    }

    fn layer(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                let i = self.new_layer();
                self.names[i] = name.to_string();
                i
            }
        }
    }

    fn layer_or_system(&mut self, name: &Option<String>) -> usize {
        name.as_deref().map_or(0, |n| self.layer(n))
    }

    fn base_dir(&self, path: &str) -> bool {
        self.base
            .fs
            .entries
            .get(path)
            .is_some_and(|m| m.kind == Kind::Dir)
    }

    fn owner(&self, owner: Option<&Owner>) -> Result<(u32, u32)> {
        let Some(owner) = owner else {
            return Ok((0, 0));
        };
        let unknown = |what: &str, name: &str| -> Error {
            self.spec
                .source
                .error(
                    owner.at.clone(),
                    format!(
                        "owner `{}`: no {what} `{name}` in [user] or the base's /etc/{}",
                        owner.text,
                        if what == "user" { "passwd" } else { "group" }
                    ),
                )
                .with_hint("define it in [user], or write numeric ids like \"10001:10001\"")
        };
        let (uid, primary_gid) = match &owner.user {
            Id::Num(n) => (*n, *n),
            Id::Name(name) => self
                .accounts
                .user(name)
                .ok_or_else(|| unknown("user", name))?,
        };
        let gid = match &owner.group {
            None => primary_gid,
            Some(Id::Num(n)) => *n,
            Some(Id::Name(name)) => self
                .accounts
                .group_id(name)
                .ok_or_else(|| unknown("group", name))?,
        };
        Ok((uid, gid))
    }

    /// Place one entry; the same file twice, or a file where a directory is, is an error.
    fn add(&mut self, layer: usize, path: &str, entry: Entry, origin: Arc<Origin>) -> Result<()> {
        let path = self.base.fs.resolve_parents(path);
        if path == "/" {
            return Ok(());
        }
        let is_dir = matches!(entry.content, Content::Dir);
        // Each layer's map of what placed its files is the only one: a
        // second map of every path would cost W4 (24,500 files) 5 MiB.
        if let Some(first) = self.layers.iter().find_map(|l| l.origins.get(&path)) {
            return Err(self.conflict(&path, &first.what, &origin.what));
        }
        if is_dir {
            self.dirs
                .insert(path.clone(), (entry.uid, entry.gid, entry.mode));
        } else {
            if self.dirs.contains_key(&path) {
                return Err(self.conflict(&path, "a directory", &origin.what));
            }
            self.layers[layer].origins.insert(path.clone(), origin);
        }
        self.layers[layer].entries.insert(path, entry);
        Ok(())
    }

    fn conflict(&self, path: &str, first: &str, second: &str) -> Error {
        Error::Usage {
            what: self.spec.source.path.display().to_string(),
            msg: format!("`{path}` is written twice: by {first} and by {second}"),
            hint: Some("give each destination one source, or exclude one of them".into()),
        }
    }

    /// Local source paths that are one inode within one layer are stored once:
    /// the first in path order as a file, the others as hard links to it.
    /// A tar hard link shares its target's owner and mode, so only paths
    /// whose entries agree on owner, mode and capabilities are linked.
    fn hard_links(&mut self) {
        for ((layer, _, _), paths) in std::mem::take(&mut self.inodes) {
            if paths.len() < 2 {
                continue;
            }
            let entries = &mut self.layers[layer].entries;
            let mut sorted = paths;
            sorted.sort();
            let mut targets: Vec<(String, (u32, u32, u32, u64))> = Vec::new();
            for path in sorted {
                let Some(e) = entries.get_mut(&path) else {
                    continue;
                };
                let Content::File { hardlink, .. } = &mut e.content else {
                    continue;
                };
                let meta = (e.uid, e.gid, e.mode, e.caps);
                match targets.iter().find(|(_, m)| *m == meta) {
                    Some((target, _)) => *hardlink = Some(target.clone()),
                    None => targets.push((path, meta)),
                }
            }
        }
    }

    /// Give every directory its final owner and mode, add missing parents,
    /// and drop empty layers.
    fn finish(mut self) -> Vec<LayerPlan> {
        self.hard_links();
        let dirs = &self.dirs;
        let base = &self.base.fs;
        for layer in &mut self.layers {
            // Ancestors missing from the layer; stop climbing at the first one
            // present, so a big tree costs one lookup per path.
            let mut parents = std::collections::BTreeSet::new();
            for path in layer.entries.keys() {
                let mut p = path.as_str();
                while let Some(i) = p.rfind('/') {
                    p = &p[..i];
                    if p.is_empty()
                        || layer.entries.contains_key(p)
                        || !parents.insert(p.to_string())
                    {
                        break;
                    }
                }
            }
            for parent in parents {
                // The base's own directory (or link) is left alone; others are created 0:0 0755.
                match base.entries.get(&parent) {
                    Some(meta) if meta.kind != Kind::Dir => continue,
                    Some(meta) => {
                        let (uid, gid, mode) = dirs
                            .get(&parent)
                            .copied()
                            .unwrap_or((meta.uid, meta.gid, meta.mode));
                        layer.entries.insert(
                            parent,
                            Entry {
                                content: Content::Dir,
                                uid,
                                gid,
                                mode,
                                caps: 0,
                            },
                        );
                    }
                    None => {
                        let (uid, gid, mode) = dirs.get(&parent).copied().unwrap_or((0, 0, 0o755));
                        layer.entries.insert(
                            parent,
                            Entry {
                                content: Content::Dir,
                                uid,
                                gid,
                                mode,
                                caps: 0,
                            },
                        );
                    }
                }
            }
            for (path, entry) in layer.entries.iter_mut() {
                if let (Content::Dir, Some(&(uid, gid, mode))) = (&entry.content, dirs.get(path)) {
                    (entry.uid, entry.gid, entry.mode) = (uid, gid, mode);
                }
            }
        }
        self.layers.retain(|l| !l.entries.is_empty());
        self.layers
    }
}
