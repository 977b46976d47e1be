//! Output files (`--tar`, `--digest-file`). A regular file, or a path that
//! does not exist yet, is replaced atomically: a temp file in the same
//! directory, then a rename. A device, a FIFO or a symlink is written
//! through, never replaced, so `/dev/stdout`, `<(...)` and a link the user
//! made keep working. `-` is stdout.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::tmp::{self, TempFile};

/// How a path is written.
#[derive(Debug, PartialEq)]
pub enum Kind {
    Stdout,
    /// Opened and written in place (a device, a FIFO, a symlink).
    Through,
    /// Written beside it and renamed over it (a regular file, or nothing yet).
    Replace,
}

/// How `path` would be written; an error for what kiln never writes to.
pub fn kind(path: &Path) -> Result<Kind> {
    if path.as_os_str() == "-" {
        return Ok(Kind::Stdout);
    }
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Kind::Replace),
        other => other.ctx("look at", path)?,
    };
    let t = meta.file_type();
    if t.is_file() {
        Ok(Kind::Replace)
    } else if t.is_symlink() || t.is_char_device() || t.is_block_device() || t.is_fifo() {
        Ok(Kind::Through)
    } else {
        let what = if t.is_dir() {
            "a directory"
        } else {
            "a socket"
        };
        Err(refused(
            path,
            format!("is {what}; name a file, a device, a FIFO or `-` for stdout"),
        ))
    }
}

/// Whether writing `path` writes to this process's stdout: `-`, or a path
/// such as /dev/stdout that is the same file.
pub fn is_stdout(path: &Path) -> bool {
    if path.as_os_str() == "-" {
        return true;
    }
    let (Ok(named), Ok(out)) = (fs::metadata(path), stdout().and_then(|f| f.metadata())) else {
        return false;
    };
    (named.dev(), named.ino()) == (out.dev(), out.ino())
}

fn stdout() -> io::Result<File> {
    Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
}

fn refused(path: &Path, msg: String) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        msg,
    }
}

/// An output being written; `finish` makes it visible at its path.
pub struct Output {
    file: File,
    path: PathBuf,
    temp: Option<TempFile>,
}

impl Output {
    pub fn open(path: &Path) -> Result<Output> {
        let (file, temp) = match kind(path)? {
            Kind::Stdout => (stdout().ctx("open", path)?, None),
            Kind::Through => (open_through(path)?, None),
            Kind::Replace => {
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                tmp::collect(parent);
                let name = path.file_name().map(|n| n.to_string_lossy());
                let temp = TempFile::new_in(parent, name.as_deref().unwrap_or("out"))?;
                (
                    temp.file().try_clone().ctx("open", temp.path())?,
                    Some(temp),
                )
            }
        };
        Ok(Output {
            file,
            path: path.to_path_buf(),
            temp,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Flush to disk and rename into place (a replaced file), or just let go.
    pub fn finish(self) -> Result<()> {
        match self.temp {
            Some(temp) => {
                self.file.sync_all().ctx("write", &self.path)?;
                drop(self.file);
                temp.persist(&self.path).ctx("write", &self.path)
            }
            None => Ok(()),
        }
    }
}

/// Open a device, a FIFO or what a symlink names, without creating
/// anything: a link to nothing is an error, not a new file elsewhere.
fn open_through(path: &Path) -> Result<File> {
    match OpenOptions::new().write(true).truncate(true).open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let target = fs::read_link(path).unwrap_or_default();
            Err(refused(
                path,
                format!(
                    "is a symlink to `{}`, which does not exist; kiln writes through links but does not create their targets: create the file or name another path",
                    target.display()
                ),
            ))
        }
        Err(e) => Err(e).ctx("open for writing", path),
    }
}

/// Write `bytes` as the whole content of `path`.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let out = Output::open(path)?;
    io::Write::write_all(&mut out.file(), bytes).ctx("write", path)?;
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn kinds() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("file"), "x").unwrap();
        symlink("file", d.join("link")).unwrap();
        assert_eq!(kind(Path::new("-")).unwrap(), Kind::Stdout);
        assert_eq!(kind(&d.join("new")).unwrap(), Kind::Replace);
        assert_eq!(kind(&d.join("file")).unwrap(), Kind::Replace);
        assert_eq!(kind(&d.join("link")).unwrap(), Kind::Through);
        assert_eq!(kind(Path::new("/dev/null")).unwrap(), Kind::Through);
        let e = kind(d).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn a_link_is_written_through_and_a_file_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("target"), "old old old").unwrap();
        symlink("target", d.join("link")).unwrap();
        write(&d.join("link"), b"new").unwrap();
        assert!(fs::symlink_metadata(d.join("link")).unwrap().is_symlink());
        assert_eq!(fs::read(d.join("target")).unwrap(), b"new");

        let before = fs::metadata(d.join("target")).unwrap().ino();
        write(&d.join("target"), b"newer").unwrap();
        assert_ne!(fs::metadata(d.join("target")).unwrap().ino(), before);
        let names: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temp file left: {names:?}");
    }

    #[test]
    fn a_dangling_link_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        symlink(d.join("elsewhere"), d.join("link")).unwrap();
        let e = write(&d.join("link"), b"x").unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(!d.join("elsewhere").exists());
    }
}
