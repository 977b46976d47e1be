//! Whole transcripts of what a user reads: `kiln check`, a build's log,
//! `kiln inspect --files`, and a refused build, compared with
//! testdata/snapshots/. A change in wording or order shows up in review.
//! Paths and durations are replaced by placeholders, and the lines of
//! layers built side by side are sorted. To accept a change:
//!
//!     KILN_BLESS=1 cargo nextest run snapshots::

use std::fs;
use std::path::Path;

use crate::common::*;

const SPEC: &str = r#"[image]
name = "snap"
tag = "1.0.0"
platform = "linux/amd64"

[user]
name = "app"
uid = 10001

[[copy]]
src = "dist/"
dest = "/app/"
owner = "app"

[config]
entrypoint = ["/app/server"]
workdir = "/app"
expose = ["8080/tcp"]
env = { MODE = "production" }
labels = { "org.opencontainers.image.source" = "https://example.com/snap" }
"#;

fn project(dir: &Path) {
    write_tree(
        dir,
        &[
            ("dist/index.html", "hello\n", 0o644),
            ("dist/server", "a stand-in for a static server\n", 0o755),
        ],
    );
    fs::write(dir.join("kiln.toml"), SPEC).unwrap();
}

/// `$ kiln ARGS`, its exit code, stdout and stderr, with `work` and
/// durations replaced.
fn transcript(work: &Path, args: &[&str]) -> String {
    let out = kiln()
        .args(args)
        .current_dir(work)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    let text = format!(
        "$ kiln {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    filter(&text, work)
}

fn filter(text: &str, work: &Path) -> String {
    let text = text.replace(&work.display().to_string(), "[WORK]");
    let mut lines: Vec<String> = text.lines().map(without_durations).collect();
    // Layers are built side by side: their lines come in any order.
    let built = |l: &String| l.contains(" built layer ");
    let mut i = 0;
    while i < lines.len() {
        let run = lines[i..].iter().take_while(|l| built(l)).count();
        lines[i..i + run].sort();
        i += run.max(1);
    }
    lines.join("\n") + "\n"
}

/// `516.97µs`, `11.19ms`, `1.2s` -> `[TIME]`.
fn without_durations(line: &str) -> String {
    let mut out = String::new();
    for (i, word) in line.split(' ').enumerate() {
        let trimmed = word.trim_end_matches(',');
        let number = trimmed.trim_end_matches(|c: char| c.is_alphabetic() || c == 'µ');
        let unit = &trimmed[number.len()..];
        let is_time = !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit() || c == '.')
            && matches!(unit, "ns" | "µs" | "ms" | "s");
        if i > 0 {
            out.push(' ');
        }
        match is_time {
            true => out.push_str(&word.replace(trimmed, "[TIME]")),
            false => out.push_str(word),
        }
    }
    out
}

fn compare(name: &str, actual: &str) {
    let path = repo()
        .join("testdata/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("KILN_BLESS").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (KILN_BLESS=1 writes it)", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines().chain(std::iter::repeat("<missing>")))
            .filter(|(e, a)| e != a)
            .take(10)
            .map(|(e, a)| format!("- {e}\n+ {a}"))
            .collect();
        panic!(
            "{name} changed (KILN_BLESS=1 accepts it):\n{}\n--- whole output:\n{actual}",
            diff.join("\n")
        );
    }
}

#[test]
fn what_check_build_and_inspect_print() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    project(w);
    let cache = ["--cache-dir", "cache"];
    let check = transcript(w, &[&["check", "kiln.toml"][..], &cache].concat());
    compare("check", &check);
    let build = transcript(
        w,
        &[&["build", "kiln.toml", "--oci", "out"][..], &cache].concat(),
    );
    compare("build", &build);
    let inspect = transcript(w, &["inspect", "oci:out", "--files"]);
    compare("inspect", &inspect);
    // The same spec with a root user: the error, its hint and the exit code.
    fs::write(
        w.join("kiln.toml"),
        SPEC.replace("workdir", "user = \"0\"\nworkdir"),
    )
    .unwrap();
    let refused = transcript(
        w,
        &[&["build", "kiln.toml", "--oci", "out2"][..], &cache].concat(),
    );
    compare("refused", &refused);
    assert!(!w.join("out2").exists());
}

#[test]
fn durations_and_paths_are_filtered() {
    let work = Path::new("/tmp/x");
    let text = " INFO  built layer 2 COPY (1 B) in 273.87µs, sha256:ab\n INFO  built layer 1 X (2 B) in 5ms, sha256:cd\n INFO wrote /tmp/x/out\n INFO built in 1.5s\n";
    assert_eq!(
        filter(text, work),
        " INFO  built layer 1 X (2 B) in [TIME], sha256:cd\n INFO  built layer 2 COPY (1 B) in [TIME], sha256:ab\n INFO wrote [WORK]/out\n INFO built in [TIME]\n"
    );
}
