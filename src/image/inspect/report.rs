//! What `kiln inspect` shows: a serializable report (`--format json`) and
//! its text rendering.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::Opened;
use crate::image::base::{FsView, Kind};
use crate::oci::config::{HealthConfig, History};
use crate::oci::runas;
use crate::progress::human;
use crate::shown::Shown;
use crate::spec::duration;

#[derive(Serialize)]
pub struct Report {
    pub target: String,
    /// `registry`, `oci` or `docker-archive`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexView>,
    /// None for a docker-archive, which keeps no manifest.
    pub manifest: Option<Blob>,
    pub config_digest: String,
    pub platform: String,
    pub created: Option<String>,
    pub config: ConfigView,
    pub layers: Vec<LayerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileView>>,
}

#[derive(Serialize)]
pub struct IndexView {
    pub digest: String,
    pub media_type: String,
    pub manifests: Vec<IndexEntry>,
}

#[derive(Serialize)]
pub struct IndexEntry {
    pub platform: Option<String>,
    pub digest: String,
}

#[derive(Serialize)]
pub struct Blob {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

#[derive(Serialize)]
pub struct ConfigView {
    pub user: Option<String>,
    /// The user and group `user` runs as, read from the image's /etc/passwd
    /// and /etc/group as runc reads them (only with `--files`, which reads them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_names: Option<String>,
    pub workdir: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<HealthView>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct HealthView {
    pub test: Vec<String>,
    /// Durations as written in a spec (`30s`); absent means Docker's default.
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<i64>,
}

#[derive(Serialize)]
pub struct LayerView {
    /// From 1, as the `layer` of each file counts.
    pub number: usize,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub size: u64,
    pub diff_id: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
}

#[derive(Serialize)]
pub struct FileView {
    pub path: String,
    /// `dir`, `file`, `symlink` or `other`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Octal permission bits, e.g. `0755`.
    pub mode: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The layer (from 1) that last wrote the path.
    pub layer: usize,
}

impl Report {
    pub fn new(target: &str, opened: Opened, fs: Option<&FsView>) -> Report {
        let c = &opened.config;
        let cc = &c.config;
        let names = fs.map(Names::from_fs);
        let platform = match &c.variant {
            Some(v) => format!("{}/{}/{v}", c.os, c.architecture),
            None => format!("{}/{}", c.os, c.architecture),
        };
        let layer_history: Vec<&History> = c.history.iter().filter(|h| !h.empty_layer).collect();
        let layers = opened
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerView {
                number: i + 1,
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                diff_id: c.rootfs.diff_ids.get(i).cloned(),
                created_by: layer_history.get(i).and_then(|h| h.created_by.clone()),
                comment: layer_history.get(i).and_then(|h| h.comment.clone()),
            })
            .collect();
        let files = fs.map(|fs| {
            let names = names.as_ref().expect("names come with files");
            fs.entries
                .iter()
                .map(|(path, m)| FileView {
                    path: path.to_string(),
                    kind: match m.kind {
                        Kind::Dir => "dir",
                        Kind::File => "file",
                        Kind::Symlink => "symlink",
                        Kind::Other => "other",
                    },
                    uid: m.uid,
                    gid: m.gid,
                    user: names.users.get(&m.uid).cloned(),
                    group: names.groups.get(&m.gid).cloned(),
                    mode: format!("{:04o}", m.mode),
                    size: m.size,
                    link: fs.links.get(&path),
                    layer: m.layer + 1,
                })
                .collect()
        });
        Report {
            target: target.to_string(),
            kind: opened.kind,
            index: opened.index.map(|(desc, index)| IndexView {
                digest: desc.digest.to_string(),
                media_type: desc.media_type,
                manifests: index
                    .manifests
                    .iter()
                    .map(|d| IndexEntry {
                        platform: d.platform.as_ref().map(|p| match &p.variant {
                            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                            None => format!("{}/{}", p.os, p.architecture),
                        }),
                        digest: d.digest.to_string(),
                    })
                    .collect(),
            }),
            manifest: opened.manifest.map(|d| Blob {
                digest: d.digest.to_string(),
                media_type: d.media_type,
                size: d.size,
            }),
            config_digest: opened.config_digest,
            platform,
            created: c.created.clone(),
            config: ConfigView {
                user: cc.user.clone().filter(|u| !u.is_empty()),
                user_names: names
                    .as_ref()
                    .and_then(|n| n.describe_user(cc.user.as_deref())),
                workdir: cc.working_dir.clone().filter(|w| !w.is_empty()),
                entrypoint: cc.entrypoint.clone(),
                cmd: cc.cmd.clone(),
                env: cc.env.clone(),
                ports: cc.exposed_ports.keys().cloned().collect(),
                volumes: cc.volumes.keys().cloned().collect(),
                stop_signal: cc.stop_signal.clone(),
                healthcheck: cc.healthcheck.as_ref().map(health),
                labels: cc.labels.clone(),
            },
            layers,
            files,
        }
    }

