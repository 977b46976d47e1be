use super::*;

/// A tar made entry by entry: (name, type, data or link target).
fn layer(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(7);
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                h.set_size(0);
                b.append_link(&mut h, name, std::str::from_utf8(data).unwrap())
                    .unwrap();
            }
            _ if name.len() <= 100 => {
                // Raw, as a hostile image writes it: the tar crate refuses `..`.
                h.set_size(data.len() as u64);
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            _ => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn view(layers: &[Vec<u8>]) -> std::io::Result<FsView> {
    let mut fs = FsView::default();
    for (n, l) in layers.iter().enumerate() {
        apply_layer(&l[..], &mut fs, n)?;
    }
    Ok(fs)
}

use tar::EntryType::{Directory, Link, Regular, Symlink};

#[test]
fn whiteouts_and_opaque_dirs_apply() {
    let fs = view(&[
        layer(&[
            ("etc/", Directory, b""),
            ("etc/passwd", Regular, b"root:x:0:0::/:/bin/sh\n"),
            ("app/", Directory, b""),
            ("app/a", Regular, b"a"),
            ("app/b", Regular, b"b"),
        ]),
        layer(&[
            ("./etc/.wh.passwd", Regular, b""),
            ("app/.wh..wh..opq", Regular, b""),
            ("app/c", Regular, b"c"),
        ]),
    ])
    .unwrap();
    assert!(fs.passwd.is_none());
    assert!(!fs.entries.contains_key("/etc/passwd"));
    assert!(!fs.entries.contains_key("/app/a"));
    assert_eq!(fs.entries.get("/app/c").unwrap().uid, 7);
    assert!(fs.entries.contains_key("/app"));
}

#[test]
fn parents_resolve_through_links() {
    let mut fs = FsView::default();
    fs.links.insert("/bin".into(), "usr/bin".into());
    fs.links
        .insert("/usr/local/lib64".into(), "/usr/lib".into());
    fs.links.insert("/loop".into(), "/loop".into());
    assert_eq!(fs.resolve_parents("/bin/uv"), "/usr/bin/uv");
    assert_eq!(fs.resolve_parents("/bin"), "/bin");
    assert_eq!(fs.follow("/bin"), "/usr/bin");
    assert_eq!(fs.resolve_parents("/usr/local/lib64/x/y"), "/usr/lib/x/y");
    assert_eq!(fs.resolve_parents("/loop/x"), "/loop/x");
    fs.links.insert("/up".into(), "../../..".into());
    assert_eq!(fs.resolve_parents("/up/etc/x"), "/etc/x");
}

#[test]
fn names_never_rise_above_the_root() {
    assert_eq!(resolve_dots("./etc/passwd"), "/etc/passwd");
    assert_eq!(resolve_dots("etc/"), "/etc");
    assert_eq!(resolve_dots("../../x"), "/x");
    assert_eq!(split("/etc/passwd"), ("/etc", "passwd"));
    assert_eq!(split("/etc"), ("/", "etc"));
    let fs = view(&[layer(&[("../../../etc/x", Regular, b"x")])]).unwrap();
    assert!(fs.entries.contains_key("/etc/x"));
}

#[test]
fn entries_under_a_symlinked_parent_land_where_it_points() {
    let fs = view(&[
        layer(&[("usr/lib/", Directory, b""), ("lib", Symlink, b"usr/lib")]),
        layer(&[
            ("lib/libx.so", Regular, b"x"),
            ("lib/.wh.gone", Regular, b""),
        ]),
    ])
    .unwrap();
    assert!(fs.entries.contains_key("/usr/lib/libx.so"));
    assert!(!fs.entries.contains_key("/lib/libx.so"));
    // An absolute link resolves inside the image too.
    let fs = view(&[
        layer(&[("etc/", Directory, b""), ("up", Symlink, b"/../../etc")]),
        layer(&[("up/x", Regular, b"x")]),
    ])
    .unwrap();
    assert!(fs.entries.contains_key("/etc/x"));
}

#[test]
fn hard_links_share_their_targets_bytes_and_size() {
    let fs = view(&[layer(&[
        ("etc/", Directory, b""),
        ("etc/passwd-", Regular, b"root:x:0:0::/:/bin/sh\n"),
        ("etc/passwd", Link, b"etc/passwd-"),
    ])])
    .unwrap();
    let link = fs.entries.get("/etc/passwd").unwrap();
    assert_eq!(link.size, 22);
    assert_eq!(link.data, fs.entries.get("/etc/passwd-").unwrap().data);
    // Its bytes are read by a second look at the layer.
    assert_eq!(
        fs.unread_accounts(),
        [("/etc/passwd", DataRef { layer: 0, entry: 1 })]
    );
}

#[test]
fn a_hard_link_to_nothing_is_refused() {
    let err = view(&[layer(&[("x", Link, b"missing")])]).err().unwrap();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let err = view(&[layer(&[("d/", Directory, b""), ("x", Link, b"d")])])
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn a_file_as_a_parent_is_refused() {
    let err = view(&[layer(&[("f", Regular, b"x"), ("f/g", Regular, b"y")])])
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn replacing_a_directory_removes_what_was_in_it() {
    let fs = view(&[
        layer(&[("d/", Directory, b""), ("d/a", Regular, b"a")]),
        layer(&[("d", Symlink, b"/tmp")]),
    ])
    .unwrap();
    assert!(!fs.entries.contains_key("/d/a"));
    assert_eq!(fs.links.get("/d").unwrap(), "/tmp");
}

#[test]
fn long_names_and_link_targets_are_read_whole() {
    let long_dir = "d".repeat(150);
    let long_target = format!("/{}/{}", "t".repeat(120), "file");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(Regular);
    h.set_size(1);
    b.append_data(&mut h, format!("{long_dir}/f"), &b"x"[..])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(Symlink);
    h.set_size(0);
    b.append_link(&mut h, "l", &long_target).unwrap();
    let fs = view(&[b.into_inner().unwrap()]).unwrap();
    assert!(fs.entries.contains_key(&format!("/{long_dir}/f")));
    assert_eq!(fs.links.get("/l").unwrap(), long_target);
}

#[test]
fn pax_sizes_and_ids_win_over_the_header() {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("size", &b"5"[..]), ("uid", &b"3000000"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(Regular);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let mut raw = b.into_inner().unwrap();
    // The ustar header said 0 bytes; the data (5 bytes, padded) follows it.
    let name_at = raw.len() - 1024 - 512;
    raw.truncate(raw.len() - 1024);
    raw[name_at..name_at + 4].copy_from_slice(b"five");
    let mut h = tar::Header::from_byte_slice(&raw[name_at..name_at + 512]).clone();
    h.set_cksum();
    raw[name_at..name_at + 512].copy_from_slice(h.as_bytes());
    raw.extend_from_slice(b"hello");
    raw.resize(raw.len() + 507 + 1024, 0);
    let fs = view(&[raw]).unwrap();
    assert_eq!(fs.entries.get("/five").unwrap().size, 5);
    assert_eq!(fs.entries.get("/five").unwrap().uid, 3_000_000);
}

#[test]
fn pax_sparse_files_are_refused() {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("GNU.sparse.major", &b"1"[..]),
        ("GNU.sparse.minor", &b"0"[..]),
        ("GNU.sparse.name", &b"big"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(Regular);
    h.set_size(0);
    b.append_data(&mut h, "GNUSparseFile.0/big", &[][..])
        .unwrap();
    let err = view(&[b.into_inner().unwrap()]).err().unwrap();
    assert!(err.to_string().contains("sparse"), "{err}");
}

#[test]
fn entries_are_read_back_by_number() {
    let l = layer(&[
        ("a", Regular, b"first"),
        ("b", Regular, b"second"),
        ("c", Regular, b"third"),
    ]);
    let mut got = Vec::new();
    read_entries(&l[..], &BTreeSet::from([0, 2]), &mut |n, data| {
        let mut s = String::new();
        data.read_to_string(&mut s)?;
        got.push((n, s));
        Ok(())
    })
    .unwrap();
    assert_eq!(got, [(0, "first".into()), (2, "third".into())]);
}

#[test]
fn names_longer_than_path_max_are_refused() {
    let long = format!("{}/f", "d".repeat(5000));
    let err = view(&[layer(&[(long.as_str(), Regular, b"x")])])
        .err()
        .unwrap();
    assert!(err.to_string().contains("5002 bytes long"), "{err}");
}

#[test]
fn children_step_over_what_is_under_them() {
    let fs = view(&[layer(&[
        ("a/", Directory, b""),
        ("a/x/", Directory, b""),
        ("a/x/deep/er", Regular, b""),
        ("a/x-y", Regular, b""),
        ("a/x0", Regular, b""),
        ("a/z", Regular, b""),
    ])])
    .unwrap();
    assert_eq!(fs.children("/a"), ["x", "x-y", "x0", "z"]);
    assert_eq!(fs.children("/"), ["a"]);
}
