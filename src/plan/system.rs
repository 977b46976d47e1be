//! What the spec adds besides copies: the account files, the app user's
//! home (with the base's /etc/skel when asked), `[[dir]]`, `[[file]]`,
//! `[[symlink]]`, and the workdir.

use std::collections::BTreeMap;

use super::{Content, Entry, Origin, Planner};
use crate::error::{Error, Result};
use crate::image::base::{Kind, Meta};
use crate::image::fsview::{DataRef, MAX_ACCOUNT_FILE};

impl Planner<'_> {
    pub(super) fn system(&mut self) -> Result<()> {
        let spec = self.spec;
        if self.accounts.changed {
            let files = [
                ("/etc/passwd", Some(self.accounts.passwd.clone()), 0o644),
                ("/etc/group", Some(self.accounts.group.clone()), 0o644),
                ("/etc/shadow", self.accounts.shadow.clone(), 0o640),
                ("/etc/gshadow", self.accounts.gshadow.clone(), 0o640),
            ];
            for (path, bytes, mode) in files {
                let Some(bytes) = bytes else { continue };
                let (uid, gid, mode) = match self.base.fs.entries.get(path) {
                    Some(m) => (m.uid, m.gid, m.mode),
                    None => (0, 0, mode),
                };
                self.add(
                    0,
                    path,
                    Entry {
                        content: Content::Bytes(bytes),
                        uid,
                        gid,
                        mode,
                        caps: 0,
                    },
                    Origin::new("[user]", spec.user.as_ref().map(|u| &u.at)),
                )?;
            }
        }
        if let Some(user) = &spec.user {
            if let Some(home) = &user.home {
                self.add(
                    0,
                    home,
                    Entry {
                        content: Content::Dir,
                        uid: user.uid,
                        gid: user.gid,
                        mode: 0o755,
                        caps: 0,
                    },
                    Origin::new("[user] home", Some(&user.at)),
                )?;
                if user.skel {
                    self.skel(home, user.uid, user.gid)?;
                }
            }
            let skel = if user.skel { " skel" } else { "" };
            let home = user
                .home
                .as_deref()
                .map(|h| format!(" home={h}{skel}"))
                .unwrap_or_default();
            self.layers[0].created_by.push(format!(
                "USERADD {} {}:{} {}{home} # kiln",
                user.name, user.uid, user.gid, user.group
            ));
        }
        for dir in &spec.dirs {
            let (uid, gid) = self.owner(dir.owner.as_ref())?;
            let mode = dir.mode.unwrap_or(0o755);
            let layer = self.layer_or_system(&dir.layer);
            self.add(
                layer,
                &dir.path,
                Entry {
                    content: Content::Dir,
                    uid,
                    gid,
                    mode,
                    caps: 0,
                },
                Origin::new(format!("[[dir]] {}", dir.path), Some(&dir.at)),
            )?;
            self.layers[layer]
                .created_by
                .push(format!("MKDIR {uid}:{gid} {mode:04o} {} # kiln", dir.path));
        }
        for file in &spec.files {
            let (uid, gid) = self.owner(file.owner.as_ref())?;
            let mode = file.mode.unwrap_or(0o644);
            let layer = self.layer_or_system(&file.layer);
            let content = Content::Bytes(file.content.clone().into_bytes());
            self.add(
                layer,
                &file.path,
                Entry {
                    content,
                    uid,
                    gid,
                    mode,
                    caps: file.capabilities,
                },
                Origin::new(format!("[[file]] {}", file.path), Some(&file.at)),
            )?;
            self.layers[layer]
                .created_by
                .push(format!("FILE {uid}:{gid} {mode:04o} {} # kiln", file.path));
        }
        for link in &spec.symlinks {
            let (uid, gid) = self.owner(link.owner.as_ref())?;
            let layer = self.layer_or_system(&link.layer);
            let content = Content::Symlink(link.target.clone());
            self.add(
                layer,
                &link.path,
                Entry {
                    content,
                    uid,
                    gid,
                    mode: 0o777,
                    caps: 0,
                },
                Origin::new(format!("[[symlink]] {}", link.path), Some(&link.at)),
            )?;
            self.layers[layer]
                .created_by
                .push(format!("SYMLINK {} -> {} # kiln", link.path, link.target));
        }
        Ok(())
    }

    /// WORKDIR creates its directory when nothing else does.
    pub(super) fn workdir(&mut self) -> Result<()> {
        let Some(dir) = self.spec.config.workdir.clone() else {
            return Ok(());
        };
        let path = self.base.fs.resolve_parents(&dir);
        if path == "/" || self.dirs.contains_key(&path) || self.base.fs.entries.contains_key(&path)
        {
            return Ok(());
        }
        self.add(
            0,
            &path,
            Entry {
                content: Content::Dir,
                uid: 0,
                gid: 0,
                mode: 0o755,
                caps: 0,
            },
            Origin::new("workdir", None),
        )?;
        self.layers[0]
            .created_by
            .push(format!("WORKDIR {dir} # kiln"));
        Ok(())
    }

    /// What `useradd -m` does: the base's /etc/skel copied into the new
    /// home, owned by the user, modes kept. A base without it adds nothing.
    fn skel(&mut self, home: &str, uid: u32, gid: u32) -> Result<()> {
        let fs = &self.base.fs;
        let skel = fs.follow("/etc/skel");
        if fs.entries.get(&skel).is_none_or(|m| m.kind != Kind::Dir) {
            return Ok(());
        }
        let paths: Vec<String> = fs.under(&skel).collect();
        let found: Vec<(&String, Meta)> = paths
            .iter()
            .filter_map(|p| Some((p, fs.entries.get(p)?)))
            .collect();
        let wanted: BTreeMap<DataRef, &str> = found
            .iter()
            .filter_map(|(p, m)| Some((m.data?, p.as_str())))
            .collect();
        let mut bytes = self.base_bytes(&wanted)?;
        for (path, meta) in found {
            let content = match meta.kind {
                Kind::Dir => Content::Dir,
                Kind::File => {
                    Content::Bytes(meta.data.and_then(|d| bytes.remove(&d)).unwrap_or_default())
                }
                Kind::Symlink => match fs.links.get(path) {
                    Some(target) => Content::Symlink(target),
                    None => continue,
                },
                Kind::Other => continue,
            };
            let mode = match content {
                Content::Symlink(_) => 0o777,
                _ => meta.mode & 0o1777,
            };
            let dest = format!("{home}{}", &path[skel.len()..]);
            let entry = Entry {
                content,
                uid,
                gid,
                mode,
                caps: 0,
            };
            let origin = Origin::new("[user] skel", self.spec.user.as_ref().map(|u| &u.at));
            self.add(0, &dest, entry, origin)?;
        }
        Ok(())
    }

    /// The bytes of base files (small ones: /etc/skel): kept in the base's
    /// view, or read from its layers.
    fn base_bytes(&self, wanted: &BTreeMap<DataRef, &str>) -> Result<BTreeMap<DataRef, Vec<u8>>> {
        let wanted = wanted.keys().copied().collect();
        self.base
            .file_bytes(&wanted, MAX_ACCOUNT_FILE)
            .map_err(|e| Error::Usage {
                what: self.base.reference.clone(),
                msg: format!("reading /etc/skel: {e}"),
                hint: None,
            })
    }
}
