//! RUN chains folded into the model: accounts into [user], `mkdir -p` and
//! `chown`/`chmod` into [[dir]] (and the owners of earlier copies), and
//! every other command into the unsupported list.

use std::collections::BTreeMap;

use super::accounts::{Step, User, step};
use super::model::*;
use super::parse::Instr;
use super::shell::commands;

#[derive(Default)]
pub struct Runs {
    /// groupadd/addgroup: name -> (gid, system, line).
    groups: BTreeMap<String, (Option<i64>, bool, usize)>,
    user: Option<(User, usize)>,
}

impl Runs {
    pub fn run(&mut self, i: &Instr, m: &mut Model) {
        let mut from = 0;
        for text in commands(&i.args) {
            let line = i.line_of(&text, &mut from);
            match step(&text) {
                Step::Nothing => {}
                Step::Other { text, why } => m.unsupported.push(Unsupported {
                    line,
                    what: format!("RUN … {text}"),
                    why,
                    todo: RUN_TODO.into(),
                }),
                Step::Group { name, gid, system } => {
                    self.groups.insert(name, (gid, system, line));
                }
                Step::User(u) if self.user.is_some() => m.unsupported.push(Unsupported {
                    line,
                    what: format!("RUN … {text}"),
                    why: format!("a second user ({}): kiln's [user] writes one", u.name),
                    todo: "add it to the base image, or run as the first user".into(),
                }),
                Step::User(u) => self.user = Some((u, line)),
                Step::Mkdir { paths, mode } => {
                    for path in paths {
                        let path = super::convert::join("/", &path);
                        if !m.dirs.iter().any(|d| d.path == path) {
                            m.dirs.push(DirOut {
                                line,
                                path,
                                owner: None,
                                mode: mode.clone(),
                            });
                        }
                    }
                }
                Step::Chown {
                    owner,
                    paths,
                    recursive,
                } => {
                    // The home useradd -m makes in this chain is the Dockerfile's own.
                    let home = self
                        .user
                        .as_ref()
                        .filter(|(u, _)| u.create_home)
                        .map(|(u, _)| u.home.clone().unwrap_or(format!("/home/{}", u.name)));
                    for path in paths {
                        chown(
                            m,
                            line,
                            &owner,
                            &super::convert::join("/", &path),
                            recursive,
                            home.as_deref(),
                        );
                    }
                }
                Step::Chmod { mode, paths } => {
                    for path in paths {
                        let path = super::convert::join("/", &path);
                        match m.dirs.iter_mut().find(|d| d.path == path) {
                            Some(d) => d.mode = Some(format!("{mode:0>4}")),
                            None => m.unsupported.push(Unsupported {
                                line,
                                what: format!("RUN … {text}"),
                                why: "chmod of a path this spec does not make".into(),
                                todo: "set mode on the [[copy]] that writes it".into(),
                            }),
                        }
                    }
                }
            }
        }
    }

