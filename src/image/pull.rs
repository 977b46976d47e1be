//! Pull a base image from a registry into the cache: the manifest (through
//! an index, for the build's platform), the config and every layer, each
//! checked against its digest. A base pinned by digest whose blobs are all
//! cached needs no network at all.

use futures_util::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::image::base::{self, Base};
use crate::oci::digest;
use crate::oci::reference::Reference;
use crate::oci::{self, Descriptor, Index, Manifest};
use crate::progress::{Bar, Step};
use crate::registry::mirror::Source;
use crate::registry::retry::{self, retrying};
use crate::registry::{self, Client};
use crate::shown::Shown;
use crate::spec::validate::Platform;
use crate::store::cache::Cache;

/// Blobs fetched at once.
const PARALLEL: usize = 4;

/// With `index`, the base's view comes from (and is kept in) the cache's base index.
pub async fn pull(
    client: &Client,
    cache: &Cache,
    reference: &Reference,
    platform: &Platform,
    index: bool,
) -> Result<Base> {
    let resolved = resolve(client, cache, reference, platform).await?;
    let blobs: Vec<Descriptor> = std::iter::once(&resolved.manifest.config)
        .chain(&resolved.manifest.layers)
        .cloned()
        .collect();
    fetch(client, cache, &resolved, blobs).await?;
    let name = reference.to_string();
    let index = index.then_some(cache.dir());
    let mut base = base::from_manifest(
        cache.dir(),
        &resolved.desc,
        &name,
        platform,
        resolved.top,
        index,
    )?;
    base.source = Some((resolved.host, reference.repository.clone()));
    Ok(base)
}

/// A reference resolved to the manifest for a platform, both in the cache.
pub struct Resolved {
    /// The digest the reference names: the index's, or the manifest's.
    pub top: String,
    pub index: Option<Index>,
    pub desc: Descriptor,
    pub manifest: Manifest,
    /// The host blobs come from (a mirror, if one is set).
    pub host: String,
    pub repository: String,
    name: String,
}

/// Fetch the manifest (through an index, for `platform`) into the cache,
/// from the first of the registry's mirrors that has it, or the registry.
pub async fn resolve(
    client: &Client,
    cache: &Cache,
    reference: &Reference,
    platform: &Platform,
) -> Result<Resolved> {
    let name = reference.to_string();
    let wanted = reference
        .digest
        .clone()
        .unwrap_or_else(|| reference.tag_or_latest().to_string());
    let sources = client.pull_sources(&reference.registry, &reference.repository);
    let mut missed = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let found = resolve_from(client, cache, source, &wanted, &name, platform);
        // A mirror that fails is passed over at once, not retried.
        let found = match source.mirror {
            true => retry::without_retries(found).await,
            false => found.await,
        };
        let error = match found {
            Ok(resolved) => return Ok(resolved),
            Err(e) if !source.mirror || !registry::is_miss(&e) => return Err(e),
            Err(e) => e,
        };
        let mirror = format!("{}/{}", source.host, source.repository);
        let next = sources.get(i + 1).map_or("nothing else".to_string(), |s| {
            format!("{}/{}", s.host, s.repository)
        });
        tracing::warn!(
            "mirror {} did not serve {}: {error}; trying {}",
            Shown(&mirror),
            Shown(&name),
            Shown(&next)
        );
        missed.push(mirror);
    }
    Err(registry::error(
        &name,
        format!("no mirror has it (tried {})", missed.join(", ")),
        format!(
            "push it to a mirror, or drop --registry-mirror-only to pull from {} itself",
            reference.registry
        ),
    ))
}

