//! Attachments pushed beside the image: each artifact's blobs, then its
//! manifest (by digest, or under cosign's `.sig` tag). A registry with the
//! referrers API finds referrers by their `subject`; one without it
//! (distribution 2.8) gets the referrers tag schema: an index of them under
//! `sha256-<hex>`, read, extended and put back.

use crate::error::Result;
use crate::oci::digest::{self, short};
use crate::oci::reference::Reference;
use crate::progress::{Bar, Step};
use crate::registry::Client;
use crate::registry::retry::retrying;
use crate::store::BlobStore;
use crate::supply::{self, Attachments};

/// How the referrers of one image were published.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    /// The registry's referrers API lists them.
    ReferrersApi,
    /// Through the `sha256-<hex>` tag.
    ReferrersTag,
}

/// Push every attachment to `target`'s repository; returns how the
/// referrers of each subject can be found.
pub async fn publish(
    client: &Client,
    target: &Reference,
    store: &BlobStore,
    attachments: &[Attachments],
) -> Result<Vec<Found>> {
    let host = target.registry.as_str();
    let repo = target.repository.as_str();
    let mut found = Vec::new();
    for a in attachments {
        for artifact in &a.artifacts {
            for blob in &artifact.blobs {
                let d = blob.descriptor.digest.as_str();
                let path = store.path_of(d)?;
                let path = path.as_path();
                let what = format!("push {host}/{repo}@{d}");
                retrying(&what, |_| async move {
                    if client.blob_exists(host, repo, d).await? {
                        return Ok(());
                    }
                    let bar = Bar::start(Step::Push, &short(d), blob.descriptor.size);
                    client
                        .upload(host, repo, d, blob.descriptor.size, path, &bar)
                        .await?;
                    bar.done(blob.descriptor.size, "");
                    Ok(())
                })
                .await?;
            }
            let (bytes, media_type) = (&artifact.manifest, &artifact.descriptor.media_type);
            let d = artifact.descriptor.digest.as_str();
            match &artifact.tag {
                Some(tag) => {
                    let what = format!("push {host}/{repo}:{tag}");
                    retrying(&what, |_| {
                        client.put_tag(host, repo, tag, bytes, media_type, d)
                    })
                    .await?;
                }
                None => {
                    let what = format!("push {host}/{repo}@{d}");
                    retrying(&what, |_| {
                        client.put_manifest(host, repo, d, bytes, media_type)
                    })
                    .await?;
                }
            }
        }
        let referrers: Vec<_> = a.referrers().map(|r| r.referrer()).collect();
        let Some(tag) = supply::referrers_tag(&a.subject.digest) else {
            continue;
        };
        if referrers.is_empty() {
            continue;
        }
        let subject = a.subject.digest.as_str();
        let what = format!("{host}/{repo}/referrers/{subject}");
        if retrying(&what, |_| client.referrers(host, repo, subject))
            .await?
            .is_some()
        {
            found.push(Found::ReferrersApi);
            continue;
        }
        // Read, extend, put back: a concurrent writer's entries are kept
        // unless both write between the read and the put.
        let what = format!("{host}/{repo}:{tag}");
        let existing = retrying(&what, |_| client.find_manifest(host, repo, &tag)).await?;
        let merged =
            supply::merge_referrers(existing.as_ref().map(|(b, _)| b.as_slice()), &referrers);
        let d = digest::sha256(&merged);
        let media_type = crate::oci::OCI_INDEX;
        retrying(&what, |_| {
            client.put_tag(host, repo, &tag, &merged, media_type, &d)
        })
        .await?;
        found.push(Found::ReferrersTag);
    }
    Ok(found)
}
