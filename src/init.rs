//! `kiln init`: a commented starter kiln.toml for a directory.

use std::path::{Path, PathBuf};

use crate::error::Result;

/// The starter spec for `dir`.
pub fn starter(_dir: &Path) -> String {
    String::new()
}

/// Write `dir/kiln.toml`; an existing one is kept unless `force`.
pub fn write(dir: &Path, _force: bool) -> Result<PathBuf> {
    Ok(dir.join("kiln.toml"))
}
