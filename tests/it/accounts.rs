//! The app user as `useradd -m` leaves it, checked by the tools that read
//! account files: `su` in podman, `chage` (a 0 last-change day means the
//! password must be changed, and PAM's su refuses), `grpck` on the image's
//! /etc/group and /etc/gshadow, and the base's /etc/skel in the home with
//! the user's ownership after `umoci unpack`.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::handmade::{self, dir, file, link};
use crate::common::*;

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/sbin/nologin\n";
const SHADOW: &str = "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n";
const GROUP: &str = "root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n";
const GSHADOW: &str = "root:*::\nshadow:*::\nnogroup:*::\n";

/// A base with the four account files, /etc/skel and a static busybox
/// (`su`, `id`, `sh` linked to it), as `work/base`.
fn base(work: &Path) {
    let busybox = std::fs::read(busybox()).unwrap();
    let entries = vec![
        dir("etc"),
        file("etc/passwd", PASSWD.as_bytes()),
        file("etc/shadow", SHADOW.as_bytes()),
        file("etc/group", GROUP.as_bytes()),
        file("etc/gshadow", GSHADOW.as_bytes()),
        dir("etc/skel"),
        file("etc/skel/.profile", b"export EDITOR=vi\n"),
        dir("etc/skel/.config"),
        file("etc/skel/.config/app.conf", b"x=1\n"),
        link("etc/skel/.rc", ".profile"),
        dir("bin"),
        handmade::Entry {
            path: "bin/busybox",
            kind: handmade::Kind::File(&busybox, 0o755),
            uid: 0,
            gid: 0,
        },
        link("bin/sh", "busybox"),
        link("bin/su", "busybox"),
        link("bin/id", "busybox"),
    ];
    handmade::layout(&work.join("base"), "v1", &entries, json!({}), json!({}));
}

fn spec(work: &Path) -> std::path::PathBuf {
    base(work);
    write_spec(
        &work.join("spec"),
        "[image]\nname = \"accounts\"\nbase = \"oci:../base:v1\"\nformat = \"oci\"\n\
         [user]\nname = \"app\"\nuid = 10001\nhome = \"/home/app\"\nskel = true\n\
         [healthcheck]\ntest = [\"NONE\"]\n",
    )
}

/// SOURCE_DATE_EPOCH unset, so `created` is 1970-01-01 (day 0).
fn build_unset(spec: &Path, extra: &[&str]) {
    let out = kiln()
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("build")
        .arg(spec)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn su_to_the_app_user_works_in_podman() {
    if !have(&["podman", "runc"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let tar = work.path().join("accounts.tar");
    build_unset(&spec, &["--tar", tar.to_str().unwrap()]);
    let podman = Podman::new();
    podman.run(&["load", "-q", "-i", tar.to_str().unwrap()]);
    // Root in the container su's to app, as an operator debugging it would.
    let mut cmd = podman.cmd();
    cmd.args(["run", "--rm", "--network", "none", "--user", "0:0"])
        .args(["--entrypoint", "/bin/su", "accounts:latest"])
        .args(["app", "-s", "/bin/sh", "-c", "id"]);
    let id = run(&mut cmd);
    assert_eq!(id.trim(), "uid=10001(app) gid=10001(app) groups=10001(app)");
}

#[test]
fn shadow_and_gshadow_are_as_useradd_leaves_them_and_skel_is_copied() {
    if !have(&["umoci", "skopeo", "grpck", "chage"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let layout = work.path().join("out");
    build_unset(&spec, &["--oci", layout.to_str().unwrap()]);
    let root = unpack(&layout, &work.path().join("unpacked")).join("rootfs");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    // Base lines byte for byte, then the app's; lastchg empty, never 0.
    assert_eq!(read("etc/shadow"), format!("{SHADOW}app:!::0:99999:7:::\n"));
    assert_eq!(read("etc/gshadow"), format!("{GSHADOW}app:!::\n"));
    assert_eq!(read("etc/group"), format!("{GROUP}app:x:10001:\n"));
    let out = Command::new("grpck")
        .arg("-r")
        .arg(root.join("etc/group"))
        .arg(root.join("etc/gshadow"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grpck: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // shadow's own reading of the entry: no forced password change (which
    // PAM's su would enforce; busybox su above ignores aging).
    let chage = run(Command::new("chage")
        .arg("-R")
        .arg(&root)
        .args(["-l", "app"]));
    assert!(!chage.contains("must be changed"), "{chage}");
    assert!(
        chage.contains("Last password change\t\t\t\t\t: never"),
        "{chage}"
    );
    // /etc/skel in the home, owned by app, modes kept.
    assert_eq!(stat(&root.join("home/app")), "10001:10001 755");
    assert_eq!(stat(&root.join("home/app/.profile")), "10001:10001 644");
    assert_eq!(stat(&root.join("home/app/.config")), "10001:10001 755");
    assert_eq!(read("home/app/.config/app.conf"), "x=1\n");
    assert_eq!(
        std::fs::read_link(root.join("home/app/.rc")).unwrap(),
        Path::new(".profile")
    );
}

#[test]
fn with_a_created_date_shadow_gets_its_day_and_no_skel_without_asking() {
    if !have(&["umoci", "skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path());
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("skel = true\n", "")
        .replace(
            "format = \"oci\"\n",
            "format = \"oci\"\ncreated = \"2025-01-02T00:00:00Z\"\n",
        );
    std::fs::write(&spec, text).unwrap();
    let layout = work.path().join("out");
    build_unset(&spec, &["--oci", layout.to_str().unwrap()]);
    let root = unpack(&layout, &work.path().join("unpacked")).join("rootfs");
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    // 2025-01-02 is day 20090.
    assert!(shadow.ends_with("\napp:!:20090:0:99999:7:::\n"), "{shadow}");
    let home: Vec<_> = std::fs::read_dir(root.join("home/app")).unwrap().collect();
    assert!(home.is_empty(), "skel is off by default: {home:?}");
}
