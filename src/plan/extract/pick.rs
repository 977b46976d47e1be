//! Which of an image's paths a copy takes, and where each goes: the rules
//! of a local copy (`sources`), applied to the image's in-memory view.
//! Links in `src` are followed inside the image; links inside a copied tree
//! stay links (the spec refuses `follow-symlinks` for an image).

use globset::GlobBuilder;

use crate::error::{Error, Result};
use crate::image::fsview::{DataRef, FsView, Kind, Meta, resolve_dots};
use crate::plan::sources::{exclude_set, join};
use crate::shown::escape as shown;
use crate::spec::validate::Copy;

/// One path the copy puts in the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Absolute path in the new image.
    pub dest: String,
    pub what: What,
    /// The permission bits the image gives the path (for `mode = "preserve"`).
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    Dir,
    File {
        data: DataRef,
        size: u64,
        executable: bool,
    },
    Symlink(String),
}

/// Every path `copy` takes from `fs`, parents before children.
/// `fail` turns a message into the copy's error.
pub fn pick(fs: &FsView, copy: &Copy, fail: &dyn Fn(String) -> Error) -> Result<Vec<Pick>> {
    let (literal, pattern) = split_glob(&copy.src);
    let start = fs.follow(&literal);
    let matches: Vec<(String, String)> = match &pattern {
        None => {
            if !exists(fs, &start) {
                let msg = format!("src `{}` does not exist in the image", copy.src);
                return Err(fail(msg).with_hint(nearest(fs, &start)));
            }
            let name = literal.rsplit('/').next().unwrap_or("").to_string();
            vec![(name, start)]
        }
        Some(p) => {
            let full = format!("{}/{p}", start.trim_end_matches('/'));
            let glob = GlobBuilder::new(&full)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    fail(format!(
                        "src `{}` is not a valid glob: {}",
                        copy.src,
                        e.kind()
                    ))
                })?
                .compile_matcher();
            let found: Vec<(String, String)> = fs
                .under(&start)
                .filter(|k| glob.is_match(k))
                .map(|k| {
                    (
                        k.rsplit('/').next().unwrap_or("").to_string(),
                        fs.follow(&k),
                    )
                })
                .collect();
            if found.is_empty() {
                let msg = format!("src `{}` matches nothing in the image", copy.src);
                return Err(fail(msg).with_hint(nearest(fs, &full)));
            }
            found
        }
    };
    if matches.len() > 1 && !copy.dest_is_dir {
        return Err(fail(format!(
            "src `{}` matches {} paths, so dest `{}` must be a directory ending in `/`",
            copy.src,
            matches.len(),
            copy.dest
        )));
    }
    let mut out = Vec::new();
    for (name, real) in matches {
        let Some(meta) = meta_of(fs, &real) else {
            return Err(fail(format!(
                "src `{}` is a symlink that leads nowhere in the image (`{}`)",
                copy.src,
                shown(&real)
            )));
        };
        if meta.kind == Kind::Dir {
            out.push(Pick {
                dest: copy.dest.clone(),
                what: What::Dir,
                mode: meta.mode & 0o7777,
            });
            walk(fs, copy, &real, &mut out, fail)?;
        } else {
            let dest = if copy.dest_is_dir {
                join(&copy.dest, &name)
            } else {
                copy.dest.clone()
            };
            out.push(Pick {
                dest,
                what: what(fs, &real, &meta, fail)?,
                mode: meta.mode & 0o7777,
            });
        }
    }
    Ok(out)
}

fn exists(fs: &FsView, path: &str) -> bool {
    path == "/" || fs.entries.contains_key(path)
}

/// `/` is a directory even when no layer names it.
fn meta_of(fs: &FsView, path: &str) -> Option<Meta> {
    match fs.entries.get(path) {
        Some(m) => Some(m),
        None if path == "/" => Some(Meta {
            kind: Kind::Dir,
            uid: 0,
            gid: 0,
            mode: 0o755,
            size: 0,
            layer: 0,
            data: None,
        }),
        None => None,
    }
}

