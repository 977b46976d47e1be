//! The instructions of the chosen stage (and the stages it is built FROM)
//! turned into a [`Model`].

use std::collections::{BTreeMap, BTreeSet};

use super::model::*;
use super::parse::Instr;
use super::run::Runs;
use super::words::{Vars, words};

/// Args kiln sets itself for the platform being built.
const PLATFORM_ARGS: [&str; 4] = ["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"];

pub struct Stage {
    pub name: Option<String>,
    pub from: Instr,
    pub body: Vec<Instr>,
}

/// The stages, and the global ARGs before the first FROM (name, default).
pub fn stages(instrs: Vec<Instr>) -> (Vec<(String, Option<String>)>, Vec<Stage>) {
    let mut globals = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for i in instrs {
        if i.cmd == "FROM" {
            let w = words(&i.args, None);
            let name = match w.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                _ => None,
            };
            stages.push(Stage {
                name,
                from: i,
                body: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.body.push(i);
        } else if i.cmd == "ARG" {
            for w in words(&i.args, None) {
                match w.split_once('=') {
                    Some((n, v)) => globals.push((n.to_string(), Some(v.to_string()))),
                    None => globals.push((w, None)),
                }
            }
        }
    }
    (globals, stages)
}

pub struct Converter<'a> {
    pub m: Model,
    pub(super) globals: &'a [(String, Option<String>)],
    /// Stage names (lowercase), index and FROM line, for COPY --from.
    pub(super) stage_names: Vec<(Option<String>, usize, usize)>,
    pub(super) args: BTreeSet<String>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) workdir: String,
    /// Directories WORKDIR made, root-owned as Docker makes them.
    pub(super) workdirs: BTreeSet<String>,
    pub(super) shell: Vec<String>,
    /// The build context, to tell a directory source from a file.
    pub context: Option<std::path::PathBuf>,
    pub runs: Runs,
}

impl<'a> Converter<'a> {
    pub fn new(globals: &'a [(String, Option<String>)], stages: &[Stage]) -> Converter<'a> {
        Converter {
            m: Model::default(),
            globals,
            stage_names: stages
                .iter()
                .enumerate()
                .map(|(n, s)| (s.name.clone(), n, s.from.line))
                .collect(),
            args: BTreeSet::new(),
            env: BTreeMap::new(),
            workdir: "/".into(),
            workdirs: BTreeSet::new(),
            shell: vec!["/bin/sh".into(), "-c".into()],
            context: None,
            runs: Runs::default(),
        }
    }

    fn vars(&self, env_value: bool) -> Vars<'_> {
        Vars {
            args: &self.args,
            env: &self.env,
            env_value,
        }
    }

    pub(super) fn text(&self, s: &str) -> Vec<String> {
        words(s, Some(&self.vars(false)))
    }

    pub(super) fn one(&self, s: &str) -> String {
        self.text(s).join(" ")
    }

    pub(super) fn unsupported(&mut self, i: &Instr, why: &str, todo: &str) {
        self.m.unsupported.push(Unsupported {
            line: i.line,
            what: i.text.clone(),
            why: why.into(),
            todo: todo.into(),
        });
    }

