use super::pick::{Pick, What, pick};
use crate::error::Error;
use crate::image::fsview::{FsView, apply_layer};
use crate::spec::validate::Copy;

fn copy(src: &str, dest: &str, follow: bool) -> Copy {
    Copy {
        src: src.into(),
        image: None,
        dest: crate::spec::validate::image_path(dest).unwrap(),
        dest_is_dir: dest.ends_with('/'),
        owner: None,
        mode: None,
        preserve_mode: false,
        dir_mode: None,
        exclude: vec!["*.pyc".into()],
        follow_symlinks: follow,
        capabilities: 0,
        layer: None,
        at: 0..0,
    }
}

fn fail(msg: String) -> Error {
    Error::source_path(std::path::Path::new("image"), msg)
}

/// An image of one layer: (name, `/`-ended dir, `-> target` link, `=> target` hard link, else bytes).
fn image(entries: &[(&str, &str)]) -> FsView {
    let mut b = tar::Builder::new(Vec::new());
    for (name, what) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_size(0);
        if let Some(t) = what.strip_prefix("-> ") {
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, name, t).unwrap();
        } else if let Some(t) = what.strip_prefix("=> ") {
            h.set_entry_type(tar::EntryType::Link);
            b.append_link(&mut h, name, t).unwrap();
        } else if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            b.append_data(&mut h, name, &[][..]).unwrap();
        } else {
            h.set_size(what.len() as u64);
            b.append_data(&mut h, name, what.as_bytes()).unwrap();
        }
    }
    let mut fs = FsView::default();
    apply_layer(&b.into_inner().unwrap()[..], &mut fs, 0).unwrap();
    fs
}

fn dests(picks: &[Pick]) -> Vec<&str> {
    picks.iter().map(|p| p.dest.as_str()).collect()
}

#[test]
fn a_tree_is_taken_in_order_with_links_kept() {
    let fs = image(&[
        ("app/", ""),
        ("app/b.py", "b"),
        ("app/a.py", "a"),
        ("app/a.pyc", "x"),
        ("app/sub/", ""),
        ("app/sub/c", "c"),
        ("app/link", "-> /etc/shadow"),
    ]);
    let picks = pick(&fs, &copy("/app", "/srv/", false), &fail).unwrap();
    assert_eq!(
        dests(&picks),
        [
            "/srv",
            "/srv/a.py",
            "/srv/b.py",
            "/srv/link",
            "/srv/sub",
            "/srv/sub/c"
        ]
    );
    assert_eq!(picks[3].what, What::Symlink("/etc/shadow".into()));
}

#[test]
fn a_named_link_is_followed_inside_the_image() {
    let fs = image(&[
        ("usr/local/bin/uv", "uv"),
        ("bin", "-> usr/local/bin"),
        ("usr/bin/python3.13", "py"),
        ("usr/bin/python3", "-> python3.13"),
    ]);
    let picks = pick(&fs, &copy("/bin/uv", "/bin/uv", false), &fail).unwrap();
    assert!(matches!(picks[0].what, What::File { size: 2, .. }));
    let picks = pick(&fs, &copy("/usr/bin/python3", "/x/", false), &fail).unwrap();
    assert_eq!(dests(&picks), ["/x/python3"]);
}

#[test]
fn a_hard_link_takes_its_bytes_from_the_image() {
    let fs = image(&[("etc/shadow", "image shadow"), ("app/s", "=> etc/shadow")]);
    let picks = pick(&fs, &copy("/app/s", "/s", false), &fail).unwrap();
    let What::File { data, size, .. } = picks[0].what else {
        panic!("{picks:?}")
    };
    assert_eq!((data.entry, size), (0, 12));
}

#[test]
fn globs_and_missing_paths() {
    let fs = image(&[("w/a.whl", "a"), ("w/b.whl", "b"), ("w/n.txt", "n")]);
    let picks = pick(&fs, &copy("/w/*.whl", "/wheels/", false), &fail).unwrap();
    assert_eq!(dests(&picks), ["/wheels/a.whl", "/wheels/b.whl"]);
    assert!(pick(&fs, &copy("/w/*.whl", "/one", false), &fail).is_err());
    let err = pick(&fs, &copy("/w/c.whl", "/x", false), &fail).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(err.hint().unwrap_or("").contains("/w/a.whl"), "{err:?}");
}

#[test]
fn deep_trees_do_not_exhaust_the_stack() {
    let deep: String = (0..2_000).map(|_| "d/").collect();
    let name = format!("{deep}f");
    let fs = image(&[(name.as_str(), "x")]);
    let picks = pick(&fs, &copy("/", "/", false), &fail).unwrap();
    assert_eq!(picks.len(), 2_002);
}
