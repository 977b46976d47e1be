//! Same spec, same file contents: same digest, whatever the checkout path,
//! mtimes, source owners, umask, locale, time zone or SOURCE_DATE_EPOCH.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn digest_of(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .last()
        .unwrap()
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string()
}

/// Build through `sh` so that umask, TZ and locale apply to kiln itself.
fn build_with(spec: &Path, out: &Path, env: &[(&str, &str)], umask: &str) -> String {
    let script = format!("umask {umask} && exec \"$0\" build \"$1\" --oci \"$2\"");
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .arg(spec)
        .arg(out);
    sh.env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        sh.env(k, v);
    }
    let output = sh.output().unwrap();
    check(&sh, &output);
    digest_of(&output)
}

#[test]
fn digest_ignores_path_mtimes_owners_umask_locale_and_time_zone() {
    let a = web_fixture();
    let b = web_fixture();
    // Disturb everything in b that must not matter.
    for (path, _) in walk(b.path()) {
        run(Command::new("touch")
            .args(["-h", "-d", "2001-02-03 04:05:06"])
            .arg(&path));
        run(Command::new("chown").args(["-h", "4321:4321"]).arg(&path));
    }
    run(Command::new("chmod")
        .args(["go-rwx", "-R"])
        .arg(b.path().join("www")));
    let out = tempfile::tempdir().unwrap();
    let d1 = build_with(
        &a.path().join("kiln.toml"),
        &out.path().join("1"),
        &[("TZ", "UTC"), ("LC_ALL", "C")],
        "022",
    );
    let d2 = build_with(
        &b.path().join("kiln.toml"),
        &out.path().join("2"),
        &[("TZ", "Asia/Tokyo"), ("LC_ALL", "fr_FR.UTF-8")],
        "077",
    );
    assert_eq!(d1, d2);
    // And again, repeatedly, in the same place.
    for _ in 0..3 {
        assert_eq!(
            build_with(
                &a.path().join("kiln.toml"),
                &out.path().join("1"),
                &[],
                "022"
            ),
            d1
        );
    }
}

fn walk(dir: &Path) -> Vec<(std::path::PathBuf, fs::Metadata)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = fs::symlink_metadata(e.path()).unwrap();
        if meta.is_dir() {
            out.extend(walk(&e.path()));
        }
        out.push((e.path(), meta));
    }
    out
}

const TINY: &str = r#"
[image]
name = "tiny"
platform = "linux/amd64"
[user]
name = "app"
uid = 1000
[[file]]
path = "/app/hello.txt"
content = "hello\n"
owner = "app:app"
[config]
cmd = ["/app/hello"]
[policy]
allow = ["KILN-ENTRYPOINT-NOT-IN-IMAGE"]
reason = "only the image's bytes are compared; nothing runs it"
"#;

fn tiny(dir: &Path) -> std::path::PathBuf {
    let spec = dir.join("kiln.toml");
    fs::write(&spec, TINY).unwrap();
    spec
}

#[test]
fn source_date_epoch_sets_every_time_and_must_be_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny(dir.path());
    let out = dir.path().join("out");
    let unset = build(&spec, &["--oci", out.to_str().unwrap()]);
    let zero = digest_of(
        &kiln()
            .env("SOURCE_DATE_EPOCH", "0")
            .arg("build")
            .arg(&spec)
            .arg("--oci")
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert_eq!(unset, zero);

    let later = kiln()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .arg("build")
        .arg(&spec)
        .arg("--oci")
        .arg(&out)
        .output()
        .unwrap();
    assert_ne!(digest_of(&later), unset);
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(config_blob(&out)).unwrap()).unwrap();
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");

    let bad = kiln()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .arg("build")
        .arg(&spec)
        .arg("--oci")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("SOURCE_DATE_EPOCH: `yesterday` is not a whole number")
    );
}

fn config_blob(layout: &Path) -> std::path::PathBuf {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(manifest_digest)).unwrap()).unwrap();
    blob(manifest["config"]["digest"].as_str().unwrap())
}

/// A change of compressor, level or tar writer that changes the bytes must
/// be a deliberate change: update this digest and say why in the commit.
#[test]
fn golden_digest_pins_tar_gzip_and_json_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny(dir.path());
    let digest = build(
        &spec,
        &[
            "--oci",
            dir.path().join("out").to_str().unwrap(),
            "--build-arg",
            "UNUSED=1",
        ],
    );
    assert_eq!(digest, GOLDEN);
}

const GOLDEN: &str = "sha256:5369d9ba1670190c3ad7a21ad858a965e5cc3287edf32b8eba71a5431eddc6dc";

/// A layer's bytes must not depend on the CPU that compressed it: the same
/// build run by qemu as a baseline x86-64 (no SSE4.2, no AVX), a Nehalem
/// (SSE4.2) and a Haswell (AVX2) gives the digest this machine gives, for
/// gzip at the default and a middle level and for zstd. ISA-L does not
/// (its hash and match finder follow the CPU), which is why it is opt-in.
#[cfg(all(target_arch = "x86_64", not(feature = "isal")))]
#[test]
fn the_same_digest_on_every_x86_64_cpu() {
    if !have(&["qemu-x86_64"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Text and binary, 3.5 MiB: several of the compressors' 1 MiB chunks.
    let mut data = Vec::new();
    let mut x: u32 = 7;
    while data.len() < 7 << 19 {
        data.extend_from_slice(format!("row {} value {x}\n", data.len() / 29).as_bytes());
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.extend_from_slice(&x.to_le_bytes()[..(x % 5) as usize]);
    }
    fs::write(dir.path().join("data"), &data).unwrap();
    for (compression, level) in [("gzip", 1), ("gzip", 6), ("zstd", 3)] {
        let spec = write_spec(
            dir.path(),
            &format!(
                "[image]\nname = \"cpu\"\nformat = \"oci\"\ncompression = \"{compression}\"\n\
                 compression-level = {level}\n\n[[copy]]\nsrc = \"data\"\ndest = \"/data\"\n"
            ),
        );
        let out = dir.path().join("out");
        let native = build(
            &spec,
            &["--oci", out.to_str().unwrap(), "--no-cache", "--no-check"],
        );
        for cpu in ["qemu64", "Nehalem", "Haswell"] {
            let mut cmd = Command::new("qemu-x86_64");
            cmd.args(["-cpu", cpu])
                .arg(env!("CARGO_BIN_EXE_kiln"))
                .args(["build", "--no-cache", "--no-check", "--oci"])
                .arg(&out)
                .arg(&spec)
                .env_remove("SOURCE_DATE_EPOCH");
            let output = cmd.output().unwrap();
            check(&cmd, &output);
            assert_eq!(
                digest_of(&output),
                native,
                "{compression} level {level} on a {cpu} CPU"
            );
        }
    }
}
