//! Local sources: walks, globs, excludes, links and modes.

use super::*;

fn copy(src: &str, dest: &str, exclude: &[&str]) -> Copy {
    Copy {
        src: src.into(),
        image: None,
        dest: crate::spec::validate::image_path(dest).unwrap(),
        dest_is_dir: dest.ends_with('/'),
        owner: None,
        mode: None,
        preserve_mode: false,
        dir_mode: None,
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        follow_symlinks: false,
        capabilities: 0,
        layer: None,
        at: 0..0,
    }
}

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::create_dir_all(d.join("dist/sub/__pycache__")).unwrap();
    fs::write(d.join("dist/a.txt"), "a").unwrap();
    fs::write(d.join("dist/b.pyc"), "b").unwrap();
    fs::write(d.join("dist/sub/c.txt"), "c").unwrap();
    fs::write(d.join("dist/sub/__pycache__/x"), "x").unwrap();
    fs::write(d.join("one.whl"), "w").unwrap();
    fs::write(d.join("two.whl"), "w").unwrap();
    std::os::unix::fs::symlink("a.txt", d.join("dist/link")).unwrap();
    t
}

fn collect(copy: &Copy, dir: &Path, err: &dyn Fn(String) -> Error) -> Result<Vec<Found>> {
    let mut all = Vec::new();
    super::collect(copy, dir, None, err, &mut |f| {
        all.push(f);
        Ok(())
    })?;
    Ok(all)
}

fn dests(found: &[Found]) -> Vec<&str> {
    found.iter().map(|f| f.dest.as_str()).collect()
}

fn err(m: String) -> Error {
    Error::source_path(Path::new("x"), m)
}

#[test]
fn directories_copy_their_contents_with_excludes() {
    let t = tree();
    let dir = t.path().canonicalize().unwrap();
    let found = collect(
        &copy("dist/", "/app/", &["**/__pycache__", "*.pyc"]),
        &dir,
        &err,
    )
    .unwrap();
    assert_eq!(
        dests(&found),
        [
            "/app",
            "/app/a.txt",
            "/app/link",
            "/app/sub",
            "/app/sub/c.txt"
        ]
    );
    assert!(matches!(&found[2].kind, FoundKind::Symlink(t) if t == "a.txt"));
}

#[test]
fn globs_and_single_files() {
    let t = tree();
    let dir = t.path().canonicalize().unwrap();
    let found = collect(&copy("*.whl", "/wheels/", &[]), &dir, &err).unwrap();
    assert_eq!(dests(&found), ["/wheels/one.whl", "/wheels/two.whl"]);
    let found = collect(&copy("one.whl", "/opt/app.whl", &[]), &dir, &err).unwrap();
    assert_eq!(dests(&found), ["/opt/app.whl"]);
    assert!(collect(&copy("*.whl", "/opt/x", &[]), &dir, &err).is_err());
    assert!(
        collect(&copy("*.nope", "/opt/", &[]), &dir, &err)
            .unwrap_err()
            .to_string()
            .contains("matches nothing")
    );
    assert!(
        collect(&copy("missing", "/opt/", &[]), &dir, &err)
            .unwrap_err()
            .to_string()
            .contains("does not exist")
    );
}

#[test]
fn symlinked_source_outside_is_refused() {
    let t = tree();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(outside.path(), t.path().join("escape")).unwrap();
    let dir = t.path().canonicalize().unwrap();
    let e = collect(&copy("escape/", "/x/", &[]), &dir, &err).unwrap_err();
    assert!(
        e.to_string().contains("outside the spec's directory"),
        "{e}"
    );
}
