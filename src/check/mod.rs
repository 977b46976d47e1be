//! `kiln check`: the hardening checklist our users verify by hand after a
//! `docker build` (non-root, numeric USER, HEALTHCHECK, no secrets, pinned
//! base, labels, no setuid...), evaluated on the spec and the resolved base
//! before a byte is written. Each rule has a stable ID and names the
//! equivalent checks of hadolint, dockle, trivy and the CIS Docker Benchmark.

use std::collections::BTreeMap;

use crate::image::base::Base;
use crate::oci::runas::{self, RunAs};
use crate::plan::{Content, LayerPlan};
use crate::spec::validate::{BaseRef, Spec};

pub use crate::spec::rules::{Policy, RULES, Rule, Severity};

mod elf;
mod files;
mod runtime;
mod sarif;
mod secrets;
use files::Files;
pub use sarif::sarif;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub message: String,
    /// `file:line` of the spec key, when there is one.
    pub at: Option<String>,
    pub line: Option<usize>,
    pub hint: &'static str,
    pub same_as: &'static str,
}

pub fn run(spec: &Spec, base: &Base, plans: &[LayerPlan], policy: &Policy) -> Vec<Finding> {
    let mut c = Checker {
        spec,
        out: Vec::new(),
    };
    c.user(base, plans);
    c.healthcheck(base, plans);
    c.command(base, plans);
    c.secrets();
    c.base_pin(base.digest.as_deref(), policy.strict);
    c.labels(base);
    c.files(plans);
    c.ports(base, plans);
    c.shell(base);
    c.out.retain(|f| !policy.ignore.iter().any(|i| i == f.id));
    c.out
        .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(b.id)));
    c.out
}

struct Checker<'a> {
    spec: &'a Spec,
    out: Vec<Finding>,
}