async fn resolve_from(
    client: &Client,
    cache: &Cache,
    source: &Source,
    wanted: &str,
    name: &str,
    platform: &Platform,
) -> Result<Resolved> {
    let (host, repo) = (source.host.clone(), source.repository.as_str());
    let name = name.to_string();
    let (top, media_type) = manifest(client, cache, &host, repo, wanted, &name).await?;
    let mut desc = Descriptor {
        media_type,
        digest: oci::Digest::computed(top.clone()),
        size: 0,
        urls: None,
        annotations: Default::default(),
        platform: None,
    };
    let mut index = None;
    if oci::is_index(&desc.media_type) {
        let parsed: Index = serde_json::from_slice(&read_cached(cache, &top)?)
            .map_err(|e| Error::base(&name, format!("index is not valid JSON: {e}")))?;
        desc = base::choose_platform(&parsed, platform, &name)?;
        manifest(client, cache, &host, repo, &desc.digest, &name).await?;
        index = Some(parsed);
    }
    let bytes = read_cached(cache, &desc.digest)?;
    desc.size = bytes.len() as u64;
    let parsed: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::base(&name, format!("manifest is not valid JSON: {e}")))?;
    if parsed.config.size > registry::MAX_CONFIG {
        return Err(Error::base(
            &name,
            format!(
                "its config is {} bytes, over kiln's limit of {} MiB",
                parsed.config.size,
                registry::MAX_CONFIG >> 20
            ),
        ));
    }
    if desc.media_type.is_empty() {
        desc.media_type = parsed
            .media_type
            .clone()
            .unwrap_or_else(|| oci::OCI_MANIFEST.to_string());
    }
    Ok(Resolved {
        top,
        index,
        desc,
        manifest: parsed,
        host,
        repository: repo.to_string(),
        name,
    })
}

/// Fetch those of `blobs` the cache lacks, a few at a time, each checked
/// against its digest.
pub async fn fetch(
    client: &Client,
    cache: &Cache,
    resolved: &Resolved,
    blobs: Vec<Descriptor>,
) -> Result<()> {
    let (host, repo, name) = (&resolved.host, &resolved.repository, &resolved.name);
    let missing: Vec<Descriptor> = blobs.into_iter().filter(|d| !cache.has(d)).collect();
    if !missing.is_empty() {
        tracing::info!("pulling {} blobs of {name} from {host}", missing.len());
    }
    futures_util::stream::iter(missing.into_iter().map(|d| async move {
        let path = cache
            .blob_path(&d.digest)
            .ok_or_else(|| Error::base(name, format!("`{}` is not a sha256 digest", d.digest)))?;
        let what = format!("pull {host}/{repo}@{}", d.digest);
        let bar = Bar::start(Step::Pull, &crate::oci::digest::short(&d.digest), d.size);
        retrying(&what, |_| client.fetch_blob(host, repo, &d, &path, &bar)).await?;
        bar.done(d.size, "");
        Ok(())
    }))
    .buffer_unordered(PARALLEL)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

fn read_cached(cache: &Cache, digest: &str) -> Result<Vec<u8>> {
    let path = cache
        .blob_path(digest)
        .ok_or_else(|| Error::base(digest, "not a sha256 digest"))?;
    std::fs::read(&path).map_err(|e| Error::Io {
        action: "read",
        path,
        source: e,
    })
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
        if let Some(found) = cached_manifest(cache, wanted)? {
            return Ok(found);
        }
    }
    let what = format!("pull {host}/{repo}:{wanted}");
    // A tag: ask for its digest with a HEAD, and GET only a manifest the
    // cache lacks (an unchanged rebuild makes no manifest GET at all).
    let mut wanted = wanted.to_string();
    if oci::sha256_hex(&wanted).is_none() {
        let head = retrying(&what, |_| client.head_manifest(host, repo, &wanted)).await?;
        if let Some((digest, _)) = head {
            if let Some(found) = cached_manifest(cache, &digest)? {
                return Ok(found);
            }
            wanted = digest;
        }
    }
    let wanted = wanted.as_str();
    let (bytes, header_type) = retrying(&what, |_| client.get_manifest(host, repo, wanted)).await?;
    let got = digest::sha256(&bytes);
    if oci::sha256_hex(wanted).is_some() && got != wanted {
        return Err(registry::error(
            name,
            format!("the registry sent a manifest with digest {got}, not {wanted}"),
            "the registry or a proxy is corrupting data",
        ));
    }
    // Only JSON enters the cache: an HTML error page sent as a manifest must
    // not be trusted by a later run.
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        return Err(registry::error(
            name,
            "the registry sent a manifest that is not JSON",
            "check the reference and the registry (a proxy's error page?)",
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

/// The manifest `digest` from the cache, if it is there intact: its digest and media type.
fn cached_manifest(cache: &Cache, digest: &str) -> Result<Option<(String, String)>> {
    let Some(path) = cache.blob_path(digest).filter(|p| p.is_file()) else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|e| Error::Io {
        action: "read",
        path: path.clone(),
        source: e,
    })?;
    Ok((digest::sha256(&bytes) == digest).then(|| (digest.to_string(), media_type_of(&bytes))))
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
