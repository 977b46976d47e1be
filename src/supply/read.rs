//! Reading attachments back, from an OCI layout or a registry. Every read
//! is capped and every manifest and blob checked against its digest: what
//! is read is hostile until verified.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Referrer, ReferrersIndex, referrers_tag};
use crate::error::{Error, Result};
use crate::oci::{self, Descriptor, Index, digest};
use crate::registry::{self, Client};

/// Largest SBOM or attestation read.
pub const MAX_DOCUMENT: u64 = 64 << 20;
/// Largest signature payload read.
pub const MAX_PAYLOAD: u64 = 64 << 10;
const MAX_INDEX_JSON: u64 = 4 << 20;

/// Where images and their attachments are read from.
pub enum Source<'a> {
    Layout {
        dir: PathBuf,
    },
    Registry {
        rt: &'a tokio::runtime::Runtime,
        client: &'a Arc<Client>,
        host: String,
        repo: String,
        /// A scratch directory blobs are fetched into.
        scratch: tempfile::TempDir,
    },
}

/// A failure that says the image or an attachment is not what it claims.
pub fn bad(what: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Verify {
        what: what.into(),
        msg: msg.into(),
    }
}

fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    // A FIFO or device planted in a layout would block or never end.
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Ok(m) if !m.is_file() => {
            return Err(bad(path.display().to_string(), "is not a regular file"));
        }
        _ => {}
    }
    let file = match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.map_err(|e| Error::Io {
            action: "read",
            path: path.to_path_buf(),
            source: e,
        })?,
    };
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Io {
            action: "read",
            path: path.to_path_buf(),
            source: e,
        })?;
    if bytes.len() as u64 > cap {
        return Err(bad(
            path.display().to_string(),
            format!("is larger than {cap} bytes"),
        ));
    }
    Ok(Some(bytes))
}

impl Source<'_> {
    pub fn describe(&self) -> String {
        match self {
            Source::Layout { dir } => format!("oci:{}", dir.display()),
            Source::Registry { host, repo, .. } => format!("{host}/{repo}"),
        }
    }

    /// The layout's index.json.
    pub fn layout_index(dir: &Path) -> Result<Index> {
        let path = dir.join("index.json");
        let bytes = read_capped(&path, MAX_INDEX_JSON)?.ok_or_else(|| {
            bad(
                format!("oci:{}", dir.display()),
                "is not an OCI layout (no index.json)",
            )
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| bad(path.display().to_string(), format!("does not parse: {e}")))
    }

    /// The manifest a tag names, with its digest and media type; None if there is none.
    pub fn tagged(&mut self, tag: &str) -> Result<Option<(Descriptor, Vec<u8>)>> {
        match self {
            Source::Layout { dir } => {
                let index = Self::layout_index(dir)?;
                let Some(desc) = index
                    .manifests
                    .into_iter()
                    .find(|d| d.annotations.get(oci::REF_NAME).map(String::as_str) == Some(tag))
                else {
                    return Ok(None);
                };
                let bytes = self.blob(&desc, registry::MAX_MANIFEST as u64)?;
                Ok(Some((desc, bytes)))
            }
            Source::Registry {
                rt,
                client,
                host,
                repo,
                ..
            } => {
                let found = rt.block_on(client.find_manifest(host, repo, tag))?;
                Ok(found.map(|(bytes, media_type)| {
                    let mut desc = super::descriptor(&media_type, &bytes);
                    desc.media_type = media_type;
                    (desc, bytes)
                }))
            }
        }
    }

    /// The manifest with `digest`, checked; None if it is not there.
    pub fn manifest(&mut self, digest: &oci::Digest) -> Result<Option<Vec<u8>>> {
        let desc = Descriptor {
            media_type: String::new(),
            digest: digest.clone(),
            size: 0,
            urls: None,
            annotations: Default::default(),
            platform: None,
        };
        match self {
            Source::Layout { .. } => {
                match self.blob_at_most(&desc, registry::MAX_MANIFEST as u64) {
                    Ok(b) => Ok(Some(b)),
                    Err(Error::Verify { msg, .. }) if msg == "is missing" => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Source::Registry {
                rt,
                client,
                host,
                repo,
                ..
            } => {
                let what = format!("{host}/{repo}@{digest}");
                let Some((bytes, _)) = rt.block_on(client.find_manifest(host, repo, digest))?
                else {
                    return Ok(None);
                };
                if digest::sha256(&bytes) != digest.as_str() {
                    return Err(bad(
                        what,
                        "the registry sent a manifest that does not match its digest",
                    ));
                }
                Ok(Some(bytes))
            }
        }
    }

    /// A blob the descriptor names, its size and digest checked, at most `cap` bytes.
    pub fn blob(&mut self, desc: &Descriptor, cap: u64) -> Result<Vec<u8>> {
        if desc.size > cap {
            return Err(bad(
                format!("{} {}", self.describe(), desc.digest),
                format!("is {} bytes, more than kiln reads ({cap})", desc.size),
            ));
        }
        let bytes = self.blob_at_most(desc, cap)?;
        if bytes.len() as u64 != desc.size {
            return Err(bad(
                format!("{} {}", self.describe(), desc.digest),
                format!(
                    "is {} bytes, not the {} its descriptor says",
                    bytes.len(),
                    desc.size
                ),
            ));
        }
        Ok(bytes)
    }

    fn blob_at_most(&mut self, desc: &Descriptor, cap: u64) -> Result<Vec<u8>> {
        let what = format!("{} {}", self.describe(), desc.digest);
        let bytes = match self {
            Source::Layout { dir } => {
                let path = dir.join("blobs").join("sha256").join(desc.digest.hex());
                read_capped(&path, cap)?.ok_or_else(|| bad(&what, "is missing"))?
            }
            Source::Registry {
                rt,
                client,
                host,
                repo,
                scratch,
            } => {
                let dest = scratch.path().join(desc.digest.hex());
                let bar = crate::progress::Bar::start(
                    crate::progress::Step::Pull,
                    &digest::short(&desc.digest),
                    desc.size,
                );
                rt.block_on(client.fetch_blob(host, repo, desc, &dest, &bar))?;
                read_capped(&dest, cap)?.ok_or_else(|| bad(&what, "is missing"))?
            }
        };
        if digest::sha256(&bytes) != desc.digest.as_str() {
            return Err(bad(what, "does not match its digest: it was changed"));
        }
        Ok(bytes)
    }

    /// The referrers of `digest`: the registry's referrers API where it has
    /// one, else the referrers tag (`sha256-<hex>`), in a layout or registry.
    pub fn referrers(&mut self, digest: &oci::Digest) -> Result<Vec<Referrer>> {
        if let Source::Registry {
            rt,
            client,
            host,
            repo,
            ..
        } = self
        {
            if let Some(bytes) = rt.block_on(client.referrers(host, repo, digest))? {
                let index: ReferrersIndex = serde_json::from_slice(&bytes).map_err(|e| {
                    bad(
                        format!("{host}/{repo}/referrers/{digest}"),
                        format!("does not parse: {e}"),
                    )
                })?;
                if !index.manifests.is_empty() {
                    return Ok(index.manifests);
                }
            }
        }
        let tag = referrers_tag(digest).expect("a checked digest");
        let Some((desc, bytes)) = self.tagged(&tag)? else {
            return Ok(Vec::new());
        };
        let index: ReferrersIndex = serde_json::from_slice(&bytes).map_err(|e| {
            bad(
                format!("{} {tag}", self.describe()),
                format!("does not parse: {e} ({})", desc.digest),
            )
        })?;
        Ok(index.manifests)
    }
}
