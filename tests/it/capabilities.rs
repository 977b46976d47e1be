//! File capabilities (`capabilities = [...]` on `[[copy]]` and `[[file]]`)
//! as the `security.capability` xattr, read back by getcap after `umoci
//! unpack` and used by a non-root user in podman to bind port 80; and
//! local sources that are one inode stored as a tar hard link.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::handmade::{self, dir, link};
use crate::common::*;

/// A base with a static busybox as /bin/busybox and /bin/sh, as `work/base`.
fn base(work: &Path) {
    let busybox = fs::read(busybox()).unwrap();
    let entries = vec![
        dir("bin"),
        handmade::Entry {
            path: "bin/busybox",
            kind: handmade::Kind::File(&busybox, 0o755),
            uid: 0,
            gid: 0,
        },
        link("bin/sh", "busybox"),
    ];
    handmade::layout(&work.join("base"), "v1", &entries, json!({}), json!({}));
}

/// A spec that copies busybox to /app/busybox with CAP_NET_BIND_SERVICE,
/// and an inline /app/ping.sh with cap_net_raw.
fn spec(work: &Path) -> std::path::PathBuf {
    base(work);
    let dir = work.join("spec");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(busybox(), dir.join("busybox")).unwrap();
    write_spec(
        &dir,
        "[image]\nname = \"caps\"\nbase = \"oci:../base:v1\"\nformat = \"oci\"\n\
         [user]\nname = \"app\"\nuid = 10001\n\
         [healthcheck]\ntest = [\"NONE\"]\n\
         [[copy]]\nsrc = \"busybox\"\ndest = \"/app/busybox\"\n\
         capabilities = [\"CAP_NET_BIND_SERVICE\"]\n\
         [[file]]\npath = \"/app/ping.sh\"\ncontent = \"#!/bin/sh\\n\"\nmode = 0o755\n\
         capabilities = [\"net_raw\"]\n",
    )
}

#[test]
fn getcap_reads_the_capabilities_after_umoci_unpack() {
    if !have(&["umoci", "skopeo", "getcap"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let layout = work.path().join("out");
    build(&spec, &["--oci", layout.to_str().unwrap()]);
    let root = unpack(&layout, &work.path().join("unpacked")).join("rootfs");
    let getcap = |p: &str| {
        let out = run(Command::new("getcap").arg(root.join(p)));
        out.trim().rsplit(' ').next().unwrap_or("").to_string()
    };
    assert_eq!(getcap("app/busybox"), "cap_net_bind_service=ep");
    assert_eq!(getcap("app/ping.sh"), "cap_net_raw=ep");
    assert_eq!(getcap("bin/busybox"), "", "the base's file has none");
}

#[test]
fn a_non_root_user_binds_port_80_with_the_capability_in_podman() {
    if !have(&["podman", "runc"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let tar = work.path().join("caps.tar");
    build(&spec, &["--tar", tar.to_str().unwrap()]);
    let podman = Podman::new();
    podman.run(&["load", "-q", "-i", tar.to_str().unwrap()]);
    // Ports below 1024 privileged again, whatever the runtime's default.
    let bind = |program: &str| {
        let script = format!("{program} httpd -p 80 -h /app && echo bound");
        podman
            .cmd()
            .args(["run", "--rm", "--network", "none", "--user", "10001:10001"])
            .args(["--sysctl", "net.ipv4.ip_unprivileged_port_start=1024"])
            .args(["--entrypoint", "/bin/sh", "caps:latest", "-c", &script])
            .output()
            .unwrap()
    };
    let with = bind("/app/busybox");
    assert_eq!(
        String::from_utf8_lossy(&with.stdout).trim(),
        "bound",
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let without = bind("/bin/busybox");
    assert!(!without.status.success(), "port 80 is privileged here");
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
}

#[test]
fn one_inode_is_one_file_and_a_hard_link() {
    if !have(&["tar", "umoci", "skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("spec");
    // `z` is made first; `a` sorts first, so `a` is the file and `z` the link.
    write_files(
        &dir.join("app"),
        &[("z", "same bytes"), ("other", "same bytes")],
    );
    fs::hard_link(dir.join("app/z"), dir.join("app/a")).unwrap();
    let spec = write_spec(
        &dir,
        "[image]\nname = \"links\"\nformat = \"oci\"\n[user]\nname = \"app\"\nuid = 10001\n\
         [[copy]]\nsrc = \"app/\"\ndest = \"/app/\"\n",
    );
    let layout = work.path().join("out");
    let first = build(&spec, &["--oci", layout.to_str().unwrap()]);
    let manifest = layout_manifest(&layout);
    let layers = manifest["layers"].as_array().unwrap();
    let blob = layout_blob(&layout, &layers.last().unwrap()["digest"]);
    let listing = run(Command::new("tar").arg("-tvzf").arg(&blob));
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 4, "{listing}");
    assert!(
        lines[1].starts_with("-rw-r--r--") && lines[1].ends_with(" app/a"),
        "{listing}"
    );
    assert!(lines[2].ends_with(" app/other"), "{listing}");
    assert!(lines[3].starts_with("hrw-r--r--"), "{listing}");
    assert!(lines[3].ends_with(" app/z link to app/a"), "{listing}");

    let root = unpack(&layout, &work.path().join("unpacked")).join("rootfs");
    let ino = |p: &str| run(Command::new("stat").args(["-c", "%i %h"]).arg(root.join(p)));
    assert_eq!(ino("app/a"), ino("app/z"));
    assert_eq!(ino("app/a").split_whitespace().nth(1), Some("2"));
    assert_ne!(ino("app/a"), ino("app/other"));

    // The same tree, in a fresh copy: the same digest.
    let again = work.path().join("again");
    fs::create_dir_all(again.join("app")).unwrap();
    fs::copy(&spec, again.join("kiln.toml")).unwrap();
    for name in ["other", "z"] {
        fs::copy(dir.join("app").join(name), again.join("app").join(name)).unwrap();
    }
    fs::hard_link(again.join("app/z"), again.join("app/a")).unwrap();
    let second = build(
        &again.join("kiln.toml"),
        &["--oci", work.path().join("out2").to_str().unwrap()],
    );
    assert_eq!(first, second);
}

#[test]
fn one_inode_with_two_owners_is_stored_twice() {
    if !have(&["tar"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("spec");
    write_files(&dir.join("app"), &[("a", "bytes")]);
    fs::hard_link(dir.join("app/a"), dir.join("app/b")).unwrap();
    // One layer, two copies: a tar hard link would give `b` the owner of `a`.
    let spec = write_spec(
        &dir,
        "[image]\nname = \"links\"\nformat = \"oci\"\n[user]\nname = \"app\"\nuid = 10001\n\
         [[copy]]\nsrc = \"app/a\"\ndest = \"/x/a\"\nlayer = \"l\"\n\
         [[copy]]\nsrc = \"app/b\"\ndest = \"/x/b\"\nowner = \"app\"\nlayer = \"l\"\n",
    );
    let layout = work.path().join("out");
    build(&spec, &["--oci", layout.to_str().unwrap()]);
    let manifest = layout_manifest(&layout);
    let layers = manifest["layers"].as_array().unwrap();
    let blob = layout_blob(&layout, &layers.last().unwrap()["digest"]);
    let listing = run(Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(&blob));
    let kinds: Vec<(char, &str)> = listing
        .lines()
        .map(|l| {
            (
                l.chars().next().unwrap(),
                l.split_whitespace().nth(1).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [('d', "0/0"), ('-', "0/0"), ('-', "10001/10001")],
        "{listing}"
    );
}
