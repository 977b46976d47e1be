//! `[[copy]] mode = "preserve"`: the sources' permission bits go into the
//! layer (setuid and setgid off files), as GNU tar lists them; the bits are
//! an input, so the digest is stable and moves when a mode changes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A spec copying `app/` with mode = "preserve": a 0600 file, a 2775
/// directory holding a 0640 file, and a 4755 program.
fn fixture(dir: &Path) -> std::path::PathBuf {
    write_files(
        &dir.join("app"),
        &[("secret", "s"), ("shared/notes", "n"), ("suid", "x")],
    );
    chmod(&dir.join("app/secret"), 0o600);
    chmod(&dir.join("app/shared/notes"), 0o640);
    chmod(&dir.join("app/shared"), 0o2775);
    chmod(&dir.join("app/suid"), 0o4755);
    write_spec(
        dir,
        "[image]\nname = \"modes\"\nformat = \"oci\"\n\
         [user]\nname = \"app\"\nuid = 10001\n\
         [[copy]]\nsrc = \"app/\"\ndest = \"/app/\"\nmode = \"preserve\"\n",
    )
}

/// `tar -tv` of the layout's last layer (the copy's): (mode string, path) per entry.
fn listing(layout: &Path) -> Vec<(String, String)> {
    let manifest = layout_manifest(layout);
    let layers = manifest["layers"].as_array().unwrap();
    let blob = layout_blob(layout, &layers.last().unwrap()["digest"]);
    let out = run(Command::new("tar").arg("-tvzf").arg(blob));
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f.last().unwrap().to_string())
        })
        .collect()
}

#[test]
fn preserved_modes_reach_the_layer_without_setuid() {
    if !have(&["tar"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = fixture(work.path());
    let layout = work.path().join("out");
    build(&spec, &["--oci", layout.to_str().unwrap()]);
    let got = listing(&layout);
    let want = [
        ("drwxr-xr-x", "app/"),
        ("-rw-------", "app/secret"),
        ("drwxrwsr-x", "app/shared/"),
        ("-rw-r-----", "app/shared/notes"),
        ("-rwxr-xr-x", "app/suid"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn preserved_modes_are_inputs_of_the_digest_and_the_layer_cache() {
    let work = tempfile::tempdir().unwrap();
    let spec = fixture(work.path());
    let cache = work.path().join("cache");
    let out = |n: &str| work.path().join(n).to_str().unwrap().to_string();
    let cache_dir = ["--cache-dir", cache.to_str().unwrap()];
    let first = build(&spec, &[&["--oci", &out("a")][..], &cache_dir].concat());
    let again = build(&spec, &[&["--oci", &out("b")][..], &cache_dir].concat());
    assert_eq!(first, again);
    chmod(&work.path().join("app/secret"), 0o640);
    let changed = build(&spec, &[&["--oci", &out("c")][..], &cache_dir].concat());
    assert_ne!(first, changed, "a source mode changed, so must the image");
    chmod(&work.path().join("app/secret"), 0o600);
    let back = build(&spec, &[&["--oci", &out("d")][..], &cache_dir].concat());
    assert_eq!(first, back);
    // Without "preserve", the same sources give kiln's defaults: 0644/0755.
    let plain = fs::read_to_string(&spec)
        .unwrap()
        .replace("mode = \"preserve\"\n", "");
    fs::write(&spec, plain).unwrap();
    let layout = work.path().join("e");
    build(&spec, &["--oci", layout.to_str().unwrap()]);
    let modes: Vec<String> = listing(&layout).into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        modes,
        [
            "drwxr-xr-x",
            "-rw-r--r--",
            "drwxr-xr-x",
            "-rw-r--r--",
            "-rwxr-xr-x"
        ]
    );
}

#[test]
fn preserved_modes_of_files_copied_out_of_an_image() {
    use crate::common::handmade::{self, dir};
    if !have(&["tar"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let file = |path, mode| handmade::Entry {
        path,
        kind: handmade::Kind::File(b"x", mode),
        uid: 0,
        gid: 0,
    };
    let entries = [dir("opt"), file("opt/key", 0o600), file("opt/tool", 0o4750)];
    let json = serde_json::json!({});
    handmade::layout(&work.path().join("img"), "v1", &entries, json.clone(), json);
    let spec = write_spec(
        &work.path().join("spec"),
        "[image]\nname = \"modes\"\nformat = \"oci\"\n[user]\nname = \"app\"\nuid = 10001\n\
         [[copy]]\nimage = \"oci:../img:v1\"\nsrc = \"/opt/\"\ndest = \"/opt/\"\nmode = \"preserve\"\n",
    );
    let layout = work.path().join("out");
    build(&spec, &["--oci", layout.to_str().unwrap()]);
    let got = listing(&layout);
    let got: Vec<(&str, &str)> = got.iter().map(|(m, p)| (m.as_str(), p.as_str())).collect();
    assert_eq!(
        got,
        [
            ("drwxr-xr-x", "opt/"),
            ("-rw-------", "opt/key"),
            ("-rwxr-x---", "opt/tool"),
        ]
    );
}

/// The 2775 directory `preserve` keeps is not a setuid finding (setgid on a
/// directory passes its group on and grants nothing); a setgid file is.
#[test]
fn a_setgid_directory_is_no_setuid_finding() {
    let work = tempfile::tempdir().unwrap();
    let spec = fixture(work.path());
    let setuid = |spec: &Path| -> Vec<String> {
        let (_, findings) = check_json(spec);
        findings
            .iter()
            .filter(|f| f["id"] == "KILN-SETUID")
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(setuid(&spec), Vec::<String>::new());
    // With mode 0o2755 asked for explicitly, the files keep setgid and are found.
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&spec, text.replace("mode = \"preserve\"", "mode = 0o2755")).unwrap();
    let found = setuid(&spec);
    assert!(
        found.iter().any(|m| m.contains("`/app/secret`"))
            && !found.iter().any(|m| m.contains("`/app/shared`")),
        "{found:?}"
    );
}
