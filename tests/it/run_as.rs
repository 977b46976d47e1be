//! `kiln check` (and so `kiln build`) judges the uid and gid the runtime
//! will use, not how `User` is spelled: `+0`, `-0` and `00` are root, and
//! so is a name the base's /etc/passwd maps to 0 (`toor:x:0:0`, or a uid
//! field runc reads as 0). A name the image lacks is an error, since runc
//! would refuse to start it. Two tests run the images, with podman and with
//! umoci + runc, and compare kiln's verdict with `id`.

use std::path::Path;

use std::process::Command;

use serde_json::{Value, json};

use crate::common::handmade::{self, dir, file};
use crate::common::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    toor:x:0:0::/root:/bin/sh\n\
    weird:x:abc:2000::/:/bin/sh\n\
    member:x:3000:3000::/:/bin/sh\n\
    nobody:x:65534:65534::/:/sbin/nologin\n";
const GROUP: &str = "root:x:0:member\nwheel:x:00:\nmember:x:3000:\nnogroup:x:65534:\n";

/// A base with those accounts (and a static busybox when `busybox`), as
/// an OCI layout in `work/base`.
fn base(work: &Path, user: Option<&str>, busybox: bool) {
    let bytes = busybox.then(|| std::fs::read(crate::common::busybox()).unwrap());
    let mut entries = vec![
        dir("etc"),
        file("etc/passwd", PASSWD.as_bytes()),
        file("etc/group", GROUP.as_bytes()),
        dir("bin"),
    ];
    if let Some(b) = &bytes {
        entries.push(handmade::Entry {
            path: "bin/busybox",
            kind: handmade::Kind::File(b, 0o755),
            uid: 0,
            gid: 0,
        });
    }
    let config = json!({ "config": { "User": user.unwrap_or("") } });
    handmade::layout(&work.join("base"), "v1", &entries, config, json!({}));
}

/// A spec on that base with an app user and `[config] user = USER`.
fn spec(work: &Path, user: Option<&str>) -> std::path::PathBuf {
    let config = user.map_or(String::new(), |u| format!("[config]\nuser = \"{u}\"\n"));
    write_spec(
        &work.join("spec"),
        &format!(
            "[image]\nname = \"runas\"\nbase = \"oci:../base:v1\"\n[user]\nname = \"app\"\nuid = 10001\n{config}"
        ),
    )
}

/// `kiln check --format json`: (id, message) of each finding.
fn findings(spec: &Path) -> Vec<(String, String)> {
    let (code, list) = check_json(spec);
    assert!(matches!(code, Some(0 | 1)), "kiln check exited {code:?}");
    list.iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(found: &[(String, String)], id: &str) -> bool {
    found.iter().any(|(i, _)| i == id)
}

#[test]
fn every_spelling_of_root_is_root() {
    let work = tempfile::tempdir().unwrap();
    base(work.path(), None, false);
    for (user, says) in [
        ("+0", "runtimes read `+0` as uid 0"),
        ("-0", "runtimes read `-0` as uid 0"),
        ("00:00", "runtimes read `00` as uid 0"),
        ("+0:10001", "as uid 0"),
        ("toor", "the image's /etc/passwd gives `toor` uid 0"),
        ("toor:app", "gives `toor` uid 0"),
        ("weird", "the image's /etc/passwd gives `weird` uid 0"),
        ("root:app", "the image runs as user `root:app`"),
    ] {
        let found = findings(&spec(work.path(), Some(user)));
        let root: Vec<&String> = found
            .iter()
            .filter(|(id, _)| id == "KILN-ROOT-USER")
            .map(|(_, m)| m)
            .collect();
        assert!(
            root.len() == 1 && root[0].contains(says),
            "{user}: {found:?}"
        );
    }
}

#[test]
fn the_bases_user_is_judged_the_same_way() {
    let work = tempfile::tempdir().unwrap();
    base(work.path(), Some("toor"), false);
    // No [user], no [config] user: the image keeps the base's User.
    let spec = write_spec(
        &work.path().join("spec"),
        "[image]\nname = \"runas\"\nbase = \"oci:../base:v1\"\n",
    );
    let found = findings(&spec);
    assert!(
        found
            .iter()
            .any(|(id, m)| id == "KILN-ROOT-USER" && m.contains("`toor` uid 0")),
        "{found:?}"
    );
}

#[test]
fn inspect_shows_the_uid_a_name_hides() {
    let work = tempfile::tempdir().unwrap();
    for (user, row) in [
        ("weird", "User         weird (weird:2000: no name, uid 0)\n"),
        ("toor:wheel", "User         toor:wheel (toor:root, uid 0)\n"),
        ("member", "User         member (member:member)\n"),
        ("-0:wheel", "User         -0:wheel (root:root, uid 0)\n"),
        (
            "ghost",
            "User         ghost (cannot start: `ghost` is not a user",
        ),
    ] {
        let _ = std::fs::remove_dir_all(work.path().join("base"));
        base(work.path(), Some(user), false);
        let image = format!("oci:{}:v1", work.path().join("base").display());
        let text = run(kiln().args(["inspect", &image, "--files"]));
        assert!(text.contains(row), "{user}: {text}");
    }
}

#[test]
fn root_group_and_unknown_names_are_flagged() {
    let work = tempfile::tempdir().unwrap();
    base(work.path(), None, false);
    for (user, id, says) in [
        (
            "app:root",
            "KILN-ROOT-GROUP",
            "runs as uid 10001 with gid 0",
        ),
        ("app:wheel", "KILN-ROOT-GROUP", "with gid 0"),
        ("10001:-0", "KILN-ROOT-GROUP", "with gid 0"),
        ("20000", "KILN-ROOT-GROUP", "runs as uid 20000 with gid 0"),
        ("member", "KILN-ROOT-GROUP", "lists `member` in it"),
        (
            "ghost",
            "KILN-USER-UNKNOWN",
            "`ghost` is not a user in the image's /etc/passwd",
        ),
        ("app:ghosts", "KILN-USER-UNKNOWN", "`ghosts` is not a group"),
        ("0x0", "KILN-USER-UNKNOWN", "`0x0` is not a user"),
        (
            "+10001",
            "KILN-USER-NOT-NUMERIC",
            "runc reads it as 10001:10001",
        ),
    ] {
        let found = findings(&spec(work.path(), Some(user)));
        assert!(
            found.iter().any(|(i, m)| i == id && m.contains(says)),
            "{user}: {found:?}"
        );
        assert!(!has(&found, "KILN-ROOT-USER"), "{user}: {found:?}");
    }
    // The plain forms pass all three rules.
    for user in ["10001:10001", "10001", "app", "app:app", "app:"] {
        let found = findings(&spec(work.path(), Some(user)));
        for id in ["KILN-ROOT-USER", "KILN-ROOT-GROUP", "KILN-USER-UNKNOWN"] {
            assert!(!has(&found, id), "{user}: {found:?}");
        }
    }
}

#[test]
fn build_refuses_a_disguised_root() {
    let work = tempfile::tempdir().unwrap();
    base(work.path(), None, false);
    let out = work.path().join("out");
    for user in ["+0", "toor"] {
        let (code, stderr) = build_fails(
            &spec(work.path(), Some(user)),
            &["--oci", out.to_str().unwrap()],
        );
        // A failed check: exit 1, as `kiln check` gives for it.
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("KILN-ROOT-USER"), "{stderr}");
        assert!(stderr.contains(&format!("user `{user}`")), "{stderr}");
    }
    assert!(!out.exists());
}

