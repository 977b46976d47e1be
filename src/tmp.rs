//! kiln's temporary files and directories. Each is named
//! `.kiln-tmp-<pid>-<pidns>-<n>-<label>` so that a later run can tell whose it
//! is, and listed while it exists so that SIGINT and SIGTERM can remove it
//! before kiln exits (see [`on_signals`]). A run that writes into a directory
//! first collects what a killed run left there ([`collect`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::error::{IoContext, Result};

pub const PREFIX: &str = ".kiln-tmp-";

/// Past this age a temp path is collected even when its pid looks alive
/// (the pid was reused, or belongs to another pid namespace).
const STALE: Duration = Duration::from_secs(24 * 3600);

/// Every temp path that exists now. Paths are created and listed under the
/// lock, so a signal never finds one that is on disk but not listed.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

fn live() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn forget(path: &Path) {
    let mut live = live();
    if let Some(i) = live.iter().position(|p| p == path) {
        live.swap_remove(i);
    }
}

/// Run `f` while no signal can clean up: for steps (two renames) that must
/// not be cut in half.
pub fn hold<T>(f: impl FnOnce() -> T) -> T {
    let _live = live();
    f()
}

/// The pid namespace, so that pids from another container are not judged
/// by this one's process table. 0 when unknown.
fn pid_ns() -> u64 {
    fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| {
            let text = l.to_string_lossy().into_owned();
            text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
        })
        .unwrap_or(0)
}