impl Checker<'_> {
    fn add(&mut self, id: &str, message: String, key: Option<&str>) {
        let line = key.and_then(|k| self.line_of(k));
        self.add_at(id, message, line);
    }

    fn add_at(&mut self, id: &str, message: String, line: Option<usize>) {
        let rule = RULES.iter().find(|r| r.id == id).expect("known rule");
        let at = line.map(|line| format!("{}:{line}", self.spec.source.path.display()));
        self.out.push(Finding {
            id: rule.id,
            severity: rule.severity,
            title: rule.title,
            message,
            at,
            line,
            hint: rule.hint,
            same_as: rule.same_as,
        });
    }

    /// The line where `key` (`name =` or `[table]`) is first written.
    fn line_of(&self, key: &str) -> Option<usize> {
        self.spec
            .source
            .text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                if key.starts_with('[') {
                    l.starts_with(key)
                } else {
                    l.strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                }
            })
            .map(|i| i + 1)
    }

    fn effective_user(&self, base: &Base) -> String {
        self.spec
            .config
            .user
            .clone()
            .or_else(|| base.config.config.user.clone())
            .unwrap_or_default()
    }

    /// The uid and gids the runtime gives the image's user, read from the
    /// account files the image will have (see `runas`).
    fn run_as(&self, base: &Base, plans: &[LayerPlan]) -> Result<RunAs, String> {
        let files = Files { base, plans };
        let passwd = files.account_file("/etc/passwd", base.fs.passwd.as_ref());
        let group = files.account_file("/etc/group", base.fs.group.as_ref());
        runas::resolve(
            &self.effective_user(base),
            passwd.as_deref(),
            group.as_deref(),
        )
    }

    fn user(&mut self, base: &Base, plans: &[LayerPlan]) {
        let user = self.effective_user(base);
        let key = if self.spec.config.user.is_some() {
            "user"
        } else {
            "[user]"
        };
        let run = match self.run_as(base, plans) {
            Ok(run) => run,
            Err(why) => {
                self.add(
                    "KILN-USER-UNKNOWN",
                    format!(
                        "user `{user}`: {why}, so runc and podman refuse to start the container"
                    ),
                    Some(key),
                );
                return;
            }
        };
        let (u, g) = user.split_once(':').unwrap_or((user.as_str(), ""));
        if run.uid == 0 {
            let shown = if user.is_empty() {
                "no user (root)".to_string()
            } else if u == "0" || u == "root" {
                format!("user `{user}`")
            } else if u.is_empty() {
                format!("user `{user}`: with no user before `:`, runtimes use uid 0")
            } else if runas::atoi(u).is_some() {
                format!("user `{user}`: runtimes read `{u}` as uid 0")
            } else {
                format!("user `{user}`: the image's /etc/passwd gives `{u}` uid 0")
            };
            self.add(
                "KILN-ROOT-USER",
                format!("the image runs as {shown}"),
                Some(key),
            );
            return;
        }
        // A bare numeric uid is enough for runAsNonRoot; a named one is not.
        let plain = |s: &str| runas::is_plain_number(s);
        if !(plain(u) && (g.is_empty() || plain(g))) {
            let msg = if runas::atoi(u).is_some() && (g.is_empty() || runas::atoi(g).is_some()) {
                format!(
                    "user `{user}` is not plain numeric uid:gid (runc reads it as {}:{}; write that)",
                    run.uid, run.gid
                )
            } else {
                format!("user `{user}` is not numeric uid:gid")
            };
            self.add("KILN-USER-NOT-NUMERIC", msg, Some(key));
        }
        if run.uid < 1000 {
            self.add(
                "KILN-LOW-UID",
                format!("uid {} is below 1000", run.uid),
                Some(key),
            );
        }
        if run.gid == 0 {
            self.add(
                "KILN-ROOT-GROUP",
                format!("user `{user}` runs as uid {} with gid 0", run.uid),
                Some(key),
            );
        } else if run.groups.contains(&0) {
            let name = run.name.as_deref().unwrap_or(u);
            self.add(
                "KILN-ROOT-GROUP",
                format!("user `{user}` is a member of gid 0: the image's /etc/group lists `{name}` in it"),
                Some(key),
            );
        }
    }

    /// The base, and every image a copy takes files from, pinned by digest.
    /// `resolved` is the digest the base's tag named just now: the
    /// message shows the pinned reference, ready to paste.
    fn base_pin(&mut self, resolved: Option<&str>, strict: bool) {
        let mut images = Vec::new();
        if let BaseRef::Registry(r) = &self.spec.base {
            let pin = resolved.map(|d| format!("; pin it: base = \"{r}@{d}\""));
            images.push((r.clone(), format!("base `{r}`"), pin, self.line_of("base")));
        }
        for copy in &self.spec.copies {
            if let Some(BaseRef::Registry(r)) = copy.image.as_ref().map(|i| &i.image) {
                let line = self.spec.source.line_of(copy.at.start);
                let what = format!("image `{r}` (the copy of `{}`)", copy.src);
                images.push((r.clone(), what, None, Some(line)));
            }
        }
        for (r, what, pin, line) in images {
            if r.digest.is_some() {
                continue;
            }
            let latest = r.tag.as_deref().is_none_or(|t| t == "latest");
            let mut msg = if latest {
                format!("{what} is unpinned and tracks `latest`")
            } else {
                format!("{what} is not pinned by digest")
            };
            msg.push_str(pin.as_deref().unwrap_or(""));
            self.add_at("KILN-BASE-NOT-PINNED", msg, line);
            if strict {
                if let Some(f) = self.out.last_mut() {
                    f.severity = Severity::Error;
                }
            }
        }
    }

    fn labels(&mut self, base: &Base) {
        for name in ["source", "revision", "version", "created"] {
            let key = format!("org.opencontainers.image.{name}");
            if !self.spec.config.labels.contains_key(&key)
                && !base.config.config.labels.contains_key(&key)
            {
                self.add(
                    "KILN-MISSING-LABEL",
                    format!("label `{key}` is not set"),
                    Some("labels"),
                );
            }
        }
    }

    fn files(&mut self, plans: &[LayerPlan]) {
        let user = self.spec.user.as_ref();
        // Directories the app writes to: [[dir]]s owned by the user, and volumes.
        let mut writable: Vec<String> = self.spec.config.volumes.clone();
        if let Some(u) = user {
            for d in &self.spec.dirs {
                let entry = plans.iter().find_map(|p| p.entries.get(&d.path));
                if entry.is_some_and(|e| e.uid == u.uid) {
                    writable.push(d.path.clone());
                }
            }
        }
        let mut seen = BTreeMap::new();
        for (path, e) in plans.iter().flat_map(|p| &p.entries) {
            if matches!(e.content, Content::Symlink(_)) {
                continue;
            }
            // On a directory setgid only passes its group to new files
            // (a shared 2775 directory); it grants no privilege.
            let dir = matches!(e.content, Content::Dir);
            if !dir
                && e.mode & 0o6000 != 0
                && seen.insert(("KILN-SETUID", path.clone()), ()).is_none()
            {
                self.add(
                    "KILN-SETUID",
                    format!("`{path}` has mode {:04o}", e.mode),
                    None,
                );
            }
            let sticky_dir = dir && e.mode & 0o1000 != 0;
            if e.mode & 0o002 != 0
                && !sticky_dir
                && seen
                    .insert(("KILN-WORLD-WRITABLE", path.clone()), ())
                    .is_none()
            {
                self.add(
                    "KILN-WORLD-WRITABLE",
                    format!("`{path}` is writable by everyone ({:04o})", e.mode),
                    None,
                );
            }
            let inside = writable.iter().any(|w| path.starts_with(&format!("{w}/")));
            if inside
                && e.uid == 0
                && seen
                    .insert(("KILN-ROOT-OWNED-IN-APP-DIR", path.clone()), ())
                    .is_none()
            {
                self.add(
                    "KILN-ROOT-OWNED-IN-APP-DIR",
                    format!("`{path}` is owned by root inside a directory the app writes to"),
                    None,
                );
            }
        }
    }

    fn ports(&mut self, base: &Base, plans: &[LayerPlan]) {
        let user = self.effective_user(base);
        // Root may bind them; a user the runtime cannot start binds nothing.
        if !self.run_as(base, plans).is_ok_and(|r| r.uid != 0) {
            return;
        }
        let ports = self
            .spec
            .config
            .expose
            .iter()
            .chain(base.config.config.exposed_ports.keys());
        for port in ports {
            let n: u32 = port
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(u32::MAX);
            if n < 1024 {
                self.add(
                    "KILN-PRIVILEGED-PORT",
                    format!("port {port} needs root to bind, but the image runs as `{user}`"),
                    Some("expose"),
                );
            }
        }
    }

    fn shell(&mut self, base: &Base) {
        let Some(u) = &self.spec.user else { return };
        if u.shell.ends_with("nologin") || u.shell.ends_with("/false") {
            return;
        }
        let entry = self
            .spec
            .config
            .entrypoint
            .clone()
            .or_else(|| base.config.config.entrypoint.clone())
            .unwrap_or_default();
        let cmd = self
            .spec
            .config
            .cmd
            .clone()
            .or_else(|| base.config.config.cmd.clone())
            .unwrap_or_default();
        let shell_named = entry
            .iter()
            .chain(&cmd)
            .take(1)
            .any(|a| a.ends_with("sh") || a.ends_with("bash"));
        if !shell_named {
            self.add(
                "KILN-LOGIN-SHELL",
                format!("user `{}` has the login shell `{}`", u.name, u.shell),
                Some("shell"),
            );
        }
    }
}
