//! The JSON documents of the OCI image and distribution specs, and Docker's
//! schema2 equivalents. Our own types rather than oci-spec's: its annotation
//! maps are HashMaps, whose random order would change a manifest's digest
//! from one run to the next. Every map here is a BTreeMap.

pub mod config;
pub mod digest;
pub mod reference;
pub mod runas;

pub use digest::Digest;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// What an artifact manifest holds (image-spec 1.1); required when the
    /// config is the empty descriptor. None for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// Registries and older tools write `null` where a map or list is empty.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The hex part of a `sha256:<64 hex>` digest, or None if it is anything else.
/// Checked before a digest becomes part of a path.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

/// Whether a tag is one the referrers tag schema (`sha256-<hex>`) or
/// cosign (`sha256-<hex>.sig`, `.att`, `.sbom`) keeps attachments under.
pub fn is_attachment_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let hex = rest.split('.').next().unwrap_or("");
    let suffix = &rest[hex.len()..];
    hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && matches!(suffix, "" | ".sig" | ".att" | ".sbom")
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_TAR | DOCKER_LAYER_TAR => Some(Compression::None),
        "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Compression::None),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Compression::Gzip),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
        OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            Some(Compression::Zstd)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_before_use_as_paths() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(sha256_hex(&good), Some("a".repeat(64).as_str()));
        assert_eq!(sha256_hex("sha256:../../etc/passwd"), None);
        assert_eq!(sha256_hex(&format!("sha512:{}", "a".repeat(64))), None);
        assert_eq!(sha256_hex(&format!("sha256:{}", "A".repeat(64))), None);
    }

    #[test]
    fn nulls_read_as_empty() {
        let digest = format!("sha256:{}", "0".repeat(64));
        let json =
            format!(r#"{{"mediaType":"x","digest":"{digest}","size":1,"annotations":null}}"#);
        let d: Descriptor = serde_json::from_str(&json).unwrap();
        assert!(d.annotations.is_empty());
    }

    #[test]
    fn a_descriptor_with_another_digest_does_not_parse() {
        let json = r#"{"mediaType":"x","digest":"sha256:00","size":1}"#;
        let err = serde_json::from_str::<Descriptor>(json).unwrap_err();
        assert!(err.to_string().contains("not a sha256 digest"), "{err}");
    }
}