/// `id -u`, `id -g` and `id -G` in the image as podman runs it.
fn podman_ids(podman: &Podman, tar: &Path) -> (String, String, String) {
    let loaded = run(podman.cmd().args(["load", "-q", "-i"]).arg(tar));
    let image = loaded.trim().rsplit(' ').next().unwrap().to_string();
    let id = |flag: &str| {
        run(podman.cmd().args([
            "run",
            "--rm",
            "--network",
            "none",
            &image,
            "/bin/busybox",
            "id",
            flag,
        ]))
        .trim()
        .to_string()
    };
    (id("-u"), id("-g"), id("-G"))
}

#[test]
fn kilns_verdict_matches_what_podman_runs() {
    if !have(&["podman", "runc"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    base(work.path(), None, true);
    let podman = Podman::new();
    for user in ["toor", "weird", "+0", "app:wheel", "member", "app", "20000"] {
        let spec = spec(work.path(), Some(user));
        let found = findings(&spec);
        let tar = work.path().join("image.tar");
        let _ = std::fs::remove_file(&tar);
        run(kiln()
            .arg("build")
            .arg(&spec)
            .arg("--no-check")
            .arg("--tar")
            .arg(&tar)
            .arg("--cache-dir")
            .arg(work.path().join("cache")));
        let (uid, gid, groups) = podman_ids(&podman, &tar);
        let in_root_group = gid == "0" || groups.split(' ').any(|g| g == "0");
        assert_eq!(
            has(&found, "KILN-ROOT-USER"),
            uid == "0",
            "{user}: podman uid {uid}, kiln {found:?}"
        );
        assert_eq!(
            has(&found, "KILN-ROOT-GROUP") || (uid == "0" && in_root_group),
            in_root_group,
            "{user}: podman gid {gid} groups {groups}, kiln {found:?}"
        );
    }
}

/// `id -u` in the image as `umoci unpack` + `runc run` run it, and the uid
/// umoci wrote into the bundle's config.json.
fn runc_uid(layout: &Path, work: &Path, name: &str) -> (String, i64) {
    let bundle = work.join(format!("bundle-{name}"));
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    let path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let process = &mut config["process"];
    let written = process["user"]["uid"].as_i64().unwrap();
    process.as_object_mut().unwrap().remove("rlimits");
    process["terminal"] = json!(false);
    process["args"] = json!(["/bin/busybox", "id", "-u"]);
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = format!("kiln-runas-{}-{name}", std::process::id());
    let out = run(Command::new("runc")
        .arg("--root")
        .arg(work.join("runc"))
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(&id));
    (out.trim().to_string(), written)
}

#[test]
fn kilns_verdict_matches_what_runc_runs() {
    if !have(&["umoci", "runc"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    base(work.path(), None, true);
    for (i, user) in ["+0", "toor", "weird", "app", "-0:app"].iter().enumerate() {
        let spec = spec(work.path(), Some(user));
        // umoci 0.4.7 reads OCI media types only.
        let text = std::fs::read_to_string(&spec).unwrap();
        std::fs::write(
            &spec,
            text.replace("[image]\n", "[image]\nformat = \"oci\"\n"),
        )
        .unwrap();
        let found = findings(&spec);
        let layout = work.path().join(format!("layout-{i}"));
        run(kiln()
            .arg("build")
            .arg(&spec)
            .arg("--no-check")
            .arg("--oci")
            .arg(&layout)
            .arg("--cache-dir")
            .arg(work.path().join("cache")));
        let (uid, written) = runc_uid(&layout, work.path(), &i.to_string());
        assert_eq!(uid, written.to_string(), "{user}: umoci and runc differ");
        assert_eq!(
            has(&found, "KILN-ROOT-USER"),
            uid == "0",
            "{user}: runc uid {uid}, kiln {found:?}"
        );
    }
}
