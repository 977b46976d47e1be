//! Every directory under testdata/broken-specs/ (except `_base-layout`, an
//! OCI layout the cases use as a base) is a spec kiln must refuse: exit code
//! 2, no panic, and stderr exactly as in its expected.txt, with the temp
//! directory written as `$DIR`.
//!
//! After changing a message on purpose, rewrite the expected files with
//!     KILN_BLESS=1 cargo nextest run broken_specs::
//! and read the diff before committing it.

use std::fs;
use std::path::Path;
use std::process::Command;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/broken-specs");

#[test]
fn broken_specs_fail_with_their_expected_message() {
    let bless = std::env::var_os("KILN_BLESS").is_some_and(|v| v == "1");
    let mut names: Vec<String> = fs::read_dir(CASES)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('_'))
        .collect();
    names.sort();
    assert!(names.len() >= 40, "only {} cases", names.len());

    // Collect every mismatch so one run shows them all.
    let failures: Vec<String> = names
        .iter()
        .filter_map(|name| check(name, bless).err().map(|e| format!("{name}:\n{e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} broken specs failed:\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// Run one case in a temp copy of its directory, so nothing is written in the repo.
fn check(name: &str, bless: bool) -> Result<(), String> {
    let case = Path::new(CASES).join(name);
    assert!(case.join("kiln.toml").is_file(), "{name} has no kiln.toml");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_tree(&case, &dir.join(name));
    copy_tree(
        &Path::new(CASES).join("_base-layout"),
        &dir.join("_base-layout"),
    );
    setup(name, &dir.join(name));

    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("RUST_LOG")
        .arg("build")
        .arg(format!("{name}/kiln.toml"))
        .arg("--oci")
        .arg(dir.join("out"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .output()
        .unwrap();
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for d in [dir.canonicalize().unwrap(), dir.to_path_buf()] {
        stderr = stderr.replace(d.to_str().unwrap(), "$DIR");
    }

    let mut problems = Vec::new();
    if out.status.code() != Some(2) {
        problems.push(format!("  exited with {} instead of 2", out.status));
    }
    if stderr.contains("panicked") {
        problems.push("  panicked".to_string());
    }
    let expected_file = case.join("expected.txt");
    if bless {
        fs::write(&expected_file, &stderr).unwrap();
    } else {
        match fs::read_to_string(&expected_file) {
            Ok(expected) if expected == stderr => {}
            Ok(expected) => problems.push(diff(&expected, &stderr)),
            Err(_) => problems.push(format!(
                "  no expected.txt; if this stderr is a message a user can act on, bless it:\n{stderr}"
            )),
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("\n")),
    }
}

/// What cannot be checked in: a FIFO, and a symlink out of the spec's
/// directory (a committed one could send tools that follow links in circles).
fn setup(name: &str, case: &Path) {
    match name {
        "src-fifo-in-tree" => {
            let fifo = case.join("files/pipe");
            let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
            assert!(status.success(), "mkfifo {}", fifo.display());
        }
        "src-symlink-escape" => {
            let outside = case.parent().unwrap().join("outside");
            fs::create_dir(&outside).unwrap();
            fs::write(outside.join("id_rsa"), "secret").unwrap();
            std::os::unix::fs::symlink("../outside", case.join("escape")).unwrap();
        }
        _ => {}
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&src, &dst);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Line by line: `-` expected, `+` actual.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i), a.get(i));
        if x != y {
            out += &format!("  line {}:\n", i + 1);
            if let Some(x) = x {
                out += &format!("    - {x}\n");
            }
            if let Some(y) = y {
                out += &format!("    + {y}\n");
            }
        }
    }
    if out.is_empty() {
        out = "  differs only in trailing newlines\n".to_string();
    }
    out
}
