//! Files taken out of another image for `[[copy]] image = ...` (Dockerfile
//! `COPY --from=IMAGE`). The image is read like a base, every blob checked
//! against its digest; the part of its filesystem the copy names is then
//! unpacked, layer by layer with whiteouts and opaque directories applied,
//! into a directory of the cache keyed by the image's digest and that path.
//! The copy reads from there as from a local tree, so the same code sets
//! owners and modes, and the unchanged directory keeps the layer cache warm.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::base::{FsView, Whiteout, normalize, resolve_dots, whiteout};
use crate::error::{Error, IoContext, Result};
use crate::inspect::{self, Opened};
use crate::validate::{Copy, Platform};

/// An image's files, unpacked for a copy.
pub struct Extracted {
    /// Mirrors the image's `/`: the copied path is at `root/<path>`.
    pub root: PathBuf,
    /// The copy's `src` relative to `root`, links in it resolved.
    pub src: String,
    /// The manifest digest the image reference resolved to.
    pub digest: String,
}

/// Unpack what `copy` names from `opened` into `cache_dir/extract/`.
pub fn extract(
    copy: &Copy,
    opened: &Opened,
    text: &str,
    platform: &Platform,
    cache_dir: &Path,
) -> Result<Extracted> {
    let c = &opened.config;
    if c.os != platform.os || c.architecture != platform.arch {
        return Err(image_error(
            text,
            format!(
                "is {}/{}, but the build is for {platform}",
                c.os, c.architecture
            ),
        )
        .with_hint("name an image (or index) that has this platform"));
    }
    let digest = opened
        .manifest
        .as_ref()
        .map_or_else(|| opened.config_digest.clone(), |m| m.digest.clone());
    let (literal, pattern) = split_glob(&copy.src);
    let key = {
        let mut h = Sha256::new();
        h.update(digest.as_bytes());
        h.update([0]);
        h.update(copy.src.as_bytes());
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let extract_dir = cache_dir.join("extract");
    fs::create_dir_all(&extract_dir).ctx("create", &extract_dir)?;
    // Canonical, as the copy checks that what it reads stays under it.
    let extract_dir = extract_dir.canonicalize().ctx("open", &extract_dir)?;
    let dir = extract_dir.join(&key);
    let marker = dir.join("src");
    if let Ok(src) = fs::read_to_string(&marker) {
        return Ok(Extracted {
            root: dir.join("root"),
            src,
            digest,
        });
    }

    let fs_view = inspect::read_files(opened, text)?;
    let real = follow(&fs_view, &literal);
    if real != "/" && !fs_view.entries.contains_key(&real) {
        return Err(missing(&fs_view, &copy.src, &literal, text, &digest));
    }
    if let Some(p) = &pattern {
        let full = format!("{}/{p}", real.trim_end_matches('/'));
        let glob = globset::GlobBuilder::new(&full)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                image_error(
                    text,
                    format!("src `{}` is not a valid glob: {}", copy.src, e.kind()),
                )
            })?
            .compile_matcher();
        if !fs_view.entries.keys().any(|k| glob.is_match(k)) {
            let msg = format!("src `{}` matches nothing in the image ({digest})", copy.src);
            let near = nearest(&fs_view, &format!("{}/{p}", real.trim_end_matches('/')));
            return Err(image_error(text, msg).with_hint(near));
        }
    }
    let src = match &pattern {
        Some(p) => format!("{}/{p}", real.trim_start_matches('/')),
        None => real.trim_start_matches('/').to_string(),
    };
    let src = if src.is_empty() { ".".to_string() } else { src };

    let tmp = crate::tmp::TempDir::new_in(&extract_dir, "extract")?;
    let root = tmp.path().join("root");
    fs::create_dir_all(&root).ctx("create", &root)?;
    let mut links = BTreeMap::new();
    for (n, layer) in opened.layers.iter().enumerate() {
        let name = format!("{}", n + 1);
        let (reader, compression) = layer.reader(&name, text)?;
        let mut step = Unpack {
            root: &root,
            keep: &real,
            layer: n,
            links: &mut links,
        };
        step.layer(reader, compression)
            .map_err(|e| image_error(text, format!("layer {name}: {e}")))?;
    }
    for (path, (target, upto)) in &links {
        fill_link(opened, *upto, target, &at(&root, path), text)?;
    }
    // The marker goes in last, and the whole directory appears in one rename.
    fs::write(tmp.path().join("src"), &src).ctx("write", &tmp.path().join("src"))?;
    if let Err(e) = tmp.persist(&dir) {
        if !marker.is_file() {
            return Err(e).ctx("store the unpacked files in", &dir);
        }
        // Another build unpacked the same thing first: theirs is used (ours goes on drop).
    }
    Ok(Extracted {
        root: dir.join("root"),
        src,
        digest,
    })
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
fn follow(fs: &FsView, path: &str) -> String {
    let mut current = fs.resolve_parents(path);
    for _ in 0..40 {
        let Some(target) = fs.links.get(&current) else {
            break;
        };
        let parent = current.rsplit_once('/').map_or("/", |(p, _)| p);
        let joined = if target.starts_with('/') {
            target.clone()
        } else {
            format!("{parent}/{target}")
        };
        current = fs.resolve_parents(&resolve_dots(&joined));
    }
    current
}

