//! What fails only when the container starts: an entrypoint, cmd or
//! healthcheck program that is not in the image, not executable, or a
//! dynamically linked ELF whose interpreter (PT_INTERP) the image lacks,
//! which `exec` reports as "no such file or directory"; and an image with
//! nothing to run. Programs named without a `/` are looked up through the
//! image's PATH, as runc and `docker exec` look them up.

use std::collections::BTreeMap;

use super::Checker;
use super::elf::{self, Elf};
use super::files::{Files, Found};
use crate::image::base::Base;
use crate::oci::runas::RunAs;
use crate::plan::LayerPlan;
use crate::spec::args;

/// The PATH an image gets when neither its base nor the spec sets one, as
/// `assemble` writes it.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a program cannot start.
#[derive(Debug, PartialEq)]
enum Unstartable {
    /// Nothing there (for a bare name: in no PATH directory).
    Missing,
    Dir(String),
    NotExecutable(String),
    /// Executable, but not by the image's user: (path, mode, uid).
    NotExecutableBy(String, u32, i64),
    NoInterpreter {
        program: String,
        interp: String,
    },
    /// A script whose `#!` interpreter (or the program `env` is asked to
    /// find) is not in the image.
    NoScriptInterpreter {
        program: String,
        interp: String,
    },
}

/// How many `#!` interpreters the kernel follows before giving up (ELOOP).
const SCRIPT_DEPTH: usize = 4;

/// Shell words that name no program to look up: builtins and syntax.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "[", "[[", "!", "{", "(", "alias", "break", "cd", "command", "continue", "echo",
    "eval", "exec", "exit", "export", "false", "for", "if", "kill", "printf", "pwd", "read",
    "return", "set", "shift", "test", "trap", "true", "type", "ulimit", "umask", "unset", "until",
    "wait", "while",
];

impl Checker<'_> {
    pub(super) fn healthcheck(&mut self, base: &Base, plans: &[LayerPlan]) {
        let test = match (&self.spec.healthcheck, &base.config.config.healthcheck) {
            (Some(h), _) => h.test.clone(),
            (None, Some(h)) => h.test.clone(),
            (None, None) => {
                self.add(
                    "KILN-NO-HEALTHCHECK",
                    "neither the spec nor the base sets a healthcheck".into(),
                    None,
                );
                return;
            }
        };
        let programs: Vec<String> = match test.first().map(String::as_str) {
            Some("CMD") => test.get(1).cloned().into_iter().collect(),
            // The shell, then the first program the shell runs.
            Some("CMD-SHELL") => std::iter::once("/bin/sh".to_string())
                .chain(test.get(1).and_then(|s| shell_program(s)))
                .collect(),
            _ => Vec::new(),
        };
        let files = Files { base, plans };
        let at = self.lookup_from(base);
        let run = self.run_as(base, plans).ok();
        for program in programs {
            if let Err(why) = startable(&files, &program, &at, run.as_ref()) {
                let msg = explain("healthcheck", &program, &at.path, why);
                self.add("KILN-HEALTHCHECK-NOT-IN-IMAGE", msg, Some("test"));
                return;
            }
        }
    }

    /// The entrypoint, or the cmd when there is none, as the image's config
    /// will hold them (an entrypoint the spec sets drops the base's cmd).
    pub(super) fn command(&mut self, base: &Base, plans: &[LayerPlan]) {
        let s = &self.spec.config;
        let b = &base.config.config;
        // Each with the spec key that set it (None: the base's).
        let (entry, entry_key) = match &s.entrypoint {
            Some(e) => (e.first(), Some("entrypoint")),
            None => (b.entrypoint.as_ref().and_then(|e| e.first()), None),
        };
        let (cmd, cmd_key) = match (&s.cmd, &s.entrypoint) {
            (Some(c), _) => (c.first(), Some("cmd")),
            (None, Some(_)) => (None, None),
            (None, None) => (b.cmd.as_ref().and_then(|c| c.first()), None),
        };
        let (program, what, key) = match (entry, cmd) {
            (Some(e), _) => (e.clone(), "entrypoint", entry_key),
            (None, Some(c)) => (c.clone(), "cmd", cmd_key),
            (None, None) => {
                self.add(
                    "KILN-NO-COMMAND",
                    "neither the spec nor the base sets an entrypoint or a cmd".into(),
                    None,
                );
                return;
            }
        };
        let files = Files { base, plans };
        let at = self.lookup_from(base);
        let run = self.run_as(base, plans).ok();
        if let Err(why) = startable(&files, &program, &at, run.as_ref()) {
            let msg = explain(what, &program, &at.path, why);
            self.add("KILN-ENTRYPOINT-NOT-IN-IMAGE", msg, key);
        }
    }

    fn lookup_from(&self, base: &Base) -> Where {
        Where {
            path: image_path(self, base),
            workdir: workdir(self, base),
        }
    }
}

