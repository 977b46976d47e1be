//! The blob store of an output being written: a temp directory beside its
//! destination (so the final rename is atomic), filled as layers finish and
//! completed into a layout by `output::layout`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::BlobStore;
use crate::error::{IoContext, Result};
use crate::tmp::{self, TempDir};

pub struct Staging {
    dir: TempDir,
    store: BlobStore,
    scratch: AtomicUsize,
}

impl Staging {
    /// A staging directory in the same directory as `target`.
    pub fn near(target: &Path) -> Result<Staging> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).ctx("create directory", &parent)?;
        tmp::collect(&parent);
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let dir = TempDir::new_in(&parent, name)?;
        let store = BlobStore::create(dir.path())?;
        Ok(Staging {
            dir,
            store,
            scratch: AtomicUsize::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// A fresh scratch file for a layer being written, adopted under its
    /// digest once that is known.
    pub fn scratch_path(&self) -> PathBuf {
        let n = self.scratch.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("layer-{n}.tmp"))
    }

    /// The directory itself, to be completed and moved into place.
    pub fn into_dir(self) -> TempDir {
        self.dir
    }
}
