//! `kiln init --from Dockerfile`: a commented kiln.toml from a Dockerfile's
//! final stage (or `--target`'s), with every RUN part kiln cannot express
//! listed in the spec and returned for stderr, each with its line.
//!
//! `parse` splits instructions; `words` reads their arguments and Docker's
//! variables; `accounts` reads useradd/adduser/mkdir/chown in RUN chains,
//! which `run` folds into [user] and [[dir]]; `convert` fills the `model`
//! that `render` writes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

mod accounts;
mod convert;
mod copy;
mod model;
mod parse;
mod render;
mod run;
mod shell;
mod words;

pub use model::Unsupported;

/// The spec text for `dockerfile` (its text), and what it leaves out.
/// `prefix` goes before every local copy source: the Dockerfile's directory
/// as seen from the spec's; `context` (the Dockerfile's directory) tells
/// directory sources from files; `label` names the Dockerfile in the header.
pub fn convert(
    text: &str,
    name: &str,
    target: Option<&str>,
    prefix: &str,
    context: Option<&Path>,
    label: &str,
) -> Result<(String, Vec<Unsupported>)> {
    let (globals, stages) = convert::stages(parse::parse(text));
    if stages.is_empty() {
        return Err(usage("the Dockerfile has no FROM", None));
    }
    let idx = match target {
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
                usage(
                    &format!("no stage named `{}`", crate::shown::escape(t)),
                    Some(format!(
                        "stages: {}",
                        crate::shown::escape(&names.join(", "))
                    )),
                )
            })?,
        None => stages.len() - 1,
    };
    // The chain of stages built FROM one another, root first.
    let mut chain = vec![idx];
    loop {
        let cur = chain[chain.len() - 1];
        let from = words::words(&stages[cur].from.args, None);
        let parent = from.first().map(|f| f.to_ascii_lowercase());
        match stages[..cur]
            .iter()
            .rposition(|s| s.name.is_some() && s.name == parent)
        {
            Some(p) => chain.push(p),
            None => break,
        }
    }
    chain.reverse();
    let mut c = convert::Converter::new(&globals, &stages);
    c.context = context.map(Path::to_path_buf);
    c.base(&stages[chain[0]].from);
    for &n in &chain {
        for i in &stages[n].body {
            c.instr(i);
        }
    }
    let runs = std::mem::take(&mut c.runs);
    let mut m = c.m;
    runs.finish(&mut m);
    let target = &stages[idx];
    m.stage = match &target.name {
        Some(n) => format!("`{n}` (line {})", target.from.line),
        None => format!("{} (line {})", idx + 1, target.from.line),
    };
    if m.base.is_empty() {
        m.base = "scratch".into();
    }
    user_default(&mut m);
    if !prefix.is_empty() {
        for copy in m.copies.iter_mut().filter(|c| c.image.is_none()) {
            copy.src = if copy.src == "." {
                prefix.to_string()
            } else {
                format!("{prefix}/{}", copy.src)
            };
        }
    }
    m.unsupported.sort_by_key(|u| u.line);
    let spec = render::render(&m, name, label);
    Ok((spec, m.unsupported))
}

/// USER naming [user] (by name or uid) is kiln's default: leave it out.
fn user_default(m: &mut model::Model) {
    let (Some(u), Some(written)) = (&m.user, &m.cfg.user) else {
        return;
    };
    let (who, group) = written.split_once(':').unwrap_or((written, ""));
    let uid = u.uid.to_string();
    let gid = u.gid.unwrap_or(u.uid).to_string();
    let group_name = u.group.clone().unwrap_or(u.name.clone());
    let user_ok = who == u.name || who == uid;
    let group_ok = group.is_empty() || group == gid || group == group_name;
    if user_ok && group_ok {
        m.cfg.user_is_default = m.cfg.user.take();
    }
}

fn usage(msg: &str, hint: Option<String>) -> Error {
    Error::Usage {
        what: "`kiln init --from`".into(),
        msg: msg.into(),
        hint,
    }
}

/// Write `dir/kiln.toml` (dir: default the Dockerfile's) from `dockerfile`;
/// an existing one is kept unless `force`. Returns its path and what it leaves out.
pub fn write(
    dockerfile: &Path,
    dir: Option<&Path>,
    target: Option<&str>,
    force: bool,
) -> Result<(PathBuf, Vec<Unsupported>)> {
    let bytes = fs::read(dockerfile).map_err(|e| Error::Usage {
        what: format!("`{}`", dockerfile.display()),
        msg: format!("cannot read it: {e}"),
        hint: Some("pass the path of a Dockerfile".into()),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let context = match dockerfile.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = dir.map(Path::to_path_buf).unwrap_or(context.clone());
    super::check_dir(&dir)?;
    let prefix = relative(&dir, &context);
    let name = super::detect::dir_name(&dir);
    let (spec, unsupported) = convert(
        &text,
        &name,
        target,
        &prefix,
        Some(&context),
        &crate::shown::escape(&dockerfile.display().to_string()),
    )?;
    let path = super::target_path(&dir, force)?;
    crate::tmp::write_atomic(&path, spec.as_bytes())?;
    Ok((path, unsupported))
}

/// `context` as seen from `dir` (`""` when they are the same).
fn relative(dir: &Path, context: &Path) -> String {
    let (Ok(d), Ok(c)) = (dir.canonicalize(), context.canonicalize()) else {
        return String::new();
    };
    let mut common = 0;
    let (dv, cv): (Vec<_>, Vec<_>) = (d.components().collect(), c.components().collect());
    while common < dv.len() && common < cv.len() && dv[common] == cv[common] {
        common += 1;
    }
    let mut parts: Vec<String> = vec!["..".into(); dv.len() - common];
    parts.extend(
        cv[common..]
            .iter()
            .map(|p| p.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[cfg(test)]
mod tests;
