//! Write the OCI image layout. Everything goes to a staging directory next
//! to the destination; a new destination is a rename, and an earlier layout
//! is swapped out in one step (renameat2 RENAME_EXCHANGE) and then deleted,
//! so the path always holds a complete layout, the old one or the new.

use std::fs;
use std::path::{Path, PathBuf};

use crate::assemble::Assembled;
use crate::error::{Error, IoContext, Result};
use crate::oci::{self, Descriptor, Index};
use crate::store::{BlobStore, Staging};
use crate::supply::{self, Attachments};
use crate::tmp::{self, TempDir};

/// Complete `staging`, the store the build wrote `assembled`'s blobs to,
/// into a layout (base blobs, oci-layout, index.json naming the one image's
/// manifest or the index of several) and move it to `dest`.
///
/// Attachments (whose blobs are in `staging` too) are found as in a
/// registry without the referrers API: index.json names each signature
/// under cosign's tag (`sha256-<hex>.sig`) and each image's referrers index
/// under `sha256-<hex>`. Without attachments index.json names the image alone.
pub fn write(
    assembled: &Assembled,
    staging: Staging,
    dest: &Path,
    attachments: &[Attachments],
) -> Result<()> {
    let (top, tag) = (assembled.top(), &assembled.tag);
    let store = staging.store();
    for layer in assembled.images.iter().flat_map(|i| &i.layers) {
        if layer.blob.parent() != Some(&store.blobs()) {
            store.link_in(&layer.blob, &layer.descriptor.digest)?;
        }
    }
    let staged = staging.path();
    let layout = staged.join("oci-layout");
    fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).ctx("write", &layout)?;
    let mut manifest = top.clone();
    manifest
        .annotations
        .insert(oci::REF_NAME.to_string(), tag.to_string());
    let mut manifests = vec![manifest];
    for a in attachments {
        manifests.extend(attachment_entries(a, store)?);
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(oci::OCI_INDEX.to_string()),
        manifests,
        annotations: Default::default(),
    };
    let index_path = staged.join("index.json");
    fs::write(
        &index_path,
        serde_json::to_vec(&index).expect("index serializes"),
    )
    .ctx("write", &index_path)?;
    replace_dir(staging.into_dir(), dest)
}

/// The index.json entries for one image's attachments: its signature under
/// its tag, and the index of its referrers (stored here) under `sha256-<hex>`.
fn attachment_entries(a: &Attachments, store: &BlobStore) -> Result<Vec<Descriptor>> {
    let tagged = |desc: &Descriptor, tag: String| {
        let mut d = desc.clone();
        d.annotations.insert(oci::REF_NAME.to_string(), tag);
        d
    };
    let mut out = Vec::new();
    for artifact in &a.artifacts {
        if let Some(tag) = &artifact.tag {
            out.push(tagged(&artifact.descriptor, tag.clone()));
        }
    }
    let referrers: Vec<_> = a.referrers().map(|r| r.referrer()).collect();
    if let (false, Some(tag)) = (
        referrers.is_empty(),
        supply::referrers_tag(&a.subject.digest),
    ) {
        let bytes = supply::merge_referrers(None, &referrers);
        let desc = supply::descriptor(oci::OCI_INDEX, &bytes);
        store.put(&desc.digest, &bytes)?;
        out.push(tagged(&desc, tag));
    }
    Ok(out)
}

/// Where the layout for `--oci path` goes: `path` itself, or what a
/// symlink there names. An error unless that is nothing yet, an empty
/// directory or an OCI layout (a directory with an `oci-layout` file).
pub fn destination(path: &Path) -> Result<PathBuf> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        other => other.ctx("look at", path)?,
    };
    let dest = match meta.is_symlink() {
        // Through the link: the layout replaces what it names, not the link.
        true => path.canonicalize().map_err(|_| Error::Output {
            path: path.to_path_buf(),
            msg: "is a symlink to nothing; kiln writes a layout through a link only to a directory: create it or name another --oci path".into(),
        })?,
        false => path.to_path_buf(),
    };
    replaceable(&dest)?;
    Ok(dest)
}

