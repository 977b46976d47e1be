//! Write one planned layer in one pass: tar -> sha256 (diff_id) -> gzip
//! (block-parallel) -> sha256 (digest) -> file. Headers are built field by field so that only
//! the spec decides what goes in: fixed mtime, given uid/gid/mode, no user
//! or group names, no atime/ctime, and no xattrs but the file capabilities
//! the spec names.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::layer::compress::Encoder;
use crate::oci::Compression;
use crate::oci::digest::HashWriter;
use crate::plan::{Content, Entry, LayerPlan};
use crate::progress::Bar;

/// A finished layer blob on disk.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
    pub diff_size: u64,
    /// False for a cache hit whose bytes have not been re-hashed yet.
    pub verified: bool,
    pub source: Source,
    /// A repository on the push registry that has the blob (the cache
    /// repository), to mount it from; `path` may not exist then.
    pub mount_from: Option<(String, String)>,
}

/// Where a layer's bytes came from, for the build summary.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Unchanged from the base image.
    Base,
    /// Written by this build.
    Built,
    /// The local layer cache.
    Cache,
    /// The shared cache repository (`--cache-repo`).
    CacheRepo,
}

/// ustar's name field holds 100 bytes; longer names go in a PAX record.
const USTAR_NAME: usize = 100;
/// ustar's size field holds 11 octal digits.
const USTAR_MAX_SIZE: u64 = 0o77777777777;

