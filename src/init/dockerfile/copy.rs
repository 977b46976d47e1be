//! COPY and ADD as [[copy]]: local sources relative to the spec, stages
//! and images as `image`, and what ADD does beyond a copy reported.

use super::convert::{Converter, join};
use super::model::*;
use super::parse::Instr;

impl Converter<'_> {
    /// `--chmod` applies to a directory's tree too: dir-mode only for a source
    /// known to be a directory, so a file's mode never lands on its parents.
    fn is_local_dir(&self, src: &str, from_image: bool) -> bool {
        if from_image {
            return src.ends_with('/');
        }
        self.context.as_ref().is_some_and(|c| c.join(src).is_dir())
    }

    pub(super) fn copy(&mut self, i: &Instr) {
        let add = i.cmd == "ADD";
        let known: &[&str] = if add {
            &["chown", "chmod", "link"]
        } else {
            &["chown", "chmod", "from", "link", "exclude"]
        };
        if !self.flags_ok(i, known) {
            return;
        }
        if i.heredoc {
            return self.unsupported(
                i,
                "a heredoc makes the file at build time",
                "write it as [[file]] with content = \"...\"",
            );
        }
        let mut w = i.json().unwrap_or_else(|| self.text(&i.args));
        let Some(dest) = w.pop().filter(|_| !w.is_empty()) else {
            return self.unsupported(i, "needs a source and a destination", "fix the instruction");
        };
        let mut dest = join_keep_slash(&self.workdir, &dest);
        if w.len() > 1 && !dest.ends_with('/') {
            dest.push('/');
        }
        let mode = match i.flag("chmod") {
            Some(m)
                if !m.is_empty() && m.len() <= 4 && m.chars().all(|c| ('0'..='7').contains(&c)) =>
            {
                Some(format!("{m:0>4}"))
            }
            Some(_) => {
                return self.unsupported(
                    i,
                    "--chmod is not an octal mode",
                    "write mode = \"0644\" by hand",
                );
            }
            None => None,
        };
        let (image, note) = match i.flag("from") {
            Some(from) => self.copy_source(from, i.line),
            None => (None, None),
        };
        let owner = i.flag("chown").map(|o| self.one(o));
        let exclude: Vec<String> = i
            .flags
            .iter()
            .filter(|(n, _)| n == "exclude")
            .filter_map(|(_, v)| v.clone())
            .collect();
        for src in w {
            if add && (src.contains("://") || src.starts_with("git@")) {
                self.unsupported(
                    i,
                    "ADD of a URL downloads at build time",
                    "download it in a local build step (pinned by checksum) and [[copy]] it",
                );
                continue;
            }
            if add && is_archive(&src) {
                self.unsupported(
                    i,
                    "ADD of a local tar unpacks it",
                    "unpack it in a local build step and [[copy]] the directory",
                );
                continue;
            }
            let src = match src.strip_prefix("./") {
                Some("") => ".".to_string(),
                Some(s) => s.to_string(),
                None if image.is_some() && !src.starts_with('/') => format!("/{src}"),
                None => src,
            };
            if let Some(o) = owner
                .as_ref()
                .filter(|_| image.is_none() && self.is_local_dir(&src, false))
            {
                let into = dest.trim_end_matches('/');
                if self.workdirs.contains(into) {
                    self.m.notes.push(format!(
                        "line {}: COPY into {into}, which WORKDIR made: Docker leaves that directory root-owned, kiln's [[copy]] gives it to {o}",
                        i.line
                    ));
                }
            }
            let dir_mode = mode
                .clone()
                .filter(|_| self.is_local_dir(&src, image.is_some()));
            self.m.copies.push(CopyOut {
                line: i.line,
                src,
                image: image.clone(),
                dest: dest.clone(),
                owner: owner.clone(),
                mode: mode.clone(),
                dir_mode,
                exclude: exclude.clone(),
                note: note.clone(),
            });
            self.drop_rewritten();
        }
    }

    /// Docker lets a later COPY write a file again (`COPY requirements.txt .`
    /// then `COPY . .`); kiln refuses a path written twice. An earlier local
    /// copy whose files the newest one writes again, from the same source
    /// files, is left out: the later one's owner and mode are what Docker keeps.
    fn drop_rewritten(&mut self) {
        let Some(last) = self.m.copies.last() else {
            return;
        };
        if last.image.is_some() || !last.exclude.is_empty() || !self.is_local_dir(&last.src, false)
        {
            return;
        }
        let base = norm(&last.src);
        let (dest, line) = (last.dest.trim_end_matches('/').to_string(), last.line);
        let n = self.m.copies.len() - 1;
        let mut kept = Vec::new();
        for (k, c) in std::mem::take(&mut self.m.copies).into_iter().enumerate() {
            let src = norm(&c.src);
            let rel = if base.is_empty() {
                Some(src.as_str())
            } else {
                src.strip_prefix(&base)
                    .and_then(|r| r.strip_prefix('/').or(r.is_empty().then_some("")))
            };
            let written = match rel {
                Some(_) if self.is_local_dir(&c.src, false) => {
                    c.dest.trim_end_matches('/').to_string()
                }
                Some(_) if c.dest.ends_with('/') => {
                    format!("{}{}", c.dest, src.rsplit('/').next().unwrap_or(""))
                }
                _ => String::new(),
            };
            let again = rel.is_some_and(|r| join(&dest, r) == written);
            if k < n && c.image.is_none() && again {
                self.m.notes.push(format!("line {}: COPY {} is left out: the COPY on line {line} writes the same files again", c.line, c.src));
            } else {
                kept.push(c);
            }
        }
        self.m.copies = kept;
    }

    /// `--from=STAGE` (an arg naming the image it must be built as) or `--from=IMAGE`.
    fn copy_source(&mut self, from: &str, line: usize) -> (Option<String>, Option<String>) {
        // `--from=ghcr.io/astral-sh/uv:${UV}` may use an ARG declared before FROM.
        for (name, value) in self.globals {
            let used = from.contains(&format!("${{{name}}}")) || from.contains(&format!("${name}"));
            if let Some(v) = value.as_ref().filter(|_| used && !self.args.contains(name)) {
                self.push_arg(
                    name,
                    v.clone(),
                    "ARG before FROM, used in COPY --from".into(),
                );
            }
        }
        let from = self.one(from);
        let lower = from.to_ascii_lowercase();
        let stage = self
            .stage_names
            .iter()
            .find(|(n, idx, _)| n.as_deref() == Some(lower.as_str()) || idx.to_string() == from);
        let Some(&(_, _, from_line)) = stage else {
            return (Some(from), None);
        };
        let label: String = from
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        let arg = format!("STAGE_{label}_IMAGE");
        self.push_arg(
            &arg,
            format!("oci:stages/{lower}"),
            format!("stage `{from}` (FROM on line {}), built elsewhere: --build-arg {arg}=HOST/REPO:TAG@sha256:..., or an OCI layout here", from_line),
        );
        let note = format!(
            "line {line}: COPY --from={from}: stage `{from}` is not built by kiln; build it elsewhere and pass it with --build-arg {arg}=..."
        );
        (Some(format!("${{{arg}}}")), Some(note))
    }
}

/// As [`join`], keeping a trailing `/` (or `.`) as "into this directory".
fn join_keep_slash(base: &str, path: &str) -> String {
    let into = path.ends_with('/') || path == "." || path.ends_with("/.");
    let j = join(base, path);
    if into && !j.ends_with('/') {
        format!("{j}/")
    } else {
        j
    }
}

/// A context path as written, without `./` and trailing `/` (`.` is `""`).
fn norm(src: &str) -> String {
    let parts: Vec<&str> = src
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

fn is_archive(src: &str) -> bool {
    let s = src.to_ascii_lowercase();
    [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tzst",
    ]
    .iter()
    .any(|e| s.ends_with(e))
}
