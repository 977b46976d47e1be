//! The image config and the manifest: the base's config overridden by the
//! spec the way a Dockerfile's instructions override it, the new layers'
//! diff_ids and history appended, and a manifest in the chosen format.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::image::base::Base;
use crate::layer::write::{LayerBlob, Source};
use crate::oci::config::{Empty, HealthConfig, History, ImageConfig};
use crate::oci::digest;
use crate::oci::{self, Compression, Descriptor, Manifest};
use crate::spec::args;
use crate::spec::duration;
use crate::spec::validate::{Format, Platform, Spec};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A layer of the finished image and the file that holds its blob.
#[derive(Debug, Clone)]
pub struct ImageLayer {
    pub descriptor: Descriptor,
    pub blob: PathBuf,
    pub compression: Compression,
    pub diff_id: String,
    pub diff_size: u64,
    /// Whether the blob's bytes are known to match its digest (see `layers`).
    pub verified: bool,
    pub source: Source,
    /// Where the push can mount the blob from, when `blob` may be absent.
    pub mount_from: Option<(String, String)>,
}

pub struct Image {
    pub config: Vec<u8>,
    pub config_descriptor: Descriptor,
    pub manifest: Vec<u8>,
    pub manifest_descriptor: Descriptor,
    pub layers: Vec<ImageLayer>,
    /// The registry host and repository the base came from (its layers
    /// can be mounted from there), and how many of `layers` are the base's.
    pub base_source: Option<(String, String)>,
    pub base_layers: usize,
    /// Blobs already uploaded to the first push destination while they
    /// were written (see `layer::stream`).
    pub streamed: Vec<String>,
}

