//! Progress output as a user sees it: bars in a real terminal (a tmux pane),
//! finished steps left as one line each, nothing half-drawn at the end; and
//! plain lines when stderr is not a terminal or with --quiet.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Registry, build_json, have, kiln_build, noise_bytes, web_fixture, write_spec};

/// A shell in a detached tmux pane of its own server, 200 columns wide.
struct Pane {
    socket: String,
}

impl Pane {
    fn start(script: &Path) -> Pane {
        // A server of its own per pane: a second pane on the socket of one
        // just killed can meet that server still shutting down.
        static PANES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = PANES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("kiln-progress-{}-{n}", std::process::id());
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "200", "-y", "60"])
            .arg(format!("sh {}", script.display()))
            .status()
            .unwrap();
        assert!(status.success(), "tmux did not start");
        Pane { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every distinct screen until the script prints its exit line.
    fn frames_until_exit(&self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut frames: Vec<String> = Vec::new();
        loop {
            let screen = self.screen();
            if frames.last() != Some(&screen) {
                frames.push(screen.clone());
            }
            if screen.contains("KILN-EXIT=") {
                return frames;
            }
            assert!(
                Instant::now() < deadline,
                "no exit line after {limit:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(40));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// Two 64 MiB files of incompressible bytes, so that writing a layer takes a while.
fn big_spec(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::write(dir.join("data/one"), noise_bytes(64 << 20, 1)).unwrap();
    fs::write(dir.join("data/two"), noise_bytes(64 << 20, 2)).unwrap();
    write_spec(
        dir,
        r#"[image]
name = "big"
base = "scratch"

[[copy]]
src = "data/one"
dest = "/data/one"

[[copy]]
src = "data/two"
dest = "/data/two"
layer = "two"

[policy]
enforce = false
"#,
    )
}

/// A script for the pane: kiln with the test's environment, then its exit code.
fn script(dir: &Path, name: &str, args: &[String]) -> PathBuf {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let path = dir.join(name);
    fs::write(
        &path,
        format!(
            "export TERM=xterm-256color KILN_RETRY_DELAY_MS=50\nunset RUST_LOG SOURCE_DATE_EPOCH\n'{}' {}\necho KILN-EXIT=$?\nsleep 600\n",
            env!("CARGO_BIN_EXE_kiln"),
            quoted.join(" ")
        ),
    )
    .unwrap();
    path
}

fn is_bar(line: &str) -> bool {
    line.contains("ETA") && line.contains("/s") && line.contains('[')
}

fn lines_with<'a>(screen: &'a str, needle: &str) -> Vec<&'a str> {
    screen.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn bars_on_a_terminal_end_as_one_line_per_step() {
    if !have(&["tmux", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = big_spec(work.path());
    let registry = Registry::start();
    let cache = work.path().join("cache");
    let base_args = |repo: &str| -> Vec<String> {
        vec![
            "build".into(),
            spec.display().to_string(),
            "--cache-dir".into(),
            cache.display().to_string(),
            "--push".into(),
            format!("{}/{repo}:1", registry.addr),
        ]
    };

    // First build: layers are written (and uploaded while written).
    let pane = Pane::start(&script(work.path(), "first.sh", &base_args("big")));
    let frames = pane.frames_until_exit(Duration::from_secs(240));
    let last = frames.last().unwrap();
    assert!(last.contains("KILN-EXIT=0"), "{last}");
    let bar_frames: Vec<&String> = frames
        .iter()
        .filter(|f| lines_with(f, "build layer").iter().any(|l| is_bar(l)))
        .collect();
    assert!(
        !bar_frames.is_empty(),
        "no build bar was ever drawn; frames:\n{}",
        frames.join("\n----\n")
    );
    let bar = lines_with(bar_frames[0], "build layer")
        .into_iter()
        .find(|l| is_bar(l))
        .unwrap();
    assert!(bar.contains("MiB"), "bar shows bytes: {bar}");
    // The end: no bar left, one line per layer, the reference last on stdout.
    assert!(
        !last.lines().any(is_bar),
        "a bar was left on screen:\n{last}"
    );
    assert_eq!(
        lines_with(last, "built layer 1 COPY data/one").len(),
        1,
        "{last}"
    );
    assert_eq!(
        lines_with(last, "built layer 2 COPY data/two").len(),
        1,
        "{last}"
    );
    let reference = format!("{}/big:1@sha256:", registry.addr);
    let result_line = last
        .lines()
        .position(|l| l.starts_with(&reference))
        .unwrap_or_else(|| panic!("no result line:\n{last}"));
    let built_line = last
        .lines()
        .position(|l| l.contains("built layer"))
        .unwrap();
    assert!(built_line < result_line, "{last}");
    drop(pane);

    // Second build into another repository: layers come from the cache and
    // are uploaded from disk, each with a push bar while it goes.
    let pane = Pane::start(&script(work.path(), "second.sh", &base_args("again")));
    let frames = pane.frames_until_exit(Duration::from_secs(240));
    let last = frames.last().unwrap();
    assert!(last.contains("KILN-EXIT=0"), "{last}");
    assert!(
        frames
            .iter()
            .any(|f| lines_with(f, "push sha256:").iter().any(|l| is_bar(l))),
        "no push bar was ever drawn; frames:\n{}",
        frames.join("\n----\n")
    );
    assert!(
        !last.lines().any(is_bar),
        "a bar was left on screen:\n{last}"
    );
    assert_eq!(lines_with(last, "pushed sha256:").len(), 3, "{last}");
    assert_eq!(lines_with(last, ", cached").len(), 2, "{last}");

    // --quiet on a terminal: no bars and no step lines, only the result.
    let mut args = base_args("quiet");
    args.push("--quiet".into());
    let pane = Pane::start(&script(work.path(), "quiet.sh", &args));
    let frames = pane.frames_until_exit(Duration::from_secs(240));
    let last = frames.last().unwrap();
    assert!(last.contains("KILN-EXIT=0"), "{last}");
    assert!(
        !frames.iter().any(|f| f.lines().any(is_bar)),
        "--quiet drew a bar:\n{}",
        frames.join("\n----\n")
    );
    assert_eq!(lines_with(last, "pushed sha256:").len(), 0, "{last}");
    assert_eq!(lines_with(last, "built layer").len(), 0, "{last}");
    assert_eq!(lines_with(last, "/quiet:1@sha256:").len(), 1, "{last}");
}

#[test]
fn plain_lines_when_stderr_is_not_a_terminal() {
    let work = tempfile::tempdir().unwrap();
    let dir = web_fixture();
    let spec = dir.path().join("kiln.toml");
    let cache = work.path().join("cache");
    let layout = work.path().join("out");
    let oci = ["--oci", layout.to_str().unwrap()];
    let out = kiln_build(&spec, &cache, &oci);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    for layer in 1..=3 {
        assert_eq!(
            lines_with(&stderr, &format!("built layer {layer} ")).len(),
            1,
            "{stderr}"
        );
    }
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    assert!(!stderr.contains("ETA"), "{stderr}");
    // stdout holds the result alone.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("web:latest@sha256:"), "{stdout}");

    // A second build: every layer from the cache, still one line each.
    let json = build_json(&spec, &cache, &oci);
    assert_eq!(json["images"][0]["layers"].as_array().unwrap().len(), 3);
}
