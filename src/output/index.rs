//! `kiln index`: one multi-platform tag from images that separate jobs
//! pushed (one runner per platform). Each image's platform is read from its
//! own config, never taken on trust; entries are sorted by platform, so the
//! same images give the same index digest whatever order the jobs finish
//! in, and a rerun changes nothing.

use crate::error::{Error, Result};
use crate::image::pull;
use crate::oci::config::ImageConfig;
use crate::oci::reference::Reference;
use crate::oci::{self, Descriptor, Index};
use crate::output::push;
use crate::registry::retry::retrying;
use crate::registry::{self, Client};
use crate::spec::validate::host_platform;
use crate::store::cache::Cache;

pub struct Request<'a> {
    pub target: &'a Reference,
    pub tags: &'a [String],
    /// Per-platform images, by digest (a tag is resolved to one).
    pub images: &'a [Reference],
}

pub struct Made {
    pub digest: String,
    pub media_type: String,
    pub references: Vec<String>,
    /// `(platform, manifest digest)` in index order.
    pub platforms: Vec<(String, String)>,
}

pub async fn make(client: &Client, cache: &Cache, request: Request<'_>) -> Result<Made> {
    let target = request.target;
    if target.digest.is_some() {
        return Err(usage(
            &target.to_string(),
            "the index target names a tag, not a digest",
            "write HOST/REPO:TAG",
        ));
    }
    if request.images.is_empty() {
        return Err(usage(
            &target.to_string(),
            "no images to put in the index",
            "add them with --add HOST/REPO@sha256:... or --from-digest-files FILE...",
        ));
    }
    // Before any request: an index lists manifests of its own registry.
    for image in request.images {
        if image.registry != target.registry {
            return Err(usage(
                &image.to_string(),
                format!(
                    "is on {}, the index goes to {}",
                    image.registry, target.registry
                ),
                "push every platform's image to the index's registry first",
            ));
        }
    }
    let mut entries: Vec<(String, Descriptor, String)> = Vec::new();
    for image in request.images {
        let (platform, desc) = platform_image(client, cache, image).await?;
        if let Some((_, _, other)) = entries.iter().find(|(p, _, _)| *p == platform_key(&desc)) {
            return Err(usage(
                &image.to_string(),
                format!("is {platform}, and so is {other}"),
                "an index holds one image per platform; drop one of them",
            ));
        }
        copy_into(client, image, target, &desc).await?;
        entries.push((platform_key(&desc), desc, image.to_string()));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let docker = entries
        .iter()
        .all(|(_, d, _)| d.media_type == oci::DOCKER_MANIFEST);
    let media_type = if docker {
        oci::DOCKER_LIST
    } else {
        oci::OCI_INDEX
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type.to_string()),
        manifests: entries.iter().map(|(_, d, _)| d.clone()).collect(),
        annotations: Default::default(),
    };
    let bytes = serde_json::to_vec(&index).expect("index serializes");
    let digest = crate::oci::digest::sha256(&bytes);
    let references =
        push::put_tagged(client, target, request.tags, &bytes, media_type, &digest).await?;
    Ok(Made {
        digest,
        media_type: media_type.to_string(),
        references,
        platforms: entries
            .into_iter()
            .map(|(p, d, _)| (p, d.digest.to_string()))
            .collect(),
    })
}

/// An image's manifest descriptor, with the platform its config declares.
async fn platform_image(
    client: &Client,
    cache: &Cache,
    image: &Reference,
) -> Result<(String, Descriptor)> {
    let resolved = pull::resolve(client, cache, image, &host_platform())
        .await
        .map_err(crate::image::inspect::as_image)?;
    if resolved.index.is_some() {
        return Err(usage(
            &image.to_string(),
            "is already an index",
            "add the per-platform images it lists (kiln inspect shows them), not the index",
        ));
    }
    let config_desc = resolved.manifest.config.clone();
    pull::fetch(client, cache, &resolved, vec![config_desc.clone()]).await?;
    let path = cache.blob_path(&config_desc.digest).ok_or_else(|| {
        usage(
            &image.to_string(),
            format!("its config digest `{}` is not sha256", config_desc.digest),
            "add images whose blobs are named by sha256 digests",
        )
    })?;
    let bytes = std::fs::read(&path).map_err(|e| Error::Io {
        action: "read",
        path,
        source: e,
    })?;
    let config: ImageConfig = serde_json::from_slice(&bytes).map_err(|e| {
        usage(
            &image.to_string(),
            format!("its config is not an image config: {e}"),
            "add images, not other artifacts",
        )
    })?;
    if config.os.is_empty() || config.architecture.is_empty() {
        return Err(usage(
            &image.to_string(),
            "its config names no os and architecture",
            "add images built for one platform each",
        ));
    }
    let platform = oci::Platform {
        os: config.os,
        architecture: config.architecture,
        variant: config.variant,
    };
    let desc = Descriptor {
        platform: Some(platform.clone()),
        annotations: Default::default(),
        urls: None,
        ..resolved.desc
    };
    Ok((platform_key(&desc), desc))
}

fn platform_key(desc: &Descriptor) -> String {
    match &desc.platform {
        Some(p) => match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        },
        None => String::new(),
    }
}

/// An index lists manifests of its own repository: an image pushed to
/// another repository of the same registry is mounted over, blob by blob,
/// then its manifest is put by digest.
async fn copy_into(
    client: &Client,
    image: &Reference,
    target: &Reference,
    desc: &Descriptor,
) -> Result<()> {
    if image.repository == target.repository {
        return Ok(());
    }
    let host = target.registry.as_str();
    let repo = target.repository.as_str();
    let (bytes, _) = retrying(&format!("pull {image}"), |_| {
        client.get_manifest(host, &image.repository, &desc.digest)
    })
    .await?;
    let manifest: oci::Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        usage(
            &image.to_string(),
            format!("manifest: {e}"),
            "push it again",
        )
    })?;
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let what = format!("mount {host}/{repo}@{}", blob.digest);
        let there = retrying(&what, |_| async {
            Ok(client.blob_exists(host, repo, &blob.digest).await?
                || client
                    .mount(host, repo, &image.repository, &blob.digest)
                    .await?)
        })
        .await?;
        if !there {
            return Err(registry::error(
                &what,
                "the registry would not mount the blob",
                "push every platform's image to the index's repository instead",
            ));
        }
    }
    let what = format!("push {host}/{repo}@{}", desc.digest);
    retrying(&what, |_| {
        client.put_manifest(host, repo, &desc.digest, &bytes, &desc.media_type)
    })
    .await?;
    Ok(())
}

fn usage(what: &str, msg: impl Into<String>, hint: &str) -> Error {
    Error::Usage {
        what: format!("`{what}`"),
        msg: msg.into(),
        hint: Some(hint.to_string()),
    }
}
