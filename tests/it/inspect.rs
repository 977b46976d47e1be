//! `kiln inspect` read back images that other tools made: podman built one
//! (docker-archive from `podman save`, OCI layouts from `podman push oci:`,
//! and a real registry), umoci made one with whiteouts and an opaque
//! directory, and an index with two platforms went through `skopeo copy
//! --all`. Every number kiln shows is checked against what skopeo, umoci or
//! the image's own bytes say; errors are one clean `error:` line.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use kiln::oci::digest::sha256;
use serde_json::{Value, json};

use crate::common::*;

fn inspect(args: &[&str]) -> Output {
    kiln()
        .arg("inspect")
        .args(args)
        .output()
        .expect("run kiln inspect")
}

/// `kiln inspect ARGS`, which must succeed; its stdout.
fn inspect_ok(args: &[&str]) -> String {
    let out = inspect(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "kiln inspect {args:?} failed with {}\nstdout:\n{}\nstderr:\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `kiln inspect ARGS --format json`, parsed.
fn inspect_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let stdout = inspect_ok(&all);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// `kiln inspect ARGS` must fail: nothing on stdout, no panic, exactly one
/// `error:` line that names `target` and holds every needle. Its exit code.
fn inspect_fails(args: &[&str], target: &str, needles: &[&str], hint: bool) -> i32 {
    let out = inspect(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kiln inspect {args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed a report");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{args:?}: not one error line:\n{stderr}");
    assert!(
        errors[0].contains(target),
        "{args:?}: the error does not name `{target}`:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: no `{needle}` in:\n{stderr}"
        );
    }
    let hints = stderr.lines().filter(|l| l.starts_with("hint:")).count();
    assert_eq!(
        hints,
        usize::from(hint),
        "{args:?}: hint lines in:\n{stderr}"
    );
    out.status.code().expect("an exit code, not a signal")
}

fn skopeo_raw(target: &str, config: bool) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw"]);
    if config {
        cmd.arg("--config");
    }
    if target.starts_with("docker://") {
        cmd.arg("--tls-verify=false");
    }
    run(cmd.arg(target)).into_bytes()
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The report's entry for `path` in its file list.
fn file<'a>(report: &'a Value, path: &str) -> &'a Value {
    report["files"]
        .as_array()
        .expect("a file list")
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} is not in the file list"))
}