    /// [user] from the useradd/adduser, with its group; groups without a user are reported.
    pub fn finish(self, m: &mut Model) {
        let Some((u, line)) = self.user else {
            for (name, (_, _, line)) in self.groups {
                m.unsupported.push(Unsupported {
                    line,
                    what: format!("group {name}"),
                    why: "a group without a user: kiln's [user] writes one user and its group"
                        .into(),
                    todo: "add it to the base image, or use a [user] with group = \"...\"".into(),
                });
            }
            return;
        };
        let mut out = UserOut {
            line,
            name: u.name.clone(),
            ..UserOut::default()
        };
        let tool = if u.alpine { "adduser" } else { "useradd" };
        out.uid = match u.uid {
            Some(n) => n,
            None => {
                let guess = match (u.system, u.alpine) {
                    (true, true) => 100,
                    (true, false) => 999,
                    _ => 1000,
                };
                out.notes.push(format!("the Dockerfile gives no uid: {tool} takes the first free one, {guess} on a fresh base; pick yours"));
                guess
            }
        };
        match u.group.as_deref() {
            Some(g) if g.chars().all(|c| c.is_ascii_digit()) => {
                out.gid = g.parse().ok();
                out.group = self
                    .groups
                    .iter()
                    .find(|(_, v)| v.0 == out.gid)
                    .map(|(n, _)| n.clone());
            }
            Some(g) => {
                out.group = Some(g.to_string());
                out.gid = self.groups.get(g).and_then(|v| v.0);
                if out.gid.is_none() {
                    out.notes.push(format!(
                        "group {g} has no gid in the Dockerfile: kiln gives it the uid"
                    ));
                }
            }
            None if u.no_user_group => {
                out.group = Some("users".into());
                out.gid = Some(100);
            }
            None => {
                out.gid = self.groups.get(&u.name).and_then(|v| v.0);
                if self.groups.contains_key(&u.name) && out.gid.is_none() {
                    out.notes.push(format!(
                        "group {} has no gid in the Dockerfile: kiln gives it the uid",
                        u.name
                    ));
                }
            }
        }
        if out.group.as_deref() == Some(u.name.as_str()) {
            out.group = None;
        }
        if out.gid == Some(out.uid) {
            out.gid = None;
        }
        let default_home = format!("/home/{}", u.name);
        if u.create_home {
            out.home = Some(u.home.clone().unwrap_or(default_home));
            // busybox's adduser makes the home empty; useradd -m fills it from /etc/skel.
            out.skel = !u.alpine;
        } else {
            let named = u.home.clone().unwrap_or(default_home);
            out.notes.push(format!("{tool} names {named} in /etc/passwd without making it; kiln writes no home (/nonexistent)"));
        }
        out.shell = Some(match &u.shell {
            Some(s) => s.clone(),
            None => {
                let d = if u.alpine && u.system {
                    "/sbin/nologin"
                } else {
                    "/bin/sh"
                };
                out.notes.push(format!(
                    "shell: {tool}'s default, {d}; kiln's default is /sbin/nologin"
                ));
                d.to_string()
            }
        });
        if let Some(g) = &u.groups {
            m.unsupported.push(Unsupported {
                line,
                what: format!("{tool} -G {g}"),
                why: "supplementary groups: kiln's [user] has one group".into(),
                todo: "add the user to them in the base image, or leave them out".into(),
            });
        }
        m.user = Some(out);
    }
}

/// `chown [-R] OWNER PATH`: the [[dir]] (made here or not) gets the owner;
/// with -R, so do the dirs and copies under it.
fn chown(m: &mut Model, line: usize, owner: &str, path: &str, recursive: bool, home: Option<&str>) {
    let under = |p: &str| {
        p == path
            || p.trim_end_matches('/') == path
            || p.starts_with(&format!("{}/", path.trim_end_matches('/')))
    };
    // What this Dockerfile made there; anything else under the path is the
    // base's, whose owners a spec cannot change.
    let made = m.dirs.iter().any(|d| under(&d.path))
        || m.copies.iter().any(|c| under(&c.dest))
        || m.cfg.workdir.as_deref() == Some(path)
        || home == Some(path);
    if recursive && !made {
        m.unsupported.push(Unsupported {
            line,
            what: format!("chown -R {owner} {path}"),
            why: format!(
                "kiln sets the owners of what it adds; what the base holds under {path} keeps its owners"
            ),
            todo: format!(
                "copy those files in with owner = \"{owner}\", or use a base where they are owned already"
            ),
        });
    }
    match m.dirs.iter_mut().find(|d| d.path == path) {
        Some(d) => d.owner = Some(owner.to_string()),
        None => m.dirs.push(DirOut {
            line,
            path: path.to_string(),
            owner: Some(owner.to_string()),
            mode: None,
        }),
    }
    if recursive {
        for d in m.dirs.iter_mut().filter(|d| under(&d.path)) {
            d.owner = Some(owner.to_string());
        }
        for c in m.copies.iter_mut().filter(|c| under(&c.dest)) {
            c.owner = Some(owner.to_string());
        }
    }
}
