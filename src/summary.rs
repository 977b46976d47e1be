//! `kiln build --format json`: what a build made, for CI to read.

use std::path::Path;

use serde::Serialize;

use crate::Built;
use crate::oci::Descriptor;

#[derive(Serialize)]
pub struct Summary<'a> {
    pub name: &'a str,
    pub tag: &'a str,
    /// `HOST/REPO:TAG@DIGEST` for each pushed tag, else `NAME:TAG@DIGEST`.
    pub references: Vec<String>,
    /// The image's manifest, or the index when several platforms were built.
    pub manifest: Blob<'a>,
    /// One entry per platform.
    pub images: Vec<Image<'a>>,
    pub oci: Option<&'a Path>,
    pub tar: Option<&'a Path>,
    pub push: Option<&'a crate::output::push::Pushed>,
    /// SBOMs, provenance, attestations and signatures attached to the images.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub attachments: &'a [crate::supply::Attached],
    pub timings_ms: Timings,
    pub warnings: &'a [String],
}

#[derive(Serialize)]
pub struct Blob<'a> {
    pub digest: &'a str,
    pub media_type: &'a str,
    pub size: u64,
}

#[derive(Serialize)]
pub struct Image<'a> {
    pub platform: &'a str,
    pub manifest: Blob<'a>,
    pub config: Blob<'a>,
    pub layers: Vec<Layer<'a>>,
}

#[derive(Serialize)]
pub struct Layer<'a> {
    pub digest: &'a str,
    pub media_type: &'a str,
    pub size: u64,
    pub diff_id: &'a str,
    pub diff_size: u64,
    /// Taken unchanged from the base image.
    pub from_base: bool,
    /// `base`, `built`, `cache` (the local layer cache) or `cache-repo` (--cache-repo).
    pub source: crate::layer::write::Source,
}

#[derive(Serialize)]
pub struct Timings {
    pub resolve: u64,
    pub layers: u64,
    pub assemble: u64,
    pub push: u64,
    pub total: u64,
}

impl<'a> Summary<'a> {
    pub fn new(built: &'a Built, tar: Option<&'a Path>) -> Summary<'a> {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let t = &built.timings;
        Summary {
            name: &built.name,
            tag: &built.tag,
            references: match &built.pushed {
                Some(p) => p.references.clone(),
                None => vec![format!("{}:{}@{}", built.name, built.tag, built.top.digest)],
            },
            manifest: blob(&built.top),
            images: built
                .images
                .iter()
                .map(|image| Image {
                    platform: &image.platform,
                    manifest: blob(&image.manifest),
                    config: blob(&image.config),
                    layers: image
                        .layers
                        .iter()
                        .enumerate()
                        .map(|(i, l)| Layer {
                            digest: &l.descriptor.digest,
                            media_type: &l.descriptor.media_type,
                            size: l.descriptor.size,
                            diff_id: &l.diff_id,
                            diff_size: l.diff_size,
                            from_base: i < image.base_layers,
                            source: l.source,
                        })
                        .collect(),
                })
                .collect(),
            oci: built.layout.as_deref(),
            tar,
            push: built.pushed.as_ref(),
            attachments: &built.attached,
            timings_ms: Timings {
                resolve: ms(t.resolve),
                layers: ms(t.layers),
                assemble: ms(t.assemble),
                push: ms(t.push),
                total: ms(t.total),
            },
            warnings: &built.warnings,
        }
    }
}

fn blob(d: &Descriptor) -> Blob<'_> {
    Blob {
        digest: &d.digest,
        media_type: &d.media_type,
        size: d.size,
    }
}