fn paths(report: &Value) -> Vec<String> {
    report["files"]
        .as_array()
        .expect("a file list")
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// The text row of `path` in the file list, split into its columns.
fn file_row(text: &str, path: &str) -> Vec<String> {
    let files = &text[text.find("\nFiles (").expect("a file list")..];
    let line = files
        .lines()
        .find(|l| l.ends_with(&format!("  {path}")))
        .unwrap_or_else(|| panic!("no row for {path} in:\n{text}"));
    line.split_whitespace().map(str::to_string).collect()
}

/// The history entries that made a layer, in order.
fn layer_history(config: &Value) -> Vec<&Value> {
    config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .collect()
}

const PODMAN_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nweb:x:1500:1600:web:/app:/bin/sh\n";
const PODMAN_GROUP: &str = "root:x:0:\nwebgrp:x:1600:\n";
const CONFIG_V2: &str = "version two, and longer\n";
const RUN_SH: &str = "#!/bin/sh\necho run\n";

const CONTAINERFILE: &str = r#"FROM scratch
COPY --chown=0:0 busybox /bin/busybox
COPY etc/ /etc/
COPY --chown=1500:1600 app/ /app/
COPY --chown=web:webgrp config2.txt /app/config.txt
USER web
ENV GREETING=hello APP_MODE=prod
EXPOSE 8080/tcp 9090/udp
VOLUME /data
LABEL org.example.name=podman-built com.example.tier=test
WORKDIR /app
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --retries=4 CMD ["/bin/busybox","true"]
ENTRYPOINT ["/bin/busybox"]
CMD ["sh","-c","echo hi"]
"#;

/// The build context: four layers, the last overwriting /app/config.txt
/// of the third with a longer file of another mode.
fn podman_context(dir: &Path) {
    write_tree(
        dir,
        &[
            ("Containerfile", CONTAINERFILE, 0o644),
            ("etc/passwd", PODMAN_PASSWD, 0o644),
            ("etc/group", PODMAN_GROUP, 0o644),
            ("app/config.txt", "v1\n", 0o644),
            ("app/hello.txt", "hello\n", 0o644),
            ("app/run.sh", RUN_SH, 0o750),
            ("config2.txt", CONFIG_V2, 0o640),
        ],
    );
    fs::copy(busybox(), dir.join("busybox")).unwrap();
    fs::set_permissions(dir.join("busybox"), fs::Permissions::from_mode(0o755)).unwrap();
}

/// What skopeo reads from the same target: the manifest (synthesized for
/// a docker-archive) and the raw config bytes.
struct Truth {
    manifest: Value,
    config_bytes: Vec<u8>,
}

impl Truth {
    fn of(skopeo_target: &str) -> Truth {
        Truth {
            manifest: parse(&skopeo_raw(skopeo_target, false)),
            config_bytes: skopeo_raw(skopeo_target, true),
        }
    }
}

/// Everything a user checks in the podman-built image's JSON report.
fn check_podman_json(report: &Value, truth: &Truth, kind: &str, health: bool) {
    let config = parse(&truth.config_bytes);
    let what = &report["target"];
    assert_eq!(report["kind"], kind, "{what}");
    assert_eq!(report["platform"], "linux/amd64", "{what}");
    assert_eq!(report["created"], config["created"], "{what}");
    // The config digest is the hash of the config's own bytes, and the
    // manifest names the same one.
    assert_eq!(
        report["config_digest"],
        sha256(&truth.config_bytes),
        "{what}"
    );
    assert_eq!(
        report["config_digest"], truth.manifest["config"]["digest"],
        "{what}"
    );

    let c = &report["config"];
    assert_eq!(c["user"], "web", "{what}");
    assert_eq!(c["workdir"], "/app", "{what}");
    assert_eq!(c["entrypoint"], json!(["/bin/busybox"]), "{what}");
    assert_eq!(c["cmd"], json!(["sh", "-c", "echo hi"]), "{what}");
    assert_eq!(c["env"], config["config"]["Env"], "{what}");
    for env in ["GREETING=hello", "APP_MODE=prod"] {
        assert!(c["env"].as_array().unwrap().contains(&json!(env)), "{what}");
    }
    assert_eq!(c["ports"], json!(["8080/tcp", "9090/udp"]), "{what}");
    assert_eq!(c["volumes"], json!(["/data"]), "{what}");
    assert_eq!(c["labels"], config["config"]["Labels"], "{what}");
    assert_eq!(c["labels"]["org.example.name"], "podman-built", "{what}");
    assert_eq!(c["labels"]["com.example.tier"], "test", "{what}");
    // An OCI config has no Healthcheck: a Docker-format one keeps it.
    assert_eq!(
        config["config"]["Healthcheck"].is_object(),
        health,
        "{what}: skopeo's config"
    );
    if health {
        assert_eq!(
            c["healthcheck"],
            json!({
                "test": ["CMD", "/bin/busybox", "true"],
                "interval": "30s",
                "timeout": "5s",
                "start_period": "1m30s",
                "start_interval": null,
                "retries": 4
            }),
            "{what}"
        );
    } else {
        assert_eq!(c["healthcheck"], Value::Null, "{what}");
    }

    // Four layers, each as skopeo lists it, with the history line that made it.
    let layers = report["layers"].as_array().unwrap();
    let want = truth.manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let history = layer_history(&config);
    assert_eq!(layers.len(), 4, "{what}");
    assert_eq!(want.len(), 4, "{what}");
    for (i, layer) in layers.iter().enumerate() {
        assert_eq!(layer["number"], i + 1, "{what}");
        assert_eq!(layer["size"], want[i]["size"], "{what} layer {i}");
        assert_eq!(layer["diff_id"], diff_ids[i], "{what} layer {i}");
        assert_eq!(
            layer["created_by"], history[i]["created_by"],
            "{what} layer {i}"
        );
        if kind == "docker-archive" {
            // skopeo names an archive's layers by their uncompressed digest;
            // podman's member names (HEX.tar) give kiln no blob digest.
            assert_eq!(layer["diff_id"], want[i]["digest"], "{what} layer {i}");
            assert_eq!(layer["digest"], Value::Null, "{what} layer {i}");
        } else {
            assert_eq!(layer["digest"], want[i]["digest"], "{what} layer {i}");
            assert_eq!(layer["media_type"], want[i]["mediaType"], "{what}");
        }
    }
    let created_by = |i: usize| layers[i]["created_by"].as_str().unwrap();
    assert!(created_by(0).contains("COPY") && created_by(0).contains("in /bin/busybox"));
    assert!(created_by(1).contains("in /etc/"));
    assert!(created_by(2).contains("in /app/"));
    assert!(created_by(3).contains("in /app/config.txt"));

    if report.get("files").is_none() {
        assert!(c.get("user_names").is_none(), "{what}");
        return;
    }
    // Names come from the image's own /etc/passwd and /etc/group.
    assert_eq!(c["user_names"], "web:webgrp", "{what}");
    assert_eq!(
        paths(report),
        [
            "/app",
            "/app/config.txt",
            "/app/hello.txt",
            "/app/run.sh",
            "/bin",
            "/bin/busybox",
            "/etc",
            "/etc/group",
            "/etc/passwd"
        ],
        "{what}"
    );
    let busybox_size = fs::metadata(busybox()).unwrap().len();
    // (path, uid, gid, user, group, mode, size, layer that last wrote it)
    #[rustfmt::skip]
    let expect = [
        ("/bin/busybox", 0, 0, "root", "root", "0755", busybox_size, 1),
        ("/etc/passwd", 0, 0, "root", "root", "0644", PODMAN_PASSWD.len() as u64, 2),
        ("/etc/group", 0, 0, "root", "root", "0644", PODMAN_GROUP.len() as u64, 2),
        ("/app/hello.txt", 1500, 1600, "web", "webgrp", "0644", 6, 3),
        ("/app/run.sh", 1500, 1600, "web", "webgrp", "0750", RUN_SH.len() as u64, 3),
        // Overwritten by layer 4: its size, mode and owner win.
        ("/app/config.txt", 1500, 1600, "web", "webgrp", "0640", CONFIG_V2.len() as u64, 4),
    ];
    for (path, uid, gid, user, group, mode, size, layer) in expect {
        let want = json!({
            "path": path, "type": "file", "uid": uid, "gid": gid, "user": user,
            "group": group, "mode": mode, "size": size, "layer": layer,
        });
        assert_eq!(file(report, path), &want, "{what}");
    }
    let app = file(report, "/app");
    assert_eq!(app["type"], "dir", "{what}");
    let owner = [&app["uid"], &app["gid"], &app["user"], &app["group"]];
    assert_eq!(
        owner,
        [&json!(1500), &json!(1600), &json!("web"), &json!("webgrp")]
    );
}

/// The same facts in the text form.
fn check_podman_text(text: &str, report: &Value) {
    let has = |needle: &str| assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    has(&format!(
        "Image        {}\n",
        report["target"].as_str().unwrap()
    ));
    has(&format!(
        "Config       {}\n",
        report["config_digest"].as_str().unwrap()
    ));
    has("Platform     linux/amd64\n");
    has("Workdir      /app\n");
    has("Entrypoint   [\"/bin/busybox\"]\n");
    has("Cmd          [\"sh\",\"-c\",\"echo hi\"]\n");
    has("             GREETING=hello\n");
    has("Ports        8080/tcp\n             9090/udp\n");
    has("Volumes      /data\n");
    has("Labels       com.example.tier=test\n");
    has("             org.example.name=podman-built\n");
    if report["config"]["healthcheck"].is_null() {
        has("Healthcheck  -\n");
    } else {
        has("Healthcheck  [\"CMD\",\"/bin/busybox\",\"true\"]\n");
        has("             every 30s, timeout 5s, start period 1m30s, retries 4\n");
    }
    let layers = report["layers"].as_array().unwrap();
    has(&format!("\nLayers ({}, ", layers.len()));
    for layer in layers {
        // `  N  sha256:<12 hex>  SIZE  CREATED BY`, the blob digest or else the diff_id.
        let id = layer["digest"]
            .as_str()
            .or(layer["diff_id"].as_str())
            .unwrap();
        let row = text
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("{}  ", layer["number"]))
            })
            .unwrap_or_else(|| panic!("no row for layer {} in:\n{text}", layer["number"]));
        assert!(row.contains(&id[..19]), "{row}");
        assert!(
            row.contains(layer["created_by"].as_str().unwrap().trim_end()),
            "{row}"
        );
    }
    if report.get("files").is_some() {
        has("User         web (web:webgrp)\n");
        has("\nFiles (9)\n");
        assert_eq!(
            file_row(text, "/app/config.txt"),
            [
                "-rw-r-----",
                "1500:1600",
                "(web:webgrp)",
                &CONFIG_V2.len().to_string(),
                "4",
                "/app/config.txt"
            ]
        );
        assert_eq!(
            file_row(text, "/app/run.sh"),
            [
                "-rwxr-x---",
                "1500:1600",
                "(web:webgrp)",
                &RUN_SH.len().to_string(),
                "3",
                "/app/run.sh"
            ]
        );
        let busybox_size = fs::metadata(busybox()).unwrap().len().to_string();
        assert_eq!(
            file_row(text, "/bin/busybox"),
            [
                "-rwxr-xr-x",
                "0:0",
                "(root:root)",
                &busybox_size,
                "1",
                "/bin/busybox"
            ]
        );
        assert_eq!(
            file_row(text, "/app"),
            ["drwxr-xr-x", "1500:1600", "(web:webgrp)", "-", "4", "/app"]
        );
    } else {
        has("User         web\n");
        assert!(!text.contains("\nFiles ("), "{text}");
    }
}

