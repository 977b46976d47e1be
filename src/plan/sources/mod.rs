//! Local sources of a `[[copy]]`: glob expansion, directory walks, excludes,
//! and the rule that nothing is read from outside the spec's directory.
//! Symlinks inside a tree are kept as links, never followed.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, IoContext, Result};
use crate::spec::ignore::Ignore;
use crate::spec::validate::Copy;

/// One thing found in the sources, with its path relative to the copy's destination.
#[derive(Debug, Clone)]
pub struct Found {
    /// Absolute path in the image.
    pub dest: String,
    pub kind: FoundKind,
    /// Where it came from, for messages.
    pub origin: PathBuf,
    /// The source's permission bits, for `mode = "preserve"`.
    pub mode: u32,
}

/// What identifies a file's contents without reading them: if none of
/// these changed, neither did the bytes (ctime cannot be set by users).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stamp {
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub inode: u64,
    pub device: u64,
    /// Hard links to the inode: over 1, other paths may share its bytes.
    pub links: u64,
}

impl Stamp {
    pub(crate) fn of(meta: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
            links: meta.nlink(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum FoundKind {
    Dir,
    File {
        size: u64,
        executable: bool,
        stamp: Stamp,
    },
    Symlink(String),
}

/// Everything a copy entry brings in, in a stable order. The destination
/// directory itself is listed when a directory's contents are copied.
/// Everything is handed to `out` as it is found, so a tree of any size is
/// never held twice.
pub type Sink<'a> = dyn FnMut(Found) -> Result<()> + 'a;

pub fn collect(
    copy: &Copy,
    spec_dir: &Path,
    ignore: Option<&Ignore>,
    err: &dyn Fn(String) -> Error,
    out: &mut Sink,
) -> Result<()> {
    let mut matches = expand(copy, spec_dir, err)?;
    // Excluded directories kept only for the exceptions under them.
    let mut for_exceptions = Vec::new();
    if let Some(ignore) = ignore {
        matches.retain(|m| {
            let rel = context_rel(m, spec_dir);
            // The spec's directory itself is never ignored, as in Docker.
            if rel.is_empty() || !ignore.excludes(&rel) {
                return true;
            }
            if ignore.has_exceptions() && m.is_dir() {
                for_exceptions.push(m.clone());
                return true;
            }
            false
        });
        if matches.is_empty() {
            return Err(excluded(copy, ignore, err));
        }
    }
    if matches.len() > 1 && !copy.dest_is_dir {
        return Err(err(format!(
            "src `{}` matches {} paths, so dest `{}` must be a directory ending in `/`",
            copy.src,
            matches.len(),
            copy.dest
        )));
    }
    let exclude = exclude_set(&copy.exclude);
    let mut anything = false;
    for path in matches {
        let real = inside(&path, spec_dir)?;
        let meta = fs::metadata(&real).ctx("read metadata of", &real)?;
        if meta.is_dir() {
            let top = Found {
                dest: copy.dest.clone(),
                kind: FoundKind::Dir,
                origin: path.clone(),
                mode: meta.permissions().mode() & 0o7777,
            };
            let mut pending = Vec::new();
            if for_exceptions.contains(&path) {
                pending.push(top);
            } else {
                out(top)?;
            }
            let follow_within = copy.follow_symlinks.then_some(spec_dir);
            let walk = Walk {
                dest: &copy.dest,
                exclude: &exclude,
                follow_within,
                ignore: ignore.map(|i| (i, context_rel(&path, spec_dir))),
            };
            walk.dir(&real, "", out, &mut pending)?;
            anything |= pending.is_empty();
        } else {
            let name = file_name(&path)?;
            let dest = if copy.dest_is_dir {
                join(&copy.dest, &name)
            } else {
                copy.dest.clone()
            };
            out(found(&real, dest, &meta)?)?;
            anything = true;
        }
    }
    match ignore {
        Some(ignore) if !anything => Err(excluded(copy, ignore, err)),
        _ => Ok(()),
    }
}

/// A src that the ignore file leaves nothing of.
fn excluded(copy: &Copy, ignore: &Ignore, err: &dyn Fn(String) -> Error) -> Error {
    let what = if is_glob(&copy.src) {
        "matches only paths"
    } else {
        "is"
    };
    let hint = format!(
        "add an exception such as `!{}` to the ignore file, or set [image] ignore-file = false",
        copy.src.trim_end_matches('/')
    );
    err(format!(
        "src `{}` {what} excluded by `{}`",
        copy.src,
        ignore.file.display()
    ))
    .with_hint(hint)
}

fn is_glob(src: &str) -> bool {
    src.contains(['*', '?', '[', '{'])
}

/// A source's path relative to the spec's directory, as ignore files name it.
fn context_rel(path: &Path, spec_dir: &Path) -> String {
    path.strip_prefix(spec_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The paths `src` names: one path, or every match of a glob (sorted).
fn expand(copy: &Copy, spec_dir: &Path, err: &dyn Fn(String) -> Error) -> Result<Vec<PathBuf>> {
    let src = copy.src.trim_end_matches('/');
    let src = if src.is_empty() { "." } else { src };
    let is_glob = src.contains(['*', '?', '[', '{']);
    if !is_glob {
        let path = spec_dir.join(src);
        if fs::symlink_metadata(&path).is_err() {
            return Err(err(format!(
                "src `{}` does not exist in `{}`",
                copy.src,
                spec_dir.display()
            )));
        }
        return Ok(vec![path]);
    }
    let glob = GlobBuilder::new(src)
        .literal_separator(true)
        .build()
        .map_err(|e| {
            err(format!(
                "src `{}` is not a valid glob: {}",
                copy.src,
                e.kind()
            ))
        })?
        .compile_matcher();
    // Walk from the longest directory prefix without glob characters.
    let literal: Vec<&str> = src
        .split('/')
        .take_while(|p| !p.contains(['*', '?', '[', '{']))
        .collect();
    let start = spec_dir.join(literal.join("/"));
    let depth = src.split('/').count() - literal.len();
    let recursive = src.contains("**");
    let mut found = Vec::new();
    let mut stack = vec![(start, literal.join("/"), 0usize)];
    while let Some((dir, rel, level)) = stack.pop() {
        let Ok(read) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in read {
            let entry = entry.ctx("list", &dir)?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if glob.is_match(&child_rel) {
                found.push(entry.path());
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && (recursive || level + 1 < depth) {
                stack.push((entry.path(), child_rel, level + 1));
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(err(format!(
            "src `{}` matches nothing in `{}`",
            copy.src,
            spec_dir.display()
        )));
    }
    Ok(found)
}

/// Patterns without a `/` match a name at any depth, like .gitignore.
pub(crate) fn exclude_set(patterns: &[String]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let p = p.trim_end_matches('/');
        let variants = if p.contains('/') {
            vec![p.trim_start_matches('/').to_string()]
        } else {
            vec![p.to_string(), format!("**/{p}")]
        };
        for v in variants {
            if let Ok(g) = GlobBuilder::new(&v).literal_separator(true).build() {
                builder.add(g);
            }
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

/// One directory walk: where entries go, what is left out, and whether
/// symlinks are followed (only to places inside the spec's directory).
struct Walk<'a> {
    dest: &'a str,
    exclude: &'a GlobSet,
    follow_within: Option<&'a Path>,
    /// The ignore file, and the walked directory's path relative to the spec's directory.
    ignore: Option<(&'a Ignore, String)>,
}

impl Walk<'_> {
    /// Whether the ignore file leaves out `rel` (relative to the walked directory).
    fn ignored(&self, rel: &str) -> bool {
        self.ignore.as_ref().is_some_and(|(ignore, root)| {
            let path = if root.is_empty() {
                rel.to_string()
            } else {
                format!("{root}/{rel}")
            };
            ignore.excludes(&path)
        })
    }

    /// `pending` holds ignored directories walked only for the exceptions
    /// under them: each is written just before the first thing it contains.
    fn dir(&self, dir: &Path, rel: &str, out: &mut Sink, pending: &mut Vec<Found>) -> Result<()> {
        let mut children: Vec<fs::DirEntry> = fs::read_dir(dir)
            .ctx("list", dir)?
            .collect::<Result<_, _>>()
            .ctx("list", dir)?;
        children.sort_by_key(|e| e.file_name());
        for entry in children {
            let path = entry.path();
            let name = file_name(&path)?;
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if self.exclude.is_match(&child_rel) {
                continue;
            }
            let ignored = self.ignored(&child_rel);
            let walk_anyway = self
                .ignore
                .as_ref()
                .is_some_and(|(i, _)| i.has_exceptions());
            if ignored && !(walk_anyway && entry.file_type().is_ok_and(|t| t.is_dir())) {
                continue;
            }
            let mut meta = fs::symlink_metadata(&path).ctx("read metadata of", &path)?;
            let mut source = path.clone();
            if let (true, Some(root)) = (meta.file_type().is_symlink(), self.follow_within) {
                source = inside(&path, root)?;
                meta = fs::metadata(&source).ctx("read metadata of", &source)?;
                // `dir` is a real path: a link to it or to one of its parents loops.
                if meta.is_dir() && dir.starts_with(&source) {
                    return Err(Error::source_path(&path, "is a symlink loop")
                        .with_hint("remove the loop, or turn follow-symlinks off"));
                }
            }
            let item = found(&source, join(self.dest, &child_rel), &meta)?;
            let is_dir = matches!(item.kind, FoundKind::Dir);
            if ignored {
                // An ignored directory, walked for the exceptions under it.
                let depth = pending.len();
                pending.push(item);
                self.dir(&source, &child_rel, out, pending)?;
                pending.truncate(depth);
                continue;
            }
            for parent in pending.drain(..) {
                out(parent)?;
            }
            out(item)?;
            if is_dir {
                self.dir(&source, &child_rel, out, pending)?;
            }
        }
        Ok(())
    }
}

/// Where a symlink really leads, if that is inside `root`; an error otherwise.
fn inside(path: &Path, root: &Path) -> Result<PathBuf> {
    let real = path.canonicalize().map_err(|_| {
        Error::source_path(path, "is a symlink to nothing").with_hint("remove it, or exclude it")
    })?;
    if !real.starts_with(root) {
        return Err(Error::Source {
            path: path.to_path_buf(),
            msg: format!(
                "leads outside the spec's directory `{}` through a symlink",
                root.display()
            ),
            hint: Some(
                "kiln reads only files under the spec's directory; copy the files there instead"
                    .into(),
            ),
        });
    }
    Ok(real)
}

fn found(path: &Path, dest: String, meta: &fs::Metadata) -> Result<Found> {
    let t = meta.file_type();
    let kind = if t.is_dir() {
        FoundKind::Dir
    } else if t.is_file() {
        FoundKind::File {
            size: meta.len(),
            executable: meta.permissions().mode() & 0o111 != 0,
            stamp: Stamp::of(meta),
        }
    } else if t.is_symlink() {
        let target = fs::read_link(path).ctx("read link", path)?;
        let target = target
            .to_str()
            .ok_or_else(|| Error::source_path(path, "symlink target is not valid UTF-8"))?
            .to_string();
        FoundKind::Symlink(target)
    } else {
        let what = if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() || t.is_char_device() {
            "a device"
        } else {
            "not a file"
        };
        return Err(Error::source_path(
            path,
            format!("is {what}; kiln copies files, directories and symlinks only"),
        )
        .with_hint("exclude it with `exclude = [...]` in the copy entry"));
    };
    Ok(Found {
        dest,
        kind,
        origin: path.to_path_buf(),
        mode: meta.permissions().mode() & 0o7777,
    })
}

/// A file name that can go into a layer: UTF-8, no control characters, not a whiteout.
fn file_name(path: &Path) -> Result<String> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        Error::source_path(path, "name is not valid UTF-8").with_hint("rename it, or exclude it")
    })?;
    if name.chars().any(char::is_control) {
        return Err(
            Error::source_path(path, "name contains a control character")
                .with_hint("rename it, or exclude it"),
        );
    }
    if name.starts_with(".wh.") {
        return Err(
            Error::source_path(path, "names starting with `.wh.` are layer whiteouts")
                .with_hint("rename it, or exclude it"),
        );
    }
    Ok(name.to_string())
}

pub(crate) fn join(dir: &str, rel: &str) -> String {
    if dir == "/" {
        format!("/{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

#[cfg(test)]
mod tests;
