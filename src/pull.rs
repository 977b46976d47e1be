//! Pull a base image from a registry into the cache: the manifest (through
//! an index, for the build's platform), the config and every layer, each
//! checked against its digest. A base pinned by digest whose blobs are all
//! cached needs no network at all.

use futures_util::{StreamExt, TryStreamExt};

use crate::base::{self, Base};
use crate::cache::Cache;
use crate::digest;
use crate::error::{Error, Result};
use crate::oci::{self, Descriptor, Index, Manifest};
use crate::reference::Reference;
use crate::registry::retry::retrying;
use crate::registry::{self, Client};
use crate::validate::Platform;

/// Blobs fetched at once.
const PARALLEL: usize = 4;

pub async fn pull(
    client: &Client,
    cache: &Cache,
    reference: &Reference,
    platform: &Platform,
) -> Result<Base> {
    let name = reference.to_string();
    let host = client.pull_host(&reference.registry);
    let repo = reference.repository.as_str();
    let wanted = reference
        .digest
        .clone()
        .unwrap_or_else(|| reference.tag_or_latest().to_string());

    let (top, media_type) = manifest(client, cache, &host, repo, &wanted, &name).await?;
    let mut desc = Descriptor {
        media_type,
        digest: top.clone(),
        size: 0,
        urls: None,
        annotations: Default::default(),
        platform: None,
    };
    if oci::is_index(&desc.media_type) {
        let bytes =
            std::fs::read(cache.blob_path(&top).expect("sha256")).map_err(|e| Error::Io {
                action: "read",
                path: cache.dir().to_path_buf(),
                source: e,
            })?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| Error::base(&name, format!("index is not valid JSON: {e}")))?;
        desc = base::choose_platform(&index, platform, &name)?;
        manifest(client, cache, &host, repo, &desc.digest, &name).await?;
    }
    desc.size = std::fs::metadata(cache.blob_path(&desc.digest).expect("sha256"))
        .map(|m| m.len())
        .unwrap_or(0);
    let bytes =
        std::fs::read(cache.blob_path(&desc.digest).expect("sha256")).map_err(|e| Error::Io {
            action: "read",
            path: cache.dir().to_path_buf(),
            source: e,
        })?;
    let parsed: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::base(&name, format!("manifest is not valid JSON: {e}")))?;
    if desc.media_type.is_empty() {
        desc.media_type = parsed
            .media_type
            .clone()
            .unwrap_or_else(|| oci::OCI_MANIFEST.to_string());
    }

    let missing: Vec<Descriptor> = std::iter::once(&parsed.config)
        .chain(&parsed.layers)
        .filter(|d| !cache.has(d))
        .cloned()
        .collect();
    if !missing.is_empty() {
        tracing::info!("pulling {} blobs of {name} from {host}", missing.len());
    }
    let name_ref = name.as_str();
    futures_util::stream::iter(missing.into_iter().map(|d| {
        let host = host.clone();
        async move {
            let path = cache.blob_path(&d.digest).ok_or_else(|| {
                Error::base(name_ref, format!("`{}` is not a sha256 digest", d.digest))
            })?;
            let what = format!("pull {host}/{repo}@{}", d.digest);
            retrying(&what, |_| client.fetch_blob(&host, repo, &d, &path)).await
        }
    }))
    .buffer_unordered(PARALLEL)
    .try_collect::<Vec<()>>()
    .await?;

    let mut base = base::from_manifest(cache.dir(), &desc, &name, platform, top)?;
    base.source = Some((host, repo.to_string()));
    Ok(base)
}

/// Make sure the manifest `wanted` (tag or digest) is in the cache; returns its digest and media type.
async fn manifest(
    client: &Client,
    cache: &Cache,
    host: &str,
    repo: &str,
    wanted: &str,
    name: &str,
) -> Result<(String, String)> {
    if oci::sha256_hex(wanted).is_some() {
        if let Some(path) = cache.blob_path(wanted).filter(|p| p.is_file()) {
            let bytes = std::fs::read(&path).map_err(|e| Error::Io {
                action: "read",
                path: path.clone(),
                source: e,
            })?;
            if digest::sha256(&bytes) == wanted {
                return Ok((wanted.to_string(), media_type_of(&bytes)));
            }
        }
    }
    let what = format!("pull {host}/{repo}:{wanted}");
    let (bytes, header_type) = retrying(&what, |_| client.get_manifest(host, repo, wanted)).await?;
    let got = digest::sha256(&bytes);
    if oci::sha256_hex(wanted).is_some() && got != wanted {
        return Err(registry::error(
            name,
            format!("the registry sent a manifest with digest {got}, not {wanted}"),
            "the registry or a proxy is corrupting data",
        ));
    }
    cache.put(&got, &bytes)?;
    let media_type = if header_type.is_empty() || header_type == "application/json" {
        media_type_of(&bytes)
    } else {
        header_type
    };
    Ok((got, media_type))
}

/// The mediaType a manifest or index declares, or a guess from its shape.
fn media_type_of(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(t),
            ..
        }) => t,
        Ok(Probe {
            manifests: Some(_), ..
        }) => oci::OCI_INDEX.to_string(),
        _ => oci::OCI_MANIFEST.to_string(),
    }
}