pub fn write(
    plan: &LayerPlan,
    out: &Path,
    mtime: u64,
    compression: Compression,
    level: u32,
    tee: Option<Box<dyn Write + Send>>,
    bar: &Bar,
) -> Result<LayerBlob> {
    let file = File::create(out).ctx("create", out)?;
    let blob = HashWriter::new(Tee {
        file: BufWriter::with_capacity(1 << 20, file),
        tee,
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gzip = Encoder::new(blob, compression, level, threads).ctx("write", out)?;
    let mut tar = HashWriter::new(Counted { inner: gzip, bar });
    for (path, entry) in &plan.entries {
        write_entry(&mut tar, path, entry, mtime)?;
    }
    // Two zero blocks end a tar archive.
    tar.write_all(&[0u8; 1024]).ctx("write", out)?;
    let (counted, diff_id, diff_size) = tar.finish();
    let blob = counted.inner.finish().ctx("write", out)?;
    let (writer, digest, size) = blob.finish();
    writer
        .file
        .into_inner()
        .map_err(|e| e.into_error())
        .ctx("write", out)?;
    Ok(LayerBlob {
        path: out.to_path_buf(),
        digest,
        size,
        diff_id,
        diff_size,
        verified: true,
        source: Source::Built,
        mount_from: None,
    })
}

/// Tar bytes on their way to the compressor, counted for the progress bar.
struct Counted<'a, W> {
    inner: W,
    bar: &'a Bar,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The blob file, and optionally a second reader of the same bytes (an
/// upload in progress; see `stream`). Only the file's errors count.
struct Tee {
    file: BufWriter<File>,
    tee: Option<Box<dyn Write + Send>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(t) = &mut self.tee {
            if t.write_all(&buf[..n]).is_err() {
                self.tee = None;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn write_entry(out: &mut impl Write, path: &str, entry: &Entry, mtime: u64) -> Result<()> {
    let rel = path.trim_start_matches('/');
    let (kind, name, size, link) = match &entry.content {
        Content::Dir => (tar::EntryType::Directory, format!("{rel}/"), 0, None),
        Content::File {
            hardlink: Some(target),
            ..
        } => (
            tar::EntryType::Link,
            rel.to_string(),
            0,
            Some(target.trim_start_matches('/')),
        ),
        Content::File { size, .. } => (tar::EntryType::Regular, rel.to_string(), *size, None),
        Content::Bytes(b) => (
            tar::EntryType::Regular,
            rel.to_string(),
            b.len() as u64,
            None,
        ),
        Content::Symlink(target) => (
            tar::EntryType::Symlink,
            rel.to_string(),
            0,
            Some(target.as_str()),
        ),
    };
    let io_err = |e: io::Error| Error::Io {
        action: "write layer entry",
        path: PathBuf::from(path),
        source: e,
    };

    let mut pax = Vec::new();
    if name.len() > USTAR_NAME {
        pax.extend(pax_record("path", name.as_bytes()));
    }
    if let Some(target) = link.filter(|t| t.len() > USTAR_NAME) {
        pax.extend(pax_record("linkpath", target.as_bytes()));
    }
    if size > USTAR_MAX_SIZE {
        pax.extend(pax_record("size", size.to_string().as_bytes()));
    }
    // A hard link shares its target's inode, xattrs included.
    if entry.caps != 0 && kind != tar::EntryType::Link {
        pax.extend(pax_record(
            "SCHILY.xattr.security.capability",
            &vfs_cap_data(entry.caps),
        ));
    }
    if !pax.is_empty() {
        let mut h = base_header(tar::EntryType::XHeader, mtime, 0, 0, 0o644);
        set_field(&mut h.as_old_mut().name, b"PaxHeader");
        h.set_size(pax.len() as u64);
        h.set_cksum();
        out.write_all(h.as_bytes()).map_err(io_err)?;
        out.write_all(&pax).map_err(io_err)?;
        pad(out, pax.len() as u64).map_err(io_err)?;
    }

    let mut h = base_header(kind, mtime, entry.uid, entry.gid, entry.mode);
    set_field(&mut h.as_old_mut().name, name.as_bytes());
    if let Some(target) = link {
        set_field(&mut h.as_old_mut().linkname, target.as_bytes());
    }
    h.set_size(size);
    h.set_cksum();
    out.write_all(h.as_bytes()).map_err(io_err)?;

    match &entry.content {
        Content::File {
            hardlink: Some(_), ..
        } => {}
        Content::File { src, size, .. } => copy_exact(src, *size, out)?,
        Content::Bytes(b) => out.write_all(b).map_err(io_err)?,
        Content::Dir | Content::Symlink(_) => {}
    }
    pad(out, size).map_err(io_err)
}

/// The `security.capability` xattr as `setcap CAPS=ep` writes it: struct
/// vfs_cap_data of linux/capability.h, revision 2 with the effective flag,
/// the permitted mask in two little-endian halves, nothing inheritable.
pub(crate) fn vfs_cap_data(caps: u64) -> [u8; 20] {
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;
    let mut v = [0u8; 20];
    v[0..4].copy_from_slice(&(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE).to_le_bytes());
    v[4..8].copy_from_slice(&(caps as u32).to_le_bytes());
    v[12..16].copy_from_slice(&((caps >> 32) as u32).to_le_bytes());
    v
}

fn base_header(kind: tar::EntryType, mtime: u64, uid: u32, gid: u32, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mtime(mtime);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mode(mode);
    h
}

/// Copy a field, cut at the field's length: the full value is in a PAX record.
fn set_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// `"<len> key=value\n"`, where len counts the whole record, its own digits included.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

/// Copy exactly `size` bytes: a file that changed since it was listed is an error,
/// not a silently different layer.
fn copy_exact(src: &Path, size: u64, out: &mut impl Write) -> Result<()> {
    let file = File::open(src).ctx("open", src)?;
    let mut limited = file.take(size);
    // 256 KiB at a time: io::copy's 8 KiB pieces cost a hash and compressor
    // call each, which showed on trees of large files.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 256 << 10]);
    }
    let copied = BUF
        .with_borrow_mut(|buf| -> io::Result<u64> {
            let mut total = 0;
            loop {
                let n = limited.read(buf)?;
                if n == 0 {
                    return Ok(total);
                }
                out.write_all(&buf[..n])?;
                total += n as u64;
            }
        })
        .ctx("copy", src)?;
    let mut probe = [0u8; 1];
    let grew = limited.into_inner().read(&mut probe).ctx("read", src)? > 0;
    if copied != size || grew {
        return Err(
            Error::source_path(src, "changed while the layer was being written")
                .with_hint("build again once the file is complete"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
