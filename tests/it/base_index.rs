//! The base index: a warm build takes its base's filesystem from the
//! cache's index and decompresses no base layer, with the same image as a
//! cold build; a damaged, truncated or missing index is read again from the
//! layers, never trusted; `kiln check` runs from the index alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::handmade::{self, dir, file, link};
use crate::common::*;

const SPEC: &str = r#"[image]
name = "on-indexed-base"
base = "BASE"
[user]
name = "app"
uid = 10001
home = "/home/app"
[[copy]]
src = "app.txt"
dest = "/bin/app.txt"
[config]
entrypoint = ["/opt/app/server"]
[policy]
allow = ["KILN-ENTRYPOINT-NOT-IN-IMAGE"]
reason = "a test image: no program in it"
"#;

/// A base with account files, /etc/skel, and /bin a link into /usr.
fn setup(work: &Path) -> PathBuf {
    let base = handmade::layout(
        &work.join("base"),
        "v1",
        &[
            dir("etc"),
            file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            file("etc/group", b"root:x:0:\n"),
            file("etc/shadow", b"root:*:19000:0:99999:7:::\n"),
            dir("etc/skel"),
            file("etc/skel/.profile", b"PATH=/usr/bin\n"),
            dir("usr"),
            dir("usr/bin"),
            link("bin", "usr/bin"),
        ],
        serde_json::json!({}),
        serde_json::json!({}),
    );
    fs::write(work.join("app.txt"), "hi").unwrap();
    write_spec(work, &SPEC.replace("BASE", &base))
}

/// Build with -v into a fresh layout: the digest, and how many times a base layer was read.
fn warm(spec: &Path, cache: &Path, n: usize) -> (String, usize) {
    let out_dir = spec.parent().unwrap().join(format!("out{n}"));
    let out = kiln_build(spec, cache, &["-v", "--oci", out_dir.to_str().unwrap()]);
    check(&kiln(), &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let digest = stdout.lines().last().unwrap().rsplit_once('@').unwrap().1;
    (digest.to_string(), layer_reads(&out))
}

fn layer_reads(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stderr)
        .matches("reading base layer")
        .count()
}

