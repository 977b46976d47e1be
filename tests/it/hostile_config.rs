//! No image can drive the terminal or forge output: an image made by hand
//! puts ESC sequences, `\r`, newlines followed by a forged `Digest:` line,
//! C1 controls and U+202E into its labels, env, user, entrypoint, history,
//! annotations, file names, link targets and /etc/passwd names. `kiln
//! inspect` (text) must show every one escaped, one row per line, while
//! `--format json` keeps the exact strings; errors and log lines that quote
//! the image are escaped too.

use std::path::Path;

use serde_json::json;

use crate::common::handmade::{self, Entry, Kind, dir, file, link};
use crate::common::*;

const CLEAR: &str = "\x1b[2J\x1b[H";
const FORGED: &str =
    "\nDigest:     sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The hostile image, in `work/hostile`; returns `oci:DIR:v1`.
fn hostile_image(work: &Path) -> String {
    let passwd = format!("root:x:0:0::/root:/bin/sh\nev{CLEAR}il:x:1000:1000::/:/bin/sh\n");
    let group = "root:x:0:\nr\u{202e}tlgrp:x:1000:\n";
    let clear_name = format!("app/{CLEAR}clear");
    let forged_name = format!("app/ok{FORGED}");
    let link_target = "\x1b]0;pwned\x07target\u{9b}31m";
    let mut owned = file("app/owned", b"x");
    owned.uid = 1000;
    owned.gid = 1000;
    let entries = vec![
        dir("etc"),
        file("etc/passwd", passwd.as_bytes()),
        file("etc/group", group.as_bytes()),
        dir("app"),
        file(&clear_name, b"1"),
        file(&forged_name, b"2"),
        file("app/cr\rname", b"3"),
        file("app/rtl\u{202e}txt.exe", b"4"),
        link("app/link", link_target),
        owned,
        Entry {
            path: "app/exe",
            kind: Kind::File(b"#!/bin/sh\n", 0o755),
            uid: 0,
            gid: 0,
        },
    ];
    let config = json!({
        "created": format!("2025-01-01T00:00:00Z{CLEAR}"),
        "config": {
            "User": format!("ev{CLEAR}il"),
            "Env": [format!("CLEAR={CLEAR}"), format!("FORGE=x\r{FORGED}"), "C1=\u{85}\u{9b}2J"],
            "Entrypoint": [format!("/app/exe{CLEAR}"), "\u{202e}"],
            "Cmd": [format!("--flag{FORGED}")],
            "WorkingDir": "/app\r",
            "Labels": {
                format!("evil{CLEAR}"): format!("v{FORGED}"),
                "rtl": "abc\u{202e}def\u{2066}",
            },
            "ExposedPorts": { format!("80/tcp{CLEAR}"): {} },
            "StopSignal": format!("SIGTERM{FORGED}"),
        },
        "history": [{ "created_by": format!("COPY {CLEAR}{FORGED}"), "comment": "\u{2028}" }],
    });
    let annotations = json!({ "org.example.note": format!("a{CLEAR}{FORGED}") });
    handmade::layout(&work.join("hostile"), "v1", &entries, config, annotations)
}

/// Characters a terminal acts on: C0 but newline, DEL, C1, bidi overrides.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

