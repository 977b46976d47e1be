//! A real Debian base with Python for the tests that run apps: debootstrap
//! (minbase plus python3) from the mirror this machine's apt uses, made into
//! an OCI layout by umoci. It takes a minute or two, so it is made once and
//! kept outside the repository, in `$KILN_TEST_CACHE` or
//! `$XDG_CACHE_HOME/kiln-tests` or `$HOME/.cache/kiln-tests`, under a name
//! keyed by suite, mirror and packages. It is written to a temp dir and
//! renamed into place, under a lock, so tests running in parallel make it once.

use std::fs;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{have, run};

pub const SUITE: &str = "bookworm";
/// python-is-python3 gives `python`, which the seeds' healthchecks call.
pub const PACKAGES: &[&str] = &["python3", "python-is-python3"];
/// Bump when the recipe below changes what ends up in the layout.
const RECIPE: &str = "1";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The cached base: an OCI layout holding the image tagged `SUITE`.
pub struct DebianPython {
    pub layout: PathBuf,
    /// The base's `python3` version, `3.11` for bookworm.
    pub python: String,
}

impl DebianPython {
    /// The base as a spec names it: `oci:/ABS/LAYOUT:bookworm`.
    pub fn reference(&self) -> String {
        format!("oci:{}:{SUITE}", self.layout.display())
    }
}

/// The Debian base with Python, made if the cache lacks it. None (the test
/// skipped) when a tool is missing; under CI=true that fails the test.
pub fn python_base() -> Option<DebianPython> {
    if !have(&["debootstrap", "umoci"]) {
        return None;
    }
    let mirror = apt_mirror();
    let key = kiln::oci::digest::sha256(
        format!(
            "{RECIPE}\n{SUITE}\nminbase\n{mirror}\n{}",
            PACKAGES.join(",")
        )
        .as_bytes(),
    );
    let key = &key.trim_start_matches("sha256:")[..16];
    let root = cache_root();
    fs::create_dir_all(&root).unwrap();
    let dir = root.join(format!("debian-{SUITE}-python-{key}"));
    if !dir.join("python-version").exists() {
        let _lock = Lock::take(&root.join(format!("debian-{SUITE}-python-{key}.lock")));
        // Another test may have made it while this one waited for the lock.
        if !dir.join("python-version").exists() {
            make(&root, &dir, &mirror);
        }
    }
    let python = fs::read_to_string(dir.join("python-version")).unwrap();
    Some(DebianPython {
        layout: dir.join("layout"),
        python: python.trim().to_string(),
    })
}

/// debootstrap into a temp dir next to `dir`, then umoci, then one rename.
fn make(root: &Path, dir: &Path, mirror: &str) {
    let tmp = root.join(format!(".tmp-{}-{}", std::process::id(), SUITE));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let rootfs = tmp.join("rootfs");
    eprintln!(
        "making a Debian {SUITE} base with python3 from {mirror} (once; cached in {})",
        root.display()
    );
    run(Command::new(super::which("debootstrap").unwrap())
        .args([
            "--variant=minbase",
            &format!("--include={}", PACKAGES.join(",")),
        ])
        .arg(SUITE)
        .arg(&rootfs)
        .arg(mirror));
    // What Debian's own images leave out: downloaded packages, package lists,
    // and device nodes (the runtime mounts its own /dev).
    for sub in ["var/cache/apt/archives", "var/lib/apt/lists", "dev"] {
        for entry in fs::read_dir(rootfs.join(sub)).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p).unwrap();
            } else {
                fs::remove_file(&p).unwrap();
            }
        }
    }
    let python = fs::read_link(rootfs.join("usr/bin/python3")).unwrap();
    let python = python
        .to_str()
        .unwrap()
        .trim_start_matches("python")
        .to_string();
    assert!(python.starts_with("3."), "python3 -> {python}");

    let layout = tmp.join("layout");
    let image = super::umoci_image(&layout, SUITE, &rootfs);
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.env",
        PATH_ENV,
        "--config.cmd",
        "python3",
    ]));
    run(Command::new("umoci").args(["gc", "--layout"]).arg(&layout));
    fs::remove_dir_all(&rootfs).unwrap();
    fs::write(tmp.join("python-version"), format!("{python}\n")).unwrap();
    let _ = fs::remove_dir_all(dir);
    fs::rename(&tmp, dir).unwrap();
}

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_TEST_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME must be set");
    base.join("kiln-tests")
}

/// The Debian mirror apt uses here: the first `deb` source for `SUITE` in
/// /etc/apt/sources.list or sources.list.d (one-line or deb822 form).
pub fn apt_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let name = file.to_string_lossy();
        let found = if name.ends_with(".sources") {
            deb822_mirror(&text)
        } else if name.ends_with(".list") {
            one_line_mirror(&text)
        } else {
            None
        };
        if let Some(uri) = found {
            return uri;
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// `deb [opts] URI bookworm main`.
fn one_line_mirror(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace().peekable();
        if words.next()? != "deb" {
            return None;
        }
        if words.peek()?.starts_with('[') {
            // Options run to the word that ends with `]`.
            for w in words.by_ref() {
                if w.ends_with(']') {
                    break;
                }
            }
        }
        let uri = words.next()?;
        (words.next()? == SUITE).then(|| uri.to_string())
    })
}

/// Paragraphs of `Types: deb`, `URIs: ...`, `Suites: bookworm ...`.
fn deb822_mirror(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|para| {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let types = field("Types:")?;
        let suites = field("Suites:")?;
        let uri = field("URIs:")?;
        let enabled = field("Enabled:").is_none_or(|v| v != "no");
        (enabled
            && types.split_whitespace().any(|t| t == "deb")
            && suites.split_whitespace().any(|s| s == SUITE))
        .then(|| uri.split_whitespace().next().unwrap().to_string())
    })
}

/// An exclusive flock(2) on a file, released when dropped (or when the
/// process dies, so a killed run leaves no stale lock).
struct Lock(fs::File);

impl Lock {
    fn take(path: &Path) -> Lock {
        let mut file = fs::File::options()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // SAFETY: flock on a descriptor this File owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        let _ = writeln!(file, "{}", std::process::id());
        Lock(file)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[test]
fn mirrors_are_read_from_both_source_forms() {
    assert_eq!(
        one_line_mirror(
            "# x\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
        ),
        Some("http://m.example/debian".to_string())
    );
    assert_eq!(
        one_line_mirror("deb-src http://m/debian bookworm main\n"),
        None
    );
    let deb822 = "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n\n\
                  Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n";
    assert_eq!(
        deb822_mirror(deb822),
        Some("http://m.example/debian".to_string())
    );
}
