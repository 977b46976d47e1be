//! The flags docker users type without thinking: `kiln build DIR`, `-f FILE`,
//! `--build-arg NAME` from the environment, `-q`, `--color`/`NO_COLOR`,
//! `kiln version`.

use std::fs;
use std::path::Path;

use crate::common::*;

const SPEC: &str = r#"[image]
name = "flags"

[args]
GREETING = "default"

[user]
name = "app"
uid = 10001

[[file]]
path = "/greeting"
content = "${GREETING}"

[config]
env = { GREETING = "${GREETING}" }

[policy]
enforce = false
"#;

fn project(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("kiln.toml"), SPEC).unwrap();
}

/// The GREETING env of the image in the layout at `out`.
fn greeting(out: &Path) -> String {
    let index = read_json(&out.join("index.json"));
    let manifest = read_json(&layout_blob(out, &index["manifests"][0]["digest"]));
    let config = read_json(&layout_blob(out, &manifest["config"]["digest"]));
    let env = config["config"]["Env"].as_array().unwrap();
    env.iter()
        .filter_map(|e| e.as_str()?.strip_prefix("GREETING="))
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_directory_or_dash_f_names_the_spec() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    project(&w.join("app"));
    fs::rename(w.join("app/kiln.toml"), w.join("app/other.toml")).unwrap();
    fs::write(w.join("app/kiln.toml"), SPEC.replace("default", "from-dir")).unwrap();
    let cache = w.join("cache");
    let build = |args: &[&str], out: &str| {
        let out = w.join(out);
        let mut all = args.to_vec();
        all.extend(["--oci", out.to_str().unwrap()]);
        let o = kiln()
            .arg("build")
            .args(&all)
            .arg("--cache-dir")
            .arg(&cache)
            .current_dir(w)
            .output()
            .unwrap();
        (o, out)
    };
    let (o, out) = build(&["app"], "a");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(greeting(&out), "from-dir");
    let (o, out) = build(&["-f", "app/other.toml"], "b");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(greeting(&out), "default");
    let (o, _) = build(&["app", "-f", "app/other.toml"], "c");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-f"));
    // kiln check takes the same forms.
    let o = kiln()
        .args(["check", "app"])
        .current_dir(w)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_build_arg_without_a_value_comes_from_the_environment() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    project(w);
    let run = |env: Option<&str>, out: &str| {
        let out = w.join(out);
        let mut cmd = kiln();
        cmd.arg("build")
            .arg(w.join("kiln.toml"))
            .args(["--build-arg", "GREETING", "--oci"])
            .arg(&out)
            .arg("--cache-dir")
            .arg(w.join("cache"))
            .env_remove("GREETING");
        if let Some(v) = env {
            cmd.env("GREETING", v);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    assert_eq!(greeting(&run(Some("from-env"), "a")), "from-env");
    // Unset: the spec's own default holds, as docker does.
    assert_eq!(greeting(&run(None, "b")), "default");
}

#[test]
fn quiet_prints_the_result_only_and_errors_still() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    project(w);
    let o = kiln()
        .args(["-q", "build"])
        .arg(w.join("kiln.toml"))
        .arg("--oci")
        .arg(w.join("out"))
        .arg("--cache-dir")
        .arg(w.join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("flags:latest@sha256:"), "{stdout}");
    let o = kiln()
        .args(["-q", "build"])
        .arg(w.join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: "));
}

#[test]
fn color_follows_the_flag_and_no_color() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    project(w);
    let stderr = |flags: &[&str], no_color: bool| {
        let mut cmd = kiln();
        cmd.args(flags)
            .arg("build")
            .arg(w.join("kiln.toml"))
            .arg("--oci")
            .arg(w.join("out"))
            .arg("--cache-dir")
            .arg(w.join("cache"));
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stderr).into_owned()
    };
    assert!(stderr(&["--color", "always"], false).contains('\x1b'));
    assert!(!stderr(&["--color", "never"], false).contains('\x1b'));
    // Not a terminal, and NO_COLOR: no escapes either way.
    assert!(!stderr(&[], true).contains('\x1b'));
}

