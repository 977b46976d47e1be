//! Push a built image: every blob first (HEAD, then a cross-repository
//! mount for base layers on the same registry, then a streamed upload),
//! several at once, and the manifest last, byte for byte the one whose
//! digest kiln printed.

use std::path::PathBuf;

use futures_util::StreamExt;

use crate::assemble::{Assembled, Image};
use crate::error::Result;
use crate::oci::digest::short;
use crate::oci::reference::Reference;
use crate::progress::{Bar, Step};
use crate::registry::retry::retrying;
use crate::registry::{self, Client};
use crate::store::BlobStore;

const PARALLEL: usize = 4;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Pushed {
    /// `host/repo:tag@sha256:...` for the first tag.
    pub reference: String,
    /// `host/repo:tag@sha256:...` for every tag of every destination.
    pub references: Vec<String>,
    /// `host/repo:tag@sha256:...` for the first tag of each destination, in --push order.
    pub destinations: Vec<String>,
    pub digest: String,
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    pub mounted: usize,
    pub mounted_bytes: u64,
    /// Blobs the registry already had.
    pub skipped: usize,
    pub skipped_bytes: u64,
    /// How each image's SBOMs and attestations are found in the last
    /// destination: the referrers API, or the `sha256-<hex>` tag.
    pub referrers: Vec<crate::output::attach::Found>,
}

impl Pushed {
    /// Add another image's counts (one platform of several).
    pub fn add(&mut self, other: &Pushed) {
        self.uploaded += other.uploaded;
        self.uploaded_bytes += other.uploaded_bytes;
        self.mounted += other.mounted;
        self.mounted_bytes += other.mounted_bytes;
        self.skipped += other.skipped;
        self.skipped_bytes += other.skipped_bytes;
    }
}

enum Outcome {
    Skipped(u64),
    Mounted(u64),
    Uploaded(u64),
}

struct Blob {
    digest: String,
    size: u64,
    path: PathBuf,
    /// The repository on the same registry this blob can be mounted from.
    mount_from: Option<String>,
    /// A cache hit not yet re-hashed: checked before it is uploaded.
    verify: bool,
}

async fn push_blob(client: &Client, host: &str, repo: &str, b: &Blob) -> Result<Outcome> {
    if client.blob_exists(host, repo, &b.digest).await? {
        return Ok(Outcome::Skipped(b.size));
    }
    if let Some(from) = &b.mount_from {
        if client.mount(host, repo, from, &b.digest).await? {
            return Ok(Outcome::Mounted(b.size));
        }
    }
    if !b.path.exists() {
        // A shared-cache layer the registry would not mount: fetch it, then upload.
        if let Some(from) = &b.mount_from {
            let desc = crate::oci::Descriptor {
                media_type: String::new(),
                digest: crate::oci::Digest::computed(b.digest.clone()),
                size: b.size,
                urls: None,
                annotations: Default::default(),
                platform: None,
            };
            let bar = Bar::start(Step::Pull, &short(&b.digest), b.size);
            client.fetch_blob(host, from, &desc, &b.path, &bar).await?;
            bar.done(b.size, "");
        }
    }
    if b.verify && !crate::layer::verify_file(&b.path, &b.digest, b.size) {
        // Gone from the cache, so the next build writes it afresh.
        let _ = std::fs::remove_file(&b.path);
        return Err(registry::error(
            &format!("{host}/{repo}@{}", b.digest),
            "the cached layer is damaged; nothing was pushed",
            "build again: kiln rebuilds the layer",
        ));
    }
    let bar = Bar::start(Step::Push, &short(&b.digest), b.size);
    client
        .upload(host, repo, &b.digest, b.size, &b.path, &bar)
        .await?;
    bar.done(b.size, "");
    Ok(Outcome::Uploaded(b.size))
}

/// Push `assembled` to every destination in order: each platform's image
/// (by digest when there is an index), then the index or the manifest under
/// every tag. Blobs go up once per registry: a later destination on a
/// registry already pushed to mounts them all.
pub async fn push(
    client: &Client,
    assembled: &Assembled,
    store: &BlobStore,
    destinations: &[Reference],
    tags: &[String],
) -> Result<Pushed> {
    let mut total = Pushed::default();
    for (d, target) in destinations.iter().enumerate() {
        let mount_all_from = destinations[..d]
            .iter()
            .find(|e| e.registry == target.registry && e.repository != target.repository)
            .map(|e| e.repository.as_str());
        let mut references = Vec::new();
        for image in &assembled.images {
            let one = push_image(
                client,
                Request {
                    image,
                    config_path: store.path_of(&image.config_descriptor.digest)?,
                    target,
                    tags,
                    // Layers streamed while written went to the first destination only.
                    streamed: if d == 0 { &image.streamed } else { &[] },
                    by_digest: assembled.index.is_some(),
                    mount_all_from,
                },
            )
            .await?;
            total.add(&one);
            references = one.references;
        }
        if let Some(index) = &assembled.index {
            let (bytes, desc) = (&index.bytes, &index.descriptor);
            references =
                put_tagged(client, target, tags, bytes, &desc.media_type, &desc.digest).await?;
        }
        total.destinations.push(references[0].clone());
        total.references.extend(references);
    }
    total.digest = assembled.top().digest.to_string();
    total.reference = total.references[0].clone();
    Ok(total)
}