    /// The text form: the config, the layers, and the files if read. Every
    /// string from the image is escaped (`Shown`): one line per row, always.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut row = |key: &str, value: &str| {
            let _ = writeln!(out, "{key:<12} {}", Shown(value));
        };
        row("Image", &self.target);
        if let Some(i) = &self.index {
            let platforms: Vec<&str> = i
                .manifests
                .iter()
                .map(|m| m.platform.as_deref().unwrap_or("?"))
                .collect();
            row("Index", &format!("{} ({})", i.digest, platforms.join(", ")));
        }
        if let Some(m) = &self.manifest {
            row(
                "Manifest",
                &format!("{} ({}, {} bytes)", m.digest, m.media_type, m.size),
            );
        }
        row("Config", &self.config_digest);
        row("Platform", &self.platform);
        row("Created", self.created.as_deref().unwrap_or("-"));
        let c = &self.config;
        let user = match (&c.user, &c.user_names) {
            (None, _) => "- (root)".to_string(),
            (Some(u), Some(n)) => format!("{u} ({n})"),
            (Some(u), None) => u.clone(),
        };
        row("User", &user);
        row("Workdir", c.workdir.as_deref().unwrap_or("-"));
        row("Entrypoint", &exec_form(c.entrypoint.as_deref()));
        row("Cmd", &exec_form(c.cmd.as_deref()));
        list(&mut row, "Env", &c.env);
        list(&mut row, "Ports", &c.ports);
        list(&mut row, "Volumes", &c.volumes);
        if let Some(s) = &c.stop_signal {
            row("Stop signal", s);
        }
        match &c.healthcheck {
            None => row("Healthcheck", "-"),
            Some(h) => {
                row("Healthcheck", &exec_form(Some(&h.test)));
                let timing: Vec<String> = [
                    ("every", &h.interval),
                    ("timeout", &h.timeout),
                    ("start period", &h.start_period),
                    ("start interval", &h.start_interval),
                ]
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
                .chain(h.retries.map(|r| format!("retries {r}")))
                .collect();
                if !timing.is_empty() {
                    row("", &timing.join(", "));
                }
            }
        }
        let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        list(&mut row, "Labels", &labels);

        let total: u64 = self.layers.iter().map(|l| l.size).sum();
        let _ = writeln!(out, "\nLayers ({}, {})", self.layers.len(), human(total));
        let _ = writeln!(
            out,
            "  {:>2}  {:<19}  {:>9}  CREATED BY",
            "#", "DIGEST", "SIZE"
        );
        for l in &self.layers {
            let id = l.digest.as_ref().or(l.diff_id.as_ref());
            let _ = writeln!(
                out,
                "  {:>2}  {:<19}  {:>9}  {}",
                l.number,
                Shown(&id.map_or("-".to_string(), |d| short(d))),
                human(l.size),
                Shown(l.created_by.as_deref().unwrap_or("-"))
            );
        }
        if let Some(files) = &self.files {
            let _ = writeln!(out, "\nFiles ({})", files.len());
            let owners: Vec<String> = files.iter().map(owner).collect();
            let width = owners.iter().map(String::len).max().unwrap_or(0);
            let _ = writeln!(
                out,
                "  {:<10}  {:<width$}  {:>10}  {:>5}  PATH",
                "MODE", "OWNER", "SIZE", "LAYER"
            );
            for (f, owner) in files.iter().zip(owners) {
                let size = if f.kind == "file" {
                    f.size.to_string()
                } else {
                    "-".to_string()
                };
                let link = f
                    .link
                    .as_ref()
                    .map(|t| format!(" -> {}", Shown(t)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {}  {owner:<width$}  {size:>10}  {:>5}  {}{link}",
                    ls_mode(f),
                    f.layer,
                    Shown(&f.path)
                );
            }
        }
        out
    }
}