#[test]
fn version_names_the_release() {
    let o = kiln().arg("version").output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with(&format!("kiln {} (", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let flag = kiln().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&flag.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn inspect_reads_a_layout_directory_named_plainly() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    project(w);
    let out = w.join("out");
    let o = kiln()
        .arg("build")
        .arg(w.join("kiln.toml"))
        .arg("--oci")
        .arg(&out)
        .arg("--cache-dir")
        .arg(w.join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let inspect = |target: &str| {
        kiln()
            .args(["inspect", target])
            .current_dir(w)
            .output()
            .unwrap()
    };
    let plain = inspect("out");
    let prefixed = inspect("oci:out");
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let manifest = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.starts_with("Manifest"))
            .unwrap()
            .to_string()
    };
    assert_eq!(manifest(&plain), manifest(&prefixed));
    let file = inspect("./kiln.toml");
    assert_eq!(file.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&file.stderr).contains("did you mean tar:./kiln.toml"));
}

#[test]
fn labels_and_annotations_from_the_command_line() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    project(w);
    let spec = fs::read_to_string(w.join("kiln.toml")).unwrap();
    fs::write(
        w.join("kiln.toml"),
        spec.replace("name = \"flags\"", "name = \"flags\"\nformat = \"oci\""),
    )
    .unwrap();
    let build = |extra: &[&str], out: &str| {
        let out = w.join(out);
        let o = kiln()
            .arg("build")
            .arg(w.join("kiln.toml"))
            .args(extra)
            .arg("--oci")
            .arg(&out)
            .arg("--cache-dir")
            .arg(w.join("cache"))
            .output()
            .unwrap();
        (o, out)
    };
    let (o, out) = build(
        &[
            "--label",
            "org.opencontainers.image.revision=abc123",
            "--annotation",
            "org.opencontainers.image.url=https://example.com",
        ],
        "a",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let index = read_json(&out.join("index.json"));
    let manifest = read_json(&layout_blob(&out, &index["manifests"][0]["digest"]));
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.url"],
        "https://example.com"
    );
    let config = read_json(&layout_blob(&out, &manifest["config"]["digest"]));
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.revision"],
        "abc123"
    );
    // Docker's manifest has no annotations: refused, not dropped.
    fs::write(w.join("kiln.toml"), &spec).unwrap();
    let (o, out) = build(&["--annotation", "a=b"], "b");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("format = \"oci\""));
    assert!(!out.exists());
}

/// `--load` streams the image into podman: no archive on disk, and podman
/// runs it with the spec's env.
#[test]
fn load_puts_the_image_into_podman() {
    if !have(&["podman", "runc"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    project(w);
    fs::write(w.join("busybox"), fs::read(busybox()).unwrap()).unwrap();
    let spec = fs::read_to_string(w.join("kiln.toml")).unwrap();
    fs::write(
        w.join("kiln.toml"),
        format!("{spec}\n[[copy]]\nsrc = \"busybox\"\ndest = \"/bin/busybox\"\nmode = \"0755\"\n"),
    )
    .unwrap();
    let podman = Podman::new();
    let mut cmd = kiln();
    podman.env_for(&mut cmd);
    let o = cmd
        .current_dir(w)
        .args([
            "build",
            "kiln.toml",
            "--load",
            "--build-arg",
            "GREETING=loaded",
        ])
        .arg("--cache-dir")
        .arg(w.join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("into podman"), "{stderr}");
    assert!(!w.join("kiln-out").exists(), "--load wrote a layout too");
    let env = podman.exec(
        "localhost/flags:latest",
        &["/bin/busybox", "sh", "-c", "echo $GREETING"],
    );
    assert_eq!(env.trim(), "loaded");
}
