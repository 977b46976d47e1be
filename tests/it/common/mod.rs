//! Helpers for the integration tests: run the real `kiln` binary and the
//! real tools (skopeo, umoci, podman, docker-registry) against its output.
//!
//! A test that needs a tool fails when CI=true and the tool is missing; on
//! a developer machine it is skipped with a loud message.

#![allow(dead_code)]

pub mod debian;
pub mod fake;
pub mod handmade;
pub mod netns;
pub mod proxy;
pub mod registries;
pub mod schema;
pub mod tinyproxy;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn kiln() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    // Retries wait 50 ms rather than 1 s and 3 s: the tests exercise the paths, not the clock.
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .env_remove("RUST_LOG")
        .env("KILN_RETRY_DELAY_MS", "50");
    cmd
}

/// True if every tool is on PATH. Missing under CI=true: the test fails.
pub fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "missing tools: {} (install them with scripts/install-test-tools.sh)",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    false
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Run a command; panic with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    check(cmd, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn check(cmd: &Command, out: &Output) {
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kiln build SPEC --cache-dir CACHE EXTRA`, whatever comes of it.
pub fn kiln_build(spec: &Path, cache: &Path, extra: &[&str]) -> Output {
    kiln()
        .arg("build")
        .arg(spec)
        .arg("--cache-dir")
        .arg(cache)
        .args(extra)
        .output()
        .unwrap()
}

/// `kiln check --format json` on SPEC: the exit code and the findings.
pub fn check_json(spec: &Path) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = kiln()
        .arg("check")
        .arg(spec)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let findings: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), findings)
}

/// `kiln build ... --format json`, which must succeed: its JSON and its stderr.
pub fn build_json_stderr(spec: &Path, cache: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let out = kiln_build(spec, cache, &[extra, &["--format", "json"]].concat());
    check(&kiln(), &out);
    (
        parse_json(&String::from_utf8_lossy(&out.stdout)),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kiln build ... --format json`, which must succeed.
pub fn build_json(spec: &Path, cache: &Path, extra: &[&str]) -> serde_json::Value {
    build_json_stderr(spec, cache, extra).0
}

/// `kiln build SPEC EXTRA`, which must fail with exit 2 (the spec or the
/// command line is wrong): its stderr.
#[track_caller]
pub fn build_refused(spec: &Path, extra: &[&str]) -> String {
    let (code, stderr) = build_fails(spec, extra);
    assert_eq!(code, Some(2), "{stderr}");
    stderr
}

/// `kiln build SPEC EXTRA`, which must fail: its exit code and stderr.
#[track_caller]
pub fn build_fails(spec: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = kiln().arg("build").arg(spec).args(extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "built anyway:\n{stderr}");
    (out.status.code(), stderr)
}

/// `kiln inspect TARGET --files --format json`.
pub fn inspect_files(target: &str) -> serde_json::Value {
    parse_json(&run(
        kiln().args(["inspect", target, "--files", "--format", "json"])
    ))
}

/// Build a spec; returns the manifest digest from the last stdout line.
pub fn build(spec: &Path, extra: &[&str]) -> String {
    let stdout = run(kiln().arg("build").arg(spec).args(extra));
    let last = stdout.lines().last().expect("kiln prints the image");
    last.rsplit_once('@')
        .expect("NAME:TAG@DIGEST")
        .1
        .to_string()
}

/// A copy of specs/web in a temp dir, with the static busybox it needs.
pub fn web_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("specs/web"), dir.path());
    fs::create_dir_all(dir.path().join("bin")).unwrap();
    fs::copy(busybox(), dir.path().join("bin/busybox")).unwrap();
    dir
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Debian's busybox-static; required by the tests that run images.
pub fn busybox() -> PathBuf {
    let path = PathBuf::from("/bin/busybox");
    let out = Command::new("file").arg("-L").arg(&path).output();
    let static_ok =
        out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("statically linked"));
    assert!(
        static_ok,
        "{} must be a static busybox: apt-get install busybox-static file",
        path.display()
    );
    path
}

pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        let t = entry.file_type().unwrap();
        if t.is_dir() {
            if entry.file_name() != "bin" {
                copy_tree(&entry.path(), &dest);
            }
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The base images' /etc/passwd: Debian-like, to check it survives byte for byte.
pub const BASE_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

/// A Debian-like base image (busybox, passwd/group/shadow) made by umoci in
/// `work/base-layout`; returns the `oci:LAYOUT:v1` reference for skopeo.
pub fn base_layout(work: &Path) -> String {
    let root = work.join("base-root");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(root.join("etc/passwd"), BASE_PASSWD).unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nnogroup:x:65534:\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/shadow"),
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    )
    .unwrap();
    fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    format!(
        "oci:{}",
        umoci_image(&work.join("base-layout"), "v1", &root)
    )
}

/// `umoci init` of an empty OCI layout.
pub fn umoci_init(layout: &Path) {
    run(Command::new("umoci").args(["init", "--layout"]).arg(layout));
}

/// `umoci new` + `umoci insert ROOT /`: a one-layer image `TAG` in a layout
/// `umoci_init` made; returns `LAYOUT:TAG`, umoci's name for it.
pub fn umoci_new(layout: &Path, tag: &str, root: &Path) -> String {
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(root)
        .arg("/"));
    image
}

/// A new layout holding the image `TAG`, one `umoci insert` per layer:
/// (source dir, target path, extra flags; a `--whiteout` takes no source).
/// Returns `LAYOUT:TAG`.
pub fn umoci_layers(layout: &Path, tag: &str, layers: &[(&Path, &str, &[&str])]) -> String {
    umoci_init(layout);
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    for (src, target, flags) in layers {
        let mut cmd = Command::new("umoci");
        cmd.args(["insert", "--image", &image]).args(*flags);
        if !flags.contains(&"--whiteout") {
            cmd.arg(src);
        }
        run(cmd.arg(target));
    }
    image
}

/// A new layout holding `root` as the one-layer image `TAG`; returns `LAYOUT:TAG`.
pub fn umoci_image(layout: &Path, tag: &str, root: &Path) -> String {
    umoci_init(layout);
    umoci_new(layout, tag, root)
}

/// `skopeo copy --quiet FLAGS FROM TO`, TLS off for the test registries.
pub fn skopeo_copy(from: &str, to: &str, flags: &[&str]) {
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(flags)
        .arg(from)
        .arg(to));
}

/// An image pulled by `pull_and_unpack`.
pub struct Pulled {
    /// The OCI copy, as skopeo names it: `oci:DIR:x`.
    pub image: String,
    pub bundle: PathBuf,
}

impl Pulled {
    pub fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }
}

/// `source` copied by skopeo (which checks every blob's digest) into
/// `work/pulled` with OCI media types (umoci 0.4.7 reads only those), then
/// `umoci unpack`ed into `work/bundle`. `flags` go to skopeo.
pub fn pull_and_unpack(source: &str, work: &Path, flags: &[&str]) -> Pulled {
    fs::create_dir_all(work).unwrap();
    let oci = work.join("pulled");
    let mut all = vec!["--format", "oci"];
    all.extend(flags);
    skopeo_copy(source, &format!("oci:{}:x", oci.display()), &all);
    let bundle = work.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:x", oci.display()))
        .arg(&bundle));
    Pulled {
        image: format!("oci:{}:x", oci.display()),
        bundle,
    }
}

/// `umoci unpack` of an OCI layout's image (see `pull_and_unpack`).
/// Returns the bundle directory.
pub fn unpack(layout: &Path, work: &Path) -> PathBuf {
    pull_and_unpack(&format!("oci:{}", layout.display()), work, &[]).bundle
}

/// A blob of an OCI layout, by digest (a `"sha256:..."` JSON string).
pub fn layout_blob(layout: &Path, digest: &serde_json::Value) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.as_str().unwrap().trim_start_matches("sha256:"))
}

