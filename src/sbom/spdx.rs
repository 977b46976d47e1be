//! The SPDX 2.3 JSON document: the image as the described package, which
//! contains every file kiln added and every package its databases record;
//! the base it descends from and the images copies took files from.

use serde::Serialize;

use super::{Facts, files};

const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package<'a>>,
    files: Vec<File>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package<'a> {
    name: &'a str,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    version_info: &'a str,
    download_location: &'static str,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_verification_code: Option<VerificationCode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    license_declared: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_comments: Option<String>,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerificationCode {
    package_verification_code_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct File {
    file_name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    copyright_text: &'static str,
    comment: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

fn rel(a: &str, kind: &'static str, b: &str) -> Relationship {
    Relationship {
        spdx_element_id: a.to_string(),
        relationship_type: kind,
        related_spdx_element: b.to_string(),
    }
}

fn checksum(algorithm: &'static str, value: &str) -> Checksum {
    Checksum {
        algorithm,
        checksum_value: value.to_string(),
    }
}

/// A package with what SPDX requires and kiln does not assert left NOASSERTION.
fn package<'a>(name: &'a str, id: String, version: &'a str, purpose: &'static str) -> Package<'a> {
    Package {
        name,
        spdx_id: id,
        version_info: version,
        download_location: NOASSERTION,
        files_analyzed: false,
        package_verification_code: None,
        checksums: Vec::new(),
        license_concluded: NOASSERTION,
        license_declared: NOASSERTION.to_string(),
        license_comments: None,
        copyright_text: NOASSERTION,
        external_refs: Vec::new(),
        primary_package_purpose: purpose,
        comment: None,
    }
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

pub(super) fn render(facts: &Facts) -> Vec<u8> {
    const IMAGE: &str = "SPDXRef-Image";
    let image_name = format!("{}:{}", facts.name, facts.tag);
    let mut image = package(&image_name, IMAGE.into(), &facts.digest, "CONTAINER");
    image.checksums = vec![checksum("SHA256", hex(&facts.digest))];
    image.comment = Some(format!(
        "the {} image built by kiln from {}",
        facts.platform, facts.spec_file
    ));
    if !facts.files.is_empty() {
        image.files_analyzed = true;
        let sha1s = facts.files.iter().map(|d| d.file.hashes.sha1.as_str());
        image.package_verification_code = Some(VerificationCode {
            package_verification_code_value: files::verification_code(sha1s),
        });
    }
    let mut packages = vec![image];
    let mut relationships = vec![rel("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE)];
    if let Some((reference, digest)) = &facts.base {
        let mut base = package(reference, "SPDXRef-Base".into(), digest, "CONTAINER");
        base.checksums = vec![checksum("SHA256", hex(digest))];
        base.comment = Some("the base image".into());
        packages.push(base);
        relationships.push(rel(IMAGE, "DESCENDANT_OF", "SPDXRef-Base"));
    }
    for (n, (reference, digest)) in facts.sources.iter().enumerate() {
        let id = format!("SPDXRef-Source-{}", n + 1);
        let mut source = package(reference, id.clone(), digest, "CONTAINER");
        source.checksums = vec![checksum("SHA256", hex(digest))];
        source.comment = Some("an image [[copy]] took files from".into());
        packages.push(source);
        relationships.push(rel(&id, "BUILD_DEPENDENCY_OF", IMAGE));
    }
    for (n, found) in facts.packages.iter().enumerate() {
        let p = &found.package;
        let id = format!("SPDXRef-Package-{}", n + 1);
        let purpose = match p.ecosystem {
            super::Ecosystem::Python => "LIBRARY",
            _ => "OPERATING-SYSTEM",
        };
        let mut out = package(&p.name, id.clone(), &p.version, purpose);
        if let Some(e) = &found.expression {
            out.license_declared = e.clone();
        } else if let Some(text) = &p.license {
            out.license_comments = Some(format!("declared as: {text}"));
        }
        out.external_refs = vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER",
            reference_type: "purl",
            reference_locator: found.purl.clone(),
        }];
        out.comment = Some(format!(
            "recorded in {} ({})",
            found.recorded_in.join(", "),
            if found.added {
                "added by kiln"
            } else {
                "in the base"
            }
        ));
        packages.push(out);
        relationships.push(rel(IMAGE, "CONTAINS", &id));
    }
    let files = facts
        .files
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let id = format!("SPDXRef-File-{}", n + 1);
            relationships.push(rel(IMAGE, "CONTAINS", &id));
            let f = &d.file;
            let mut comment = format!("owner {}:{}, mode {:04o}", f.uid, f.gid, f.mode);
            if let Some(what) = &d.what {
                comment.push_str(&format!("; put there by {what}"));
            }
            if let Some(line) = d.line {
                comment.push_str(&format!(" ({}, line {line})", facts.spec_file));
            }
            if let Some((image, digest)) = &d.image {
                comment.push_str(&format!("; copied out of {image}@{digest}"));
            }
            File {
                file_name: format!(".{}", f.path),
                spdx_id: id,
                checksums: vec![
                    checksum("SHA1", &f.hashes.sha1),
                    checksum("SHA256", &f.hashes.sha256),
                ],
                license_concluded: NOASSERTION,
                copyright_text: NOASSERTION,
                comment,
            }
        })
        .collect();
    let doc = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: format!("{image_name} ({})", facts.platform),
        document_namespace: format!(
            "https://spdx.org/spdxdocs/kiln/{}-{}",
            facts.name,
            facts.uuid("spdx")
        ),
        creation_info: CreationInfo {
            created: facts.created.clone(),
            creators: vec![format!("Tool: kiln-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        files,
        relationships,
    };
    let mut out = serde_json::to_vec_pretty(&doc).expect("the SBOM serializes");
    out.push(b'\n');
    out
}
