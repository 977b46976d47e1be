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
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan(entries: Vec<(&str, Entry)>) -> LayerPlan {
        LayerPlan {
            created_by: vec![],
            entries: entries
                .into_iter()
                .map(|(p, e)| (p.to_string(), e))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    /// name, uid, gid, mode, data, link target
    type Found = (String, u64, u64, u32, Vec<u8>, Option<String>);

    fn read_back(blob: &LayerBlob) -> Vec<Found> {
        let f = File::open(&blob.path).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let (uid, gid, mode) = (
                    e.header().uid().unwrap(),
                    e.header().gid().unwrap(),
                    e.header().mode().unwrap(),
                );
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, uid, gid, mode, data, link)
            })
            .collect()
    }

    #[test]
    fn layers_are_deterministic_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("/d/{}", "x".repeat(150));
        let make = || {
            plan(vec![
                (
                    "/d",
                    Entry {
                        content: Content::Dir,
                        uid: 1,
                        gid: 2,
                        mode: 0o750,
                        caps: 0,
                    },
                ),
                (
                    "/d/f",
                    Entry {
                        content: Content::Bytes(b"hi".to_vec()),
                        uid: 10001,
                        gid: 10001,
                        mode: 0o644,
                        caps: 0,
                    },
                ),
                (
                    long.as_str(),
                    Entry {
                        content: Content::Symlink("t".repeat(120)),
                        uid: 0,
                        gid: 0,
                        mode: 0o777,
                        caps: 0,
                    },
                ),
            ])
        };
        let a = write(
            &make(),
            &dir.path().join("a"),
            1_700_000_000,
            Compression::Gzip,
            1,
            None,
            &Bar::start(crate::progress::Step::Build, "test", 0),
        )
        .unwrap();
        let b = write(
            &make(),
            &dir.path().join("b"),
            1_700_000_000,
            Compression::Gzip,
            1,
            None,
            &Bar::start(crate::progress::Step::Build, "test", 0),
        )
        .unwrap();
        assert_eq!((a.digest.clone(), a.diff_id.clone()), (b.digest, b.diff_id));
        let entries = read_back(&a);
        assert_eq!(entries[0].0, "d/");
        assert_eq!((entries[0].1, entries[0].2, entries[0].3), (1, 2, 0o750));
        assert_eq!(entries[1].0, "d/f");
        assert_eq!(entries[1].4, b"hi");
        assert_eq!(entries[2].0, long.trim_start_matches('/'));
        assert_eq!(entries[2].5.as_deref(), Some("t".repeat(120).as_str()));
    }

    #[test]
    fn capabilities_are_a_pax_xattr_and_hard_links_carry_no_data() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, "data").unwrap();
        let file = |hardlink: Option<&str>| Entry {
            content: Content::File {
                src: src.clone(),
                size: 4,
                stamp: crate::plan::sources::Stamp::default(),
                hardlink: hardlink.map(str::to_string),
            },
            uid: 0,
            gid: 0,
            mode: 0o755,
            caps: 1 << 10,
        };
        let p = plan(vec![("/a", file(None)), ("/b", file(Some("/a")))]);
        let bar = Bar::start(crate::progress::Step::Build, "test", 0);
        let blob = write(
            &p,
            &dir.path().join("out"),
            0,
            Compression::Gzip,
            1,
            None,
            &bar,
        )
        .unwrap();
        let f = File::open(&blob.path).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let xattr = e.pax_extensions().unwrap().and_then(|x| {
                x.map(Result::unwrap)
                    .find(|x| x.key() == Ok("SCHILY.xattr.security.capability"))
                    .map(|x| x.value_bytes().to_vec())
            });
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            seen.push((
                e.header().entry_type(),
                e.header().size().unwrap(),
                link,
                xattr,
            ));
        }
        let cap = vec![1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            seen,
            [
                (tar::EntryType::Regular, 4, None, Some(cap)),
                (tar::EntryType::Link, 0, Some("a".into()), None),
            ]
        );
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record("path", b"abc");
        assert_eq!(r, b"12 path=abc\n");
        let long = vec![b'a'; 92];
        let r = pax_record("path", &long);
        assert_eq!(
            r.len().to_string(),
            String::from_utf8_lossy(&r).split(' ').next().unwrap()
        );
    }

    #[test]
    fn a_file_that_changed_size_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, "four").unwrap();
        let p = plan(vec![(
            "/f",
            Entry {
                content: Content::File {
                    src: src.clone(),
                    size: 3,
                    stamp: crate::plan::sources::Stamp {
                        mtime_ns: 0,
                        ctime_ns: 0,
                        inode: 0,
                        device: 0,
                    },
                    hardlink: None,
                },
                uid: 0,
                gid: 0,
                mode: 0o644,
                caps: 0,
            },
        )]);
        let bar = Bar::start(crate::progress::Step::Build, "test", 0);
        let err = write(
            &p,
            &dir.path().join("out"),
            0,
            Compression::Gzip,
            1,
            None,
            &bar,
        )
        .unwrap_err();
        assert!(err.to_string().contains("changed while"), "{err}");
    }
}