fn what(fs: &FsView, path: &str, meta: &Meta, fail: &dyn Fn(String) -> Error) -> Result<What> {
    Ok(match meta.kind {
        Kind::Dir => What::Dir,
        Kind::File => What::File {
            data: meta
                .data
                .ok_or_else(|| fail(format!("`{}` has no data", shown(path))))?,
            size: meta.size,
            executable: meta.mode & 0o111 != 0,
        },
        Kind::Symlink => What::Symlink(fs.links.get(path).unwrap_or_default()),
        Kind::Other => {
            return Err(fail(format!(
                "`{}` in the image is a device, FIFO or socket; kiln copies files, directories and symlinks only",
                shown(path)
            ))
            .with_hint("exclude it with `exclude = [...]` in the copy entry"));
        }
    })
}

/// The tree under `top`, in sorted order, parents first. A stack, not
/// recursion: an image may nest directories as deep as it likes.
fn walk(
    fs: &FsView,
    copy: &Copy,
    top: &str,
    out: &mut Vec<Pick>,
    fail: &dyn Fn(String) -> Error,
) -> Result<()> {
    let exclude = exclude_set(&copy.exclude);
    let unreadable = |dir: &str| {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        fs.skipped
            .iter()
            .find(|(n, _)| resolve_dots(n).starts_with(&prefix))
    };
    if let Some((name, layer)) = unreadable(top) {
        return Err(fail(format!(
            "`{}` (layer {}) has a name that is not UTF-8",
            shown(name),
            layer + 1
        ))
        .with_hint("exclude it, or rename it in the image"));
    }
    // (image path, path relative to `top`)
    let mut stack: Vec<(String, String)> = Vec::new();
    let push_children = |stack: &mut Vec<_>, dir: &str, rel: &str| {
        for name in fs.children(dir).into_iter().rev() {
            let path = join(dir, &name);
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            stack.push((path, child_rel));
        }
    };
    push_children(&mut stack, top, "");
    while let Some((path, rel)) = stack.pop() {
        if exclude.is_match(&rel) {
            continue;
        }
        if rel.chars().any(char::is_control) {
            return Err(fail(format!(
                "`{}` in the image has a control character in its name",
                shown(&path)
            ))
            .with_hint("exclude it with `exclude = [...]` in the copy entry"));
        }
        let Some(meta) = meta_of(fs, &path) else {
            continue;
        };
        out.push(Pick {
            dest: join(&copy.dest, &rel),
            what: what(fs, &path, &meta, fail)?,
            mode: meta.mode & 0o7777,
        });
        if meta.kind == Kind::Dir {
            push_children(&mut stack, &path, &rel);
        }
    }
    Ok(())
}
/// `/app/*.whl` -> (`/app`, `*.whl`); a path without glob characters stays whole.
fn split_glob(src: &str) -> (String, Option<String>) {
    let src = src.trim_end_matches('/');
    let parts: Vec<&str> = src.split('/').collect();
    match parts.iter().position(|p| p.contains(['*', '?', '[', '{'])) {
        None => (resolve_dots(src), None),
        Some(i) => (
            resolve_dots(&parts[..i].join("/")),
            Some(parts[i..].join("/")),
        ),
    }
}

/// `path` with every symlink on the way resolved inside the image, the
/// last one included (COPY --from copies what a named link points to).
/// The closest existing names to `path`: the children of its deepest
/// existing ancestor, most alike first.
pub(super) fn nearest(fs: &FsView, path: &str) -> String {
    let mut ancestor = path.to_string();
    while ancestor != "/" && !fs.entries.contains_key(&ancestor) {
        ancestor = match ancestor.rsplit_once('/') {
            Some(("", _)) | None => "/".to_string(),
            Some((p, _)) => p.to_string(),
        };
    }
    let prefix = if ancestor == "/" {
        "/".to_string()
    } else {
        format!("{ancestor}/")
    };
    let wanted = path.rsplit('/').next().unwrap_or("");
    let mut near: Vec<String> = fs
        .entries
        .from(&prefix)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.into_owned())
        .filter(|k| k.len() > prefix.len() && !k[prefix.len()..].contains('/'))
        .collect();
    near.sort_by_key(|k| distance(k.rsplit('/').next().unwrap_or(""), wanted));
    let list: Vec<&str> = near.iter().take(5).map(String::as_str).collect();
    if list.is_empty() {
        format!("`{ancestor}` is empty in the image")
    } else {
        format!("nearest paths in the image: {}", list.join(", "))
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
