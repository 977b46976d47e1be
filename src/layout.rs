//! Write the OCI image layout. Everything goes to a staging directory next
//! to the destination and is renamed into place only when complete, so an
//! interrupted build never leaves a layout that a later run would trust.

use std::fs;
use std::path::{Path, PathBuf};

use crate::assemble::Image;
use crate::error::{Error, IoContext, Result};
use crate::oci::{self, Descriptor, Index};

pub struct Staging {
    dir: tempfile::TempDir,
    scratch: std::sync::atomic::AtomicUsize,
}

impl Staging {
    /// A staging directory in the same directory as `target`, so the final rename is atomic.
    pub fn near(target: &Path) -> Result<Staging> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).ctx("create directory", &parent)?;
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{name}.kiln-tmp-"))
            .tempdir_in(&parent)
            .ctx("create a staging directory in", &parent)?;
        let blobs = dir.path().join("blobs/sha256");
        fs::create_dir_all(&blobs).ctx("create directory", &blobs)?;
        Ok(Staging {
            dir,
            scratch: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = oci::sha256_hex(digest).expect("kiln computes sha256 digests");
        self.dir.path().join("blobs/sha256").join(hex)
    }

    /// A fresh scratch file for a layer being written, renamed once its digest is known.
    pub fn scratch_path(&self) -> PathBuf {
        let n = self
            .scratch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.path().join(format!("layer-{n}.tmp"))
    }

    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(digest);
        fs::write(&path, bytes).ctx("write", &path)
    }

    /// Move a finished layer file to its digest name.
    pub fn adopt(&self, scratch: &Path, digest: &str) -> Result<PathBuf> {
        let path = self.blob_path(digest);
        fs::rename(scratch, &path).ctx("move layer into", &path)?;
        Ok(path)
    }

    /// Put a blob from elsewhere (a base layout) into the staging area: a hard
    /// link where the filesystem allows, else a copy.
    fn import(&self, src: &Path, digest: &str) -> Result<()> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(());
        }
        if fs::hard_link(src, &dest).is_err() {
            fs::copy(src, &dest).ctx("copy base layer", src)?;
        }
        Ok(())
    }

    /// Complete the layout (base blobs, oci-layout, index.json naming `top`,
    /// one image's manifest or the index of several) and move it to `dest`.
    pub fn commit_layout(
        self,
        images: &[&Image],
        top: &Descriptor,
        tag: &str,
        dest: &Path,
    ) -> Result<()> {
        for layer in images.iter().flat_map(|i| &i.layers) {
            if layer.blob.parent() != Some(&self.dir.path().join("blobs/sha256")) {
                self.import(&layer.blob, &layer.descriptor.digest)?;
            }
        }
        let staged = self.dir.path();
        let layout = staged.join("oci-layout");
        fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).ctx("write", &layout)?;
        let mut manifest = top.clone();
        manifest
            .annotations
            .insert(oci::REF_NAME.to_string(), tag.to_string());
        let index = Index {
            schema_version: 2,
            media_type: Some(oci::OCI_INDEX.to_string()),
            manifests: vec![manifest],
            annotations: Default::default(),
        };
        let index_path = staged.join("index.json");
        fs::write(
            &index_path,
            serde_json::to_vec(&index).expect("index serializes"),
        )
        .ctx("write", &index_path)?;
        replace_dir(self.dir, dest)
    }
}

/// Rename `staged` to `dest`, replacing an earlier layout there but nothing else.
fn replace_dir(staged: tempfile::TempDir, dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(_) => {
            let path = staged.keep();
            fs::rename(&path, dest).ctx("move the layout to", dest)?;
        }
        Ok(meta) => {
            let empty = meta.is_dir()
                && fs::read_dir(dest)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
            let layout = meta.is_dir() && dest.join("oci-layout").is_file();
            if !(empty || layout) {
                return Err(Error::Output {
                    path: dest.to_path_buf(),
                    msg: "exists and is not an OCI image layout; kiln will not replace it".into(),
                });
            }
            let parent = staged
                .path()
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf();
            let old = tempfile::Builder::new()
                .prefix(".kiln-old-")
                .tempdir_in(&parent)
                .ctx("create a directory in", &parent)?;
            let old_path = old.path().join("layout");
            fs::rename(dest, &old_path).ctx("move aside", dest)?;
            let path = staged.keep();
            if let Err(e) = fs::rename(&path, dest) {
                let _ = fs::rename(&old_path, dest);
                let _ = fs::remove_dir_all(&path);
                return Err(Error::Io {
                    action: "move the layout to",
                    path: dest.to_path_buf(),
                    source: e,
                });
            }
            drop(old);
        }
    }
    Ok(())
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(parent).ctx("create a file in", parent)?;
    std::io::Write::write_all(&mut tmp, bytes).ctx("write", path)?;
    tmp.persist(path).map_err(|e| e.error).ctx("write", path)?;
    Ok(())
}
