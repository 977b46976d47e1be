//! The classic archive-breakout cases, as source trees: links to /, link
//! chains leaving the tree, absolute links, `..` targets, a hard link to a
//! file outside. Links are stored as links and never followed; following
//! them is opt-in and stops at the spec's directory. Setuid bits go unless
//! the spec asks for them; long names read alike in GNU tar and umoci.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// The layer blob of the image's only new layer (the last one).
fn last_layer(layout: &Path) -> std::path::PathBuf {
    let manifest = layout_manifest(layout);
    let layers = manifest["layers"].as_array().unwrap();
    layout_blob(layout, &layers[layers.len() - 1]["digest"])
}

fn hostile_tree(spec_dir: &Path, outside: &Path) {
    let t = spec_dir.join("tree");
    fs::create_dir_all(t.join("sub")).unwrap();
    fs::write(outside.join("secret"), "outside secret\n").unwrap();
    symlink("/", t.join("root")).unwrap();
    symlink("/etc/shadow", t.join("abs")).unwrap();
    symlink("chain2", t.join("chain1")).unwrap();
    symlink(outside.join("secret"), t.join("chain2")).unwrap();
    symlink("../../../../..", t.join("sub/up")).unwrap();
    // With fs.protected_hardlinks a hard link can only be made to a file its
    // maker may read, and git cannot carry one: it is copied as a plain file.
    fs::hard_link(outside.join("secret"), t.join("hardlink")).unwrap();
    fs::write(t.join("setuid"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(t.join("setuid"), fs::Permissions::from_mode(0o6755)).unwrap();
    let long = "n".repeat(150);
    fs::write(t.join(&long), "long\n").unwrap();
    symlink(format!("/{}", "t".repeat(120)), t.join("longlink")).unwrap();
}

#[test]
fn links_are_stored_not_followed_and_read_alike_by_gnu_tar_and_umoci() {
    if !have(&["tar", "skopeo", "umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec_dir = work.path().join("spec");
    let outside = work.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&spec_dir).unwrap();
    hostile_tree(&spec_dir, &outside);
    fs::write(
        spec_dir.join("kiln.toml"),
        "[[copy]]\nsrc = \"tree/\"\ndest = \"/app/\"\n[policy]\nenforce = false\n",
    )
    .unwrap();
    let layout = work.path().join("out");
    build(
        &spec_dir.join("kiln.toml"),
        &["--oci", layout.to_str().unwrap()],
    );

    // GNU tar's view of the layer.
    let listing = run(Command::new("tar").arg("-tvzf").arg(last_layer(&layout)));
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{listing}"))
            .to_string()
    };
    assert!(line("app/root ").ends_with("app/root -> /"), "{listing}");
    assert!(line("app/abs ").ends_with("-> /etc/shadow"));
    assert!(line("app/chain1 ").ends_with("-> chain2"));
    assert!(line("app/sub/up ").ends_with("-> ../../../../.."));
    assert!(
        line("app/setuid").starts_with("-rwxr-xr-x "),
        "setuid kept: {}",
        line("app/setuid")
    );
    assert!(
        line("app/hardlink").starts_with("-rw-r--r-- "),
        "{}",
        line("app/hardlink")
    );
    assert!(
        listing.contains(&format!("app/{}", "n".repeat(150))),
        "long name lost:\n{listing}"
    );
    assert!(line("app/longlink").ends_with(&format!("-> /{}", "t".repeat(120))));
    assert!(!listing.contains(" h"), "no hard-link entries:\n{listing}");

    // umoci (Go's archive/tar) agrees, and nothing outside the tree came in.
    let bundle = unpack(&layout, work.path());
    let app = bundle.join("rootfs/app");
    assert_eq!(fs::read_link(app.join("root")).unwrap().to_str(), Some("/"));
    assert_eq!(
        fs::read_link(app.join("chain2")).unwrap(),
        outside.join("secret")
    );
    assert_eq!(
        fs::read_to_string(app.join("n".repeat(150))).unwrap(),
        "long\n"
    );
    assert_eq!(stat(&app.join("setuid")), "0:0 755");
    assert_eq!(
        fs::read_to_string(app.join("hardlink")).unwrap(),
        "outside secret\n"
    );

    // kiln reads its own long names back (the tar crate) when the image is a base.
    let next = work.path().join("next");
    fs::create_dir_all(&next).unwrap();
    fs::write(next.join("x"), "x").unwrap();
    fs::write(
        next.join("kiln.toml"),
        format!(
            "[image]\nbase = \"oci:{}\"\n[[copy]]\nsrc = \"x\"\ndest = \"/x\"\n[policy]\nenforce = false\n",
            layout.display()
        ),
    )
    .unwrap();
    build(
        &next.join("kiln.toml"),
        &["--oci", work.path().join("out2").to_str().unwrap()],
    );
}

#[test]
fn following_links_is_opt_in_and_stays_inside_the_spec_directory() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    fs::create_dir_all(d.join("tree/real")).unwrap();
    fs::write(d.join("tree/real/file.txt"), "inside\n").unwrap();
    symlink("real/file.txt", d.join("tree/link.txt")).unwrap();
    symlink("real", d.join("tree/dirlink")).unwrap();
    let spec = "[[copy]]\nsrc = \"tree/\"\ndest = \"/app/\"\nfollow-symlinks = true\nmode = 0o4755\n[policy]\nenforce = false\n";
    fs::write(d.join("kiln.toml"), spec).unwrap();
    let layout = d.join("out");
    build(&d.join("kiln.toml"), &["--oci", layout.to_str().unwrap()]);
    let listing = run(Command::new("tar").arg("-tvzf").arg(last_layer(&layout)));
    assert!(
        listing.contains("-rwsr-xr-x 0/0               7 1970-01-01 00:00 app/link.txt"),
        "{listing}"
    );
    assert!(listing.contains("app/dirlink/file.txt"), "{listing}");

    // A link leaving the spec's directory, or a loop, is an error.
    symlink("/etc/hostname", d.join("tree/escape")).unwrap();
    let out = kiln()
        .arg("build")
        .arg(d.join("kiln.toml"))
        .arg("--oci")
        .arg(&layout)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tree/escape`: leads outside the spec's directory"),
        "{stderr}"
    );
    fs::remove_file(d.join("tree/escape")).unwrap();
    symlink("..", d.join("tree/real/loop")).unwrap();
    let out = kiln()
        .arg("build")
        .arg(d.join("kiln.toml"))
        .arg("--oci")
        .arg(&layout)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a symlink loop"), "{stderr}");
}
