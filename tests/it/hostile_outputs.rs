//! Outputs that are not plain files: `--tar` through a symlink, onto a FIFO,
//! a device or stdout; `--oci` onto a file, a link, or a directory that is
//! not a layout; an ignore file that leads out of the spec's directory.
//! Nothing kiln did not write is replaced, and no temp file is left.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

const SPEC: &str = "[image]\nname = \"hostile\"\n[[copy]]\nsrc = \"app/\"\ndest = \"/app/\"\n[policy]\nenforce = false\n";

/// A spec dir with a small app; returns the spec path.
fn spec(work: &Path) -> std::path::PathBuf {
    write_files(&work.join("spec/app"), &[("hello.txt", "hello\n")]);
    write_spec(&work.join("spec"), SPEC)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What `tar -t` lists in an archive given on stdin.
fn tar_list(bytes: &[u8]) -> String {
    let mut child = Command::new("tar")
        .arg("-t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = bytes.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_docker_archive(listing: &str) {
    assert!(listing.lines().any(|l| l == "manifest.json"), "{listing}");
    assert!(
        listing.lines().any(|l| l.starts_with("blobs/sha256/")),
        "{listing}"
    );
}

#[test]
fn tar_through_a_symlink_writes_its_target_and_nothing_beside_it() {
    if !have(&["tar"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let canary = work.path().join("canary");
    fs::create_dir(&canary).unwrap();
    fs::write(canary.join("target.tar"), "canary").unwrap();
    fs::write(canary.join("other"), "keep me").unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    symlink(canary.join("target.tar"), out.join("image.tar")).unwrap();

    build(&spec, &["--tar", out.join("image.tar").to_str().unwrap()]);
    assert!(
        fs::symlink_metadata(out.join("image.tar"))
            .unwrap()
            .is_symlink()
    );
    is_docker_archive(&tar_list(&fs::read(canary.join("target.tar")).unwrap()));
    assert_eq!(names(&canary), ["other", "target.tar"]);
    assert_eq!(fs::read_to_string(canary.join("other")).unwrap(), "keep me");
    assert_eq!(names(&out), ["image.tar"]);

    // A link to nothing: refused, and nothing is created where it points.
    symlink(canary.join("absent.tar"), out.join("dangling.tar")).unwrap();
    let stderr = build_refused(
        &spec,
        &["--tar", out.join("dangling.tar").to_str().unwrap()],
    );
    assert!(
        stderr.contains("dangling.tar`: is a symlink to"),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert_eq!(names(&canary), ["other", "target.tar"]);

    // A device stays a device.
    build(&spec, &["--tar", "/dev/null", "--digest-file", "/dev/null"]);
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn tar_to_stdout_is_read_by_tar_and_skopeo_and_stdout_holds_nothing_else() {
    if !have(&["tar", "skopeo", "sh"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let cache = work.path().join("cache");
    for target in ["-", "/dev/stdout"] {
        let out = kiln()
            .arg("build")
            .arg(&spec)
            .args(["--cache-dir", cache.to_str().unwrap(), "--tar", target])
            .current_dir(work.path())
            .output()
            .unwrap();
        check(&kiln(), &out);
        is_docker_archive(&tar_list(&out.stdout));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("built hostile:latest@sha256:"), "{stderr}");
    }
    // Into a file by the shell (skopeo cannot read a docker-archive from a pipe).
    for target in ["-", "/dev/stdout"] {
        let script = format!(
            "{} build {} --cache-dir {} --tar {target} > {}/image.tar",
            env!("CARGO_BIN_EXE_kiln"),
            spec.display(),
            cache.display(),
            work.path().display()
        );
        run(Command::new("sh").arg("-c").arg(&script));
        let archive = format!("docker-archive:{}/image.tar", work.path().display());
        let (json, _) = skopeo_json(&[&archive]);
        assert_eq!(json["Layers"].as_array().unwrap().len(), 1, "{json}");
    }
    assert_eq!(names(work.path()), ["cache", "image.tar", "spec"]);

    // The digest on stdout, alone.
    let out = run(kiln().arg("build").arg(&spec).args([
        "--cache-dir",
        cache.to_str().unwrap(),
        "--oci",
        work.path().join("layout").to_str().unwrap(),
        "--digest-file",
        "-",
    ]));
    let index = layout_index(&work.path().join("layout"));
    assert_eq!(
        out,
        format!("{}\n", index["manifests"][0]["digest"].as_str().unwrap())
    );

    // Two outputs cannot share stdout, nor one share it with JSON.
    let stderr = build_refused(&spec, &["--tar", "-", "--digest-file", "-"]);
    assert!(stderr.contains("both write to stdout"), "{stderr}");
    let stderr = build_refused(&spec, &["--tar", "-", "--format", "json"]);
    assert!(stderr.contains("--format json"), "{stderr}");
}

#[test]
fn tar_into_a_fifo_reaches_its_reader() {
    if !have(&["tar", "mkfifo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    let fifo = out.join("image.tar");
    run(Command::new("mkfifo").arg(&fifo));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            fs::File::open(&fifo)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            bytes
        })
    };
    build(&spec, &["--tar", fifo.to_str().unwrap()]);
    is_docker_archive(&tar_list(&reader.join().unwrap()));
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(names(&out), ["image.tar"]);
}

#[test]
fn oci_onto_what_is_not_a_layout_is_refused_and_left_alone() {
    if !have(&["skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let w = work.path();

    let file = w.join("notes.txt");
    fs::write(&file, "mine").unwrap();
    let stderr = build_refused(&spec, &["--oci", file.to_str().unwrap()]);
    assert!(
        stderr.contains("notes.txt`: is not a directory"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "mine");

    let photos = w.join("photos");
    fs::create_dir(&photos).unwrap();
    fs::write(photos.join("cat.jpg"), "meow").unwrap();
    let stderr = build_refused(&spec, &["--oci", photos.to_str().unwrap()]);
    assert!(stderr.contains("no oci-layout file"), "{stderr}");
    assert!(stderr.contains("name another --oci directory"), "{stderr}");
    assert_eq!(names(&photos), ["cat.jpg"]);

    // A link to a layout: the layout it names is replaced, the link stays.
    let real = w.join("real");
    build(&spec, &["--oci", real.to_str().unwrap()]);
    symlink(&real, w.join("link")).unwrap();
    fs::write(w.join("spec/app/more.txt"), "more").unwrap();
    let digest = build(&spec, &["--oci", w.join("link").to_str().unwrap()]);
    assert!(fs::symlink_metadata(w.join("link")).unwrap().is_symlink());
    assert_eq!(
        layout_index(&real)["manifests"][0]["digest"],
        digest.as_str()
    );
    let (json, _) = skopeo_json(&[&format!("oci:{}", real.display())]);
    assert_eq!(json["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(names(w), ["link", "notes.txt", "photos", "real", "spec"]);
}

#[test]
fn an_ignore_file_outside_the_spec_directory_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    spec(w);
    fs::write(w.join("outside.ignore"), "*.txt\n").unwrap();
    let text = SPEC.replace(
        "name = \"hostile\"\n",
        "name = \"hostile\"\nignore-file = \"../outside.ignore\"\n",
    );
    let spec = write_spec(&w.join("spec"), &text);
    let stderr = build_refused(&spec, &[]);
    assert!(stderr.contains("kiln.toml:3:"), "{stderr}");
    assert!(
        stderr.contains("ignore-file leads outside the spec's directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: keep the ignore file inside"),
        "{stderr}"
    );

    // Through a link inside the directory: the same.
    symlink(w.join("outside.ignore"), w.join("spec/linked.ignore")).unwrap();
    let spec = write_spec(
        &w.join("spec"),
        &text.replace("../outside.ignore", "linked.ignore"),
    );
    let stderr = build_refused(&spec, &[]);
    assert!(stderr.contains("ignore-file leads outside"), "{stderr}");

    // The .dockerignore read by default, as a link out.
    let spec = write_spec(&w.join("spec"), SPEC);
    symlink(w.join("outside.ignore"), w.join("spec/.dockerignore")).unwrap();
    let stderr = build_refused(&spec, &[]);
    assert!(
        stderr.contains(".dockerignore`: leads outside the spec's directory"),
        "{stderr}"
    );
}

#[test]
fn a_copy_from_a_damaged_image_leaves_nothing_that_breaks_the_next_build() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let source = w.join("source");
    build(&spec(w), &["--oci", source.to_str().unwrap()]);
    let layer = layout_blob(&source, &layout_manifest(&source)["layers"][0]["digest"]);
    let good = fs::read(&layer).unwrap();
    // Same size, one byte changed: only the digest check finds it.
    let mut bad = good.clone();
    let last = bad.len() - 9;
    bad[last] ^= 0xff;
    fs::write(&layer, &bad).unwrap();

    let copy = format!(
        "[[copy]]\nimage = \"oci:{}\"\nsrc = \"/app/hello.txt\"\ndest = \"/hello.txt\"\n[policy]\nenforce = false\n",
        source.display()
    );
    let spec = write_spec(&w.join("copy"), &copy);
    let cache = w.join("cache");
    let out = kiln_build(&spec, &cache, &["--oci", w.join("out").to_str().unwrap()]);
    assert!(!out.status.success());
    for sub in ["extract/picks", "extract/files"] {
        assert_eq!(names(&cache.join(sub)), Vec::<String>::new(), "{sub}");
    }

    fs::write(&layer, &good).unwrap();
    let out = kiln_build(&spec, &cache, &["--oci", w.join("out").to_str().unwrap()]);
    check(&kiln(), &out);
    assert_eq!(names(&cache.join("extract/picks")).len(), 1);
    assert_eq!(names(&cache.join("extract/files")).len(), 1);
}