/// The manifest of the only image in an OCI layout.
pub fn layout_manifest(layout: &Path) -> serde_json::Value {
    read_json(&layout_blob(
        layout,
        &layout_index(layout)["manifests"][0]["digest"],
    ))
}

/// A layout's index.json.
pub fn layout_index(layout: &Path) -> serde_json::Value {
    read_json(&layout.join("index.json"))
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// What a tool printed, which must be JSON.
pub fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// `DIR/kiln.toml` holding `text`, DIR made as needed; returns its path.
pub fn write_spec(dir: &Path, text: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let spec = dir.join("kiln.toml");
    fs::write(&spec, text).unwrap();
    spec
}

/// Files of mode 0644 under `root`: (path, content).
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    let files: Vec<_> = files.iter().map(|&(p, c)| (p, c, 0o644)).collect();
    write_tree(root, &files);
}

/// Files under `root`: (path, content, mode), parents made as needed; a
/// content `-> TARGET` makes a symlink (its mode unused).
pub fn write_tree(root: &Path, files: &[(&str, &str, u32)]) {
    use std::os::unix::fs::PermissionsExt;
    for (path, content, mode) in files {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        if let Some(target) = content.strip_prefix("-> ") {
            std::os::unix::fs::symlink(target, &p).unwrap();
        } else {
            fs::write(&p, content).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
        }
    }
}

/// `uid:gid mode` as a runtime will see the path.
pub fn stat(path: &Path) -> String {
    run(Command::new("stat").args(["-c", "%u:%g %a"]).arg(path))
        .trim()
        .to_string()
}