fn explain(what: &str, program: &str, path: &str, why: Unstartable) -> String {
    match why {
        Unstartable::Missing if program.contains('/') => {
            format!("{what} runs `{program}`, which is not in the image")
        }
        Unstartable::Missing => format!(
            "{what} runs `{program}`, which is in none of the image's PATH directories ({path})"
        ),
        Unstartable::Dir(p) => format!("{what} runs `{p}`, which is a directory"),
        Unstartable::NotExecutable(p) => {
            format!("{what} runs `{p}`, which is not executable (no x bit in its mode)")
        }
        Unstartable::NotExecutableBy(p, mode, uid) => format!(
            "{what} runs `{p}`, which uid {uid} may not execute (mode {mode:04o}): \
             it would fail with \"permission denied\""
        ),
        Unstartable::NoInterpreter { program, interp } => format!(
            "{what} runs `{program}`, a dynamically linked program whose interpreter `{interp}` \
             is not in the image: it would fail with \"no such file or directory\""
        ),
        Unstartable::NoScriptInterpreter { program, interp } => format!(
            "{what} runs `{program}`, a script whose interpreter `{interp}` (its #! line) \
             is not in the image: it would fail with \"no such file or directory\""
        ),
    }
}

/// The working directory a relative program name is found from.
fn workdir(c: &Checker, base: &Base) -> String {
    c.spec
        .config
        .workdir
        .clone()
        .or_else(|| base.config.config.working_dir.clone())
        .filter(|w| w.starts_with('/'))
        .unwrap_or_else(|| "/".into())
}

/// The image's PATH: the base's env (with the default PATH when it sets
/// none), then the spec's env in file order, each value expanded as
/// `assemble` expands it (`PATH=/app/venv/bin:$PATH`).
fn image_path(c: &Checker, base: &Base) -> String {
    let spec_env: Vec<(String, String)> = c
        .spec
        .config
        .env
        .iter()
        .map(|(k, v, _)| (k.clone(), v.clone()))
        .collect();
    expanded_path(&base.config.config.env, &spec_env, &c.spec.args)
}

fn expanded_path(
    base_env: &[String],
    spec_env: &[(String, String)],
    spec_args: &BTreeMap<String, String>,
) -> String {
    let mut env: Vec<(String, String)> = base_env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    for (key, raw) in spec_env {
        let lookup = |name: &str| {
            spec_args
                .get(name)
                .cloned()
                .or_else(|| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        };
        // A value that does not expand is a spec error `assemble` reports.
        let Ok(value) = args::expand_env(raw, &lookup) else {
            continue;
        };
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key.clone(), value)),
        }
    }
    env.into_iter()
        .find(|(k, _)| k == "PATH")
        .map_or_else(String::new, |(_, v)| v)
}

/// The first program a `sh -c` command line runs, when it names one:
/// None for builtins, variable assignments alone, and words the shell
/// would rewrite (quotes, `$`, globs) before looking them up.
fn shell_program(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().skip_while(|w| {
        let assignment = w
            .split_once('=')
            .is_some_and(|(name, _)| !name.is_empty() && !name.contains('/'));
        assignment || *w == "exec" || *w == "command"
    });
    let word = words.next()?;
    let plain = !word.contains(|c: char| "\"'`$\\*?[]{}()<>|;&~#".contains(c));
    (plain && !SHELL_WORDS.contains(&word)).then(|| word.to_string())
}

