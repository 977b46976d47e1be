//! What a build can attach to each image it makes: its SBOM, SLSA
//! provenance, a cosign-compatible signature and DSSE attestations, each an
//! OCI manifest of its own that names the image (`subject`), and reading
//! them back (`verify`). Everything here is derived from the image digest,
//! the spec and the key, never the clock: the same build attaches the same bytes.

pub mod attach;
pub mod key;
pub mod provenance;
pub mod read;
pub mod sign;
pub mod verify;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::oci::{self, Descriptor, digest};

pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The annotation naming an attestation's predicate type, as cosign writes it.
pub const PREDICATE_ANNOTATION: &str = "predicateType";
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
pub const CYCLONEDX_PREDICATE: &str = "https://cyclonedx.org/bom";
pub const CREATED: &str = "org.opencontainers.image.created";

/// What a build was asked to attach.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub sbom: bool,
    pub provenance: bool,
    pub key: Option<key::Key>,
}

impl Request {
    pub fn any(&self) -> bool {
        self.sbom || self.provenance || self.key.is_some()
    }
}

/// A manifest with the OCI 1.1 fields (`artifactType`, `subject`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "oci::null_default"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// An entry of a referrers index: a descriptor with `artifactType`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: oci::Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "oci::null_default"
    )]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrersIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, deserialize_with = "oci::null_default")]
    pub manifests: Vec<Referrer>,
}

/// A blob held in memory: artifacts are small.
#[derive(Debug, Clone)]
pub struct Blob {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            descriptor: descriptor(media_type, &bytes),
            bytes,
        }
    }

    /// The empty config `{}` of an artifact with no config of its own.
    pub fn empty() -> Blob {
        Blob::new(EMPTY_MEDIA_TYPE, b"{}".to_vec())
    }
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: oci::Digest::computed(digest::sha256(bytes)),
        size: bytes.len() as u64,
        urls: None,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

/// One manifest and the blobs it names, ready to write or push.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub manifest: Vec<u8>,
    pub descriptor: Descriptor,
    pub artifact_type: String,
    pub annotations: BTreeMap<String, String>,
    /// The config and layers.
    pub blobs: Vec<Blob>,
    /// The tag it goes under (cosign's `sha256-<hex>.sig`); None for a
    /// referrer, found through its subject.
    pub tag: Option<String>,
}

impl Artifact {
    /// Its entry in a referrers index.
    pub fn referrer(&self) -> Referrer {
        Referrer {
            media_type: self.descriptor.media_type.clone(),
            digest: self.descriptor.digest.clone(),
            size: self.descriptor.size,
            artifact_type: Some(self.artifact_type.clone()),
            annotations: self.annotations.clone(),
        }
    }
}

/// Everything attached to one image manifest (or to the index).
#[derive(Debug, Clone)]
pub struct Attachments {
    pub subject: Descriptor,
    pub artifacts: Vec<Artifact>,
}

impl Attachments {
    pub fn referrers(&self) -> impl Iterator<Item = &Artifact> {
        self.artifacts.iter().filter(|a| a.tag.is_none())
    }
}

/// One attachment, as the build summary lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Attached {
    /// The image manifest (or index) it is attached to.
    pub subject: String,
    pub digest: String,
    pub artifact_type: String,
    /// `predicateType` of an attestation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// cosign's `sha256-<hex>.sig`, for the signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The summary's list of everything attached.
pub fn listed(all: &[Attachments]) -> Vec<Attached> {
    all.iter()
        .flat_map(|a| {
            a.artifacts.iter().map(|x| Attached {
                subject: a.subject.digest.to_string(),
                digest: x.descriptor.digest.to_string(),
                artifact_type: x.artifact_type.clone(),
                predicate_type: x.annotations.get(PREDICATE_ANNOTATION).cloned(),
                tag: x.tag.clone(),
            })
        })
        .collect()
}

/// The tag the referrers tag schema keeps `digest`'s referrers under:
/// `sha256-<hex>`; None for a digest that is not sha256.
pub fn referrers_tag(digest: &str) -> Option<String> {
    oci::sha256_hex(digest).map(|hex| format!("sha256-{hex}"))
}

/// `existing` (a referrers index, if any) with `new` added: entries with
/// the same digest are replaced, the rest keep their order.
pub fn merge_referrers(existing: Option<&[u8]>, new: &[Referrer]) -> Vec<u8> {
    let mut manifests: Vec<Referrer> = existing
        .and_then(|b| serde_json::from_slice::<ReferrersIndex>(b).ok())
        .map(|i| i.manifests)
        .unwrap_or_default();
    manifests.retain(|m| !new.iter().any(|n| n.digest == m.digest));
    manifests.extend(new.iter().cloned());
    let index = ReferrersIndex {
        schema_version: 2,
        media_type: Some(oci::OCI_INDEX.to_string()),
        manifests,
    };
    serde_json::to_vec(&index).expect("index serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_config_has_the_well_known_digest() {
        assert_eq!(
            Blob::empty().descriptor.digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn merging_keeps_others_and_replaces_the_same() {
        let r = |d: &[u8], t: &str| Referrer {
            artifact_type: Some(t.into()),
            ..descriptor_referrer(d)
        };
        fn descriptor_referrer(bytes: &[u8]) -> Referrer {
            let d = descriptor(oci::OCI_MANIFEST, bytes);
            Referrer {
                media_type: d.media_type,
                digest: d.digest,
                size: d.size,
                artifact_type: None,
                annotations: BTreeMap::new(),
            }
        }
        let first = merge_referrers(None, &[r(b"a", "x")]);
        let second = merge_referrers(Some(&first), &[r(b"b", "y"), r(b"a", "x")]);
        let index: ReferrersIndex = serde_json::from_slice(&second).unwrap();
        let types: Vec<_> = index
            .manifests
            .iter()
            .map(|m| m.artifact_type.clone().unwrap())
            .collect();
        assert_eq!(types, ["y", "x"]);
        assert!(merge_referrers(Some(b"not json"), &[]).len() > 10);
    }
}
