//! `kiln verify` and `kiln sbom`: find an image's signature and referrers
//! and check them. The signature must verify with the key and name this
//! manifest's digest; each attestation's envelope must verify and its
//! statement name this manifest. A failure says which part is wrong.

use serde_json::Value;

use super::key::PublicKey;
use super::read::{MAX_DOCUMENT, MAX_PAYLOAD, Source, bad};
use super::sign::{self, Envelope, Payload};
use super::{ArtifactManifest, DSSE_MEDIA_TYPE, IN_TOTO, SIGNATURE_ANNOTATION, SIMPLESIGNING};
use crate::error::{Error, Result};
use crate::oci::{self, Descriptor, Index};

/// What an image's attachments say, once checked.
#[derive(Debug, serde::Serialize)]
pub struct Checked {
    pub digest: String,
    /// The platform, for one image of an index.
    pub platform: Option<String>,
    /// The `docker-reference` the signature names.
    pub signed_as: Option<String>,
    pub attestations: Vec<Attestation>,
    /// Media types of the SBOM documents attached.
    pub sboms: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Attestation {
    pub predicate_type: String,
    pub signed: bool,
    /// A line saying what it holds.
    pub summary: String,
}

/// The top manifest: the tag (or digest) asked for; in a layout with no
/// tag, its one image that is not an attachment.
pub fn top(source: &mut Source, reference: Option<&str>) -> Result<(Descriptor, Vec<u8>)> {
    let name = source.describe();
    if let Some(r) = reference.filter(|r| r.starts_with("sha256:")) {
        let digest = oci::Digest::parse(r).map_err(|m| bad(&name, m))?;
        let bytes = about(source.manifest(&digest), "the image manifest")?
            .ok_or_else(|| bad(format!("{name}@{r}"), "no such manifest"))?;
        let media_type = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| oci::OCI_MANIFEST.to_string());
        let mut desc = super::descriptor(&media_type, &bytes);
        desc.media_type = media_type;
        return Ok((desc, bytes));
    }
    let layout = match &*source {
        Source::Layout { dir } => Some(dir.clone()),
        Source::Registry { .. } => None,
    };
    let tag = match (reference, layout) {
        (Some(t), _) => t.to_string(),
        (None, Some(dir)) => {
            let index = Source::layout_index(&dir)?;
            let images: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| {
                    !d.annotations
                        .get(oci::REF_NAME)
                        .is_some_and(|n| oci::is_attachment_tag(n))
                })
                .collect();
            match images.as_slice() {
                [one] => match one.annotations.get(oci::REF_NAME) {
                    Some(t) => t.clone(),
                    None => {
                        let bytes = about(
                            source.blob(one, crate::registry::MAX_MANIFEST as u64),
                            "the image manifest",
                        )?;
                        return Ok(((*one).clone(), bytes));
                    }
                },
                _ => {
                    return Err(Error::Usage {
                        what: name,
                        msg: format!("holds {} images", images.len()),
                        hint: Some("name one with oci:DIR:TAG".into()),
                    });
                }
            }
        }
        (None, None) => "latest".to_string(),
    };
    about(source.tagged(&tag), "the image manifest")?
        .ok_or_else(|| bad(format!("{name}:{tag}"), "no such image"))
}

/// The images to check: the top one, and each platform's of an index.
pub fn subjects(
    source: &mut Source,
    top: &Descriptor,
    bytes: &[u8],
) -> Result<Vec<(Descriptor, Option<String>)>> {
    let mut out = vec![(top.clone(), None)];
    if oci::is_index(&top.media_type) {
        let index: Index = serde_json::from_slice(bytes).map_err(|e| {
            bad(
                format!("{} {}", source.describe(), top.digest),
                format!("does not parse: {e}"),
            )
        })?;
        for m in index.manifests {
            let platform = m.platform.as_ref().map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            });
            out.push((m, platform));
        }
    }
    Ok(out)
}

/// Name the part a failure is about.
fn about<T>(r: Result<T>, part: &str) -> Result<T> {
    r.map_err(|e| match e {
        Error::Verify { what, msg } => Error::Verify {
            what: format!("{part} ({what})"),
            msg,
        },
        other => other,
    })
}