/// Where programs are looked up from: the image's PATH for a bare name,
/// its working directory for a relative one.
struct Where {
    path: String,
    workdir: String,
}

/// Whether `program` can start in the image: found, a regular file the
/// image's user (`run`, when the runtime can resolve it) may execute, and,
/// for a dynamically linked ELF, with its interpreter.
fn startable(
    files: &Files,
    program: &str,
    at: &Where,
    run: Option<&RunAs>,
) -> Result<(), Unstartable> {
    startable_within(files, program, at, run, SCRIPT_DEPTH)
}

fn startable_within(
    files: &Files,
    program: &str,
    at: &Where,
    run: Option<&RunAs>,
    depth: usize,
) -> Result<(), Unstartable> {
    let (path, workdir) = (at.path.as_str(), at.workdir.as_str());
    let (at, found) = if program.contains('/') {
        let at = match program.starts_with('/') {
            true => program.to_string(),
            false => format!("{}/{program}", workdir.trim_end_matches('/')),
        };
        let found = files.find(&at).ok_or(Unstartable::Missing)?;
        (at, found)
    } else {
        look_up(files, program, path)?
    };
    if found.is_dir() {
        return Err(Unstartable::Dir(at));
    }
    if !found.is_executable() {
        return Err(Unstartable::NotExecutable(at));
    }
    if let Some(run) = run.filter(|r| !found.executable_by(r)) {
        return Err(Unstartable::NotExecutableBy(at, found.mode(), run.uid));
    }
    // A file whose bytes cannot be read (a base layer gone from the
    // cache) is given the benefit of the doubt.
    let Some(head) = files.head(&found) else {
        return Ok(());
    };
    if let Elf::Interp(interp) = elf::interpreter(&head) {
        if files.find(&interp).is_none_or(|f| f.is_dir()) {
            return Err(Unstartable::NoInterpreter {
                program: at,
                interp,
            });
        }
    }
    let Some((interp, arg)) = shebang(&head) else {
        return Ok(());
    };
    let missing = |interp: String| Unstartable::NoScriptInterpreter {
        program: at.clone(),
        interp,
    };
    // A relative interpreter is found from the caller's directory, which
    // kiln cannot know for every caller; and past the kernel's depth the
    // start fails for a reason this check does not name.
    if !interp.starts_with('/') || depth == 0 {
        return Ok(());
    }
    match startable_within(
        files,
        &interp,
        &Where {
            path: path.into(),
            workdir: workdir.into(),
        },
        run,
        depth - 1,
    ) {
        Err(Unstartable::Missing) => return Err(missing(interp)),
        Err(why) => return Err(why),
        Ok(()) => {}
    }
    // `#!/usr/bin/env python3` looks python3 up through the image's PATH.
    if let Some(name) =
        arg.filter(|a| interp.rsplit('/').next() == Some("env") && !a.starts_with('-'))
    {
        if look_up(files, &name, path).is_err() && !name.contains('/') {
            return Err(missing(format!("{name}` (through `{interp}")));
        }
    }
    Ok(())
}

/// The interpreter and its one optional argument from a `#!` line, as the
/// kernel splits it: within its first 256 bytes, up to the newline.
fn shebang(head: &[u8]) -> Option<(String, Option<String>)> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.len().min(254)];
    let end = line.iter().position(|&b| b == b'\n')?;
    let text = std::str::from_utf8(&line[..end]).ok()?;
    let text = text.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    let (interp, arg) = match text.split_once([' ', '\t']) {
        Some((i, a)) => (i, Some(a.trim_matches([' ', '\t']).to_string())),
        None => (text, None),
    };
    (!interp.is_empty()).then(|| (interp.to_string(), arg.filter(|a| !a.is_empty())))
}

