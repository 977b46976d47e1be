use super::*;

/// Decode a body on its own, as `load` decodes one inside the file it read.
fn decode(body: &[u8], manifest: &str, layers: usize) -> Option<(FsView, Vec<u64>)> {
    let buf = Arc::new(body.to_vec());
    super::decode(&buf, &buf, manifest, layers)
}

const MANIFEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn meta(kind: Kind, layer: usize, data: Option<(usize, u64)>) -> Meta {
    Meta {
        kind,
        uid: 1000,
        gid: u32::MAX,
        mode: 0o4755,
        size: data.map_or(0, |_| 1 << 40),
        layer,
        data: data.map(|(layer, entry)| DataRef { layer, entry }),
    }
}

/// A view with every kind of thing an index holds, names that share
/// prefixes mid-character included.
fn sample() -> FsView {
    let mut fs = FsView::default();
    for (path, m) in [
        ("/", meta(Kind::Dir, 0, None)),
        ("/bin", meta(Kind::Symlink, 0, None)),
        ("/etc", meta(Kind::Dir, 0, None)),
        ("/etc/passwd", meta(Kind::File, 1, Some((1, 3)))),
        ("/etc/skel/.bashrc", meta(Kind::File, 0, Some((0, 9)))),
        ("/dev/null", meta(Kind::Other, 1, None)),
        ("/usr/share/é", meta(Kind::File, 1, Some((1, u64::MAX)))),
        ("/usr/share/ê", meta(Kind::File, 1, Some((0, 4)))),
        ("/usr/share/ê2", meta(Kind::Dir, 1, None)),
    ] {
        fs.entries.insert(path.to_string(), m);
    }
    fs.links.insert("/bin".into(), "usr/bin".into());
    fs.links.insert("/lib".into(), "/usr/lib".into());
    fs.skipped.push(("/bad\u{fffd}".into(), 1));
    fs.passwd = Some(b"root:x:0:0::/root:/bin/sh\n".to_vec());
    fs.shadow = Some(Vec::new());
    fs.contents
        .insert(DataRef { layer: 0, entry: 9 }, b"# bashrc\n".to_vec());
    fs
}

fn same(a: &FsView, b: &FsView) {
    assert_eq!(a.entries, b.entries);
    assert_eq!(a.links, b.links);
    assert_eq!(a.skipped, b.skipped);
    assert_eq!(
        (&a.passwd, &a.group, &a.shadow, &a.gshadow),
        (&b.passwd, &b.group, &b.shadow, &b.gshadow)
    );
    assert_eq!(a.contents, b.contents);
}

#[test]
fn a_view_round_trips_through_its_index() {
    let fs = sample();
    let body = encode(MANIFEST, &fs, &[10, 1 << 50]);
    let (back, sizes) = decode(&body, MANIFEST, 2).expect("decodes");
    same(&fs, &back);
    assert_eq!(sizes, vec![10, 1 << 50]);
    // An empty view (scratch-like) too.
    let (empty, sizes) = decode(&encode(MANIFEST, &FsView::default(), &[]), MANIFEST, 0).unwrap();
    assert!(empty.entries.is_empty() && sizes.is_empty());
}

#[test]
fn the_index_of_a_view_is_the_same_bytes_every_time() {
    let body = encode(MANIFEST, &sample(), &[10, 20]);
    assert_eq!(body, encode(MANIFEST, &sample(), &[10, 20]));
    let (back, _) = decode(&body, MANIFEST, 2).unwrap();
    assert_eq!(
        encode(MANIFEST, &back, &[10, 20]),
        body,
        "decode then encode"
    );
}

#[test]
fn an_index_for_another_manifest_or_layer_count_is_a_miss() {
    let body = encode(MANIFEST, &sample(), &[10, 20]);
    let other = MANIFEST.replace("0123", "4567");
    assert!(decode(&body, &other, 2).is_none());
    assert!(decode(&body, MANIFEST, 1).is_none());
    assert!(decode(&body, MANIFEST, 3).is_none());
}

#[test]
fn every_truncation_of_an_index_is_a_miss() {
    let body = encode(MANIFEST, &sample(), &[10, 20]);
    for cut in 0..body.len() {
        assert!(decode(&body[..cut], MANIFEST, 2).is_none(), "cut at {cut}");
    }
    let mut longer = body.clone();
    longer.push(0);
    assert!(decode(&longer, MANIFEST, 2).is_none(), "a byte too many");
}

#[test]
fn garbage_decodes_to_a_miss_or_a_consistent_view_never_a_panic() {
    let body = encode(MANIFEST, &sample(), &[10, 20]);
    // Every byte changed to a few values, and pseudo-random garbage.
    for at in 0..body.len() {
        for v in [0u8, 1, 0x7f, 0x80, 0xff, body[at] ^ 0x10] {
            let mut bad = body.clone();
            bad[at] = v;
            if let Some((fs, _)) = decode(&bad, MANIFEST, 2) {
                let sorted = fs.entries.keys().all(|p| p.starts_with('/'));
                let in_range = fs
                    .entries
                    .values()
                    .all(|m| m.layer < 2 && m.data.is_none_or(|d| d.layer < 2));
                assert!(sorted && in_range, "byte {at} = {v:#x}");
            }
        }
    }
    let mut seed = 0x9e3779b97f4a7c15u64;
    for len in [0, 1, 7, 100, 4096] {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        assert!(decode(&junk, MANIFEST, 2).is_none());
    }
}

#[test]
fn a_saved_index_loads_and_a_damaged_one_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let fs = sample();
    assert!(load(dir.path(), MANIFEST, 2).is_none(), "nothing saved yet");
    save(dir.path(), MANIFEST, &fs, &[10, 20]);
    let (back, _) = load(dir.path(), MANIFEST, 2).expect("loads");
    same(&fs, &back);
    let file = path(dir.path(), MANIFEST).unwrap();
    let whole = std::fs::read(&file).unwrap();
    std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();
    assert!(load(dir.path(), MANIFEST, 2).is_none(), "truncated");
    let mut flipped = whole.clone();
    flipped[whole.len() / 2] ^= 1;
    std::fs::write(&file, &flipped).unwrap();
    assert!(load(dir.path(), MANIFEST, 2).is_none(), "a bit flipped");
    std::fs::write(&file, b"not an index").unwrap();
    assert!(load(dir.path(), MANIFEST, 2).is_none(), "garbage");
    assert!(path(dir.path(), "sha256:../../etc").is_none());
}