#[test]
fn podman_built_image_as_docker_archive_oci_layout_and_registry() {
    if !have(&["podman", "skopeo", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let ctx = w.join("ctx");
    podman_context(&ctx);
    let podman = Podman::new();
    let image = "localhost/inspect-me:1";
    podman.run(&[
        "build",
        "--quiet",
        "--format",
        "docker",
        "-t",
        image,
        ctx.to_str().unwrap(),
    ]);

    // docker-archive from `podman save`.
    let tar = w.join("podman.tar");
    podman.run(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        tar.to_str().unwrap(),
        image,
    ]);
    let target = format!("tar:{}", tar.display());
    let truth = Truth::of(&format!("docker-archive:{}", tar.display()));
    let id = podman.run(&["image", "inspect", "--format", "{{.Id}}", image]);
    assert_eq!(sha256(&truth.config_bytes), format!("sha256:{}", id.trim()));
    let report = inspect_json(&[&target, "--files"]);
    assert_eq!(report["manifest"], Value::Null);
    check_podman_json(&report, &truth, "docker-archive", true);
    check_podman_text(&inspect_ok(&[&target, "--files"]), &report);
    // Without --files: the same config and layers, no names, no file list.
    // The docker-archive: prefix names the same kind of target.
    let target = format!("docker-archive:{}", tar.display());
    let plain = inspect_json(&[&target]);
    check_podman_json(&plain, &truth, "docker-archive", true);
    assert_eq!(plain["layers"], report["layers"]);
    assert_eq!(plain["config_digest"], report["config_digest"]);
    check_podman_text(&inspect_ok(&[&target]), &plain);

    // OCI layouts from `podman push oci:`: OCI media types (which have no
    // Healthcheck), and a Docker manifest kept in a layout with --format v2s2.
    let oci = w.join("oci");
    podman.run(&[
        "push",
        "--quiet",
        image,
        &format!("oci:{}:v1", oci.display()),
    ]);
    let target = format!("oci:{}:v1", oci.display());
    let truth = Truth::of(&target);
    let report = inspect_json(&[&target, "--files"]);
    assert_eq!(
        report["manifest"]["digest"],
        sha256(&skopeo_raw(&target, false))
    );
    assert_eq!(
        report["manifest"]["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    check_podman_json(&report, &truth, "oci", false);
    check_podman_text(&inspect_ok(&[&target, "--files"]), &report);

    let v2s2 = w.join("oci-docker");
    podman.run(&[
        "push",
        "--quiet",
        "--format",
        "v2s2",
        image,
        &format!("oci:{}:v1", v2s2.display()),
    ]);
    // skopeo 1.9 finds a Docker manifest in a layout only without a tag.
    let truth = Truth::of(&format!("oci:{}", v2s2.display()));
    let target = format!("oci:{}:v1", v2s2.display());
    let report = inspect_json(&[&target, "--files"]);
    assert_eq!(
        report["manifest"]["digest"],
        sha256(&skopeo_raw(&format!("oci:{}", v2s2.display()), false))
    );
    check_podman_json(&report, &truth, "oci", true);
    // The one image in a layout needs no tag.
    let untagged = inspect_json(&[&format!("oci:{}", v2s2.display())]);
    assert_eq!(untagged["manifest"], report["manifest"]);

    // A real registry, pulled into a cache of the test's own.
    let registry = Registry::start();
    let reference = format!("{}/podman/web:1", registry.addr);
    podman.run(&[
        "push",
        "--quiet",
        "--tls-verify=false",
        "--format",
        "v2s2",
        image,
        &format!("docker://{reference}"),
    ]);
    let docker = format!("docker://{reference}");
    let truth = Truth::of(&docker);
    let skopeo_digest = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &docker,
    ]));
    let cache = w.join("cache");
    let cache_arg = cache.to_str().unwrap();
    let report = inspect_json(&[&reference, "--files", "--cache-dir", cache_arg]);
    assert_eq!(report["manifest"]["digest"], skopeo_digest.trim());
    assert_eq!(
        report["manifest"]["digest"],
        sha256(&skopeo_raw(&docker, false))
    );
    assert_eq!(
        report["manifest"]["media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(report["manifest"]["size"], skopeo_raw(&docker, false).len());
    assert!(report.get("index").is_none());
    check_podman_json(&report, &truth, "registry", true);
    // The docker:// prefix is the same image; the blobs now come from the cache.
    let text = inspect_ok(&[&docker, "--files", "--cache-dir", cache_arg]);
    check_podman_text(
        &text,
        &inspect_json(&[&docker, "--files", "--cache-dir", cache_arg]),
    );
    assert!(text.contains(&format!(
        "Manifest     {} (application/vnd.docker.distribution.manifest.v2+json, ",
        skopeo_digest.trim()
    )));
}

/// `w/layout`, holding the one-layer image `v1` that umoci made of a root
/// with an /etc/passwd and `file` (path, content).
fn small_image(w: &Path, file: (&str, &str)) -> std::path::PathBuf {
    let root = w.join("root");
    write_files(
        &root,
        &[("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), file],
    );
    let layout = w.join("layout");
    umoci_image(&layout, "v1", &root);
    layout
}

/// Every path under `root` with its type, owner, mode and size, as a
/// runtime sees the unpacked image (the keys kiln's file list uses).
fn walk(root: &Path, dir: &Path, out: &mut Vec<Value>) {
    use std::os::unix::fs::MetadataExt;
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        let path = format!("/{}", entry.path().strip_prefix(root).unwrap().display());
        let kind = if meta.is_dir() {
            "dir"
        } else if meta.is_file() {
            "file"
        } else if meta.file_type().is_symlink() {
            "symlink"
        } else {
            "other"
        };
        out.push(json!({
            "path": path,
            "type": kind,
            "uid": meta.uid(),
            "gid": meta.gid(),
            "mode": format!("{:04o}", meta.mode() & 0o7777),
            "size": if kind == "file" { meta.len() } else { 0 },
        }));
        if meta.is_dir() {
            walk(root, &entry.path(), out);
        }
    }
}

#[test]
fn umoci_whiteouts_and_opaque_dirs_are_applied() {
    if !have(&["umoci", "skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let l1 = w.join("l1");
    write_files(
        &l1,
        &[
            (
                "etc/passwd",
                "root:x:0:0::/root:/bin/sh\nsvc:x:2000:2001::/srv:/bin/sh\n",
            ),
            ("etc/group", "root:x:0:\nsvc:x:2001:\n"),
            ("opt/keep.txt", "keep\n"),
            ("opt/gone.txt", "gone\n"),
            ("srv/dir/a", "a\n"),
            ("srv/dir/b", "b\n"),
            ("srv/stays", "stays\n"),
            ("data/old1", "old\n"),
            ("data/sub/old2", "old\n"),
        ],
    );
    run(Command::new("chown")
        .args(["-R", "2000:2001"])
        .arg(l1.join("srv")));
    fs::set_permissions(l1.join("srv/stays"), fs::Permissions::from_mode(0o600)).unwrap();
    let l4 = w.join("l4");
    write_files(&l4, &[("new.txt", "new data\n")]);
    let l5 = w.join("l5");
    write_files(&l5, &[("keep.txt", "kept, and rewritten\n")]);
    let l5 = l5.join("keep.txt");
    let layout = w.join("layout");
    let image = umoci_layers(
        &layout,
        "v1",
        &[
            (&l1, "/", &[]),
            (w, "/opt/gone.txt", &["--whiteout"]),
            (w, "/srv/dir", &["--whiteout"]),
            (&l4, "/data", &["--opaque"]),
            (&l5, "/opt/keep.txt", &[]),
        ],
    );
    let target = format!("oci:{image}");
    let report = inspect_json(&[&target, "--files"]);

    // The layers and history skopeo reads.
    let manifest = parse(&skopeo_raw(&target, false));
    let config = parse(&skopeo_raw(&target, true));
    assert_eq!(
        report["manifest"]["digest"],
        sha256(&skopeo_raw(&target, false))
    );
    assert_eq!(report["config_digest"], manifest["config"]["digest"]);
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);
    let history = layer_history(&config);
    for (i, layer) in layers.iter().enumerate() {
        assert_eq!(layer["digest"], manifest["layers"][i]["digest"]);
        assert_eq!(layer["size"], manifest["layers"][i]["size"]);
        assert_eq!(layer["diff_id"], config["rootfs"]["diff_ids"][i]);
        assert_eq!(layer["created_by"], history[i]["created_by"]);
    }
    assert_eq!(report["config"]["user"], Value::Null);

    // Deleted paths are gone; the opaque dir lost its old children.
    let got = paths(&report);
    for gone in [
        "/opt/gone.txt",
        "/srv/dir",
        "/srv/dir/a",
        "/srv/dir/b",
        "/data/old1",
        "/data/sub",
        "/data/sub/old2",
    ] {
        assert!(!got.contains(&gone.to_string()), "{gone} is still listed");
    }
    assert!(!got.iter().any(|p| p.contains(".wh.")), "{got:?}");
    assert_eq!(file(&report, "/data/new.txt")["layer"], 4);
    assert_eq!(file(&report, "/data/new.txt")["size"], 9);
    assert_eq!(file(&report, "/opt/keep.txt")["layer"], 5);
    assert_eq!(file(&report, "/opt/keep.txt")["size"], 20);
    let stays = file(&report, "/srv/stays");
    assert_eq!(
        (
            &stays["uid"],
            &stays["gid"],
            &stays["user"],
            &stays["group"]
        ),
        (&json!(2000), &json!(2001), &json!("svc"), &json!("svc"))
    );
    assert_eq!(stays["mode"], "0600");
    assert_eq!(stays["layer"], 1);

    // The same tree, owners and modes as `umoci unpack` gives a runtime.
    let bundle = w.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let mut unpacked = Vec::new();
    walk(&rootfs, &rootfs, &mut unpacked);
    unpacked.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    // umoci's layers hold `./` as well: the root keeps its owner and mode.
    assert_eq!(file(&report, "/")["layer"], 1);
    let root_meta = fs::metadata(&rootfs).unwrap();
    unpacked.insert(
        0,
        json!({
            "path": "/", "type": "dir", "uid": 0, "gid": 0,
            "mode": format!("{:04o}", root_meta.permissions().mode() & 0o7777), "size": 0,
        }),
    );
    let listed: Vec<Value> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let size = if f["type"] == "file" {
                f["size"].clone()
            } else {
                json!(0)
            };
            json!({
                "path": f["path"], "type": f["type"], "uid": f["uid"], "gid": f["gid"],
                "mode": f["mode"], "size": size,
            })
        })
        .collect();
    assert_eq!(listed, unpacked);

    let text = inspect_ok(&[&target, "--files"]);
    assert!(text.contains("User         - (root)\n"), "{text}");
    assert_eq!(
        file_row(&text, "/srv/stays"),
        [
            "-rw-------",
            "2000:2001",
            "(svc:svc)",
            "6",
            "1",
            "/srv/stays"
        ]
    );
}

fn write_blob(layout: &Path, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    fs::write(layout_blob(layout, &json!(digest)), bytes).unwrap();
    json!(digest)
}

#[test]
fn multi_platform_index_through_a_registry() {
    if !have(&["umoci", "skopeo", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let layout = small_image(w, ("hello", "hi\n"));

    // An arm64/v8 image sharing the amd64 image's layer, and an index of both.
    let read = |digest: &Value| read_json(&layout_blob(&layout, digest));
    let mut index_json = layout_index(&layout);
    let amd64_desc = index_json["manifests"][0].clone();
    let amd64_manifest = read(&amd64_desc["digest"]);
    let mut config = read(&amd64_manifest["config"]["digest"]);
    assert_eq!(config["architecture"], "amd64");
    config["architecture"] = json!("arm64");
    config["variant"] = json!("v8");
    let arm_config = serde_json::to_vec(&config).unwrap();
    let mut arm_manifest = amd64_manifest.clone();
    arm_manifest["config"]["digest"] = write_blob(&layout, &arm_config);
    arm_manifest["config"]["size"] = json!(arm_config.len());
    let arm_manifest = serde_json::to_vec(&arm_manifest).unwrap();
    let arm_digest = write_blob(&layout, &arm_manifest);
    let amd64_digest = amd64_desc["digest"].clone();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": amd64_digest,
                "size": amd64_desc["size"],
                "platform": {"architecture": "amd64", "os": "linux"}
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": arm_digest,
                "size": arm_manifest.len(),
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}
            }
        ]
    }))
    .unwrap();
    let index_digest = write_blob(&layout, &index);
    index_json["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": index_digest,
        "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": "multi"}
    }));
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index_json).unwrap(),
    )
    .unwrap();

    let registry = Registry::start();
    let reference = format!("{}/multi/app:1", registry.addr);
    skopeo_copy(
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{reference}"),
        &["--all"],
    );
    // What the registry serves is the index written here, byte for byte.
    let served = skopeo_raw(&format!("docker://{reference}"), false);
    assert_eq!(json!(sha256(&served)), index_digest);
    let platforms = json!([
        {"platform": "linux/amd64", "digest": amd64_digest},
        {"platform": "linux/arm64/v8", "digest": arm_digest},
    ]);

    let cache = w.join("cache");
    let cache_arg = cache.to_str().unwrap();
    let arm = inspect_json(&[
        &reference,
        "--platform",
        "linux/arm64",
        "--files",
        "--cache-dir",
        cache_arg,
    ]);
    assert_eq!(arm["platform"], "linux/arm64/v8");
    assert_eq!(
        arm["config_digest"],
        parse(&arm_manifest)["config"]["digest"]
    );
    assert_eq!(arm["config_digest"], sha256(&arm_config));
    assert_eq!(arm["manifest"]["digest"], arm_digest);
    assert_eq!(arm["manifest"]["size"], arm_manifest.len());
    assert_eq!(arm["index"]["digest"], index_digest);
    assert_eq!(
        arm["index"]["media_type"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(arm["index"]["manifests"], platforms);
    assert_eq!(file(&arm, "/hello")["size"], 3);
    let text = inspect_ok(&[
        &reference,
        "--platform",
        "linux/arm64",
        "--cache-dir",
        cache_arg,
    ]);
    assert!(
        text.contains(&format!(
            "Index        {} (linux/amd64, linux/arm64/v8)\n",
            index_digest.as_str().unwrap()
        )),
        "{text}"
    );
    assert!(text.contains("Platform     linux/arm64/v8\n"), "{text}");

    // No --platform: this machine's.
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let default = inspect_json(&[&reference, "--cache-dir", cache_arg]);
    if host == "amd64" {
        assert_eq!(default["platform"], "linux/amd64");
        assert_eq!(default["manifest"]["digest"], amd64_digest);
        assert_eq!(default["config_digest"], amd64_manifest["config"]["digest"]);
        assert_eq!(default["index"]["manifests"], platforms);
    }
    let amd = inspect_json(&[
        &reference,
        "--platform",
        "linux/amd64",
        "--cache-dir",
        cache_arg,
    ]);
    assert_eq!(amd["manifest"]["digest"], amd64_digest);

    // A platform the index lacks: the error lists those it has.
    let code = inspect_fails(
        &[
            &reference,
            "--platform",
            "linux/s390x",
            "--cache-dir",
            cache_arg,
        ],
        &reference,
        &["linux/s390x", "linux/amd64, linux/arm64/v8"],
        true,
    );
    assert_eq!(code, 2);

    // The same index read from the layout itself.
    let local = format!("oci:{}:multi", layout.display());
    let arm_local = inspect_json(&[&local, "--platform", "linux/arm64", "--files"]);
    assert_eq!(arm_local["manifest"]["digest"], arm_digest);
    assert_eq!(arm_local["index"]["digest"], index_digest);
    assert_eq!(arm_local["index"]["manifests"], platforms);
    assert_eq!(arm_local["files"], arm["files"]);
    let code = inspect_fails(
        &[&local, "--platform", "linux/s390x"],
        &local,
        &["linux/s390x", "linux/amd64, linux/arm64/v8"],
        true,
    );
    assert_eq!(code, 2);
    // The plain image is still there under its own tag.
    let single = inspect_json(&[&format!("oci:{}:v1", layout.display())]);
    assert!(single.get("index").is_none());
    assert_eq!(single["manifest"]["digest"], amd64_digest);
}

/// Flip one byte of a file.
fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0xff;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn bad_targets_fail_with_one_error_line() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // A layout directory that is not there.
    let missing = format!("oci:{}:v1", w.join("missing").display());
    let code = inspect_fails(&[&missing], &missing, &["no index.json"], true);
    assert_eq!(code, 2);

    // A tar that is not a docker-archive, a file that is no tar at all, and no file.
    let not_archive = w.join("files.tar");
    {
        let mut builder = tar::Builder::new(fs::File::create(&not_archive).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "hello.txt", &b"hi\n"[..])
            .unwrap();
        builder.finish().unwrap();
    }
    let target = format!("tar:{}", not_archive.display());
    let code = inspect_fails(&[&target], &target, &["manifest.json"], true);
    assert_eq!(code, 2);
    let text = w.join("notes.txt");
    fs::write(&text, "just some words\n").unwrap();
    let target = format!("docker-archive:{}", text.display());
    let code = inspect_fails(&[&target], &target, &["not a readable tar"], false);
    assert_eq!(code, 2);
    let target = format!("tar:{}", w.join("nothing.tar").display());
    let code = inspect_fails(&[&target], &target, &["cannot open"], true);
    assert_eq!(code, 2);

    // Usage errors.
    let code = inspect_fails(&["Not A Ref"], "Not A Ref", &["oci:DIR"], false);
    assert_eq!(code, 2);
    let code = inspect_fails(
        &[&missing, "--platform", "bogus"],
        "--platform",
        &["bogus"],
        true,
    );
    assert_eq!(code, 2);
}

