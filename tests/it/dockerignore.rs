//! `.dockerignore` for local copies, checked against Docker's documentation
//! rather than against kiln's own matcher: testdata/dockerignore/context is
//! a build context built from the documentation's examples, and each
//! expected*.txt beside it says, line by line, which path a `COPY . /ctx/`
//! takes and which documented rule decides it. The image kiln builds is read
//! back with `kiln inspect --files`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;

fn fixture() -> PathBuf {
    repo().join("testdata/dockerignore")
}

/// A temp dir holding `ctx/`, a copy of the fixture's context with `spec`
/// as its kiln.toml; the build's outputs go beside `ctx/`, not into it.
fn work_with(spec: &str) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("ctx");
    copy_tree(&fixture().join("context"), &dir);
    write_spec(&dir, spec);
    work
}

/// A spec copying `src` to /ctx/; `image_extra` goes into `[image]`,
/// `copy_extra` into the copy.
fn spec(image_extra: &str, src: &str, copy_extra: &str) -> tempfile::TempDir {
    work_with(&format!(
        "[image]\nname = \"ctx\"\nbase = \"scratch\"\n{image_extra}\n\n[user]\nname = \"app\"\nuid = 10001\n\n[[copy]]\nsrc = \"{src}\"\ndest = \"/ctx/\"\n{copy_extra}"
    ))
}

/// A spec copying the whole context to /ctx/.
fn context(image_extra: &str, copy_extra: &str) -> tempfile::TempDir {
    spec(image_extra, "./", copy_extra)
}

/// A spec copying `src` to /ctx/.
fn copying(src: &str) -> tempfile::TempDir {
    spec("", src, "")
}

/// Build `work`'s spec; the paths under /ctx in the image, relative to it.
fn copied(work: &Path) -> BTreeSet<String> {
    let out = work.join("out");
    build(
        &work.join("ctx/kiln.toml"),
        &[
            "--oci",
            out.to_str().unwrap(),
            "--cache-dir",
            work.join("cache").to_str().unwrap(),
        ],
    );
    let report = inspect_files(&format!("oci:{}", out.display()));
    assert!(
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "/ctx"),
        "no /ctx in the image"
    );
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str()?.strip_prefix("/ctx/"))
        .map(str::to_string)
        .collect()
}

/// Every path of the fixture's context (and the spec the tests add), relative.
fn all_paths() -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_str().unwrap();
            out.insert(rel.to_string());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let root = fixture().join("context");
    let mut out = BTreeSet::new();
    walk(&root, &root, &mut out);
    out.insert("kiln.toml".to_string());
    out
}

/// The `+` paths of an expected file, after checking that it decides every
/// path of the context exactly once, so that nothing goes unargued.
fn expected(name: &str) -> BTreeSet<String> {
    let text = fs::read_to_string(fixture().join(name)).unwrap();
    let mut included = BTreeSet::new();
    let mut listed = BTreeSet::new();
    for line in text.lines() {
        let (sign, rest) = match line.split_at_checked(2) {
            Some(("+ ", rest)) => (true, rest),
            Some(("- ", rest)) => (false, rest),
            _ => continue,
        };
        let path = rest.split_whitespace().next().unwrap().to_string();
        assert!(listed.insert(path.clone()), "{name}: {path} listed twice");
        if sign {
            included.insert(path);
        }
    }
    assert_eq!(
        listed,
        all_paths(),
        "{name} must list every path of the context"
    );
    included
}

#[test]
fn dockers_documented_rules_decide_what_a_copy_of_the_context_takes() {
    let work = context("", "");
    assert_eq!(copied(work.path()), expected("expected.txt"));
}

#[test]
fn ignore_file_names_another_file_read_instead_of_dockerignore() {
    let work = context("ignore-file = \"other.ignore\"", "");
    assert_eq!(copied(work.path()), expected("expected-other.txt"));
}

/// Docker's allow-list idiom: `*` first, then `!` exceptions. The context's
/// root is what `COPY . /ctx/` copies; `*` must not exclude the root itself.
#[test]
fn the_documented_allow_list_idiom_keeps_only_its_exceptions() {
    let work = context("ignore-file = \"allow.ignore\"", "");
    assert_eq!(copied(work.path()), expected("expected-allow.txt"));
}

#[test]
fn ignore_file_false_copies_everything() {
    let work = context("ignore-file = false", "");
    assert_eq!(copied(work.path()), all_paths());
}

#[test]
fn exclude_in_a_copy_adds_to_the_ignore_file() {
    // Without a `/`, exclude matches a name at any depth; with one, a path
    // from the copy's root.
    let work = context("", "exclude = [\"*.md\", \"somedir/subdir\"]");
    let want: BTreeSet<String> = expected("expected.txt")
        .into_iter()
        .filter(|p| !p.ends_with(".md") && !p.starts_with("somedir/subdir"))
        .collect();
    assert!(want.contains("somedir/lib/x/y") && want.contains("docs/keep.txt"));
    assert_eq!(copied(work.path()), want);
}

/// `kiln build` of `work`'s spec, which must be refused with exit 2 and
/// write nothing: its stderr.
fn refused(work: &Path) -> String {
    let out = work.join("out");
    let cache = work.join("cache");
    let stderr = build_refused(
        &work.join("ctx/kiln.toml"),
        &[
            "--oci",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert!(!out.exists());
    stderr
}

#[test]
fn a_missing_ignore_file_is_an_error_naming_it() {
    let work = context("ignore-file = \"nowhere.ignore\"", "");
    let stderr = refused(work.path());
    assert!(
        stderr.contains("ignore-file `nowhere.ignore` does not exist"),
        "{stderr}"
    );
}

#[test]
fn a_src_the_ignore_file_excludes_is_an_error_naming_the_ignore_file() {
    for (src, what) in [
        ("main.go", "is excluded by"),
        ("tempb/", "is excluded by"),
        ("somedir/*.go", "matches only paths excluded by"),
    ] {
        let work = copying(src);
        let stderr = refused(work.path());
        let ignore_file = work.path().join("ctx/.dockerignore");
        assert!(
            stderr.contains(&format!("src `{src}` {what} `{}`", ignore_file.display())),
            "{stderr}"
        );
        assert!(stderr.contains("hint: "), "{stderr}");
    }
}

/// `docs` is excluded but `!docs/keep.txt` keeps one file in it, so the
/// context has docs/ holding keep.txt, and `COPY docs/ /x/` copies that file
/// (as it would if docs/ held nothing else).
#[test]
fn a_src_directory_with_an_exception_inside_copies_what_the_exception_keeps() {
    let work = copying("docs/");
    assert_eq!(
        copied(work.path()),
        BTreeSet::from(["keep.txt".to_string()])
    );
}