#[test]
fn inspect_text_escapes_every_image_string() {
    let work = tempfile::tempdir().unwrap();
    let image = hostile_image(work.path());
    let out = kiln()
        .args(["inspect", &image, "--files"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(raw_controls(&stdout), Vec::<char>::new(), "{stdout}");
    assert_eq!(raw_controls(&stderr), Vec::<char>::new(), "{stderr}");
    // The forged line never starts a line; the real Config row does.
    assert!(
        !stdout
            .lines()
            .any(|l| l.trim_start().starts_with("Digest:")),
        "{stdout}"
    );
    // Each string is there, escaped, on its own row.
    for needle in [
        "User         ev\\x1b[2J\\x1b[Hil (ev\\x1b[2J\\x1b[Hil:r\\u{202e}tlgrp)",
        "Workdir      /app\\r",
        "CLEAR=\\x1b[2J\\x1b[H",
        "FORGE=x\\r\\nDigest:     sha256:0000",
        "C1=\\u{85}\\u{9b}2J",
        "evil\\x1b[2J\\x1b[H=v\\nDigest:",
        "rtl=abc\\u{202e}def\\u{2066}",
        "COPY \\x1b[2J\\x1b[H\\nDigest:",
        "/app/\\x1b[2J\\x1b[Hclear",
        "/app/ok\\nDigest:",
        "/app/cr\\rname",
        "/app/rtl\\u{202e}txt.exe",
        "/app/link -> \\x1b]0;pwned\\x07target\\u{9b}31m",
        "1000:1000 (ev\\x1b[2J\\x1b[Hil:r\\u{202e}tlgrp)",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    // Entrypoint and Cmd: JSON arrays, with what JSON leaves raw escaped.
    assert!(
        stdout.contains(r#"["/app/exe\u001b[2J\u001b[H","\u{202e}"]"#),
        "{stdout}"
    );
}

#[test]
fn inspect_json_keeps_the_exact_strings() {
    let work = tempfile::tempdir().unwrap();
    let image = hostile_image(work.path());
    let report = parse_json(&run(
        kiln().args(["inspect", &image, "--files", "--format", "json"])
    ));
    let c = &report["config"];
    assert_eq!(c["user"], format!("ev{CLEAR}il"));
    assert_eq!(c["labels"][format!("evil{CLEAR}")], format!("v{FORGED}"));
    assert_eq!(c["labels"]["rtl"], "abc\u{202e}def\u{2066}");
    assert_eq!(c["env"][1], format!("FORGE=x\r{FORGED}"));
    let paths: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&format!("/app/ok{FORGED}").as_str()),
        "{paths:?}"
    );
}

#[test]
fn log_lines_quoting_the_image_are_escaped() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("arch");
    let config = json!({ "architecture": format!("amd64{CLEAR}"), "config": {} });
    let image = handmade::layout(&layout, "v1", &[dir("etc")], config, json!({}));
    // A single image asked for another platform: the warning names its architecture.
    let out = kiln()
        .args(["inspect", &image, "--platform", "linux/s390x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(raw_controls(&stderr), Vec::<char>::new(), "{stderr}");
    assert_eq!(raw_controls(&stdout), Vec::<char>::new(), "{stdout}");
    assert!(
        stderr.contains("amd64\\x1b[2J") || stdout.contains("amd64\\x1b[2J"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn errors_quoting_the_image_are_escaped() {
    let work = tempfile::tempdir().unwrap();
    hostile_image(work.path());
    // A copy of a path the image lacks: the error lists the nearest paths it has.
    let spec = write_spec(
        &work.path().join("spec"),
        "[image]\nname = \"x\"\n[[copy]]\nimage = \"oci:../hostile:v1\"\nsrc = \"/app/o\"\ndest = \"/x\"\n",
    );
    let stderr = build_refused(&spec, &["--oci", work.path().join("out").to_str().unwrap()]);
    assert_eq!(raw_controls(&stderr), Vec::<char>::new(), "{stderr}");
    assert!(
        !stderr
            .lines()
            .any(|l| l.trim_start().starts_with("Digest:")),
        "{stderr}"
    );
    assert!(stderr.contains("/app/cr\\rname"), "{stderr}");
}

#[test]
fn check_text_escapes_the_bases_user() {
    let work = tempfile::tempdir().unwrap();
    hostile_image(work.path());
    // The base's User (a name with ESC in it) becomes the image's: findings quote it.
    let spec = write_spec(
        &work.path().join("spec"),
        "[image]\nname = \"x\"\nbase = \"oci:../hostile:v1\"\n",
    );
    let out = kiln().arg("check").arg(&spec).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(raw_controls(&stdout), Vec::<char>::new(), "{stdout}");
    assert!(
        stdout.contains("user `ev\\x1b[2J\\x1b[Hil` is not numeric uid:gid"),
        "{stdout}"
    );
}
