//! Images made by hand to attack the host, as a builder image pulled in CI
//! could: links, hard links, whiteouts and names that try to leave the
//! image's root. Each is fed to `kiln build` (copying out of it), `kiln
//! check` and `kiln inspect --files`; a canary directory outside the cache
//! and the output must keep its listing and bytes, and no blob kiln writes
//! may carry the canary's secret. Then the tar forms other tools read
//! differently from a naive reader (long link targets, PAX sizes, hard
//! links, sparse files): kiln must read them as GNU tar and umoci do.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use sha2::{Digest as _, Sha256};

const SECRET: &str = "CANARY-SECRET-9f2c61";

fn sha(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// One tar entry, written header field by header field so that any name,
/// link target or type can be tried.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_mtime(0);
        match e {
            E::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, n, &[][..]).unwrap();
            }
            E::File(n, data) if n.len() <= 100 => {
                // Written raw: the tar crate refuses `..`, and so must kiln's reader.
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.as_old_mut().name[..n.len()].copy_from_slice(n.as_bytes());
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::File(n, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, n, *data).unwrap();
            }
            E::Symlink(n, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, n, t).unwrap();
            }
            E::Hard(n, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, n, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// An OCI layout at `dir` holding one image, tag `1`, of these uncompressed layers.
fn layout_of(dir: &Path, layers: &[Vec<u8>]) -> String {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = sha(bytes);
        fs::write(blobs.join(&d[7..]), bytes).unwrap();
        serde_json::json!({"digest": d, "size": bytes.len()})
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let mut config_desc = put(config.to_string().as_bytes());
    config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let mut d = put(l);
            d["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
            d
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": layer_descs,
    });
    let mut m = put(manifest.to_string().as_bytes());
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    m["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "1"});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [m]});
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    format!("oci:{}:1", dir.display())
}

/// A directory outside everything kiln is told about, with a secret and a
/// victim file; `snapshot` records every path, kind and byte under it.
struct Canary {
    dir: PathBuf,
}

impl Canary {
    fn new(work: &Path) -> Canary {
        let dir = work.join("canary");
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("secret"), SECRET).unwrap();
        fs::write(dir.join("victim"), "untouched\n").unwrap();
        fs::write(dir.join("sub/keep"), "keep\n").unwrap();
        Canary { dir }
    }

    fn snapshot(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let meta = fs::symlink_metadata(&p).unwrap();
                let what = if meta.is_dir() {
                    stack.push(p.clone());
                    "dir".to_string()
                } else if meta.file_type().is_symlink() {
                    format!("-> {}", fs::read_link(&p).unwrap().display())
                } else {
                    fs::read_to_string(&p).unwrap()
                };
                out.push((p.display().to_string(), what));
            }
        }
        out.sort();
        out
    }
}

/// Every blob under `dir`, gunzipped where it is gzip: none may hold the secret.
fn assert_no_secret(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let raw = fs::read(&p).unwrap();
            let mut bytes = raw.clone();
            if raw.starts_with(&[0x1f, 0x8b]) {
                bytes.clear();
                let _ = std::io::Read::read_to_end(
                    &mut flate2::read::MultiGzDecoder::new(&raw[..]),
                    &mut bytes,
                );
            }
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{} carries the canary's secret",
                p.display()
            );
        }
    }
}

/// What an attack left: the build's exit code and stderr, the work dir
/// (the output layout is `out`).
struct Outcome {
    code: Option<i32>,
    stderr: String,
    work: tempfile::TempDir,
}