/// The one index file in the cache.
fn index_file(cache: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(cache.join("base-index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_warm_build_reads_no_base_layer_and_a_damaged_index_is_read_again() {
    let work = tempfile::tempdir().unwrap();
    let spec = setup(work.path());
    let cache = work.path().join("cache");

    let (cold, reads) = warm(&spec, &cache, 0);
    assert_eq!(reads, 1, "the cold build reads the base's one layer");
    let index = index_file(&cache);
    let (again, reads) = warm(&spec, &cache, 1);
    assert_eq!(
        (again.as_str(), reads),
        (cold.as_str(), 0),
        "warm: from the index"
    );

    let whole = fs::read(&index).unwrap();
    let mut flipped = whole.clone();
    let middle = whole.len() / 2;
    flipped[middle] ^= 0x40;
    let damaged: [(&str, Vec<u8>); 4] = [
        ("truncated", whole[..whole.len() - 7].to_vec()),
        ("a bit flipped", flipped),
        ("garbage", b"\x00kilnidx garbage".repeat(50)),
        ("empty", Vec::new()),
    ];
    for (n, (what, bytes)) in damaged.into_iter().enumerate() {
        fs::write(&index, bytes).unwrap();
        let (digest, reads) = warm(&spec, &cache, 2 + n);
        assert_eq!(digest, cold, "{what}: the same image");
        assert_eq!(reads, 1, "{what}: the layer is read again");
        assert_eq!(
            fs::read(&index).unwrap(),
            whole,
            "{what}: the index is rebuilt"
        );
    }
    fs::remove_file(&index).unwrap();
    assert_eq!(warm(&spec, &cache, 9), (cold.clone(), 1), "deleted");
    assert_eq!(warm(&spec, &cache, 10), (cold, 0), "and kept again");
}

#[test]
fn check_runs_from_the_index_with_the_base_layers_gone() {
    let work = tempfile::tempdir().unwrap();
    let spec = setup(work.path());
    let cache = work.path().join("cache");
    let check_json = |cache: &Path| {
        kiln()
            .arg("check")
            .arg(&spec)
            .arg("--cache-dir")
            .arg(cache)
            .args(["-v", "--format", "json"])
            .output()
            .unwrap()
    };
    let first = check_json(&cache);
    check(&kiln(), &first);
    assert_eq!(layer_reads(&first), 1);
    index_file(&cache);

    // The base's layer blob removed: only the index knows what it held.
    let manifest = layout_manifest(&work.path().join("base"));
    let blob = layout_blob(&work.path().join("base"), &manifest["layers"][0]["digest"]);
    fs::remove_file(&blob).unwrap();
    let second = check_json(&cache);
    check(&kiln(), &second);
    assert_eq!(layer_reads(&second), 0);
    assert_eq!(first.stdout, second.stdout, "the same findings");
    // Without the index the missing layer is an error, as before.
    let third = check_json(&work.path().join("fresh-cache"));
    assert!(!third.status.success(), "checked without the base's layer");
}

/// The package databases an SBOM reads are kept in the index too: a warm
/// `--sbom` build reads no base layer and writes the same SBOM.
#[test]
fn a_warm_sbom_build_reads_its_packages_from_the_index() {
    let work = tempfile::tempdir().unwrap();
    let base = handmade::layout(
        &work.path().join("base"),
        "v1",
        &[
            dir("etc"),
            file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
            file("etc/group", b"root:x:0:\n"),
            file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
            dir("var"),
            dir("var/lib"),
            dir("var/lib/dpkg"),
            file(
                "var/lib/dpkg/status",
                b"Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n\n",
            ),
        ],
        serde_json::json!({}),
        serde_json::json!({}),
    );
    fs::write(work.path().join("app.txt"), "hi").unwrap();
    let spec = write_spec(
        work.path(),
        &SPEC
            .replace("BASE", &base)
            .replace("[image]\n", "[image]\nformat = \"oci\"\n"),
    );
    let cache = work.path().join("cache");
    let sbom = |n: usize| {
        let out_dir = work.path().join(format!("sbom{n}"));
        let out = kiln_build(
            &spec,
            &cache,
            &["-v", "--sbom", "--oci", out_dir.to_str().unwrap()],
        );
        check(&kiln(), &out);
        let doc = run(kiln().args(["sbom", &format!("oci:{}", out_dir.display())]));
        (doc, layer_reads(&out))
    };
    let (cold, reads) = sbom(0);
    assert_eq!(reads, 1, "the cold build reads the base's layer");
    assert!(
        cold.contains("pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1"),
        "{cold}"
    );
    let (warm, reads) = sbom(1);
    assert_eq!(reads, 0, "the warm build reads the packages from the index");
    assert_eq!(warm, cold);
}

/// A warm build takes no layer from the index's word alone: a blob
/// replaced in the base's layout since the index was made (and an OCI
/// layout output would hard-link it) is hashed again and refused.
#[test]
fn a_base_blob_replaced_after_the_index_was_made_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let spec = setup(work.path());
    let cache = work.path().join("cache");
    let (cold, _) = warm(&spec, &cache, 0);
    assert_eq!(warm(&spec, &cache, 1), (cold.clone(), 0));

    let base = work.path().join("base");
    let blob = layout_blob(&base, &layout_manifest(&base)["layers"][0]["digest"]);
    let whole = fs::read(&blob).unwrap();
    // The same tar compressed otherwise: a sound gzip, another digest.
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&whole[..]), &mut tar).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let damaged = gz.finish().unwrap();
    assert_ne!(damaged, whole);
    let swapped = work.path().join("swapped");
    fs::write(&swapped, &damaged).unwrap();
    fs::rename(&swapped, &blob).unwrap();
    let out = kiln_build(
        &spec,
        &cache,
        &["--oci", work.path().join("bad").to_str().unwrap()],
    );
    assert!(!out.status.success(), "built on a damaged base");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not match its digest"), "{stderr}");
    assert!(!work.path().join("bad").exists(), "no output left");

    // Put back (a new file, so hashed once more), it is trusted again.
    fs::write(&swapped, &whole).unwrap();
    fs::rename(&swapped, &blob).unwrap();
    assert_eq!(warm(&spec, &cache, 2), (cold.clone(), 0));
    assert_eq!(warm(&spec, &cache, 3), (cold, 0));
}
