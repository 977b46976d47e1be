//! The artifacts attached to one image manifest: its SBOMs, provenance,
//! attestations and signature, each a manifest of its own. Referrers carry
//! `subject` (the image) and `artifactType`, with the empty config, as
//! image-spec 1.1 describes; the signature is stored as cosign stores it.

use std::collections::BTreeMap;

use serde_json::json;

use super::key::Key;
use super::{
    Artifact, ArtifactManifest, Attachments, Blob, CREATED, CYCLONEDX_PREDICATE, DSSE_MEDIA_TYPE,
    IN_TOTO, PREDICATE_ANNOTATION, SLSA_PROVENANCE, SPDX_PREDICATE, STATEMENT_V1, sign,
};
use crate::oci::{self, Descriptor};
use crate::sbom::{self, Documents};

/// What to attach to one image.
pub struct Parts<'a> {
    /// The name the image is known by: the push target's repository, or the spec's name.
    pub name: &'a str,
    /// RFC 3339, the spec's `created`.
    pub created: &'a str,
    pub sbom: Option<&'a Documents>,
    /// The provenance statement (see `provenance`).
    pub provenance: Option<&'a [u8]>,
    pub key: Option<&'a Key>,
}

/// Every artifact for `subject`, in a fixed order: SBOMs, provenance,
/// SBOM attestations, then the signature.
pub fn attachments(subject: &Descriptor, parts: &Parts) -> Attachments {
    let mut artifacts = Vec::new();
    let created = parts.created;
    if let Some(docs) = parts.sbom {
        for (media_type, bytes) in [
            (sbom::SPDX_MEDIA_TYPE, &docs.spdx),
            (sbom::CYCLONEDX_MEDIA_TYPE, &docs.cyclonedx),
        ] {
            let layer = Blob::new(media_type, bytes.clone());
            artifacts.push(referrer(
                subject,
                media_type,
                layer,
                BTreeMap::new(),
                created,
            ));
        }
    }
    let attest = |predicate_type: &str, statement: &[u8]| {
        let (media_type, bytes) = match parts.key {
            Some(key) => (DSSE_MEDIA_TYPE, sign::envelope(statement, key)),
            None => (IN_TOTO, statement.to_vec()),
        };
        let mut layer = Blob::new(media_type, bytes);
        let notes: BTreeMap<String, String> =
            [(PREDICATE_ANNOTATION.to_string(), predicate_type.to_string())].into();
        layer.descriptor.annotations = notes.clone();
        referrer(subject, IN_TOTO, layer, notes, created)
    };
    if let Some(statement) = parts.provenance {
        artifacts.push(attest(SLSA_PROVENANCE, statement));
    }
    if let (Some(docs), Some(_)) = (parts.sbom, parts.key) {
        for (predicate_type, bytes) in [
            (SPDX_PREDICATE, &docs.spdx),
            (CYCLONEDX_PREDICATE, &docs.cyclonedx),
        ] {
            let statement = sbom_statement(subject, parts.name, predicate_type, bytes);
            artifacts.push(attest(predicate_type, &statement));
        }
    }
    if let Some(key) = parts.key {
        // The signed envelopes again, where cosign looks for them.
        let envelopes: Vec<Blob> = artifacts
            .iter()
            .flat_map(|a| &a.blobs)
            .filter(|b| b.descriptor.media_type == DSSE_MEDIA_TYPE)
            .cloned()
            .collect();
        if !envelopes.is_empty() {
            artifacts.push(sign::attestations(subject, envelopes, created));
        }
        artifacts.push(sign::signature(subject, key, parts.name, created));
    }
    Attachments {
        subject: subject.clone(),
        artifacts,
    }
}

/// An in-toto statement whose predicate is an SBOM document.
pub fn sbom_statement(
    subject: &Descriptor,
    name: &str,
    predicate_type: &str,
    document: &[u8],
) -> Vec<u8> {
    let predicate: serde_json::Value = serde_json::from_slice(document)
        .unwrap_or_else(|_| json!(String::from_utf8_lossy(document)));
    let value = json!({
        "_type": STATEMENT_V1,
        "subject": [{ "name": name, "digest": { "sha256": subject.digest.hex() } }],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    serde_json::to_vec(&value).expect("statement serializes")
}

/// An artifact manifest naming `subject`, holding `layer` over the empty config.
fn referrer(
    subject: &Descriptor,
    artifact_type: &str,
    layer: Blob,
    mut annotations: BTreeMap<String, String>,
    created: &str,
) -> Artifact {
    annotations.insert(CREATED.to_string(), created.to_string());
    let config = Blob::empty();
    let manifest = ArtifactManifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.to_string()),
        artifact_type: Some(artifact_type.to_string()),
        config: config.descriptor.clone(),
        layers: vec![layer.descriptor.clone()],
        subject: Some(Descriptor {
            media_type: subject.media_type.clone(),
            digest: subject.digest.clone(),
            size: subject.size,
            urls: None,
            annotations: BTreeMap::new(),
            platform: None,
        }),
        annotations: annotations.clone(),
    };
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    Artifact {
        descriptor: super::descriptor(oci::OCI_MANIFEST, &bytes),
        manifest: bytes,
        artifact_type: artifact_type.to_string(),
        annotations,
        blobs: vec![config, layer],
        tag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::key::test_key;

    #[test]
    fn each_part_becomes_an_artifact_naming_the_image() {
        let subject = crate::supply::descriptor(oci::DOCKER_MANIFEST, b"{\"x\":1}");
        let docs = Documents {
            spdx: b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec(),
            cyclonedx: b"{\"bomFormat\":\"CycloneDX\"}".to_vec(),
        };
        let key = test_key();
        let parts = Parts {
            name: "app",
            created: "1970-01-01T00:00:00Z",
            sbom: Some(&docs),
            provenance: Some(b"{}"),
            key: Some(&key),
        };
        let a = attachments(&subject, &parts);
        let types: Vec<&str> = a
            .artifacts
            .iter()
            .map(|x| x.artifact_type.as_str())
            .collect();
        assert_eq!(
            types,
            [
                sbom::SPDX_MEDIA_TYPE,
                sbom::CYCLONEDX_MEDIA_TYPE,
                IN_TOTO,
                IN_TOTO,
                IN_TOTO,
                DSSE_MEDIA_TYPE,
                crate::supply::SIMPLESIGNING
            ]
        );
        for r in a.referrers() {
            let m: ArtifactManifest = serde_json::from_slice(&r.manifest).unwrap();
            let s = m.subject.unwrap();
            assert_eq!(
                (s.digest, s.media_type),
                (subject.digest.clone(), subject.media_type.clone())
            );
            assert_eq!(m.config.media_type, crate::supply::EMPTY_MEDIA_TYPE);
        }
        assert_eq!(a.referrers().count(), 5);
        let again = attachments(&subject, &parts);
        let digests = |x: &Attachments| {
            x.artifacts
                .iter()
                .map(|a| a.descriptor.digest.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(digests(&a), digests(&again));
    }
}