/// Build (copying `src` out of the image `layers(canary path)` makes),
/// check and inspect. The canary is compared before and after each run.
fn attack(name: &str, layers: impl Fn(&str) -> Vec<Vec<u8>>, src: &str) -> Outcome {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let canary = Canary::new(w);
    let before = canary.snapshot();
    let image = layout_of(&w.join("image"), &layers(&canary.dir.display().to_string()));
    let spec = write_spec(
        &w.join("spec"),
        &format!(
            "[image]\nname = \"hostile\"\nbase = \"scratch\"\n\n\
             [[copy]]\nimage = \"{image}\"\nsrc = \"{src}\"\ndest = \"/app/\"\n"
        ),
    );
    let cache = w.join("cache");
    let out = w.join("out");
    let built = kiln_build(
        &spec,
        &cache,
        &["--no-check", "--oci", out.to_str().unwrap()],
    );
    assert_eq!(
        canary.snapshot(),
        before,
        "{name}: kiln build touched the canary"
    );
    // check reads the image as build does, but stores no bytes.
    let check_cache = w.join("check-cache");
    let checked = kiln()
        .arg("check")
        .arg(&spec)
        .arg("--cache-dir")
        .arg(&check_cache)
        .output()
        .unwrap();
    assert_eq!(
        canary.snapshot(),
        before,
        "{name}: kiln check touched the canary"
    );
    assert!(
        !check_cache.join("extract").exists(),
        "{name}: kiln check wrote files"
    );
    let inspected = kiln()
        .args(["inspect", &image, "--files"])
        .output()
        .unwrap();
    assert_eq!(
        canary.snapshot(),
        before,
        "{name}: kiln inspect touched the canary"
    );
    assert_no_secret(&out);
    assert_no_secret(&cache);
    for o in [&built, &checked, &inspected] {
        let text = String::from_utf8_lossy(&o.stderr);
        assert!(!text.contains("panicked"), "{name}: {text}");
    }
    Outcome {
        code: built.status.code(),
        stderr: String::from_utf8_lossy(&built.stderr).into_owned(),
        work,
    }
}

/// The built image's files as umoci unpacks them.
fn rootfs(o: &Outcome) -> PathBuf {
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    unpack(&o.work.path().join("out"), o.work.path()).join("rootfs")
}

#[test]
fn writes_through_links_stay_in_the_image() {
    if !have(&["umoci"]) {
        return;
    }
    // A link to the canary, a file "under" it, then a name replaced by a
    // link to the victim and written again; all inside the copied tree.
    let o = attack(
        "write through links",
        |host| {
            vec![tar_of(&[
                E::Dir("app/"),
                E::Symlink("app/esc", host),
                E::File("app/esc/victim", b"pwned\n"),
                E::File("app/x", b"first\n"),
                E::Hard("app/h", "app/x"),
                E::Symlink("app/x", &format!("{host}/victim")),
                E::File("app/x", b"pwned\n"),
                // A hard link to a file outside the copy, then a link over its name.
                E::File("other/payload", b"pwned\n"),
                E::Hard("app/h2", "other/payload"),
                E::Symlink("app/h2", &format!("{host}/victim")),
            ])]
        },
        "/app",
    );
    let root = rootfs(&o);
    // As a runtime sees it: the link stays a link, the hard link keeps the
    // bytes it had, and the last write replaced the name.
    let esc = fs::read_link(root.join("app/esc")).unwrap();
    assert!(esc.display().to_string().ends_with("/canary"), "{esc:?}");
    assert_eq!(fs::read_to_string(root.join("app/h")).unwrap(), "first\n");
    assert_eq!(fs::read_to_string(root.join("app/x")).unwrap(), "pwned\n");
    let h2 = fs::read_link(root.join("app/h2")).unwrap();
    assert!(
        h2.display().to_string().ends_with("/canary/victim"),
        "{h2:?}"
    );
}

