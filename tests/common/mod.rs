//! Helpers for the integration tests: run the real `kiln` binary and the
//! real tools (skopeo, umoci, podman, docker-registry) against its output.
//!
//! A test that needs a tool fails when CI=true and the tool is missing; on
//! a developer machine it is skipped with a loud message.

#![allow(dead_code)]

pub mod proxy;
pub mod registries;

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
    let layout = work.join("base-layout");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    let image = format!("{}:v1", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(&root)
        .arg("/"));
    format!("oci:{image}")
}

/// `umoci unpack` of an image, converted to OCI media types first (umoci
/// 0.4.7 reads only those). Returns the bundle directory.
pub fn unpack(layout: &Path, work: &Path) -> PathBuf {
    let oci = work.join("as-oci");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--format", "oci"])
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("oci:{}:x", oci.display())));
    let bundle = work.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:x", oci.display()))
        .arg(&bundle));
    bundle
}

/// A blob of an OCI layout, by digest (a `"sha256:..."` JSON string).
pub fn layout_blob(layout: &Path, digest: &serde_json::Value) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.as_str().unwrap().trim_start_matches("sha256:"))
}

/// The manifest of the only image in an OCI layout.
pub fn layout_manifest(layout: &Path) -> serde_json::Value {
    let read =
        |p: &Path| -> serde_json::Value { serde_json::from_slice(&fs::read(p).unwrap()).unwrap() };
    let index = read(&layout.join("index.json"));
    read(&layout_blob(layout, &index["manifests"][0]["digest"]))
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
    let raw = run(Command::new("skopeo").arg("inspect").args(args));
    let value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("not JSON ({e}):\n{raw}"));
    (value, kiln::digest::sha256(raw.as_bytes()))
}
