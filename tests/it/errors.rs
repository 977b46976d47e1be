//! Bad input gets a clear error that points at the file and line, exit code
//! 2, no panic, and the previous output left exactly as it was.

use std::fs;
use std::path::Path;

use crate::common::*;

const GOOD: &str = r#"[image]
name = "t"
[user]
name = "app"
uid = 10001
[[copy]]
src = "files/"
dest = "/app/"
owner = "app:app"
[healthcheck]
test = ["CMD", "/bin/true"]
interval = "30s"
[policy]
enforce = false
"#;

/// A spec directory with a few source files and a good build already in `out/`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("files/sub")).unwrap();
    fs::write(dir.path().join("files/a.txt"), "a").unwrap();
    fs::write(dir.path().join("files/sub/b.txt"), "b").unwrap();
    fs::write(dir.path().join("kiln.toml"), GOOD).unwrap();
    build(
        &dir.path().join("kiln.toml"),
        &["--oci", dir.path().join("out").to_str().unwrap()],
    );
    dir
}

/// Every file under `dir` with its bytes, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Build `spec` over the good output; expect exit 2, `expected` on stderr, nothing changed.
fn fails(dir: &Path, spec: &str, expected: &[&str]) {
    fs::write(dir.join("kiln.toml"), spec).unwrap();
    let before = snapshot(&dir.join("out"));
    let out = kiln()
        .arg("build")
        .arg(dir.join("kiln.toml"))
        .arg("--oci")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "spec:\n{spec}\nstderr:\n{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected {e:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        snapshot(&dir.join("out")),
        before,
        "the earlier layout changed"
    );
    let leftovers: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("kiln-tmp") || n.contains("kiln-old"))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

#[test]
fn spec_errors_name_file_line_and_column() {
    let dir = setup();
    let d = dir.path();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "[image]",
            "[image]\nbse = \"scratch\"",
            &["kiln.toml:2:1: unknown field `bse`", "hint:"],
        ),
        ("[image]", "[image\n", &["kiln.toml:1:"]),
        (
            "uid = 10001",
            "uid = 0",
            &["kiln.toml:5:7: the app user must not be root"],
        ),
        (
            "uid = 10001",
            "uid = \"x\"",
            &["kiln.toml:5:7:", "invalid type"],
        ),
        (
            "interval = \"30s\"",
            "interval = \"30 seconds\"",
            &["kiln.toml:12:12: `30 seconds` is not a duration"],
        ),
        (
            "interval = \"30s\"",
            "interval = \"10us\"",
            &["at least 1ms"],
        ),
        (
            "test = [\"CMD\", \"/bin/true\"]",
            "test = [\"CURL\"]",
            &["kiln.toml:11:8: healthcheck test must be"],
        ),
        (
            "dest = \"/app/\"",
            "dest = \"app/\"",
            &["kiln.toml:8:8: `app/` is not an absolute path"],
        ),
        (
            "dest = \"/app/\"",
            "dest = \"/app/../etc/\"",
            &["contains `..`"],
        ),
        (
            "src = \"files/\"",
            "src = \"../files/\"",
            &["kiln.toml:7:7: src `../files/` leaves the spec's directory"],
        ),
        (
            "src = \"files/\"",
            "src = \"nothere/\"",
            &["src `nothere/` does not exist"],
        ),
        (
            "owner = \"app:app\"",
            "owner = \"ghost:app\"",
            &[
                "kiln.toml:9:9: owner `ghost:app`: no user `ghost`",
                "hint: define it in [user]",
            ],
        ),
        (
            "owner = \"app:app\"",
            "owner = \"app:ghosts\"",
            &["no group `ghosts`"],
        ),
        (
            "owner = \"app:app\"",
            "owner = \"a:b:c\"",
            &["kiln.toml:9:9:"],
        ),
        (
            "name = \"t\"",
            "name = \"T\"",
            &["kiln.toml:2:8: image name `T`"],
        ),
        (
            "name = \"t\"",
            "name = \"${NOPE}\"",
            &["`${NOPE}` is not defined", "--build-arg NOPE=VALUE"],
        ),
        (
            "[user]",
            "[config]\nexpose = [\"http\"]\n[user]",
            &["port `http`"],
        ),
        (
            "[image]",
            "[image]\nbase = \"oci:nowhere\"",
            &["base image `oci:nowhere`", "not an OCI image layout"],
        ),
        (
            "[image]",
            "[image]\ncreated = \"yesterday\"",
            &["kiln.toml:2:11: created `yesterday` is not an RFC 3339 time"],
        ),
    ];
    for (from, to, expected) in cases {
        assert!(GOOD.contains(from), "{from}");
        fails(d, &GOOD.replacen(from, to, 1), expected);
    }
}