fn list(row: &mut impl FnMut(&str, &str), key: &str, values: &[String]) {
    match values.split_first() {
        None => row(key, "-"),
        Some((first, rest)) => {
            row(key, first);
            for v in rest {
                row("", v);
            }
        }
    }
}

fn health(h: &HealthConfig) -> HealthView {
    let d = |n: i64| (n != 0).then(|| duration::format(n));
    HealthView {
        test: h.test.clone(),
        interval: d(h.interval),
        timeout: d(h.timeout),
        start_period: d(h.start_period),
        start_interval: d(h.start_interval),
        retries: (h.retries != 0).then_some(h.retries),
    }
}

fn exec_form(args: Option<&[String]>) -> String {
    match args {
        None => "-".to_string(),
        Some(a) => serde_json::to_string(a).expect("strings serialize"),
    }
}

/// `uid:gid (user:group)`, with names when the image has them (escaped:
/// they come from its /etc/passwd and /etc/group).
fn owner(f: &FileView) -> String {
    match (&f.user, &f.group) {
        (None, None) => format!("{}:{}", f.uid, f.gid),
        (u, g) => format!(
            "{}:{} ({}:{})",
            f.uid,
            f.gid,
            Shown(u.as_deref().unwrap_or("?")),
            Shown(g.as_deref().unwrap_or("?"))
        ),
    }
}

