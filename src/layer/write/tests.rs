//! Layer writing: determinism, PAX records, xattrs, hard links, changed sources.

use super::*;
use std::collections::BTreeMap;

fn plan(entries: Vec<(&str, Entry)>) -> LayerPlan {
    LayerPlan {
        created_by: vec![],
        origins: Default::default(),
        entries: entries
            .into_iter()
            .map(|(p, e)| (p.to_string(), e))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// name, uid, gid, mode, data, link target
type Found = (String, u64, u64, u32, Vec<u8>, Option<String>);

fn read_back(blob: &LayerBlob) -> Vec<Found> {
    let f = File::open(&blob.path).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let (uid, gid, mode) = (
                e.header().uid().unwrap(),
                e.header().gid().unwrap(),
                e.header().mode().unwrap(),
            );
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, uid, gid, mode, data, link)
        })
        .collect()
}

#[test]
fn layers_are_deterministic_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("/d/{}", "x".repeat(150));
    let make = || {
        plan(vec![
            (
                "/d",
                Entry {
                    content: Content::Dir,
                    uid: 1,
                    gid: 2,
                    mode: 0o750,
                    caps: 0,
                },
            ),
            (
                "/d/f",
                Entry {
                    content: Content::Bytes(b"hi".to_vec()),
                    uid: 10001,
                    gid: 10001,
                    mode: 0o644,
                    caps: 0,
                },
            ),
            (
                long.as_str(),
                Entry {
                    content: Content::Symlink("t".repeat(120)),
                    uid: 0,
                    gid: 0,
                    mode: 0o777,
                    caps: 0,
                },
            ),
        ])
    };
    let a = write(
        &make(),
        &dir.path().join("a"),
        1_700_000_000,
        Compression::Gzip,
        1,
        None,
        &Bar::start(crate::progress::Step::Build, "test", 0),
    )
    .unwrap();
    let b = write(
        &make(),
        &dir.path().join("b"),
        1_700_000_000,
        Compression::Gzip,
        1,
        None,
        &Bar::start(crate::progress::Step::Build, "test", 0),
    )
    .unwrap();
    assert_eq!((a.digest.clone(), a.diff_id.clone()), (b.digest, b.diff_id));
    let entries = read_back(&a);
    assert_eq!(entries[0].0, "d/");
    assert_eq!((entries[0].1, entries[0].2, entries[0].3), (1, 2, 0o750));
    assert_eq!(entries[1].0, "d/f");
    assert_eq!(entries[1].4, b"hi");
    assert_eq!(entries[2].0, long.trim_start_matches('/'));
    assert_eq!(entries[2].5.as_deref(), Some("t".repeat(120).as_str()));
}

#[test]
fn capabilities_are_a_pax_xattr_and_hard_links_carry_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, "data").unwrap();
    let file = |hardlink: Option<&str>| Entry {
        content: Content::File {
            src: src.clone(),
            size: 4,
            stamp: crate::plan::sources::Stamp::default(),
            hardlink: hardlink.map(str::to_string),
        },
        uid: 0,
        gid: 0,
        mode: 0o755,
        caps: 1 << 10,
    };
    let p = plan(vec![("/a", file(None)), ("/b", file(Some("/a")))]);
    let bar = Bar::start(crate::progress::Step::Build, "test", 0);
    let blob = write(
        &p,
        &dir.path().join("out"),
        0,
        Compression::Gzip,
        1,
        None,
        &bar,
    )
    .unwrap();
    let f = File::open(&blob.path).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut seen = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let xattr = e.pax_extensions().unwrap().and_then(|x| {
            x.map(Result::unwrap)
                .find(|x| x.key() == Ok("SCHILY.xattr.security.capability"))
                .map(|x| x.value_bytes().to_vec())
        });
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        seen.push((
            e.header().entry_type(),
            e.header().size().unwrap(),
            link,
            xattr,
        ));
    }
    let cap = vec![1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        seen,
        [
            (tar::EntryType::Regular, 4, None, Some(cap)),
            (tar::EntryType::Link, 0, Some("a".into()), None),
        ]
    );
}

#[test]
fn pax_record_length_counts_itself() {
    let r = pax_record("path", b"abc");
    assert_eq!(r, b"12 path=abc\n");
    let long = vec![b'a'; 92];
    let r = pax_record("path", &long);
    assert_eq!(
        r.len().to_string(),
        String::from_utf8_lossy(&r).split(' ').next().unwrap()
    );
}

#[test]
fn a_file_that_changed_size_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, "four").unwrap();
    let p = plan(vec![(
        "/f",
        Entry {
            content: Content::File {
                src: src.clone(),
                size: 3,
                stamp: crate::plan::sources::Stamp {
                    mtime_ns: 0,
                    ctime_ns: 0,
                    inode: 0,
                    device: 0,
                    links: 1,
                },
                hardlink: None,
            },
            uid: 0,
            gid: 0,
            mode: 0o644,
            caps: 0,
        },
    )]);
    let bar = Bar::start(crate::progress::Step::Build, "test", 0);
    let err = write(
        &p,
        &dir.path().join("out"),
        0,
        Compression::Gzip,
        1,
        None,
        &bar,
    )
    .unwrap_err();
    assert!(err.to_string().contains("changed while"), "{err}");
}
