use super::*;

fn read_usize(r: &mut Reader, _layers: usize) -> Option<usize> {
    usize::try_from(r.num()?).ok()
}

fn packed(open: &Paths<usize>) -> Paths<usize> {
    let mut w = Vec::new();
    pack(&mut w, open, &mut |w, v| put(w, *v as u64));
    let buf = Arc::new(w);
    let mut r = Reader::new(&buf);
    let n = r.count().unwrap();
    let p = Packed::load(&buf, &mut r, n, 0, read_usize).expect("loads");
    assert!(r.is_empty());
    Paths::Packed(p)
}

fn both(paths: &[&str]) -> (Paths<usize>, Paths<usize>) {
    let open: Paths<usize> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to_string(), i))
        .collect();
    let packed = packed(&open);
    (open, packed)
}

#[test]
fn packed_and_open_answer_alike() {
    // Past a few restarts, with shared prefixes, a non-ASCII one among them.
    let mut paths: Vec<String> = [
        "/", "/a", "/a/b", "/a-b", "/a0", "/é", "/éa", "/z/y/x", "/a/b/c",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..60 {
        paths.push(format!("/usr/lib/x{i:03}"));
        paths.push(format!("/usr/lib/x{i:03}/f"));
    }
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (open, packed) = both(&refs);
    assert!(open == packed);
    assert_eq!(packed.len(), paths.len());
    let probes = [
        "",
        "/b",
        "/a/",
        "/zz",
        "/ ",
        "~",
        "/usr/lib/x0305",
        "/usr/lib/x059/g",
        "/usr/lib/",
    ];
    for probe in refs.iter().copied().chain(probes) {
        assert_eq!(open.get(probe), packed.get(probe), "{probe}");
        assert_eq!(
            open.contains_key(probe),
            packed.contains_key(probe),
            "{probe}"
        );
        let a: Vec<_> = open.from(probe).collect();
        let b: Vec<_> = packed.from(probe).collect();
        assert_eq!(a, b, "from {probe}");
    }
}

#[test]
fn a_packed_map_unpacks_on_write() {
    let (mut open, mut packed) = both(&["/a", "/b", "/c"]);
    assert_eq!(packed.remove("/x"), None);
    assert!(matches!(packed, Paths::Packed(_)), "a miss does not unpack");
    assert_eq!(packed.remove("/b"), open.remove("/b"));
    packed.insert("/d".into(), 9);
    open.insert("/d".into(), 9);
    assert!(open == packed);
}

#[test]
fn records_load_only_when_sorted_absolute_utf8_and_whole_at_restarts() {
    let records = |items: &[(u64, &[u8])]| {
        let mut w = Vec::new();
        put(&mut w, items.len() as u64);
        for (shared, tail) in items {
            put(&mut w, *shared);
            put_bytes(&mut w, tail);
            put(&mut w, 7);
        }
        w
    };
    let load = |w: Vec<u8>| {
        let buf = Arc::new(w);
        let mut r = Reader::new(&buf);
        let n = r.count()?;
        Packed::load(&buf, &mut r, n, 0, read_usize).map(|p| p.len)
    };
    assert_eq!(load(records(&[(0, b"/a"), (2, b"/b"), (1, b"c")])), Some(3));
    // Records read from another buffer than the one to keep are refused.
    let ok = Arc::new(records(&[(0, b"/a")]));
    let mut r = Reader::new(&ok);
    let n = r.count().unwrap();
    assert!(Packed::load(&Arc::new(vec![0; 64]), &mut r, n, 0, read_usize).is_none());
    let bad: [&[(u64, &[u8])]; 7] = [
        &[(0, b"/b"), (0, b"/a")],
        &[(0, b"/a"), (2, b"")],
        &[(0, b"a")],
        &[(0, b"/a"), (3, b"b")],
        &[(1, b"/a")],
        &[(0, b"/\xc3"), (2, b"\xa9")],
        &[(0, b"/\xff")],
    ];
    for items in bad {
        assert_eq!(load(records(items)), None, "{items:?}");
    }
    // The first record after RESTART of them must be written whole.
    let mut items: Vec<(u64, Vec<u8>)> = (0..=RESTART)
        .map(|i| (2, format!("{i:03}").into_bytes()))
        .collect();
    items[0] = (0, b"/x000".to_vec());
    let view: Vec<(u64, &[u8])> = items.iter().map(|(s, t)| (*s, &t[..])).collect();
    assert_eq!(load(records(&view)), None);
    items[RESTART] = (0, format!("/x{RESTART:03}").into_bytes());
    let view: Vec<(u64, &[u8])> = items.iter().map(|(s, t)| (*s, &t[..])).collect();
    assert_eq!(load(records(&view)), Some(RESTART + 1));
}