/// The error for a path the image lacks, with the nearest paths it has.
fn missing(fs: &FsView, src: &str, path: &str, text: &str, digest: &str) -> Error {
    let msg = format!("src `{src}` does not exist in the image ({digest})");
    image_error(text, msg).with_hint(nearest(fs, path))
}

/// The closest existing names to `path`: the children of its deepest
/// existing ancestor, most alike first.
fn nearest(fs: &FsView, path: &str) -> String {
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
    let mut near: Vec<&String> = fs
        .entries
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k)
        .filter(|k| k.len() > prefix.len() && !k[prefix.len()..].contains('/'))
        .collect();
    near.sort_by_key(|k| distance(k.rsplit('/').next().unwrap_or(""), wanted));
    let list: Vec<&str> = near.iter().take(5).map(|s| s.as_str()).collect();
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

/// Hard links to files outside what the copy takes: the path, and the
/// target with the last layer that may hold it. Filled in at the end.
type Links = BTreeMap<String, (String, usize)>;

/// One layer applied to the unpacked tree.
struct Unpack<'a> {
    root: &'a Path,
    /// Only this path and what is under it are unpacked.
    keep: &'a str,
    layer: usize,
    links: &'a mut Links,
}

impl Unpack<'_> {
    /// Apply the layer, keeping only `keep` and what is under it: files
    /// written, links made, whiteouts and opaque directories removing what
    /// earlier layers put there.
    fn layer(
        &mut self,
        reader: impl std::io::BufRead,
        compression: crate::oci::Compression,
    ) -> std::io::Result<()> {
        let (root, keep) = (self.root, self.keep);
        let decoder = crate::compress::decoder(reader, compression)?;
        let mut archive = tar::Archive::new(crate::base::ZeroTail::new(decoder));
        let under =
            |path: &str| keep == "/" || path == keep || path.starts_with(&format!("{keep}/"));
        let on_way = |path: &str| keep.starts_with(&format!("{path}/")) || path == "/";
        let mut added = BTreeSet::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let raw = entry.path_bytes().into_owned();
            let Some(path) = std::str::from_utf8(&raw).ok().and_then(normalize) else {
                continue;
            };
            let (parent, name) = match path.rsplit_once('/') {
                Some(("", n)) => ("/".to_string(), n.to_string()),
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => ("/".to_string(), path.clone()),
            };
            match whiteout(&parent, &name) {
                Some(Whiteout::Opaque) => {
                    if under(&parent) || on_way(&parent) {
                        clear_dir(root, &parent, &added)?;
                    }
                    continue;
                }
                Some(Whiteout::Remove(target)) => {
                    if under(&target) || on_way(&target) {
                        remove(&at(root, &target))?;
                    }
                    continue;
                }
                None => {}
            }
            if !under(&path) {
                continue;
            }
            let dest = at(root, &path);
            ensure_dirs(root, &parent)?;
            let header = entry.header().clone();
            match header.entry_type() {
                tar::EntryType::Directory => {
                    if fs::symlink_metadata(&dest).is_ok_and(|m| !m.is_dir()) {
                        remove(&dest)?;
                    }
                    fs::create_dir_all(&dest)?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    self.links.remove(&path);
                    remove(&dest)?;
                    let mut out = fs::File::create(&dest)?;
                    std::io::copy(&mut (&mut entry).take(header.size()?), &mut out)?;
                    let exec = header.mode().unwrap_or(0o644) & 0o111;
                    set_mode(&dest, 0o644 | exec)?;
                }
                tar::EntryType::Symlink => {
                    let target = header.link_name_bytes().unwrap_or_default();
                    let target = String::from_utf8_lossy(&target).into_owned();
                    remove(&dest)?;
                    std::os::unix::fs::symlink(target, &dest)?;
                }
                tar::EntryType::Link => {
                    let target = header.link_name_bytes().unwrap_or_default();
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let Some(target) = normalize(&target) else {
                        continue;
                    };
                    let from = at(root, &target);
                    remove(&dest)?;
                    if fs::symlink_metadata(&from).is_ok_and(|m| m.is_file()) {
                        fs::copy(&from, &dest)?;
                        self.links.remove(&path);
                    } else {
                        // Outside what is unpacked: its bytes are found afterwards.
                        fs::File::create(&dest)?;
                        let (target, layer) = match self.links.get(&target) {
                            Some(chained) => chained.clone(),
                            None => (target, self.layer),
                        };
                        self.links.insert(path.clone(), (target, layer));
                    }
                }
                _ => continue,
            }
            added.insert(path);
        }
        Ok(())
    }
}

