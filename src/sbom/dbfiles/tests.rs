//! Which files are read, from which layer, and how far: real layer tars
//! on disk, read back through the base's in-memory filesystem.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::*;
use crate::image::base::BaseLayer;
use crate::image::fsview::{FsView, apply_layer};
use crate::oci::{Compression, Descriptor, Digest};
use crate::plan::Entry;
use crate::sbom::packages;

#[test]
fn the_paths_the_sbom_reads() {
    let yes = [
        ("/var/lib/dpkg/status", Db::Dpkg),
        ("/var/lib/dpkg/status.d/libc6", Db::DpkgRecord),
        ("/lib/apk/db/installed", Db::Apk),
        ("/etc/os-release", Db::OsRelease),
        (
            "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            Db::Python,
        ),
        (
            "/app/.venv/lib/python3.12/site-packages/a.dist-info/METADATA",
            Db::Python,
        ),
        (
            "/usr/lib/python3/dist-packages/PyJWT-2.6.0.egg-info/PKG-INFO",
            Db::Python,
        ),
        (
            "/usr/lib/python3/dist-packages/crcmod-1.7.egg-info",
            Db::Python,
        ),
    ];
    for (path, db) in yes {
        assert_eq!(package_db(path), Some(db), "{path}");
    }
    for path in [
        "/var/lib/dpkg/status-old",
        "/var/lib/dpkg/status.d/libc6.md5sums",
        "/var/lib/dpkg/status.d/",
        "/var/lib/dpkg/status.d/a/b",
        "/usr/lib/site-packages/.dist-info/METADATA",
        "/usr/lib/site-packages/x.dist-info/RECORD",
        "/usr/lib/site-packages/x.egg-info/METADATA",
        "/usr/lib/python3/x.dist-info/METADATA",
        "/usr/lib/site-packages/x.egg-info/top_level.txt",
        "/usr/lib/site-packages/x.dist-info",
        "/usr/lib/site-packages/.egg-info",
        "/usr/lib/site-packages/x.egg-info/sub/PKG-INFO",
    ] {
        assert_eq!(package_db(path), None, "{path}");
    }
}