    /// An unknown flag: the instruction is reported, not half-translated.
    pub(super) fn flags_ok(&mut self, i: &Instr, known: &[&str]) -> bool {
        match i.flags.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            None => true,
            Some((n, _)) => {
                let why = format!("flag --{n} has no kiln equivalent");
                self.unsupported(
                    i,
                    &why,
                    "rewrite it in the spec by hand, or drop the flag if it does not matter",
                );
                false
            }
        }
    }

    /// The base: the root stage's FROM, its global ARGs kept as [args].
    pub fn base(&mut self, from: &Instr) {
        let used: BTreeSet<String> = self
            .globals
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        let env = BTreeMap::new();
        let w = words(
            &from.args,
            Some(&Vars {
                args: &used,
                env: &env,
                env_value: false,
            }),
        );
        self.m.base = w.first().cloned().unwrap_or_default();
        self.m.base_line = from.line;
        // The base is still written: the report says which flag it lacks.
        let _ = self.flags_ok(from, &["platform"]);
        for (name, value) in self.globals {
            if let Some(v) = value
                .as_ref()
                .filter(|_| self.m.base.contains(&format!("${{{name}}}")))
            {
                self.push_arg(name, v.clone(), "ARG before FROM".into());
            }
        }
        if let Some(p) = from.flag("platform") {
            self.m.notes.push(format!(
                "line {}: FROM --platform={p}: kiln builds for [image] platform or --platform",
                from.line
            ));
        }
    }

    pub(super) fn push_arg(&mut self, name: &str, value: String, note: String) {
        self.args.insert(name.to_string());
        match self.m.args.iter_mut().find(|a| a.name == name) {
            Some(a) => a.value = value,
            None => self.m.args.push(Arg {
                name: name.into(),
                value,
                note,
            }),
        }
    }

    pub fn instr(&mut self, i: &Instr) {
        match i.cmd.as_str() {
            "ARG" => self.arg(i),
            "ENV" => self.env(i),
            "LABEL" => {
                for (k, v) in self.pairs(i, false) {
                    set(&mut self.m.cfg.labels, k, v);
                }
            }
            "WORKDIR" => {
                let dir = self.one(&i.args);
                self.workdir = join(&self.workdir, &dir);
                self.workdir_owner(i.line);
                self.workdirs.insert(self.workdir.clone());
                self.m.cfg.workdir = Some(self.workdir.clone());
            }
            "USER" => self.m.cfg.user = Some(self.one(&i.args)),
            "EXPOSE" => {
                let ports = self
                    .text(&i.args)
                    .into_iter()
                    .map(|p| p.to_ascii_lowercase());
                self.m.cfg.expose.extend(ports);
            }
            "VOLUME" => {
                let v = i.json().unwrap_or_else(|| self.text(&i.args));
                self.m.cfg.volumes.extend(v);
            }
            "STOPSIGNAL" => self.m.cfg.stop_signal = Some(signal(&self.one(&i.args))),
            "CMD" => self.m.cfg.cmd = Some(self.command(i)),
            "ENTRYPOINT" => self.m.cfg.entrypoint = Some(self.command(i)),
            "HEALTHCHECK" => self.healthcheck(i),
            "SHELL" => match i.json() {
                Some(s) if !s.is_empty() => self.shell = s,
                _ => self.unsupported(
                    i,
                    "SHELL takes a JSON array",
                    "write the shell form commands in exec form",
                ),
            },
            "COPY" | "ADD" => self.copy(i),
            "RUN" => {
                if i.heredoc {
                    self.unsupported(
                        i,
                        "a RUN with a heredoc runs a script at build time",
                        RUN_TODO,
                    );
                } else if !i.flags.is_empty() || i.json().is_some() {
                    self.unsupported(i, "kiln runs nothing at build time", RUN_TODO);
                } else {
                    let mut runs = std::mem::take(&mut self.runs);
                    let args = super::words::expand_shell(&i.args, &self.env);
                    runs.run(&Instr { args, ..i.clone() }, &mut self.m);
                    self.runs = runs;
                }
            }
            "MAINTAINER" => self.unsupported(
                i,
                "MAINTAINER is deprecated",
                "write it as [config.labels] \"org.opencontainers.image.authors\"",
            ),
            "ONBUILD" => {
                self.unsupported(i, "kiln images carry no ONBUILD triggers", "leave it out")
            }
            _ => self.unsupported(
                i,
                "not a Dockerfile instruction kiln knows",
                "check the spelling",
            ),
        }
    }

    /// BuildKit makes a WORKDIR that does not exist yet as the current USER:
    /// a [[dir]] owned by that user, unless something here made it already.
    fn workdir_owner(&mut self, line: usize) {
        let Some(user) = self.m.cfg.user.clone() else {
            return;
        };
        let who = user.split(':').next().unwrap_or("");
        let made = self.workdirs.contains(&self.workdir)
            || self.m.dirs.iter().any(|d| d.path == self.workdir);
        if made || matches!(who, "root" | "0" | "") || self.workdir == "/" {
            return;
        }
        self.m.dirs.push(DirOut {
            line,
            path: self.workdir.clone(),
            owner: Some(user),
            mode: None,
        });
    }

    fn arg(&mut self, i: &Instr) {
        for w in self.text(&i.args) {
            let (name, default) = match w.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (w.clone(), None),
            };
            if PLATFORM_ARGS.contains(&name.as_str()) {
                self.args.insert(name);
                continue;
            }
            let global = self
                .globals
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.clone());
            let (value, note) = match (default, global) {
                (Some(d), _) => (d, format!("ARG {name}, line {}", i.line)),
                (None, Some(g)) => (
                    g,
                    format!("ARG {name}, line {}: the default before FROM", i.line),
                ),
                (None, None) => (
                    String::new(),
                    format!(
                        "ARG {name}, line {}: no default; --build-arg {name}=...",
                        i.line
                    ),
                ),
            };
            self.push_arg(&name, value, note);
        }
    }

    fn env(&mut self, i: &Instr) {
        for (k, v) in self.pairs(i, true) {
            self.env.insert(k.clone(), v.clone());
            set(&mut self.m.cfg.env, k, v);
        }
    }

    /// `k=v k2=v2`, or the old `KEY value` form.
    fn pairs(&mut self, i: &Instr, env_value: bool) -> Vec<(String, String)> {
        let raw = words(&i.args, None);
        if raw.first().is_some_and(|w| !w.contains('=')) {
            let key = raw[0].clone();
            let rest = i.args.trim_start().get(key.len()..).unwrap_or("").trim();
            let value = words(rest, Some(&self.vars(env_value))).join(" ");
            return vec![(key, value)];
        }
        let mut out = Vec::new();
        for w in words(&i.args, Some(&self.vars(env_value))) {
            match w.split_once('=') {
                Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
                _ => self.unsupported(i, "not a KEY=VALUE pair", "write it as KEY=VALUE"),
            }
        }
        out
    }

    /// Exec form as is; shell form as `SHELL + [text]`, as docker does.
    fn command(&self, i: &Instr) -> Vec<String> {
        let argv = match i.json() {
            Some(v) => v,
            None => self.shell.iter().cloned().chain([i.args.clone()]).collect(),
        };
        argv.iter().map(|a| a.replace("${", "$${")).collect()
    }

    fn healthcheck(&mut self, i: &Instr) {
        if !self.flags_ok(
            i,
            &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ],
        ) {
            return;
        }
        let (kind, rest) = i
            .args
            .split_once(char::is_whitespace)
            .unwrap_or((&i.args, ""));
        let test = match kind.to_ascii_uppercase().as_str() {
            "NONE" => vec!["NONE".to_string()],
            "CMD" => {
                let rest = rest.trim();
                let exec = Instr {
                    args: rest.to_string(),
                    ..i.clone()
                };
                match exec.json() {
                    Some(v) => ["CMD".to_string()].into_iter().chain(v).collect(),
                    None => vec!["CMD-SHELL".to_string(), rest.to_string()],
                }
            }
            _ => {
                return self.unsupported(
                    i,
                    "HEALTHCHECK takes CMD or NONE",
                    "write [healthcheck] by hand",
                );
            }
        };
        let test: Vec<String> = test.iter().map(|a| a.replace("${", "$${")).collect();
        let retries = match i.flag("retries").map(|r| r.parse::<i64>()) {
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                return self.unsupported(
                    i,
                    "--retries is not a number",
                    "write [healthcheck] by hand",
                );
            }
            None => None,
        };
        let f = |n: &str| i.flag(n).map(str::to_string);
        self.m.health = Some(Health {
            line: i.line,
            test,
            interval: f("interval"),
            timeout: f("timeout"),
            start_period: f("start-period"),
            start_interval: f("start-interval"),
            retries,
        });
    }
}

/// `path` against the directory `base`, `.` and `..` resolved.
pub fn join(base: &str, path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in full.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `TERM`, `sigterm` or `15` as kiln spells a signal: `SIGTERM`, `15`.
pub fn signal(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    if up.chars().all(|c| c.is_ascii_digit()) || up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    }
}