/// podman with its own storage, the vfs driver and runc (crun fails here).
pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        Podman { dir }
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            // Its own tmpdir too: podman's default, /run/libpod, is shared between instances.
            .arg("--tmpdir")
            .arg(self.dir.path().join("tmp"))
            .args(["--storage-driver", "vfs"]);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> String {
        run(self.cmd().args(args))
    }

    /// Point a program that runs podman itself (`kiln build --load`) at this
    /// instance's storage, through the environment podman reads.
    pub fn env_for<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        let d = self.dir.path();
        let storage = d.join("storage.conf");
        fs::write(
            &storage,
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                d.join("root").display(),
                d.join("run").display()
            ),
        )
        .unwrap();
        let conf = d.join("containers-load.conf");
        fs::write(
            &conf,
            format!(
                "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\ntmp_dir = \"{}\"\n",
                d.join("tmp").display()
            ),
        )
        .unwrap();
        cmd.env("CONTAINERS_CONF", conf)
            .env("CONTAINERS_STORAGE_CONF", storage)
    }

    /// Run `argv` in `image` in place of its entrypoint, with no network; its stdout.
    pub fn exec(&self, image: &str, argv: &[&str]) -> String {
        let mut args = vec![
            "run",
            "--rm",
            "--tls-verify=false",
            "--network",
            "none",
            "--entrypoint",
            argv[0],
            image,
        ];
        args.extend(&argv[1..]);
        self.run(&args)
    }

    /// Start `image` detached as `name` and run its healthcheck until it
    /// passes or `wait` runs out; the container's logs if it never did.
    pub fn healthy_within(&self, image: &str, name: &str, wait: Duration) -> Result<(), String> {
        self.run(&[
            "run",
            "-d",
            "--tls-verify=false",
            "--name",
            name,
            "--network",
            "none",
            image,
        ]);
        let deadline = Instant::now() + wait;
        loop {
            let out = self
                .cmd()
                .args(["healthcheck", "run", name])
                .output()
                .unwrap();
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs = self.cmd().args(["logs", name]).output().unwrap();
                return Err(format!(
                    "{name} never became healthy: {}{}\nlogs:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers left running would keep files in the store busy.
        let _ = self
            .cmd()
            .args(["rm", "-af", "-t", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self
            .cmd()
            .args(["system", "reset", "-f"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Debian's docker-registry (distribution 2.8) on 127.0.0.1 and a free port.
pub struct Registry {
    pub addr: String,
    child: std::process::Child,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(which("docker-registry").expect("docker-registry"))
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { addr, child, dir }
    }
}

/// A test's temp dir and a registry, or None (the test skipped) when a tool is missing.
pub fn with_registry(tools: &[&str]) -> Option<(tempfile::TempDir, Registry)> {
    if !have(tools) {
        return None;
    }
    Some((tempfile::tempdir().unwrap(), Registry::start()))
}

impl Registry {
    /// What `f` returns and the lines the registry logged while it ran.
    pub fn log_during<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<String>) {
        let before = registry_log(self).len();
        let value = f();
        (value, registry_log(self)[before..].to_vec())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Helpers for the multi-platform and shared-cache tests.

/// Every line the registry has logged so far (one access-log line per request).
pub fn registry_log(registry: &Registry) -> Vec<String> {
    fs::read_to_string(registry.dir.path().join("registry.log"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// How many uploads of `digest` were committed (the closing
/// `PUT /v2/REPO/blobs/uploads/...&digest=...`) among `lines`, into `repo`,
/// or into any repository when `repo` is None.
pub fn uploads_of(lines: &[String], repo: Option<&str>, digest: &str) -> usize {
    let prefix = match repo {
        Some(r) => format!("\"PUT /v2/{r}/blobs/uploads/"),
        None => "\"PUT /v2/".to_string(),
    };
    let param = format!("digest={}", digest.replace(':', "%3A"));
    lines
        .iter()
        .filter(|l| l.contains(&prefix) && l.contains("/blobs/uploads/") && l.contains(&param))
        .count()
}

/// The requests for blob `digest` of `repo` among `lines` (`GET /v2/REPO/blobs/DIGEST`).
pub fn blob_gets<'a>(lines: &'a [String], repo: &str, digest: &str) -> Vec<&'a String> {
    let request = format!("\"GET /v2/{repo}/blobs/{digest} ");
    lines.iter().filter(|l| l.contains(&request)).collect()
}

/// Every upload committed among `lines`, whatever its digest.
pub fn all_uploads(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/"))
        .count()
}

/// How many cross-repository mounts of `digest` into `repo` the registry
/// performed (201) among `lines`.
pub fn mounts_of(lines: &[String], repo: &str, digest: &str) -> usize {
    let request = format!(
        "\"POST /v2/{repo}/blobs/uploads/?mount={}",
        digest.replace(':', "%3A")
    );
    lines
        .iter()
        .filter(|l| l.contains(&request) && l.contains("\" 201 "))
        .count()
}

/// `len` bytes that no compressor can shrink, the same for the same seed.
pub fn noise_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Give every file under `dir` the mtime `secs` after the epoch, as a
/// fresh checkout on another machine would have its own.
pub fn set_mtimes(dir: &Path, secs: u64) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let t = entry.file_type().unwrap();
        if t.is_dir() {
            set_mtimes(&entry.path(), secs);
        } else if t.is_file() {
            let file = fs::File::options().write(true).open(entry.path()).unwrap();
            file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
                .unwrap();
        }
    }
}

/// The JSON `skopeo inspect --raw|--config` prints, and the raw bytes' digest.
pub fn skopeo_json(args: &[&str]) -> (serde_json::Value, String) {
    run_json(Command::new("skopeo").arg("inspect").args(args))
}

/// The manifest or index a test registry serves for `reference`
/// (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`), and the digest of its bytes.
pub fn served_raw(reference: &str) -> (serde_json::Value, String) {
    skopeo_json(&[
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])
}

/// Whether a test registry serves `reference` at all.
pub fn is_served(reference: &str) -> bool {
    Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap()
        .status
        .success()
}

/// A command's JSON output (it must succeed), and the digest of its bytes.
pub fn run_json(cmd: &mut Command) -> (serde_json::Value, String) {
    let raw = run(cmd);
    (parse_json(&raw), kiln::oci::digest::sha256(raw.as_bytes()))
}
