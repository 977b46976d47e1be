//! The image's files as the checks see them: the base's, then the new
//! layers', with symlinks resolved inside the image.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;

use crate::check::elf;
use crate::image::base::{Base, Kind, Meta};
use crate::oci::runas::RunAs;
use crate::plan::{Content, Entry, LayerPlan};

/// The image's files: the base's, then the new layers', links resolved.
pub(super) struct Files<'a> {
    pub base: &'a Base,
    pub plans: &'a [LayerPlan],
}

/// What a path leads to once its links are followed.
pub(super) enum Found<'a> {
    /// A new layer's entry (never a symlink).
    New(&'a Entry),
    /// A base file or directory (never a symlink).
    Base(Meta),
}

impl Found<'_> {
    pub fn is_dir(&self) -> bool {
        match self {
            Found::New(e) => matches!(e.content, Content::Dir),
            Found::Base(m) => m.kind == Kind::Dir,
        }
    }

    /// A regular file with an execute bit: what PATH lookup (Go's
    /// exec.LookPath, in runc) accepts.
    pub fn is_executable(&self) -> bool {
        self.is_file() && self.mode() & 0o111 != 0
    }

    /// Whether `execve` lets `run` start it: root needs any execute bit,
    /// anyone else the owner's, the group's or the others' bit that applies.
    pub fn executable_by(&self, run: &RunAs) -> bool {
        if !self.is_executable() {
            return false;
        }
        let (uid, gid) = self.owner();
        let bit = if run.uid == 0 {
            0o111
        } else if run.uid == i64::from(uid) {
            0o100
        } else if run.gid == i64::from(gid) || run.groups.contains(&i64::from(gid)) {
            0o010
        } else {
            0o001
        };
        self.mode() & bit != 0
    }

    fn is_file(&self) -> bool {
        match self {
            Found::New(e) => matches!(e.content, Content::File { .. } | Content::Bytes(_)),
            Found::Base(m) => m.kind == Kind::File,
        }
    }

    pub fn mode(&self) -> u32 {
        match self {
            Found::New(e) => e.mode,
            Found::Base(m) => m.mode,
        }
    }

    fn owner(&self) -> (u32, u32) {
        match self {
            Found::New(e) => (e.uid, e.gid),
            Found::Base(m) => (m.uid, m.gid),
        }
    }
}

impl Files<'_> {
    /// An account file as the image will have it: a new layer's, else the base's.
    pub fn account_file(&self, path: &str, base: Option<&Vec<u8>>) -> Option<Vec<u8>> {
        let new = self.plans.iter().rev().find_map(|p| p.entries.get(path));
        match new.map(|e| &e.content) {
            None => base.cloned(),
            Some(Content::Bytes(b)) => Some(b.clone()),
            Some(Content::File { src, .. }) => {
                let mut bytes = Vec::new();
                let file = File::open(src).ok()?;
                file.take(16 << 20).read_to_end(&mut bytes).ok()?;
                Some(bytes)
            }
            // A directory or a link there: runc cannot read it as a file.
            Some(Content::Dir | Content::Symlink(_)) => None,
        }
    }

    /// What `path` names in the image, its links followed (at most 16).
    pub fn find(&self, path: &str) -> Option<Found<'_>> {
        let mut path = self.base.fs.resolve_parents(path);
        for _ in 0..16 {
            let new = self.plans.iter().rev().find_map(|p| p.entries.get(&path));
            let target = match new {
                Some(e) => match &e.content {
                    Content::Symlink(t) => t.clone(),
                    _ => return Some(Found::New(e)),
                },
                None => {
                    let m = self.base.fs.entries.get(&path)?;
                    if m.kind != Kind::Symlink {
                        return Some(Found::Base(m));
                    }
                    self.base.fs.links.get(&path)?
                }
            };
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            let joined = if target.starts_with('/') {
                target
            } else {
                format!("{parent}/{target}")
            };
            path = self
                .base
                .fs
                .resolve_parents(&crate::image::base::resolve_dots(&joined));
        }
        None
    }

    /// The first `elf::HEAD` bytes of a file, when they can be read: a
    /// local source's from the disk, an inline or extracted file's from
    /// the plan, a base file's from its layer blob.
    pub fn head(&self, found: &Found) -> Option<Vec<u8>> {
        match found {
            Found::New(e) => match &e.content {
                Content::File { src, .. } => elf::read_head(File::open(src).ok()?).ok(),
                Content::Bytes(b) => Some(b[..b.len().min(elf::HEAD as usize)].to_vec()),
                Content::Dir | Content::Symlink(_) => None,
            },
            Found::Base(m) => self.base_head(m),
        }
    }

    /// A base file's head: kept in the base's view, or read from the layer
    /// that holds its bytes (a hard link's bytes are its target's entry). A
    /// layer that cannot be read again gives None, and the caller skips
    /// what needed it.
    fn base_head(&self, m: &Meta) -> Option<Vec<u8>> {
        let at = m.data?;
        let mut read = self
            .base
            .file_bytes(&BTreeSet::from([at]), elf::HEAD)
            .ok()?;
        read.remove(&at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(uid: u32, gid: u32, mode: u32) -> Entry {
        Entry {
            content: Content::Bytes(b"#!/bin/sh\n".to_vec()),
            uid,
            gid,
            mode,
            caps: 0,
        }
    }

    fn run(uid: i64, gid: i64, groups: &[i64]) -> RunAs {
        RunAs {
            uid,
            gid,
            groups: groups.to_vec(),
            name: None,
        }
    }

    #[test]
    fn execute_permission_is_judged_for_the_user() {
        let root_only = file(0, 0, 0o700);
        let f = Found::New(&root_only);
        assert!(f.is_executable());
        assert!(f.executable_by(&run(0, 0, &[])));
        assert!(!f.executable_by(&run(10001, 10001, &[])));

        let group = file(0, 50, 0o750);
        let f = Found::New(&group);
        assert!(f.executable_by(&run(10001, 50, &[])));
        assert!(f.executable_by(&run(10001, 10001, &[50])));
        assert!(!f.executable_by(&run(10001, 10001, &[])));

        // The owner's bits apply to the owner, even when others' would allow.
        let odd = file(10001, 0, 0o611);
        assert!(!Found::New(&odd).executable_by(&run(10001, 10001, &[])));
        assert!(Found::New(&odd).executable_by(&run(10002, 10002, &[])));

        let plain = file(0, 0, 0o644);
        assert!(!Found::New(&plain).is_executable());
        assert!(!Found::New(&plain).executable_by(&run(0, 0, &[])));
        let dir = Entry {
            content: Content::Dir,
            uid: 0,
            gid: 0,
            mode: 0o755,
            caps: 0,
        };
        assert!(!Found::New(&dir).is_executable());
    }
}