#[test]
fn whiteouts_under_links_delete_nothing_on_the_host() {
    let o = attack(
        "whiteout through a link",
        |host| {
            vec![
                tar_of(&[
                    E::Dir("app/"),
                    E::Symlink("app/l", host),
                    E::File("app/f", b"f"),
                ]),
                tar_of(&[
                    E::File("app/l/.wh.victim", b""),
                    E::File("app/l/sub/.wh..wh..opq", b""),
                    E::File("app/l/.wh.sub", b""),
                    E::File(&format!("{}/.wh.secret", host.trim_start_matches('/')), b""),
                ]),
            ]
        },
        "/app",
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

#[test]
fn hard_links_reach_only_the_images_own_files() {
    // Through a link to `/`, with `..`, and by the host path itself: the
    // image has no such file, so the build says which entry is wrong.
    for target in [
        "app/root/CANARY/secret",
        "../../../../CANARY/secret",
        "CANARY/secret",
    ] {
        let o = attack(
            "hard link out",
            |host| {
                let t = target.replace("CANARY", host.trim_start_matches('/'));
                vec![tar_of(&[
                    E::Dir("app/"),
                    E::Symlink("app/root", "/"),
                    E::Hard("app/stolen", &t),
                ])]
            },
            "/app",
        );
        assert_ne!(o.code, Some(0), "{}", o.stderr);
        assert!(
            o.stderr.contains("app/stolen") && o.stderr.contains("not a regular file"),
            "{}",
            o.stderr
        );
    }
}

#[test]
fn names_that_climb_land_inside_the_image() {
    if !have(&["umoci"]) {
        return;
    }
    let o = attack(
        "dot-dot names",
        |host| {
            let up = format!("../../../../..{host}/victim");
            vec![tar_of(&[
                E::Dir("app/"),
                E::File(&up, b"pwned\n"),
                E::File("app/../../app/ok", b"ok\n"),
            ])]
        },
        "/app",
    );
    let root = rootfs(&o);
    assert_eq!(fs::read_to_string(root.join("app/ok")).unwrap(), "ok\n");
}

/// `tar ARGS -C root -cf - app` with GNU tar: the layer other tools would write.
fn gnu_tar(root: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("tar")
        .args(args)
        .args(["--owner=0", "--group=0", "-C"])
        .arg(root)
        .args(["-cf", "-", "app"])
        .output()
        .unwrap();
    check(&Command::new("tar"), &out);
    out.stdout
}

/// What GNU tar extracts from `layer`, in a fresh directory.
fn gnu_extract(layer: &[u8], work: &Path) -> PathBuf {
    let dir = work.join("gnu-x");
    fs::create_dir_all(&dir).unwrap();
    let file = work.join("layer.tar");
    fs::write(&file, layer).unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-xf")
        .arg(&file));
    dir
}

/// Copy `/app` out of a one-layer image into a scratch image; its rootfs.
fn copied(layer: Vec<u8>, work: &Path) -> Result<PathBuf, String> {
    let image = layout_of(&work.join("image"), &[layer]);
    let spec = write_spec(
        &work.join("spec"),
        &format!(
            "[image]\nname = \"interop\"\nbase = \"scratch\"\n\n\
             [[copy]]\nimage = \"{image}\"\nsrc = \"/app\"\ndest = \"/app/\"\n"
        ),
    );
    let out = work.join("out");
    let built = kiln_build(
        &spec,
        &work.join("cache"),
        &["--no-check", "--oci", out.to_str().unwrap()],
    );
    if !built.status.success() {
        return Err(String::from_utf8_lossy(&built.stderr).into_owned());
    }
    Ok(unpack(&out, work).join("rootfs"))
}

#[test]
fn long_link_targets_read_as_gnu_tar_and_umoci_read_them() {
    if !have(&["umoci", "tar"]) {
        return;
    }
    let target = format!("/opt/{}/bin/tool", "long-name-".repeat(15));
    for format in ["--format=gnu", "--format=pax"] {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("root");
        fs::create_dir_all(root.join("app")).unwrap();
        std::os::unix::fs::symlink(&target, root.join("app/tool")).unwrap();
        let deep = format!("app/{}", "d".repeat(120));
        fs::create_dir_all(root.join(&deep)).unwrap();
        fs::write(root.join(&deep).join("f"), "deep\n").unwrap();
        let layer = gnu_tar(&root, &[format]);
        let gnu = gnu_extract(&layer, work.path());
        let rootfs = copied(layer, work.path()).unwrap();
        for tree in [&gnu, &rootfs] {
            assert_eq!(
                fs::read_link(tree.join("app/tool")).unwrap().to_str(),
                Some(target.as_str()),
                "{format}"
            );
            assert_eq!(
                fs::read_to_string(tree.join(&deep).join("f")).unwrap(),
                "deep\n"
            );
        }
    }
}

#[test]
fn a_size_only_in_a_pax_record_reads_as_gnu_tar_reads_it() {
    if !have(&["umoci", "tar"]) {
        return;
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    b.append_data(&mut h, "app/", &[][..]).unwrap();
    b.append_pax_extensions([("size", &b"11"[..])]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    h.as_ustar_mut().unwrap().name[..7].copy_from_slice(b"app/pax");
    h.set_cksum();
    let mut raw = b.into_inner().unwrap();
    raw.truncate(raw.len() - 1024); // the end-of-archive blocks
    raw.extend_from_slice(h.as_bytes());
    raw.extend_from_slice(b"eleven byte");
    raw.resize(raw.len() + 512 - 11 + 1024, 0);
    let work = tempfile::tempdir().unwrap();
    let gnu = gnu_extract(&raw, work.path());
    assert_eq!(
        fs::read_to_string(gnu.join("app/pax")).unwrap(),
        "eleven byte"
    );
    let rootfs = copied(raw, work.path()).unwrap();
    assert_eq!(
        fs::read_to_string(rootfs.join("app/pax")).unwrap(),
        "eleven byte"
    );
}

/// A 4 MiB file with data at both ends and a hole between.
fn sparse_file(path: &Path) -> Vec<u8> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::File::create(path).unwrap();
    f.write_all(b"head").unwrap();
    f.seek(SeekFrom::Start(3 << 20)).unwrap();
    f.write_all(b"tail").unwrap();
    f.set_len(4 << 20).unwrap();
    fs::read(path).unwrap()
}

#[test]
fn gnu_sparse_files_are_read_whole_and_pax_sparse_files_refused() {
    if !have(&["umoci", "tar"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(root.join("app")).unwrap();
    let bytes = sparse_file(&root.join("app/sparse"));

    let layer = gnu_tar(&root, &["--format=gnu", "--sparse"]);
    assert!(
        tar_types(&layer).contains(&b'S'),
        "GNU tar wrote no sparse entry"
    );
    let w = work.path().join("gnu");
    let rootfs = copied(layer, &w).unwrap();
    assert!(fs::read(rootfs.join("app/sparse")).unwrap() == bytes);

    let layer = gnu_tar(&root, &["--format=pax", "--sparse"]);
    let err = copied(layer, &work.path().join("pax")).unwrap_err();
    assert!(err.contains("PAX sparse file"), "{err}");
}

/// The type flag of every header in an uncompressed tar.
fn tar_types(layer: &[u8]) -> Vec<u8> {
    let mut archive = tar::Archive::new(layer);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().entry_type().as_byte())
        .collect()
}

#[test]
fn files_over_8_gib_show_their_size() {
    if !have(&["tar"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(root.join("app")).unwrap();
    let big = 9u64 << 30;
    fs::File::create(root.join("app/big"))
        .unwrap()
        .set_len(big)
        .unwrap();
    let layer = gnu_tar(&root, &["--format=gnu", "--sparse"]);
    let listed = String::from_utf8(
        Command::new("tar")
            .args(["-tvf", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(&layer)?;
                c.wait_with_output()
            })
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(listed.contains(&big.to_string()), "{listed}");
    let image = layout_of(&work.path().join("image"), &[layer]);
    let files = inspect_files(&image);
    let entry = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/app/big")
        .unwrap_or_else(|| panic!("{files}"));
    assert_eq!(entry["size"], big);
}

#[test]
fn a_hard_linked_passwd_in_a_base_is_read_from_its_target() {
    if !have(&["umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let passwd = "root:x:0:0:root:/root:/bin/sh\nops:x:900:900::/home/ops:/bin/sh\n";
    let base = layout_of(
        &w.join("base"),
        &[tar_of(&[
            E::Dir("etc/"),
            E::File("etc/passwd-", passwd.as_bytes()),
            E::Hard("etc/passwd", "etc/passwd-"),
            E::File("etc/group", b"root:x:0:\nops:x:900:\n"),
        ])],
    );
    let files = inspect_files(&base);
    let entry = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/passwd")
        .unwrap_or_else(|| panic!("{files}"))
        .clone();
    assert_eq!(entry["size"], passwd.len());
    let spec = write_spec(
        &w.join("spec"),
        &format!(
            "[image]\nname = \"linked\"\nbase = \"{base}\"\n\n\
             [user]\nname = \"app\"\nuid = 10001\n"
        ),
    );
    let out = w.join("out");
    let built = kiln_build(
        &spec,
        &w.join("cache"),
        &["--no-check", "--oci", out.to_str().unwrap()],
    );
    check(&kiln(), &built);
    let rootfs = unpack(&out, w).join("rootfs");
    let written = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(written.starts_with(passwd), "{written}");
    assert!(written.contains("app:x:10001:10001:"), "{written}");
}