enum Item<'a> {
    File(String, Vec<u8>),
    Link(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

/// A one-layer base whose layer is an uncompressed tar of `items`.
fn base(dir: &Path, items: Vec<Item>) -> Base {
    let blob = dir.join("layer.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&blob).unwrap());
    for item in items {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        match item {
            Item::File(path, bytes) => {
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, &path, &bytes[..]).unwrap();
            }
            Item::Link(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, path, target).unwrap();
            }
            Item::HardLink(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                tar.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().flush().unwrap();
    let mut fs = FsView::default();
    apply_layer(std::fs::File::open(&blob).unwrap(), &mut fs, 0).unwrap();
    Base {
        reference: "test".into(),
        digest: Some(format!("sha256:{}", "0".repeat(64))),
        source: None,
        config: Default::default(),
        layers: vec![BaseLayer {
            descriptor: Descriptor {
                media_type: String::new(),
                digest: Digest::of(b""),
                size: 0,
                urls: None,
                annotations: Default::default(),
                platform: None,
            },
            blob,
            compression: Compression::None,
            diff_id: String::new(),
            diff_size: 0,
        }],
        fs,
    }
}

fn added(files: &[(&str, &str)]) -> LayerPlan {
    LayerPlan {
        created_by: Vec::new(),
        entries: files
            .iter()
            .map(|(p, c)| {
                let entry = Entry {
                    content: Content::Bytes(c.as_bytes().to_vec()),
                    uid: 0,
                    gid: 0,
                    mode: 0o644,
                    caps: 0,
                };
                (p.to_string(), entry)
            })
            .collect(),
        origins: BTreeMap::new(),
    }
}

fn paths(read: &[DbFile]) -> Vec<(&str, bool)> {
    read.iter().map(|f| (f.path.as_str(), f.added)).collect()
}

#[test]
fn the_final_image_decides_what_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let status = b"Package: a\nStatus: install ok installed\nVersion: 1\n".to_vec();
    let base = base(
        dir.path(),
        vec![
            Item::File(
                "usr/lib/os-release".into(),
                b"ID=debian\nVERSION_ID=12\n".to_vec(),
            ),
            Item::Link("etc/os-release", "../usr/lib/os-release"),
            Item::File("var/lib/dpkg/real-status".into(), status),
            Item::HardLink("var/lib/dpkg/status", "var/lib/dpkg/real-status"),
            Item::File(
                "var/lib/dpkg/status.d/b".into(),
                b"Package: b\nVersion: 1\n".to_vec(),
            ),
            Item::File("var/lib/dpkg/status.d/b.md5sums".into(), b"x".to_vec()),
            Item::File(
                "usr/lib/python3/dist-packages/c.dist-info/METADATA".into(),
                b"Name: c\nVersion: 1\n".to_vec(),
            ),
            Item::File(
                "opt/x.dist-info/METADATA".into(),
                b"Name: no\nVersion: 1\n".to_vec(),
            ),
        ],
    );
    let plan = added(&[
        ("/var/lib/dpkg/status.d/b", "Package: b\nVersion: 2\n"),
        (
            "/srv/site-packages/d.dist-info/METADATA",
            "Name: d\nVersion: 1\n",
        ),
    ]);
    let read = read(&base, &[plan]);
    assert_eq!(
        paths(&read),
        [
            ("/etc/os-release", false),
            ("/srv/site-packages/d.dist-info/METADATA", true),
            ("/usr/lib/python3/dist-packages/c.dist-info/METADATA", false),
            ("/var/lib/dpkg/status", false),
            ("/var/lib/dpkg/status.d/b", true),
        ]
    );
    // The hard link reads its target's bytes; the new layer's record wins.
    assert_eq!(packages::dpkg(&read[3].bytes, false)[0].name, "a");
    assert_eq!(packages::dpkg(&read[4].bytes, false)[0].version, "2");
    assert_eq!(
        packages::os_release(&read[0].bytes).id.as_deref(),
        Some("debian")
    );
}

#[test]
fn a_huge_status_is_read_only_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let stanza = format!(
        "Package: p\nStatus: install ok installed\nVersion: 1\nDescription: d\n {}\n\n",
        "y".repeat(1000)
    );
    let huge = stanza.repeat(MAX_DB as usize / stanza.len() + 10);
    let base = base(
        dir.path(),
        vec![Item::File("var/lib/dpkg/status".into(), huge.into_bytes())],
    );
    let read = read(&base, &[]);
    assert_eq!(read.len(), 1);
    assert!(read[0].truncated);
    assert_eq!(read[0].bytes.len() as u64, MAX_DB);
    // Every whole stanza, not the one the cap cut.
    let listed = packages::dpkg(&read[0].bytes, true);
    assert_eq!(listed.len(), MAX_DB as usize / stanza.len());
}

#[test]
fn at_most_max_records_metadata_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let items = (0..MAX_RECORDS + 5)
        .map(|n| {
            Item::File(
                format!("sp/site-packages/p{n:05}.dist-info/METADATA"),
                format!("Name: p{n}\nVersion: 1\n").into_bytes(),
            )
        })
        .collect();
    let base = base(dir.path(), items);
    let read = read(&base, &[]);
    assert_eq!(read.len(), MAX_RECORDS);
    assert_eq!(
        read.last().unwrap().path,
        format!(
            "/sp/site-packages/p{:05}.dist-info/METADATA",
            MAX_RECORDS - 1
        )
    );
}

#[test]
fn a_missing_layer_blob_is_no_sbom_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = base(
        dir.path(),
        vec![Item::File(
            "lib/apk/db/installed".into(),
            b"P:a\nV:1\n".to_vec(),
        )],
    );
    // Kept in the view (as the base index keeps it): no layer needed.
    base.layers[0].blob = dir.path().join("gone");
    assert_eq!(read(&base, &[]).len(), 1);
    // Not kept (past the caps): the layer is needed, and its loss is a warning.
    base.fs.contents.clear();
    assert!(read(&base, &[]).is_empty());
}