#[test]
fn source_errors_are_refused_before_anything_is_written() {
    let dir = setup();
    let d = dir.path();

    // Two sources for one destination.
    let twice = format!("{GOOD}[[copy]]\nsrc = \"files/a.txt\"\ndest = \"/app/a.txt\"\n");
    fails(d, &twice, &["`/app/a.txt` is written twice"]);

    // A symlink out of the spec's directory, as a source.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("id_rsa"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), d.join("escape")).unwrap();
    fails(
        d,
        &GOOD.replace("src = \"files/\"", "src = \"escape/\""),
        &["outside the spec's directory", "through a symlink"],
    );
    fs::remove_file(d.join("escape")).unwrap();

    // A FIFO in a tree.
    let fifo = d.join("files/pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    fails(d, GOOD, &["files/pipe", "is a FIFO"]);
    fs::remove_file(&fifo).unwrap();

    // A whiteout name in a tree.
    fs::write(d.join("files/.wh.x"), "").unwrap();
    fails(d, GOOD, &[".wh.x", "whiteouts"]);
    fs::remove_file(d.join("files/.wh.x")).unwrap();

    // A multi-match glob into a file destination.
    fails(
        d,
        &GOOD
            .replace("src = \"files/\"", "src = \"files/*\"")
            .replace("dest = \"/app/\"", "dest = \"/app\""),
        &["must be a directory ending in `/`"],
    );
}

use std::process::Command;

#[test]
fn symlinks_inside_trees_are_kept_as_links_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("venv/bin")).unwrap();
    std::os::unix::fs::symlink("/usr/local/bin/python3", d.join("venv/bin/python")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", d.join("venv/bin/sneaky")).unwrap();
    fs::write(
        d.join("kiln.toml"),
        "[[copy]]\nsrc = \"venv/\"\ndest = \"/app/.venv/\"\n[policy]\nenforce = false\n",
    )
    .unwrap();
    let out = d.join("out");
    build(&d.join("kiln.toml"), &["--oci", out.to_str().unwrap()]);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| {
        out.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layer = fs::File::open(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let links: Vec<(String, String)> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.header().entry_type() == tar::EntryType::Symlink)
        .map(|e| {
            (
                e.path().unwrap().display().to_string(),
                e.link_name().unwrap().unwrap().display().to_string(),
            )
        })
        .collect();
    assert_eq!(
        links,
        [
            (
                "app/.venv/bin/python".to_string(),
                "/usr/local/bin/python3".to_string()
            ),
            (
                "app/.venv/bin/sneaky".to_string(),
                "/etc/shadow".to_string()
            )
        ]
    );
}

#[test]
fn output_that_is_not_a_layout_is_not_replaced() {
    let dir = setup();
    let precious = dir.path().join("precious");
    fs::create_dir_all(&precious).unwrap();
    fs::write(precious.join("thesis.tex"), "years of work").unwrap();
    let out = kiln()
        .arg("build")
        .arg(dir.path().join("kiln.toml"))
        .arg("--oci")
        .arg(&precious)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is not an OCI image layout; kiln will not replace it")
    );
    assert_eq!(
        fs::read_to_string(precious.join("thesis.tex")).unwrap(),
        "years of work"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = kiln()
        .args(["build", "--build-arg", "novalue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = kiln()
        .args(["build", "/nonexistent/kiln.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("`/nonexistent/kiln.toml`: no such spec file")
    );
}
