//! The CycloneDX 1.6 JSON document: the image as the metadata's component;
//! the base, the images copies took files from, the packages and every
//! added file as components. What CycloneDX has no field for (owner, mode,
//! the spec line) is a `kiln:` property.

use serde::Serialize;

use super::Facts;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<License>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum License {
    Expression { expression: String },
    Named { license: Named },
}

#[derive(Serialize)]
struct Named {
    name: String,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

fn prop(name: &'static str, value: impl Into<String>) -> Property {
    Property {
        name,
        value: value.into(),
    }
}

fn sha256(digest: &str) -> Hash {
    Hash {
        alg: "SHA-256",
        content: digest.strip_prefix("sha256:").unwrap_or(digest).to_string(),
    }
}

/// An image (the base, or a copy's source) as a component.
fn image(bom_ref: String, reference: &str, digest: &str, description: &str) -> Component {
    Component {
        kind: "container",
        bom_ref: Some(bom_ref),
        name: reference.to_string(),
        version: Some(digest.to_string()),
        description: Some(description.to_string()),
        hashes: vec![sha256(digest)],
        ..Component::default()
    }
}

pub(super) fn render(facts: &Facts) -> Vec<u8> {
    let mut components = Vec::new();
    let mut depends_on = Vec::new();
    if let Some((reference, digest)) = &facts.base {
        components.push(image("base".into(), reference, digest, "the base image"));
        depends_on.push("base".to_string());
    }
    for (n, (reference, digest)) in facts.sources.iter().enumerate() {
        let bom_ref = format!("source-{}", n + 1);
        let what = "an image [[copy]] took files from";
        components.push(image(bom_ref.clone(), reference, digest, what));
        depends_on.push(bom_ref);
    }
    for (n, found) in facts.packages.iter().enumerate() {
        let p = &found.package;
        let licenses = match (&found.expression, &p.license) {
            (Some(e), _) => vec![License::Expression {
                expression: e.clone(),
            }],
            (None, Some(text)) => vec![License::Named {
                license: Named { name: text.clone() },
            }],
            (None, None) => Vec::new(),
        };
        let mut properties = vec![prop("kiln:recorded-in", found.recorded_in.join(", "))];
        properties.push(prop(
            "kiln:layer",
            if found.added { "added" } else { "base" },
        ));
        if let Some(source) = &p.source {
            properties.push(prop("kiln:source-package", source.clone()));
        }
        components.push(Component {
            kind: "library",
            bom_ref: Some(format!("package-{}", n + 1)),
            name: p.name.clone(),
            version: Some(p.version.clone()),
            licenses,
            purl: Some(found.purl.clone()),
            properties,
            ..Component::default()
        });
    }
    for d in &facts.files {
        let f = &d.file;
        let mut properties = vec![
            prop("kiln:owner", format!("{}:{}", f.uid, f.gid)),
            prop("kiln:mode", format!("{:04o}", f.mode)),
            prop("kiln:size", f.size.to_string()),
        ];
        if let Some(what) = &d.what {
            properties.push(prop("kiln:origin", what.clone()));
        }
        if let Some(line) = d.line {
            properties.push(prop(
                "kiln:spec-line",
                format!("{}:{line}", facts.spec_file),
            ));
        }
        if let Some((image, digest)) = &d.image {
            properties.push(prop("kiln:source-image", format!("{image}@{digest}")));
        }
        components.push(Component {
            kind: "file",
            bom_ref: Some(format!("file:{}", f.path)),
            name: f.path.clone(),
            hashes: vec![
                Hash {
                    alg: "SHA-1",
                    content: f.hashes.sha1.clone(),
                },
                Hash {
                    alg: "SHA-256",
                    content: f.hashes.sha256.clone(),
                },
            ],
            properties,
            ..Component::default()
        });
    }
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", facts.uuid("cyclonedx")),
        version: 1,
        metadata: Metadata {
            timestamp: facts.created.clone(),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "kiln".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Component::default()
                }],
            },
            component: Component {
                kind: "container",
                bom_ref: Some("image".into()),
                name: facts.name.clone(),
                version: Some(facts.tag.clone()),
                description: Some(format!(
                    "the {} image built by kiln from {}",
                    facts.platform, facts.spec_file
                )),
                hashes: vec![sha256(&facts.digest)],
                properties: vec![
                    prop("kiln:manifest-digest", facts.digest.clone()),
                    prop("kiln:platform", facts.platform.clone()),
                ],
                ..Component::default()
            },
        },
        components,
        dependencies: vec![Dependency {
            reference: "image".into(),
            depends_on,
        }],
    };
    let mut out = serde_json::to_vec_pretty(&bom).expect("the SBOM serializes");
    out.push(b'\n');
    out
}