/// `drwxr-xr-x`, with setuid, setgid and sticky bits as `ls -l` shows them.
fn ls_mode(f: &FileView) -> String {
    let mode = u32::from_str_radix(&f.mode, 8).unwrap_or(0);
    let mut s = String::with_capacity(10);
    s.push(match f.kind {
        "dir" => 'd',
        "symlink" => 'l',
        "other" => '?',
        _ => '-',
    });
    let special = [(0o4000, 's'), (0o2000, 's'), (0o1000, 't')];
    for (i, (bit, mark)) in special.iter().enumerate() {
        let shift = 6 - 3 * i as u32;
        let rwx = (mode >> shift) & 7;
        s.push(if rwx & 4 != 0 { 'r' } else { '-' });
        s.push(if rwx & 2 != 0 { 'w' } else { '-' });
        let x = rwx & 1 != 0;
        s.push(match (mode & bit != 0, x) {
            (true, true) => *mark,
            (true, false) => mark.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

fn short(digest: &str) -> String {
    match digest.split_once(':') {
        // By chars: a digest read from a hostile image need not be hex.
        Some((algo, hex)) => format!("{algo}:{}", hex.chars().take(12).collect::<String>()),
        None => digest.to_string(),
    }
}

/// uid and gid names from the image's own /etc/passwd and /etc/group.
struct Names {
    users: BTreeMap<u32, String>,
    groups: BTreeMap<u32, String>,
    passwd: Option<Vec<u8>>,
    group: Option<Vec<u8>>,
}

impl Names {
    fn from_fs(fs: &FsView) -> Names {
        let lines = |bytes: Option<&Vec<u8>>| -> Vec<Vec<String>> {
            String::from_utf8_lossy(bytes.map_or(&[][..], |b| &b[..]))
                .lines()
                .map(|l| l.split(':').map(str::to_string).collect())
                .collect()
        };
        let id = |fields: &[String], n: usize| fields.get(n).and_then(|f| f.parse::<u32>().ok());
        let mut names = Names {
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            passwd: fs.passwd.clone(),
            group: fs.group.clone(),
        };
        // The first line for an id wins, as getpwuid finds it.
        for fields in lines(fs.passwd.as_ref()) {
            if let (Some(uid), Some(name)) = (id(&fields, 2), fields.first()) {
                names.users.entry(uid).or_insert_with(|| name.clone());
            }
        }
        for fields in lines(fs.group.as_ref()) {
            if let (Some(gid), Some(name)) = (id(&fields, 2), fields.first()) {
                names.groups.entry(gid).or_insert_with(|| name.clone());
            }
        }
        names
    }

    /// What a runtime makes of `User`, worked out as runc does (`runas`):
    /// `app:app` for `10001:10001` or for `app`, `10001: no name:root` for an
    /// id with no passwd line (runc gives it gid 0). A name or spelling that
    /// means uid 0 says so, and one runc cannot start says why.
    fn describe_user(&self, user: Option<&str>) -> Option<String> {
        let user = user.filter(|u| !u.is_empty())?;
        let run = match runas::resolve(user, self.passwd.as_deref(), self.group.as_deref()) {
            Ok(run) => run,
            Err(why) => return Some(format!("cannot start: {why}")),
        };
        let name = |names: &BTreeMap<u32, String>, id: i64| {
            u32::try_from(id)
                .ok()
                .and_then(|id| names.get(&id).cloned())
                .unwrap_or_else(|| format!("{id}: no name"))
        };
        let user_name = run.name.unwrap_or_else(|| name(&self.users, run.uid));
        let group_name = name(&self.groups, run.gid);
        let plain_root = matches!(user.split(':').next(), Some("0" | "root"));
        Some(if run.uid == 0 && !plain_root {
            format!("{user_name}:{group_name}, uid 0")
        } else {
            format!("{user_name}:{group_name}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(kind: &'static str, mode: &str) -> FileView {
        FileView {
            path: "/x".into(),
            kind,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mode: mode.into(),
            size: 0,
            link: None,
            layer: 1,
        }
    }

    #[test]
    fn modes_print_like_ls() {
        assert_eq!(ls_mode(&file("dir", "0755")), "drwxr-xr-x");
        assert_eq!(ls_mode(&file("file", "4755")), "-rwsr-xr-x");
        assert_eq!(ls_mode(&file("file", "2644")), "-rw-r-Sr--");
        assert_eq!(ls_mode(&file("dir", "1777")), "drwxrwxrwt");
        assert_eq!(ls_mode(&file("symlink", "0777")), "lrwxrwxrwx");
    }

    #[test]
    fn users_are_named_from_the_images_own_accounts() {
        let fs = FsView {
            passwd: Some(
                b"root:x:0:0:root:/root:/bin/sh\nweb:x:1500:1600::/app:/bin/sh\nweb2:x:1500:0::/:/bin/sh\nzero:x:abc:1600::/:/bin/sh\n"
                    .to_vec(),
            ),
            group: Some(b"root:x:0:\nwebgrp:x:1600:\n".to_vec()),
            ..FsView::default()
        };
        let names = Names::from_fs(&fs);
        let d = |u: &str| names.describe_user(Some(u));
        assert_eq!(d("1500:1600").as_deref(), Some("web:webgrp"));
        assert_eq!(d("web").as_deref(), Some("web:webgrp"));
        assert_eq!(d("1500").as_deref(), Some("web:webgrp"));
        assert_eq!(d("web:root").as_deref(), Some("web:root"));
        assert_eq!(d("web:0").as_deref(), Some("web:root"));
        assert_eq!(d("0").as_deref(), Some("root:root"));
        assert_eq!(d("7:8").as_deref(), Some("7: no name:8: no name"));
        assert_eq!(d("7").as_deref(), Some("7: no name:root"));
        assert_eq!(d("+0").as_deref(), Some("root:root, uid 0"));
        assert_eq!(d("zero").as_deref(), Some("zero:webgrp, uid 0"));
        assert_eq!(
            d("ghost").as_deref(),
            Some("cannot start: `ghost` is not a user in the image's /etc/passwd")
        );
        assert_eq!(
            d("web:ghosts").as_deref(),
            Some("cannot start: `ghosts` is not a group in the image's /etc/group")
        );
        assert_eq!(d(""), None);
        assert_eq!(names.describe_user(None), None);
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
