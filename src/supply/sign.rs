//! Signatures as cosign makes them, and DSSE envelopes for attestations.
//!
//! cosign signs a "simple signing" payload naming the image's manifest
//! digest and stores it as an image of its own under the tag
//! `sha256-<hex>.sig`: one layer (the payload) whose annotation holds the
//! base64 DER signature. An attestation is an in-toto statement wrapped in
//! a DSSE envelope, whose signature covers the pre-authentication encoding
//! (PAE) of the payload type and payload.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::key::Key;
use super::{
    Artifact, ArtifactManifest, Blob, CREATED, DSSE_MEDIA_TYPE, IN_TOTO, SIGNATURE_ANNOTATION,
    SIMPLESIGNING,
};
use crate::oci::{self, Descriptor};

/// The payload cosign signs for an image: field for field what
/// `cosign sign` writes, so `cosign verify` reads it.
pub fn payload(identity: &str, manifest_digest: &str) -> Vec<u8> {
    let value = serde_json::json!({
        "critical": {
            "identity": { "docker-reference": identity },
            "image": { "docker-manifest-digest": manifest_digest },
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&value).expect("payload serializes")
}

/// What a simple-signing payload says.
#[derive(Debug, Deserialize)]
pub struct Payload {
    pub critical: Critical,
}

#[derive(Debug, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageDigest,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Deserialize)]
pub struct ImageDigest {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The `.sig` image holding the signature of `subject`.
pub fn signature(subject: &Descriptor, key: &Key, identity: &str, created: &str) -> Artifact {
    let payload = payload(identity, &subject.digest);
    let signature = B64.encode(key.sign(&payload));
    let mut layer = Blob::new(SIMPLESIGNING, payload);
    layer
        .descriptor
        .annotations
        .insert(SIGNATURE_ANNOTATION.to_string(), signature);
    cosign_image(subject, vec![layer], "sig", SIMPLESIGNING, created)
}

/// The `.att` image cosign keeps a subject's attestations in (what
/// `cosign verify-attestation` reads): one layer per DSSE envelope, each
/// annotated with its predicate type. The same envelopes are referrers too.
pub fn attestations(subject: &Descriptor, envelopes: Vec<Blob>, created: &str) -> Artifact {
    cosign_image(subject, envelopes, "att", DSSE_MEDIA_TYPE, created)
}

/// An image as cosign stores signatures and attestations: a config with
/// no platform whose diff_ids are the layers, under `sha256-<hex>.SUFFIX`.
fn cosign_image(
    subject: &Descriptor,
    layers: Vec<Blob>,
    suffix: &str,
    artifact_type: &str,
    created: &str,
) -> Artifact {
    let diff_ids: Vec<&str> = layers
        .iter()
        .map(|l| l.descriptor.digest.as_str())
        .collect();
    let config = serde_json::json!({
        "architecture": "",
        "os": "",
        "config": {},
        "created": created,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = Blob::new(
        oci::OCI_CONFIG,
        serde_json::to_vec(&config).expect("config serializes"),
    );
    let manifest = ArtifactManifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: config.descriptor.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        subject: None,
        annotations: BTreeMap::new(),
    };
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let tag = format!("sha256-{}.{suffix}", subject.digest.hex());
    let mut blobs = vec![config];
    blobs.extend(layers);
    Artifact {
        descriptor: super::descriptor(oci::OCI_MANIFEST, &bytes),
        manifest: bytes,
        artifact_type: artifact_type.to_string(),
        annotations: [(CREATED.to_string(), created.to_string())].into(),
        blobs,
        tag: Some(tag),
    }
}

/// A DSSE envelope.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    pub sig: String,
}

/// DSSE's pre-authentication encoding: what the signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// `statement` (an in-toto statement) signed into a DSSE envelope.
pub fn envelope(statement: &[u8], key: &Key) -> Vec<u8> {
    let sig = key.sign(&pae(IN_TOTO, statement));
    let envelope = Envelope {
        payload_type: IN_TOTO.to_string(),
        payload: B64.encode(statement),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: B64.encode(sig),
        }],
    };
    serde_json::to_vec(&envelope).expect("envelope serializes")
}

pub fn decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::key::test_key;

    #[test]
    fn the_payload_is_cosigns() {
        let d = format!("sha256:{}", "a".repeat(64));
        let p = String::from_utf8(payload("reg/app", &d)).unwrap();
        assert_eq!(
            p,
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"reg/app"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
    }

    #[test]
    fn pae_is_as_the_spec_gives_it() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn signing_twice_gives_the_same_bytes() {
        let key = test_key();
        let subject = crate::supply::descriptor(oci::OCI_MANIFEST, b"{}");
        let a = signature(&subject, &key, "app", "1970-01-01T00:00:00Z");
        let b = signature(&subject, &key, "app", "1970-01-01T00:00:00Z");
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(envelope(b"x", &key), envelope(b"x", &key));
        let layer = &a.blobs[1];
        let sig = decode(&layer.descriptor.annotations[SIGNATURE_ANNOTATION]).unwrap();
        assert!(key.public().verifies(&layer.bytes, &sig));
    }
}