/// Check the signature and attestations of one image.
pub fn check(
    source: &mut Source,
    subject: &Descriptor,
    platform: Option<String>,
    key: &PublicKey,
) -> Result<Checked> {
    let digest = subject.digest.clone();
    let name = format!("{}@{digest}", source.describe());
    // The subject's own bytes must be what its digest says (a changed manifest fails here).
    about(
        source
            .manifest(&digest)
            .and_then(|m| m.ok_or_else(|| bad(&name, "is missing"))),
        "the image manifest",
    )?;
    let signed_as = Some(check_signature(source, subject, key)?);
    let mut checked = Checked {
        digest: digest.to_string(),
        platform,
        signed_as,
        attestations: Vec::new(),
        sboms: Vec::new(),
    };
    for r in source.referrers(&digest)? {
        let kind = r.artifact_type.clone().unwrap_or_default();
        if kind != IN_TOTO {
            if kind == crate::sbom::SPDX_MEDIA_TYPE || kind == crate::sbom::CYCLONEDX_MEDIA_TYPE {
                checked.sboms.push(kind);
            }
            continue;
        }
        checked
            .attestations
            .push(check_attestation(source, subject, &r.digest, key)?);
    }
    Ok(checked)
}

fn artifact(
    source: &mut Source,
    digest: &oci::Digest,
    subject: &Descriptor,
    part: &str,
) -> Result<ArtifactManifest> {
    let bytes = about(
        source
            .manifest(digest)
            .and_then(|m| m.ok_or_else(|| bad(digest.to_string(), "is listed but missing"))),
        part,
    )?;
    let manifest: ArtifactManifest = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("{part} {digest}"), format!("does not parse: {e}")))?;
    if manifest.subject.as_ref().map(|s| &s.digest) != Some(&subject.digest) {
        return Err(bad(
            format!("{part} {digest}"),
            format!("does not name {} as its subject", subject.digest),
        ));
    }
    Ok(manifest)
}

fn check_signature(source: &mut Source, subject: &Descriptor, key: &PublicKey) -> Result<String> {
    let tag = format!("sha256-{}.sig", subject.digest.hex());
    let part = "the signature";
    let Some((_, bytes)) = about(source.tagged(&tag), part)? else {
        return Err(bad(
            format!("{}@{}", source.describe(), subject.digest),
            format!("has no signature (no tag {tag})"),
        ));
    };
    let manifest: ArtifactManifest = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("{part} {tag}"), format!("does not parse: {e}")))?;
    let mut last = None;
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLESIGNING)
    {
        let payload = about(source.blob(layer, MAX_PAYLOAD), "the signature payload")?;
        let sig = layer
            .annotations
            .get(SIGNATURE_ANNOTATION)
            .and_then(|s| sign::decode(s))
            .ok_or_else(|| {
                bad(
                    format!("{part} {tag}"),
                    "has no readable signature annotation",
                )
            })?;
        if !key.verifies(&payload, &sig) {
            last = Some(bad(
                format!("{part} {tag}"),
                "does not verify with --key: the signature or its payload was changed, or another key signed it",
            ));
            continue;
        }
        let p: Payload = serde_json::from_slice(&payload).map_err(|e| {
            bad(
                format!("the signature payload {}", layer.digest),
                format!("does not parse: {e}"),
            )
        })?;
        if p.critical.image.docker_manifest_digest != subject.digest.as_str() {
            last = Some(bad(
                format!("the signature payload {}", layer.digest),
                format!(
                    "signs {}, not this image's manifest {}",
                    p.critical.image.docker_manifest_digest, subject.digest
                ),
            ));
            continue;
        }
        return Ok(p.critical.identity.docker_reference);
    }
    Err(last.unwrap_or_else(|| bad(format!("{part} {tag}"), "holds no simple-signing payload")))
}