/// Create a fresh name in `dir` with `make`, under the lock, and list it.
fn create<T>(
    dir: &Path,
    label: &str,
    make: impl Fn(&Path) -> io::Result<T>,
) -> io::Result<(PathBuf, T)> {
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    let mut live = live();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{}-{n}-{label}", std::process::id(), pid_ns());
        let path = dir.join(name);
        match make(&path) {
            Ok(made) => {
                live.push(path.clone());
                return Ok((path, made));
            }
            // A run with the same pid left it (pids are reused): next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A temporary file, removed on drop unless persisted.
pub struct TempFile {
    file: File,
    path: PathBuf,
    done: bool,
}

impl TempFile {
    pub fn new_in(dir: &Path, label: &str) -> Result<TempFile> {
        let (path, file) = create(dir, label, |p| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(p)
        })
        .ctx("create a file in", dir)?;
        Ok(TempFile {
            file,
            path,
            done: false,
        })
    }

    /// A temp file with `src`'s bytes: a hard link where the filesystem
    /// allows, else a copy.
    pub fn copy_of(src: &Path, dir: &Path, label: &str) -> Result<TempFile> {
        let (path, file) = create(dir, label, |p| {
            match fs::hard_link(src, p) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
                Err(_) => {
                    OpenOptions::new().write(true).create_new(true).open(p)?;
                    fs::copy(src, p)?;
                }
                Ok(()) => {}
            }
            File::open(p)
        })
        .ctx("copy into", dir)?;
        Ok(TempFile {
            file,
            path,
            done: false,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename it to `dest`, replacing what is there.
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        forget(&self.path);
        self.done = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
            forget(&self.path);
        }
    }
}

/// A temporary directory, removed with its contents on drop unless kept.
pub struct TempDir {
    path: PathBuf,
    done: bool,
}

impl TempDir {
    pub fn new_in(dir: &Path, label: &str) -> Result<TempDir> {
        let (path, ()) =
            create(dir, label, |p| fs::create_dir(p)).ctx("create a directory in", dir)?;
        Ok(TempDir { path, done: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename it to `dest` (which must not be a non-empty directory).
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        forget(&self.path);
        self.done = true;
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.done {
            remove(&self.path);
            forget(&self.path);
        }
    }
}

/// Write kiln's own file (a cache entry, kiln.toml) whole: a temp file in
/// the same directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy());
    let temp = TempFile::new_in(parent, name.as_deref().unwrap_or("file"))?;
    io::Write::write_all(&mut temp.file(), bytes).ctx("write", path)?;
    temp.persist(path).ctx("write", path)
}

/// Remove a file or a whole tree. Another thread may still be adding files
/// to a tree: try again until it is gone.
fn remove(path: &Path) {
    for _ in 0..20 {
        let gone = match fs::symlink_metadata(path) {
            Err(_) => return,
            Ok(m) if m.is_dir() => fs::remove_dir_all(path),
            Ok(_) => fs::remove_file(path),
        };
        match gone {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Remove the temp paths in `dir` that a run no longer alive left (its pid
/// is gone from this pid namespace), or that are older than a day. Each
/// directory once per process; errors are ignored (collection is tidying).
pub fn collect(dir: &Path) {
    static SEEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    {
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        if seen.iter().any(|d| d == dir) {
            return;
        }
        seen.push(dir.to_path_buf());
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let (me, ns) = (std::process::id(), pid_ns());
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let mut parts = rest.split('-');
        let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
        let their_ns = parts.next().and_then(|p| p.parse::<u64>().ok());
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE);
        let dead = match (pid, their_ns) {
            (Some(pid), Some(n)) if n == ns && n != 0 => pid != me && !alive(pid),
            _ => false,
        };
        if dead || old {
            tracing::debug!(
                "removing {}, left by an earlier run",
                entry.path().display()
            );
            remove(&entry.path());
        }
    }
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; it only asks whether the pid exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Remove every listed temp path now; the lock stays held so that no new
/// one appears before the process exits.
fn remove_all_and_exit(code: i32) -> ! {
    let live = live();
    for path in live.iter() {
        remove(path);
    }
    crate::progress::clear();
    std::process::exit(code)
}

/// SIGINT and SIGTERM remove kiln's temp paths, then exit with 128 + the
/// signal. The signals are blocked in every thread and taken by one thread
/// with sigwait, so the cleanup is ordinary code rather than a handler.
/// Call before any other thread starts: threads inherit the mask (children
/// that std spawns get an empty one).
pub fn on_signals() {
    #[cfg(unix)]
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
    // pthread_sigmask and sigwait only read it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                loop {
                    let mut sig: libc::c_int = 0;
                    if libc::sigwait(&set, &mut sig) == 0 {
                        remove_all_and_exit(128 + sig);
                    }
                }
            });
        if spawned.is_err() {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_paths_are_listed_while_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let f = TempFile::new_in(dir.path(), "a.tar").unwrap();
        let d = TempDir::new_in(dir.path(), "layout").unwrap();
        let name = f.path().file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with(&format!("{PREFIX}{}-", std::process::id())));
        assert!(name.ends_with("-a_tar"), "{name}");
        assert!(live().contains(&f.path().to_path_buf()));
        let (fp, dp) = (f.path().to_path_buf(), d.path().to_path_buf());
        fs::write(dp.join("x"), "x").unwrap();
        drop(d);
        f.persist(&dir.path().join("out")).unwrap();
        assert!(!dp.exists() && !fp.exists());
        assert!(!live().contains(&fp) && !live().contains(&dp));
    }

    #[test]
    fn collect_removes_what_dead_runs_left_only() {
        let dir = tempfile::tempdir().unwrap();
        let ns = pid_ns();
        // A pid above the kernel's maximum is never alive.
        let dead = dir.path().join(format!("{PREFIX}4194999-{ns}-0-layout"));
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("blob"), "x").unwrap();
        let mine = TempFile::new_in(dir.path(), "t").unwrap();
        let other_ns = dir.path().join(format!("{PREFIX}4194999-{}-0-t", ns + 1));
        fs::write(&other_ns, "x").unwrap();
        let user = dir.path().join("kiln-tmp-not-ours");
        fs::write(&user, "x").unwrap();
        collect(dir.path());
        assert_eq!(dead.exists(), ns == 0, "a dead run's dir goes");
        assert!(mine.path().exists(), "this run's file stays");
        assert!(
            other_ns.exists(),
            "another namespace's file waits for its age"
        );
        assert!(user.exists());
    }
}