/// A bare name through PATH as Go's exec.LookPath (runc) finds it: the
/// first directory holding an executable file of that name; else the
/// first non-executable match, to say why it will not start.
fn look_up<'a>(
    files: &'a Files,
    program: &str,
    path: &str,
) -> Result<(String, Found<'a>), Unstartable> {
    let mut first = None;
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let at = format!("{}/{program}", dir.trim_end_matches('/'));
        match files.find(&at) {
            Some(f) if f.is_executable() => return Ok((at, f)),
            Some(f) if first.is_none() && !f.is_dir() => first = Some((at, f)),
            _ => {}
        }
    }
    first.ok_or(Unstartable::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn path_expands_against_the_base() {
        let base = vec!["PATH=/usr/local/bin:/usr/bin".to_string(), "LANG=C".into()];
        let spec = env(&[("PATH", "/app/venv/bin:$PATH")]);
        assert_eq!(
            expanded_path(&base, &spec, &BTreeMap::new()),
            "/app/venv/bin:/usr/local/bin:/usr/bin"
        );
        let braces = env(&[("PATH", "${PATH}:/opt/bin")]);
        assert_eq!(
            expanded_path(&base, &braces, &BTreeMap::new()),
            "/usr/local/bin:/usr/bin:/opt/bin"
        );
    }

    #[test]
    fn path_is_the_bases_or_the_default() {
        let base = vec!["PATH=/custom/bin".to_string()];
        assert_eq!(expanded_path(&base, &[], &BTreeMap::new()), "/custom/bin");
        assert_eq!(expanded_path(&[], &[], &BTreeMap::new()), DEFAULT_PATH);
        let spec = env(&[("PATH", "/app/bin:$PATH")]);
        assert_eq!(
            expanded_path(&[], &spec, &BTreeMap::new()),
            format!("/app/bin:{DEFAULT_PATH}")
        );
    }

    #[test]
    fn path_uses_args_and_earlier_env_in_order() {
        let args = BTreeMap::from([("VENV".to_string(), "/opt/venv".to_string())]);
        let spec = env(&[
            ("HOME_BIN", "/home/app/bin"),
            ("PATH", "${VENV}/bin:$HOME_BIN:$PATH"),
        ]);
        let base = vec!["PATH=/bin".to_string()];
        assert_eq!(
            expanded_path(&base, &spec, &args),
            "/opt/venv/bin:/home/app/bin:/bin"
        );
        // Set twice: the second sees the first.
        let twice = env(&[("PATH", "/a:$PATH"), ("PATH", "/b:$PATH")]);
        assert_eq!(expanded_path(&base, &twice, &args), "/b:/a:/bin");
    }

    #[test]
    fn shebang_lines_split_as_the_kernel_splits_them() {
        let s = |b: &[u8]| shebang(b);
        assert_eq!(s(b"#!/bin/sh\necho"), Some(("/bin/sh".into(), None)));
        assert_eq!(
            s(b"#! /usr/bin/env  python3 \r\nprint()"),
            Some(("/usr/bin/env".into(), Some("python3".into())))
        );
        assert_eq!(
            s(b"#!/bin/sh -e -u\n"),
            Some(("/bin/sh".into(), Some("-e -u".into())))
        );
        assert_eq!(s(b"#!/bin/sh"), None, "no newline in the head");
        assert_eq!(s(b"#!\n"), None);
        assert_eq!(s(b"\x7fELF"), None);
        assert_eq!(s(&[b'#', b'!', 0xff, b'\n']), None);
        let long = [b"#!/".as_slice(), &[b'a'; 300], b"\n"].concat();
        assert_eq!(s(&long), None, "past the kernel's 256 bytes");
    }

    #[test]
    fn the_first_program_of_a_shell_line() {
        let p = |s: &str| shell_program(s);
        assert_eq!(p("curl -f http://localhost/").as_deref(), Some("curl"));
        assert_eq!(
            p("  /usr/bin/wget -q -O- x").as_deref(),
            Some("/usr/bin/wget")
        );
        assert_eq!(p("exec curl -f x || exit 1").as_deref(), Some("curl"));
        assert_eq!(p("LANG=C python -c 'x'").as_deref(), Some("python"));
        assert_eq!(p("test -f /tmp/ready"), None);
        assert_eq!(p("[ -f /tmp/ready ]"), None);
        assert_eq!(p("$PROBE --check"), None);
        assert_eq!(p("\"quoted\" x"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("A=1"), None);
    }
}