/// One platform's image to one destination.
struct Request<'a> {
    image: &'a Image,
    config_path: PathBuf,
    target: &'a Reference,
    tags: &'a [String],
    /// Blobs already uploaded while they were written (see `stream`).
    streamed: &'a [String],
    /// Put the manifest under its digest only: it is one platform of an
    /// index, which gets the tags.
    by_digest: bool,
    /// A repository on the target's registry that an earlier destination
    /// of this build filled: every blob is mounted from it.
    mount_all_from: Option<&'a str>,
}

async fn push_image(client: &Client, request: Request<'_>) -> Result<Pushed> {
    let Request {
        image,
        config_path,
        target,
        tags,
        streamed,
        by_digest,
        mount_all_from,
    } = request;
    let base_source = image.base_source.as_ref();
    let base_layers = image.base_layers;
    let host = target.registry.as_str();
    let repo = target.repository.as_str();
    if target.digest.is_some() {
        return Err(registry::error(
            &target.to_string(),
            "a push target names a tag, not a digest",
            "write --push HOST/REPO:TAG",
        ));
    }
    let mount_from = base_source
        .filter(|(h, r)| h == host && r != repo)
        .map(|(_, r)| r.clone());
    let mut blobs: Vec<Blob> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| Blob {
            digest: l.descriptor.digest.to_string(),
            size: l.descriptor.size,
            path: l.blob.clone(),
            mount_from: if i < base_layers {
                mount_from.clone()
            } else {
                l.mount_from
                    .as_ref()
                    .filter(|(h, r)| h == host && r != repo)
                    .map(|(_, r)| r.clone())
            },
            verify: !l.verified,
        })
        .collect();
    blobs.push(Blob {
        digest: image.config_descriptor.digest.to_string(),
        size: image.config_descriptor.size,
        path: config_path,
        mount_from: None,
        verify: false,
    });
    if let Some(from) = mount_all_from.filter(|r| *r != repo) {
        for b in &mut blobs {
            b.mount_from = Some(from.to_string());
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));

    let outcomes: Vec<Outcome> = futures_util::stream::iter(blobs.iter().map(|b| async move {
        // Retried as a whole: each try starts with a HEAD (a success whose reply
        // was lost is a success) and opens a fresh upload session.
        let what = format!("push {host}/{repo}@{}", b.digest);
        retrying(&what, |_| push_blob(client, host, repo, b)).await
    }))
    .buffer_unordered(PARALLEL)
    // Every blob gets its turn even after a failure, so that all damaged
    // cache entries are found and dropped in one run.
    .collect::<Vec<Result<Outcome>>>()
    .await
    .into_iter()
    .collect::<Result<_>>()?;

    // Blobs that went up while they were written are found by HEAD; they count as uploads.
    let streamed_bytes: u64 = blobs
        .iter()
        .filter(|b| streamed.contains(&b.digest))
        .map(|b| b.size)
        .sum();
    let mut pushed = Pushed {
        digest: image.manifest_descriptor.digest.to_string(),
        ..Pushed::default()
    };
    for o in outcomes {
        match o {
            Outcome::Skipped(n) => {
                pushed.skipped += 1;
                pushed.skipped_bytes += n;
            }
            Outcome::Mounted(n) => {
                pushed.mounted += 1;
                pushed.mounted_bytes += n;
            }
            Outcome::Uploaded(n) => {
                pushed.uploaded += 1;
                pushed.uploaded_bytes += n;
            }
        }
    }
    let streamed_count = blobs
        .iter()
        .filter(|b| streamed.contains(&b.digest))
        .count();
    pushed.skipped -= streamed_count.min(pushed.skipped);
    pushed.skipped_bytes -= streamed_bytes.min(pushed.skipped_bytes);
    pushed.uploaded += streamed_count;
    pushed.uploaded_bytes += streamed_bytes;

    // Every blob is in place: now the manifest.
    let media_type = &image.manifest_descriptor.media_type;
    pushed.references = if by_digest {
        let what = format!("push {host}/{repo}@{}", pushed.digest);
        retrying(&what, |_| {
            client.put_manifest(host, repo, &pushed.digest, &image.manifest, media_type)
        })
        .await?;
        vec![format!("{host}/{repo}@{}", pushed.digest)]
    } else {
        put_tagged(
            client,
            target,
            tags,
            &image.manifest,
            media_type,
            &pushed.digest,
        )
        .await?
    };
    pushed.reference = pushed.references[0].clone();
    Ok(pushed)
}

/// PUT a manifest (or index) under the target's tag and each extra tag;
/// returns `host/repo:tag@digest` for each.
pub async fn put_tagged(
    client: &Client,
    target: &Reference,
    tags: &[String],
    bytes: &[u8],
    media_type: &str,
    digest: &str,
) -> Result<Vec<String>> {
    let host = target.registry.as_str();
    let repo = target.repository.as_str();
    let mut all_tags = vec![target.tag_or_latest().to_string()];
    for t in tags {
        if !all_tags.contains(t) {
            all_tags.push(t.clone());
        }
    }
    for tag in &all_tags {
        let what = format!("push {host}/{repo}:{tag}");
        // HEAD first: a tag that already names this digest is left alone
        // (ECR's immutable tags refuse even an identical PUT).
        let put = retrying(&what, |_| {
            client.put_tag(host, repo, tag, bytes, media_type, digest)
        })
        .await?;
        if !put {
            tracing::info!("{host}/{repo}:{tag} already names {digest}; not put again");
        }
    }
    Ok(all_tags
        .iter()
        .map(|t| format!("{host}/{repo}:{t}@{digest}"))
        .collect())
}