pub fn assemble(spec: &Spec, base: &Base, new: &[(Vec<String>, LayerBlob)]) -> Result<Image> {
    let mut layers = Vec::new();
    for l in &base.layers {
        let media_type = layer_media_type(spec.format, l.compression, &l.descriptor.media_type)
            .map_err(|m| Error::base(&base.reference, m))?;
        layers.push(ImageLayer {
            descriptor: Descriptor {
                media_type,
                ..l.descriptor.clone()
            },
            blob: l.blob.clone(),
            compression: l.compression,
            diff_id: l.diff_id.clone(),
            diff_size: l.diff_size,
            verified: true,
            source: Source::Base,
            mount_from: None,
        });
    }
    let new_type = new_layer_type(spec.format, spec.compression);
    for (_, blob) in new {
        layers.push(ImageLayer {
            descriptor: descriptor(new_type, &blob.digest, blob.size),
            blob: blob.path.clone(),
            compression: spec.compression,
            diff_id: blob.diff_id.clone(),
            diff_size: blob.diff_size,
            verified: blob.verified,
            source: blob.source,
            mount_from: blob.mount_from.clone(),
        });
    }

    let config = image_config(spec, base, new)?;
    let config_bytes = serde_json::to_vec(&config).expect("config serializes");
    let (manifest_type, config_type) = match spec.format {
        Format::Docker => (oci::DOCKER_MANIFEST, oci::DOCKER_CONFIG),
        Format::Oci => (oci::OCI_MANIFEST, oci::OCI_CONFIG),
    };
    let config_descriptor = descriptor(
        config_type,
        &digest::sha256(&config_bytes),
        config_bytes.len() as u64,
    );
    let mut annotations = spec.annotations.clone();
    if spec.format == Format::Oci {
        if let Some(d) = &base.digest {
            annotations.insert(oci::BASE_NAME.to_string(), base.reference.clone());
            annotations.insert(oci::BASE_DIGEST.to_string(), d.clone());
        }
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(manifest_type.to_string()),
        artifact_type: None,
        config: config_descriptor.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        annotations,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let manifest_descriptor = descriptor(
        manifest_type,
        &digest::sha256(&manifest_bytes),
        manifest_bytes.len() as u64,
    );
    Ok(Image {
        config: config_bytes,
        config_descriptor,
        manifest: manifest_bytes,
        manifest_descriptor,
        layers,
        base_source: base.source.clone(),
        base_layers: base.layers.len(),
        streamed: Vec::new(),
    })
}

/// What a build made, ready for every output: one image per platform and,
/// when there are several, the index over them. Each output takes this
/// (and the store its blobs are in, where it needs one).
pub struct Assembled {
    pub name: String,
    pub tag: String,
    /// `created` in seconds since the epoch: the mtime of archive entries.
    pub created: u64,
    pub images: Vec<Image>,
    pub index: Option<ImageIndex>,
}

impl Assembled {
    /// The index, or the one image's manifest.
    pub fn top(&self) -> &Descriptor {
        match &self.index {
            Some(i) => &i.descriptor,
            None => &self.images[0].manifest_descriptor,
        }
    }

    /// `NAME:TAG`, as docker-archives and layouts name the image.
    pub fn repo_tag(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

/// The media type of the layers kiln writes.
pub fn new_layer_type(format: Format, compression: Compression) -> &'static str {
    match (format, compression) {
        (Format::Docker, _) => oci::DOCKER_LAYER_GZIP,
        (Format::Oci, Compression::Zstd) => oci::OCI_LAYER_ZSTD,
        (Format::Oci, _) => oci::OCI_LAYER_GZIP,
    }
}

/// The index of a multi-platform build: a Docker manifest list for
/// Docker-format images (what docker pull expects with them), else an OCI index.
pub struct ImageIndex {
    pub bytes: Vec<u8>,
    pub descriptor: Descriptor,
}

/// The platform an image is for: the spec's, with the base's variant when
/// the spec names none (an arm64 base says v8; the image keeps saying so).
pub fn platform(spec: &Spec, base: &Base) -> Platform {
    let mut p = spec.platform.clone();
    if p.variant.is_none() && base.config.architecture == p.arch {
        p.variant = base.config.variant.clone();
    }
    p
}

pub fn index(
    format: Format,
    images: &[(&Platform, &Image)],
    annotations: &std::collections::BTreeMap<String, String>,
) -> ImageIndex {
    let media_type = match format {
        Format::Docker => oci::DOCKER_LIST,
        Format::Oci => oci::OCI_INDEX,
    };
    let manifests = images
        .iter()
        .map(|(p, image)| Descriptor {
            platform: Some(oci::Platform {
                architecture: p.arch.clone(),
                os: p.os.clone(),
                variant: p.variant.clone(),
            }),
            ..image.manifest_descriptor.clone()
        })
        .collect();
    let index = oci::Index {
        schema_version: 2,
        media_type: Some(media_type.to_string()),
        manifests,
        annotations: annotations.clone(),
    };
    let bytes = serde_json::to_vec(&index).expect("index serializes");
    let descriptor = descriptor(media_type, &digest::sha256(&bytes), bytes.len() as u64);
    ImageIndex { bytes, descriptor }
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: crate::oci::Digest::computed(digest.to_string()),
        size,
        urls: None,
        annotations: Default::default(),
        platform: None,
    }
}

/// A base layer's media type in the output's format; the bytes stay the same.
fn layer_media_type(
    format: Format,
    compression: Compression,
    original: &str,
) -> Result<String, String> {
    if original.contains("nondistributable") || original.contains("foreign") {
        return Ok(original.to_string());
    }
    Ok(match (format, compression) {
        (Format::Docker, Compression::Gzip) => oci::DOCKER_LAYER_GZIP,
        (Format::Docker, Compression::None) => oci::DOCKER_LAYER_TAR,
        (Format::Docker, Compression::Zstd) => {
            return Err(
                "has zstd layers, which Docker-format images cannot carry; set format = \"oci\""
                    .into(),
            );
        }
        (Format::Oci, Compression::Gzip) => oci::OCI_LAYER_GZIP,
        (Format::Oci, Compression::None) => oci::OCI_LAYER_TAR,
        (Format::Oci, Compression::Zstd) => oci::OCI_LAYER_ZSTD,
    }
    .to_string())
}

fn image_config(spec: &Spec, base: &Base, new: &[(Vec<String>, LayerBlob)]) -> Result<ImageConfig> {
    let mut image = base.config.clone();
    let created = Some(spec.created.rfc3339.clone());
    image.created = created.clone();
    image.os = spec.platform.os.clone();
    image.architecture = spec.platform.arch.clone();
    image.variant = platform(spec, base).variant;
    image.rootfs.kind = "layers".to_string();

    let c = &mut image.config;
    let mut history = Vec::new();
    let mut note = |line: String| {
        history.push(History {
            created: created.clone(),
            created_by: Some(line),
            comment: Some("kiln".to_string()),
            empty_layer: true,
            ..History::default()
        })
    };
    let s = &spec.config;

    if !c.env.iter().any(|e| e.starts_with("PATH=")) {
        c.env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    // Each value is capped by `args`; the sum is capped here.
    let mut total = 0;
    for (key, raw, span) in &s.env {
        let value = {
            let env = &c.env;
            let lookup = |name: &str| {
                spec.args.get(name).cloned().or_else(|| {
                    env.iter().find_map(|e| {
                        e.split_once('=')
                            .filter(|(k, _)| *k == name)
                            .map(|(_, v)| v.to_string())
                    })
                })
            };
            args::expand_env(raw, &lookup).map_err(|m| spec.source.error(span.clone(), m))?
        };
        total += value.len();
        if total > args::MAX_TOTAL {
            return Err(spec.source.error(
                span.clone(),
                "the env values add up to more than 16 MiB after expansion, kiln's cap for one spec",
            ));
        }
        let line = format!("{key}={value}");
        match c
            .env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(existing) => *existing = line.clone(),
            None => c.env.push(line.clone()),
        }
        note(format!("ENV {line}"));
    }
    if let Some(user) = &s.user {
        c.user = Some(user.clone());
        note(format!("USER {user}"));
    }
    if let Some(dir) = &s.workdir {
        c.working_dir = Some(dir.clone());
        note(format!("WORKDIR {dir}"));
    }
    for port in &s.expose {
        c.exposed_ports.insert(port.clone(), Empty {});
        note(format!("EXPOSE {port}"));
    }
    for volume in &s.volumes {
        c.volumes.insert(volume.clone(), Empty {});
        note(format!("VOLUME [{}]", quote(volume)));
    }
    if let Some(d) = &base.digest {
        c.labels
            .insert(oci::BASE_NAME.to_string(), base.reference.clone());
        c.labels.insert(oci::BASE_DIGEST.to_string(), d.clone());
    }
    for (key, value) in &s.labels {
        c.labels.insert(key.clone(), value.clone());
        note(format!("LABEL {}={}", quote(key), quote(value)));
    }
    if let Some(signal) = &s.stop_signal {
        c.stop_signal = Some(signal.clone());
        note(format!("STOPSIGNAL {signal}"));
    }
    if let Some(h) = &spec.healthcheck {
        let mut line = String::from("HEALTHCHECK");
        for (flag, v) in [
            ("interval", h.interval),
            ("timeout", h.timeout),
            ("start-period", h.start_period),
            ("start-interval", h.start_interval),
        ] {
            if v != 0 {
                line.push_str(&format!(" --{flag}={}", duration::format(v)));
            }
        }
        if h.retries != 0 {
            line.push_str(&format!(" --retries={}", h.retries));
        }
        match h.test.first().map(String::as_str) {
            Some("NONE") => line.push_str(" NONE"),
            Some("CMD-SHELL") => line.push_str(&format!(" CMD {}", h.test[1])),
            _ => line.push_str(&format!(" CMD {}", exec_form(&h.test[1..]))),
        }
        c.healthcheck = Some(HealthConfig {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        });
        note(line);
    }
    if let Some(ep) = &s.entrypoint {
        c.entrypoint = (!ep.is_empty()).then(|| ep.clone());
        // As in a Dockerfile, a new ENTRYPOINT drops the base's CMD.
        if s.cmd.is_none() {
            c.cmd = None;
        }
        note(format!("ENTRYPOINT {}", exec_form(ep)));
    }
    if let Some(cmd) = &s.cmd {
        c.cmd = (!cmd.is_empty()).then(|| cmd.clone());
        note(format!("CMD {}", exec_form(cmd)));
    }

    for (created_by, blob) in new {
        image.rootfs.diff_ids.push(blob.diff_id.clone());
        image.history.push(History {
            created: created.clone(),
            created_by: Some(created_by.join("; ")),
            comment: Some("kiln".to_string()),
            ..History::default()
        });
    }
    image.history.extend(history);
    Ok(image)
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("string serializes")
}

fn exec_form(args: &[String]) -> String {
    serde_json::to_string(args).expect("strings serialize")
}