#[test]
fn damaged_blobs_and_unknown_tags_fail_cleanly() {
    if !have(&["umoci", "skopeo", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let layout = small_image(w, ("payload", &"some bytes to compress ".repeat(400)));
    let good = format!("oci:{}:v1", layout.display());
    inspect_json(&[&good, "--files"]);

    // Unknown tags: in the layout (which lists the tags it has) and in a registry.
    let target = format!("oci:{}:nope", layout.display());
    let code = inspect_fails(
        &[&target],
        &target,
        &["no image tagged `nope`", "tags: v1"],
        false,
    );
    assert_eq!(code, 2);
    let registry = Registry::start();
    skopeo_copy(
        &good,
        &format!("docker://{}/damage/app:1", registry.addr),
        &[],
    );
    let cache = w.join("cache");
    let cache_arg = cache.to_str().unwrap();
    inspect_json(&[
        &format!("{}/damage/app:1", registry.addr),
        "--cache-dir",
        cache_arg,
    ]);
    let unknown = format!("{}/damage/app:nope", registry.addr);
    let code = inspect_fails(
        &[&unknown, "--cache-dir", cache_arg],
        &unknown,
        &["MANIFEST_UNKNOWN"],
        true,
    );
    assert_eq!(code, 1);

    // Damaged layers, each in a copy of the layout: only --files reads them.
    let manifest = layout_manifest(&layout);
    let layer = &manifest["layers"][0]["digest"];
    // A copy of the layout, and its image as kiln names it.
    let copy_of = |name: &str| {
        let copy = w.join(name);
        copy_tree(&layout, &copy);
        let target = format!("oci:{}:v1", copy.display());
        (copy, target)
    };
    // A gzip header's mtime: the data still inflates, only the digest is wrong.
    let (copy, target) = copy_of("mtime");
    flip(&layout_blob(&copy, layer), 5);
    let short = layer.as_str().unwrap();
    inspect_json(&[&target]);
    let code = inspect_fails(
        &[&target, "--files"],
        &target,
        &[short, "does not match its digest", "damaged"],
        true,
    );
    assert_eq!(code, 2);
    // In the deflate stream.
    let (copy, target) = copy_of("middle");
    let blob = layout_blob(&copy, layer);
    let len = fs::metadata(&blob).unwrap().len() as usize;
    flip(&blob, len / 2);
    let out = inspect(&[&target, "--files"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&target) && errors[0].contains(short),
        "{stderr}"
    );
    // A layer blob that is gone.
    let (copy, target) = copy_of("gone");
    fs::remove_file(layout_blob(&copy, layer)).unwrap();
    let code = inspect_fails(
        &[&target, "--files"],
        &target,
        &[short, "cannot open", "damaged"],
        true,
    );
    assert_eq!(code, 2);
    // A damaged config fails even without --files.
    let (copy, target) = copy_of("config");
    flip(&layout_blob(&copy, &manifest["config"]["digest"]), 10);
    let code = inspect_fails(&[&target], &target, &["does not match its digest"], true);
    assert_eq!(code, 2);
}

#[test]
fn kiln_tar_and_oci_outputs_show_the_same_image() {
    let fx = web_fixture();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("web");
    let tar = out.path().join("web.tar");
    let digest = build(
        &fx.path().join("kiln.toml"),
        &[
            "--oci",
            layout.to_str().unwrap(),
            "--tar",
            tar.to_str().unwrap(),
        ],
    );
    let oci = inspect_json(&[&format!("oci:{}", layout.display()), "--files"]);
    let archive = inspect_json(&[&format!("tar:{}", tar.display()), "--files"]);
    assert_eq!(oci["manifest"]["digest"], digest);
    assert_eq!(
        oci["config_digest"],
        layout_manifest(&layout)["config"]["digest"]
    );
    assert_eq!(oci["config_digest"], archive["config_digest"]);
    assert_eq!(oci["config"], archive["config"]);
    assert_eq!(oci["created"], archive["created"]);
    assert_eq!(oci["platform"], archive["platform"]);
    assert_eq!(oci["files"], archive["files"]);
    assert_eq!(oci["config"]["user_names"], "app:app");
    assert_eq!(oci["config"]["healthcheck"]["interval"], "30s");
    assert_eq!(oci["config"]["healthcheck"]["start_interval"], "2s");
    let (a, b) = (
        oci["layers"].as_array().unwrap(),
        archive["layers"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (o, t) in a.iter().zip(b) {
        assert_eq!(o["diff_id"], t["diff_id"]);
        assert_eq!(o["created_by"], t["created_by"]);
        // kiln's archive keeps layers uncompressed under their diff_id.
        assert_eq!(t["digest"], t["diff_id"]);
    }
    assert_eq!(file(&oci, "/www/index.html")["user"], "app");
}