fn check_attestation(
    source: &mut Source,
    subject: &Descriptor,
    digest: &oci::Digest,
    key: &PublicKey,
) -> Result<Attestation> {
    let part = "the attestation";
    let manifest = artifact(source, digest, subject, part)?;
    let layer = manifest
        .layers
        .first()
        .ok_or_else(|| bad(format!("{part} {digest}"), "has no layer"))?;
    let bytes = about(source.blob(layer, MAX_DOCUMENT), "the attestation envelope")?;
    let (statement, signed) = match layer.media_type.as_str() {
        DSSE_MEDIA_TYPE => {
            let what = format!("the attestation envelope {}", layer.digest);
            let envelope: Envelope = serde_json::from_slice(&bytes)
                .map_err(|e| bad(&what, format!("does not parse: {e}")))?;
            let payload = sign::decode(&envelope.payload)
                .ok_or_else(|| bad(&what, "its payload is not base64"))?;
            let pae = sign::pae(&envelope.payload_type, &payload);
            let ok = envelope
                .signatures
                .iter()
                .filter_map(|s| sign::decode(&s.sig))
                .any(|sig| key.verifies(&pae, &sig));
            if !ok {
                return Err(bad(
                    what,
                    "its signature does not verify with --key: the envelope was changed, or another key signed it",
                ));
            }
            (payload, true)
        }
        _ => (bytes, false),
    };
    let what = format!("the attestation statement {digest}");
    let statement: Value = serde_json::from_slice(&statement)
        .map_err(|e| bad(&what, format!("does not parse: {e}")))?;
    let names_subject = statement["subject"].as_array().is_some_and(|s| {
        s.iter()
            .any(|x| x["digest"]["sha256"].as_str() == Some(subject.digest.hex()))
    });
    if !names_subject {
        return Err(bad(
            what,
            format!("does not name {} as its subject", subject.digest),
        ));
    }
    let predicate_type = statement["predicateType"]
        .as_str()
        .unwrap_or("")
        .to_string();
    Ok(Attestation {
        summary: summary(&predicate_type, &statement["predicate"]),
        predicate_type,
        signed,
    })
}

/// One line on what a predicate says.
pub fn summary(predicate_type: &str, p: &Value) -> String {
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);
    match predicate_type {
        super::SLSA_PROVENANCE => {
            let builder = p["runDetails"]["builder"]["id"].as_str().unwrap_or("?");
            let deps = p["buildDefinition"]["resolvedDependencies"].as_array();
            let base = deps
                .and_then(|d| d.iter().find(|x| x["name"] == "base"))
                .map(|b| {
                    format!(
                        "{}@sha256:{}",
                        b["uri"].as_str().unwrap_or("?"),
                        b["digest"]["sha256"].as_str().unwrap_or("?")
                    )
                })
                .unwrap_or_else(|| "scratch".into());
            let spec = p["buildDefinition"]["externalParameters"]["spec"]["path"]
                .as_str()
                .unwrap_or("?");
            format!("builder {builder}, spec {spec}, base {base}")
        }
        super::SPDX_PREDICATE => format!(
            "SPDX: {} packages, {} files",
            count(&p["packages"]),
            count(&p["files"])
        ),
        super::CYCLONEDX_PREDICATE => {
            format!("CycloneDX: {} components", count(&p["components"]))
        }
        _ => String::new(),
    }
}

/// The SBOM document of `media_type` attached to `subject`, checked.
pub fn sbom(source: &mut Source, subject: &Descriptor, media_type: &str) -> Result<Vec<u8>> {
    let found = source
        .referrers(&subject.digest)?
        .into_iter()
        .rev()
        .find(|r| r.artifact_type.as_deref() == Some(media_type));
    let Some(r) = found else {
        return Err(bad(
            format!("{}@{}", source.describe(), subject.digest),
            format!("has no {media_type} SBOM attached (build with --sbom)"),
        ));
    };
    let manifest = artifact(source, &r.digest, subject, "the SBOM")?;
    let layer = manifest
        .layers
        .iter()
        .find(|l| l.media_type == media_type)
        .ok_or_else(|| bad(format!("the SBOM {}", r.digest), "holds no document"))?;
    let bytes = about(source.blob(layer, MAX_DOCUMENT), "the SBOM document")?;
    serde_json::from_slice::<Value>(&bytes).map_err(|e| {
        bad(
            format!("the SBOM document {}", layer.digest),
            format!("is not JSON: {e}"),
        )
    })?;
    Ok(bytes)
}
