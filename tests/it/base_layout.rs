//! Building on a base image in a local OCI layout made by another tool
//! (umoci): its account files are kept byte for byte, its whiteouts are
//! honoured, its directories keep their owners, and the result runs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// `umoci init` + `new`, then one `umoci insert` per layer: (source dir, target, extra flags).
/// The layout `work/base` (see `umoci_layers`), as a spec names it from `work`.
fn umoci_base(work: &Path, layers: &[(&Path, &str, &[&str])]) -> String {
    umoci_layers(&work.join("base"), "v1", layers);
    "oci:base:v1".to_string()
}

const SPEC: &str = r#"[image]
name = "on-base"
base = "BASE"
[user]
name = "app"
uid = 10001
home = "/home/app"
[[copy]]
src = "app.txt"
dest = "/opt/app/app.txt"
owner = "app:app"
[config]
entrypoint = ["/bin/busybox"]
cmd = ["id"]
"#;

#[test]
fn base_accounts_kept_byte_for_byte_and_owners_untouched() {
    if !have(&["umoci", "skopeo", "podman", "runc"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("r1");
    let passwd =
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin";
    write_files(
        &root,
        &[
            ("etc/passwd", passwd),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
            ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
            ("opt/.keep", ""),
        ],
    );
    fs::set_permissions(root.join("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    run(Command::new("chown")
        .arg("0:42")
        .arg(root.join("etc/shadow")));
    run(Command::new("chown").arg("1234:1234").arg(root.join("opt")));
    fs::set_permissions(root.join("opt"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    let base = umoci_base(w, &[(&root, "/", &[])]);

    fs::write(w.join("app.txt"), "hi").unwrap();
    fs::write(w.join("kiln.toml"), SPEC.replace("BASE", &base)).unwrap();
    let layout = w.join("out");
    let tar = w.join("out.tar");
    build(
        &w.join("kiln.toml"),
        &[
            "--oci",
            layout.to_str().unwrap(),
            "--tar",
            tar.to_str().unwrap(),
        ],
    );

    let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--raw"])
        .arg(format!("oci:{}", layout.display()))))
    .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        3,
        "one base layer + accounts + copy"
    );
    assert!(
        config["config"]["Labels"]["org.opencontainers.image.base.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.base.name"],
        "oci:base:v1"
    );

    let bundle = unpack(&layout, w);
    let r = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(r.join("etc/passwd")).unwrap(),
        format!("{passwd}\napp:x:10001:10001::/home/app:/sbin/nologin\n")
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/group")).unwrap(),
        "root:x:0:\nnogroup:x:65534:\napp:x:10001:\n"
    );
    let shadow = fs::read_to_string(r.join("etc/shadow")).unwrap();
    assert!(
        shadow.starts_with("root:*:19000:0:99999:7:::\napp:!::0:99999:7:::\n"),
        "{shadow}"
    );
    assert_eq!(stat(&r.join("etc/shadow")), "0:42 640");
    assert_eq!(
        stat(&r.join("opt")),
        "1234:1234 700",
        "the base's /opt was clobbered"
    );
    assert_eq!(stat(&r.join("opt/app")), "0:0 755");
    assert_eq!(stat(&r.join("opt/app/app.txt")), "10001:10001 644");

    let podman = Podman::new();
    podman.run(&["load", "-q", "-i", tar.to_str().unwrap()]);
    let id = podman.run(&["run", "--rm", "--network", "none", "on-base:latest"]);
    assert_eq!(id.trim(), "uid=10001(app) gid=10001(app) groups=10001(app)");
}

#[test]
fn whiteouts_and_opaque_dirs_in_the_base_are_honoured() {
    if !have(&["umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // Layer 1 has an `app` that would conflict; layer 2 deletes /etc/passwd;
    // layer 3 replaces /etc opaquely with a group file that has no `app`.
    let l1 = w.join("l1");
    write_files(
        &l1,
        &[
            ("etc/passwd", "app:x:5000:5000::/:/bin/sh\n"),
            ("etc/group", "app:x:5000:\n"),
        ],
    );
    let l3 = w.join("l3");
    write_files(&l3, &[("group", "root:x:0:\n")]);
    let base = umoci_base(
        w,
        &[
            (&l1, "/", &[]),
            (w, "/etc/passwd", &["--whiteout"]),
            (&l3, "/etc", &["--opaque"]),
        ],
    );
    fs::write(w.join("app.txt"), "hi").unwrap();
    fs::write(w.join("kiln.toml"), SPEC.replace("BASE", &base)).unwrap();
    let layout = w.join("out");
    // This base has no busybox to run: only its files are looked at.
    let out = layout.to_str().unwrap();
    build(&w.join("kiln.toml"), &["--oci", out, "--no-check"]);
    let bundle = unpack(&layout, w);
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001::/home/app:/sbin/nologin\n"
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/etc/group")).unwrap(),
        "root:x:0:\napp:x:10001:\n"
    );
}

#[test]
fn conflicting_base_user_and_wrong_platform_are_clear_errors() {
    if !have(&["umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let l1 = w.join("l1");
    write_files(
        &l1,
        &[(
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\nweb:x:10001:10001::/:/bin/sh\n",
        )],
    );
    let base = umoci_base(w, &[(&l1, "/", &[])]);
    fs::write(w.join("app.txt"), "hi").unwrap();
    fs::write(w.join("kiln.toml"), SPEC.replace("BASE", &base)).unwrap();
    let out = kiln()
        .arg("build")
        .arg(w.join("kiln.toml"))
        .arg("--oci")
        .arg(w.join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("user `app` (10001) conflicts with the base's /etc/passwd line `web:x:10001:10001::/:/bin/sh`"), "{stderr}");
    assert!(!w.join("out").exists());

    let arm = SPEC
        .replace("BASE", &base)
        .replace("[user]", "platform = \"linux/arm64\"\n[user]");
    fs::write(w.join("kiln.toml"), arm).unwrap();
    let out = kiln()
        .arg("build")
        .arg(w.join("kiln.toml"))
        .arg("--oci")
        .arg(w.join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is linux/amd64, but the build is for linux/arm64")
    );
}
