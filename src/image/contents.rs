//! The bytes of the few base files kiln reads, kept with the base's
//! filesystem view (and in its index) so a warm build reads them without
//! decompressing a layer. Which files: `kept`. The bytes of any other file
//! are read from its layer (`Base::file_bytes`), slower but the same.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};

use crate::image::base::Base;
use crate::image::fsview::{DataRef, FsView, Kind, MAX_ACCOUNT_FILE, read_entries};

// Adding a path here: raise `index::VERSION` too, or indexes written before
// keep serving that file from its layer (correct, but the slow path).

/// Files kept whole, beside the account files (which have their own fields).
pub const KEPT_FILES: &[&str] = &["/etc/os-release", "/usr/lib/os-release"];

/// Directories whose files are all kept.
pub const KEPT_UNDER: &[&str] = &["/etc/skel"];

/// Largest file kept; a larger one is read from its layer.
pub const MAX_KEPT: u64 = 4 << 20;

/// Most bytes kept in all: past it, files are read from their layers (a
/// hostile base can hold any number of files under a kept path).
pub const MAX_KEPT_TOTAL: u64 = 64 << 20;

/// Whether the bytes of the file at `path` (a path as the view has it,
/// links resolved) are kept in the view and its index: the skel, os-release
/// and the package databases an SBOM reads.
pub fn kept(path: &str) -> bool {
    crate::image::packages::package_db(path).is_some()
        || KEPT_FILES.contains(&path)
        || KEPT_UNDER.iter().any(|dir| {
            path.strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// After the last layer: drop the bytes of files that later layers
/// replaced, and read those that only a hard link put in place (their
/// bytes are in an entry that was not read as a kept path). `open(layer)`
/// gives that layer's tar stream; each layer is opened at most once.
pub fn finish<'a>(
    fs: &mut FsView,
    open: &mut dyn FnMut(usize) -> std::io::Result<Box<dyn Read + 'a>>,
) -> std::io::Result<()> {
    // In path order, up to MAX_KEPT_TOTAL; files past it are read from
    // their layers when asked for.
    let mut total = 0;
    let wanted: BTreeSet<DataRef> = fs
        .entries
        .iter()
        .filter(|(p, m)| m.kind == Kind::File && m.size <= MAX_KEPT && kept(p))
        .take_while(|(_, m)| {
            total += m.size;
            total <= MAX_KEPT_TOTAL
        })
        .filter_map(|(_, m)| m.data)
        .collect();
    fs.contents.retain(|at, _| wanted.contains(at));
    let mut missing: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for at in wanted.iter().filter(|at| !fs.contents.contains_key(at)) {
        missing.entry(at.layer).or_default().insert(at.entry);
    }
    let accounts = fs.unread_accounts();
    for (_, at) in &accounts {
        missing.entry(at.layer).or_default().insert(at.entry);
    }
    let mut read = BTreeMap::new();
    for (layer, entries) in missing {
        read_entries(open(layer)?, &entries, &mut |entry, data| {
            let mut bytes = Vec::new();
            data.take(MAX_ACCOUNT_FILE).read_to_end(&mut bytes)?;
            read.insert(DataRef { layer, entry }, bytes);
            Ok(())
        })?;
    }
    for (path, at) in accounts {
        fs.set_account(path, read.get(&at).cloned().unwrap_or_default());
    }
    for at in wanted {
        if let Some(bytes) = read.remove(&at) {
            fs.contents.insert(at, bytes);
        }
    }
    Ok(())
}

impl Base {
    /// The bytes of base files, each up to `limit`: kept ones from the
    /// view, the others read from their layers (each layer once).
    pub fn file_bytes(
        &self,
        wanted: &BTreeSet<DataRef>,
        limit: u64,
    ) -> std::io::Result<BTreeMap<DataRef, Vec<u8>>> {
        let mut out = BTreeMap::new();
        let mut by_layer: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
        for at in wanted {
            match self.fs.contents.get(at) {
                Some(bytes) => {
                    let end = bytes
                        .len()
                        .min(usize::try_from(limit).unwrap_or(usize::MAX));
                    out.insert(*at, bytes[..end].to_vec());
                }
                None => {
                    by_layer.entry(at.layer).or_default().insert(at.entry);
                }
            }
        }
        for (layer, entries) in by_layer {
            let Some(l) = self.layers.get(layer) else {
                return Err(std::io::Error::other(format!(
                    "layer {} is missing",
                    layer + 1
                )));
            };
            tracing::debug!("reading base layer {} for file bytes", l.descriptor.digest);
            let file = BufReader::new(std::fs::File::open(&l.blob)?);
            let tar = crate::image::decode::ZeroTail::new(crate::image::decode::decoder(
                file,
                l.compression,
            )?);
            read_entries(tar, &entries, &mut |entry, data| {
                let mut bytes = Vec::new();
                data.take(limit).read_to_end(&mut bytes)?;
                out.insert(DataRef { layer, entry }, bytes);
                Ok(())
            })?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::fsview::apply_layer;

    /// A tar of (name, bytes) files; a name ending in `=>TARGET` is a hard link.
    fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match name.split_once("=>") {
                Some((name, target)) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, name, target).unwrap();
                }
                None => {
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, name, *data).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn kept_bytes_are_those_the_last_layer_leaves_and_hard_links_are_read_once() {
        let layers = [
            layer(&[
                ("etc/skel/.profile", b"old"),
                ("etc/os-release", b"ID=debian\n"),
                ("usr/share/base.bashrc", b"# bashrc\n"),
                ("usr/bin/tool", b"not kept"),
            ]),
            layer(&[
                ("etc/skel/.profile", b"new"),
                ("etc/skel/.bashrc=>usr/share/base.bashrc", b""),
            ]),
        ];
        let mut fs = FsView::default();
        for (n, l) in layers.iter().enumerate() {
            apply_layer(&l[..], &mut fs, n).unwrap();
        }
        let mut opened = Vec::new();
        finish(&mut fs, &mut |n| {
            opened.push(n);
            Ok(Box::new(std::io::Cursor::new(layers[n].clone())))
        })
        .unwrap();
        assert_eq!(opened, vec![0], "only the hard link's layer is read again");
        let bytes = |path: &str| {
            fs.contents
                .get(&fs.entries.get(path).unwrap().data.unwrap())
                .cloned()
        };
        assert_eq!(bytes("/etc/skel/.profile").as_deref(), Some(&b"new"[..]));
        assert_eq!(
            bytes("/etc/skel/.bashrc").as_deref(),
            Some(&b"# bashrc\n"[..])
        );
        assert_eq!(
            bytes("/etc/os-release").as_deref(),
            Some(&b"ID=debian\n"[..])
        );
        assert_eq!(fs.contents.len(), 3, "nothing stale, nothing unkept");
    }

    #[test]
    fn kept_bytes_are_served_without_a_layer_and_others_need_one() {
        let mut fs = FsView::default();
        let kept = DataRef { layer: 0, entry: 4 };
        fs.contents.insert(kept, b"0123456789".to_vec());
        let base = Base {
            reference: "test".into(),
            digest: None,
            source: None,
            config: Default::default(),
            layers: Vec::new(),
            fs,
        };
        let read = base.file_bytes(&BTreeSet::from([kept]), 4).unwrap();
        assert_eq!(read[&kept], b"0123");
        let other = DataRef { layer: 0, entry: 5 };
        assert!(base.file_bytes(&BTreeSet::from([other]), 4).is_err());
        assert!(kept_path_list_is_plain());
    }

    /// A base with more kept files than MAX_KEPT_TOTAL keeps the first
    /// ones in path order and no more, however its layers deliver them.
    #[test]
    fn kept_bytes_stop_at_their_total() {
        let big = vec![b'x'; (MAX_KEPT / 2) as usize];
        let names: Vec<String> = (0..(2 * MAX_KEPT_TOTAL / MAX_KEPT + 4))
            .map(|i| format!("etc/skel/f{i:04}"))
            .collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &big[..])).collect();
        let l = layer(&entries);
        let mut fs = FsView::default();
        apply_layer(&l[..], &mut fs, 0).unwrap();
        assert!(fs.kept_bytes <= MAX_KEPT_TOTAL);
        finish(&mut fs, &mut |_| {
            Ok(Box::new(std::io::Cursor::new(l.clone())))
        })
        .unwrap();
        let total: usize = fs.contents.values().map(Vec::len).sum();
        assert!(total as u64 <= MAX_KEPT_TOTAL && total > 0, "{total}");
        let first = fs.entries.get("/etc/skel/f0000").unwrap().data.unwrap();
        assert!(
            fs.contents.contains_key(&first),
            "the first in path order is kept"
        );
    }

    fn kept_path_list_is_plain() -> bool {
        kept("/var/lib/dpkg/status")
            && kept("/usr/lib/python3/dist-packages/attrs-23.1.dist-info/METADATA")
            && kept("/etc/skel/.bashrc")
            && kept("/etc/os-release")
            && !kept("/etc/skeleton")
            && !kept("/etc/skel")
            && !kept("/etc/passwd")
    }
}