fn replaceable(dest: &Path) -> Result<()> {
    let refuse = |msg: &str| Error::Output {
        path: dest.to_path_buf(),
        msg: msg.to_string(),
    };
    let meta = fs::metadata(dest).ctx("look at", dest)?;
    if !meta.is_dir() {
        return Err(refuse(
            "is not a directory; --oci names a directory for the OCI image layout: remove it or name another path",
        ));
    }
    let empty = fs::read_dir(dest).ctx("read", dest)?.next().is_none();
    if !empty && !dest.join("oci-layout").is_file() {
        return Err(refuse(
            "is not an OCI image layout; kiln will not replace it (it has files but no oci-layout file): empty it or name another --oci directory",
        ));
    }
    Ok(())
}

/// Put `staged` at `dest`, replacing an earlier layout there but nothing else.
fn replace_dir(staged: TempDir, dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            staged.persist(dest).ctx("move the layout to", dest)
        }
        _ => {
            replaceable(dest)?;
            // After the swap the temp dir holds the old layout, and dropping it deletes that.
            tmp::hold(|| swap(staged.path(), dest)).ctx("move the layout to", dest)
        }
    }
}

/// Exchange two directories in one step. Where the filesystem cannot
/// (EINVAL, ENOSYS), three renames under the signal lock end the same way,
/// but a SIGKILL between the first two leaves `b` missing (the old layout
/// is then at `b` + "-old").
fn swap(a: &Path, b: &Path) -> std::io::Result<()> {
    match exchange(a, b) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            swap_by_renames(a, b)
        }
        other => other,
    }
}

fn swap_by_renames(a: &Path, b: &Path) -> std::io::Result<()> {
    let mut aside = a.as_os_str().to_owned();
    aside.push("-old");
    let aside = PathBuf::from(aside);
    fs::rename(b, &aside)?;
    if let Err(e) = fs::rename(a, b) {
        let _ = fs::rename(&aside, b);
        return Err(e);
    }
    fs::rename(&aside, a)
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &Path, marker: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("oci-layout"), "{}").unwrap();
        fs::write(dir.join("index.json"), marker).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_old_layout_is_swapped_out_and_deleted() {
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("out");
        layout(&dest, "old");
        let staged = TempDir::new_in(work.path(), "out").unwrap();
        layout(staged.path(), "new");
        replace_dir(staged, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("index.json")).unwrap(), "new");
        assert_eq!(names(work.path()), ["out"]);
    }

    #[test]
    fn the_fallback_ends_like_the_exchange() {
        let work = tempfile::tempdir().unwrap();
        let (a, b) = (work.path().join("a"), work.path().join("b"));
        layout(&a, "a");
        layout(&b, "b");
        swap_by_renames(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(a.join("index.json")).unwrap(), "b");
        assert_eq!(fs::read_to_string(b.join("index.json")).unwrap(), "a");
        swap(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(a.join("index.json")).unwrap(), "a");
        assert_eq!(names(work.path()), ["a", "b"]);
    }

    #[test]
    fn what_is_not_a_layout_is_refused_and_kept() {
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("photos");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("cat.jpg"), "meow").unwrap();
        let e = destination(&dest).unwrap_err().to_string();
        assert!(e.contains("no oci-layout file"), "{e}");
        assert!(e.contains("kiln will not replace it"), "{e}");
        let staged = TempDir::new_in(work.path(), "photos").unwrap();
        layout(staged.path(), "new");
        assert!(replace_dir(staged, &dest).is_err());
        assert_eq!(names(&dest), ["cat.jpg"]);
        assert_eq!(names(work.path()), ["photos"]);
        fs::write(work.path().join("file"), "x").unwrap();
        let e = destination(&work.path().join("file"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a directory"), "{e}");
    }

    #[test]
    fn a_link_to_a_layout_is_written_through() {
        let work = tempfile::tempdir().unwrap();
        let real = work.path().join("real");
        layout(&real, "old");
        std::os::unix::fs::symlink(&real, work.path().join("link")).unwrap();
        let dest = destination(&work.path().join("link")).unwrap();
        assert_eq!(dest, real.canonicalize().unwrap());
    }
}