/// Write the bytes of `target` as the image holds them after layer `upto`
/// to `dest`: the last regular file of that name in layers 0..=upto.
fn fill_link(opened: &Opened, upto: usize, target: &str, dest: &Path, text: &str) -> Result<()> {
    if !dest.is_file() {
        return Ok(());
    }
    let mut found = false;
    for (n, layer) in opened.layers.iter().enumerate().take(upto + 1) {
        let name = format!("{}", n + 1);
        let (reader, compression) = layer.reader(&name, text)?;
        let fail = |e: std::io::Error| image_error(text, format!("layer {name}: {e}"));
        let decoder = crate::compress::decoder(reader, compression).map_err(fail)?;
        let mut archive = tar::Archive::new(crate::base::ZeroTail::new(decoder));
        for entry in archive.entries().map_err(fail)? {
            let mut entry = entry.map_err(fail)?;
            let path = std::str::from_utf8(&entry.path_bytes())
                .ok()
                .and_then(normalize);
            let regular = matches!(
                entry.header().entry_type(),
                tar::EntryType::Regular | tar::EntryType::Continuous
            );
            if regular && path.as_deref() == Some(target) {
                let mut out = fs::File::create(dest).ctx("write", dest)?;
                std::io::copy(&mut entry, &mut out).map_err(fail)?;
                let exec = entry.header().mode().unwrap_or(0o644) & 0o111;
                set_mode(dest, 0o644 | exec).ctx("write", dest)?;
                found = true;
            }
        }
    }
    if !found {
        return Err(image_error(
            text,
            format!("a hard link in the copy points to `{target}`, which the image does not hold"),
        )
        .with_hint("the image is damaged; build it again"));
    }
    Ok(())
}

/// `root` + an image path, which `normalize` has freed of `..`.
fn at(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Make the directories of `dir` inside `root`, refusing to go through a link:
/// writing through one could leave the tree.
fn ensure_dirs(root: &Path, dir: &str) -> std::io::Result<()> {
    let mut current = root.to_path_buf();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(std::io::Error::other(format!(
                    "`{dir}` goes through a symlink in the image; kiln does not copy through links"
                )));
            }
            Ok(_) => {
                fs::remove_file(&current)?;
                fs::create_dir(&current)?;
            }
            Err(_) => fs::create_dir(&current)?,
        }
    }
    Ok(())
}

fn clear_dir(root: &Path, dir: &str, added: &BTreeSet<String>) -> std::io::Result<()> {
    let path = at(root, dir);
    let Ok(read) = fs::read_dir(&path) else {
        return Ok(());
    };
    for entry in read {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let image_path = if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        };
        if !added.contains(&image_path) {
            remove(&entry.path())?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn image_error(text: &str, msg: impl Into<String>) -> Error {
    inspect::image_error(text, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_split_at_the_first_wild_part() {
        assert_eq!(
            split_glob("/app/*.whl"),
            ("/app".into(), Some("*.whl".into()))
        );
        assert_eq!(split_glob("/uv"), ("/uv".into(), None));
        assert_eq!(split_glob("/a/./b/"), ("/a/b".into(), None));
        assert_eq!(split_glob("/*"), ("/".into(), Some("*".into())));
    }

    #[test]
    fn links_are_followed_inside_the_image() {
        let mut fs = FsView::default();
        fs.links.insert("/bin".into(), "usr/bin".into());
        fs.links
            .insert("/usr/bin/python3".into(), "python3.13".into());
        assert_eq!(follow(&fs, "/bin/python3"), "/usr/bin/python3.13");
        fs.links.insert("/loop".into(), "/loop".into());
        assert_eq!(follow(&fs, "/loop"), "/loop");
    }

    #[test]
    fn nearest_names_come_first() {
        assert_eq!(distance("site-packages", "site-package"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    proptest::proptest! {
        /// Any src splits, and following links in any view ends.
        #[test]
        fn paths_never_panic(src in "[a-z/.*?\\[\\]{}]{0,40}", target in "[a-z/.]{0,20}") {
            let (literal, _) = split_glob(&src);
            let mut fs = FsView::default();
            fs.links.insert(literal.clone(), target);
            let _ = follow(&fs, &literal);
        }
    }
}
