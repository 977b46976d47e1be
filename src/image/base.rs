//! Resolve the base image: `scratch`, or a manifest in a local OCI image
//! layout. Every blob read is checked against its digest, and the base's
//! layers are read once to learn what the image's filesystem holds: which
//! paths exist with what owner and mode, and the account files. That view
//! is kept in the cache (`index`), so later builds read no layer.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
pub use crate::image::fsview::{FsView, Kind, Meta, resolve_dots};
use crate::oci::config::{ImageConfig, RootFs};
use crate::oci::digest::{self, HashReader};
use crate::oci::{self, Compression, Descriptor, Index, Manifest};
use crate::spec::validate::{BaseRef, Platform};

/// Largest manifest, index or config read into memory.
const MAX_JSON: u64 = 16 << 20;

pub struct Base {
    /// As written in the spec, for messages and the base.name annotation.
    pub reference: String,
    /// The base manifest's digest; None for scratch.
    pub digest: Option<String>,
    /// Registry host and repository the base came from, to mount its blobs from.
    pub source: Option<(String, String)>,
    pub config: ImageConfig,
    pub layers: Vec<BaseLayer>,
    pub fs: FsView,
}

pub struct BaseLayer {
    pub descriptor: Descriptor,
    pub blob: PathBuf,
    pub compression: Compression,
    pub diff_id: String,
    pub diff_size: u64,
}

/// `index`: the cache directory whose base index to use and fill, if any.
pub fn resolve(base: &BaseRef, platform: &Platform, index: Option<&Path>) -> Result<Base> {
    match base {
        BaseRef::Scratch => Ok(Base {
            reference: "scratch".to_string(),
            digest: None,
            source: None,
            config: ImageConfig {
                architecture: platform.arch.clone(),
                variant: platform.variant.clone(),
                os: platform.os.clone(),
                rootfs: RootFs {
                    kind: "layers".to_string(),
                    diff_ids: Vec::new(),
                },
                ..ImageConfig::default()
            },
            layers: Vec::new(),
            fs: FsView::default(),
        }),
        BaseRef::OciLayout { path, tag, text } => {
            let chosen = select_in_layout(path, tag.as_deref(), text, platform)?;
            let digest = chosen.top.digest.to_string();
            from_manifest(path, &chosen.manifest, text, platform, digest, index)
        }
        BaseRef::Registry(r) => Err(Error::base(&r.to_string(), "pulling a base from a registry is not supported yet")
            .with_hint("copy it to a local layout with `skopeo copy docker://REF oci:DIR:TAG` and use base = \"oci:DIR:TAG\"")),
    }
}

/// What a reference picked out of an OCI layout: the top descriptor (a
/// manifest, or an index), the index itself, and the platform's manifest.
pub struct Chosen {
    pub top: Descriptor,
    pub index: Option<Index>,
    pub manifest: Descriptor,
}

/// Find the image tagged `tag` (or the only one) in the layout at `dir`,
/// going through an index to `platform`'s manifest.
pub fn select_in_layout(
    dir: &Path,
    tag: Option<&str>,
    text: &str,
    platform: &Platform,
) -> Result<Chosen> {
    let fail = |msg: String| Error::base(text, msg);
    let index_path = dir.join("index.json");
    if !index_path.is_file() {
        return Err(fail(format!(
            "`{}` is not an OCI image layout (no index.json)",
            dir.display()
        ))
        .with_hint("create one with `skopeo copy docker://IMAGE oci:DIR:TAG`"));
    }
    let index: Index = parse_json(&read_limited(&index_path)?, &index_path, text)?;
    let chosen = match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|d| d.annotations.get(oci::REF_NAME).map(String::as_str) == Some(t)),
        // Signatures and referrers kept beside the image do not count.
        None => {
            let mut images = index.manifests.iter().filter(|d| {
                !d.annotations
                    .get(oci::REF_NAME)
                    .is_some_and(|n| oci::is_attachment_tag(n))
            });
            match (images.next(), images.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        }
    };
    let Some(top) = chosen.cloned() else {
        let names: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(oci::REF_NAME).map(String::as_str))
            .collect();
        let what = match tag {
            Some(t) => format!("has no image tagged `{t}`"),
            None => format!(
                "holds {} images; name one with oci:PATH:TAG",
                index.manifests.len()
            ),
        };
        return Err(fail(format!(
            "{what} (tags: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    if !oci::is_index(&top.media_type) {
        return Ok(Chosen {
            manifest: top.clone(),
            top,
            index: None,
        });
    }
    let inner: Index = parse_json(&read_blob(dir, &top, text)?, &index_path, text)?;
    Ok(Chosen {
        manifest: choose_platform(&inner, platform, text)?,
        top,
        index: Some(inner),
    })
}

/// The manifest for `platform` in an index, or an error listing what it has.
pub fn choose_platform(index: &Index, platform: &Platform, text: &str) -> Result<Descriptor> {
    pick_platform(index, platform).ok_or_else(|| {
        let found: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            })
            .collect();
        Error::base(
            text,
            format!("has no image for {platform} (it has: {})", found.join(", ")),
        )
        .with_hint("pick one of those with [image] platform or --platform")
    })
}

/// Read an image whose manifest and blobs are in `store` (an OCI layout or
/// kiln's cache, both `blobs/sha256/<hex>`). `digest` is what the base's
/// reference resolved to. With `index` (a cache directory), the view comes
/// from the base index kept there when it has a sound one, and is kept
/// there when it is read from the layers.
pub fn from_manifest(
    store: &Path,
    desc: &Descriptor,
    text: &str,
    platform: &Platform,
    digest: String,
    index: Option<&Path>,
) -> Result<Base> {
    let fail = |msg: String| Error::base(text, msg);
    let dir = store;
    let index_path = blob_path(store, desc, text)?;
    if desc.media_type != oci::OCI_MANIFEST && desc.media_type != oci::DOCKER_MANIFEST {
        return Err(fail(format!(
            "unsupported manifest type `{}`",
            desc.media_type
        )));
    }
    let manifest: Manifest = parse_json(&read_blob(dir, desc, text)?, &index_path, text)?;
    let config: ImageConfig =
        parse_json(&read_blob(dir, &manifest.config, text)?, &index_path, text)?;
    if config.os != platform.os || config.architecture != platform.arch {
        return Err(fail(format!(
            "is {}/{}, but the build is for {platform}",
            config.os, config.architecture
        ))
        .with_hint(
            "set [image] platform to the base's platform, or pick a base built for this one",
        ));
    }
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(fail(format!(
            "config lists {} layers, manifest {}",
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }

    let mut layers = Vec::new();
    for (desc, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let compression = oci::layer_compression(&desc.media_type).ok_or_else(|| {
            fail(format!(
                "layer {} has unsupported media type `{}`",
                desc.digest, desc.media_type
            ))
        })?;
        layers.push(BaseLayer {
            descriptor: desc.clone(),
            blob: blob_path(dir, desc, text)?,
            compression,
            diff_id: diff_id.clone(),
            diff_size: 0,
        });
    }
    // The index stands for the layers only while the blobs there are the
    // ones hashed before: an output may hard-link them. One that is gone is
    // not read (`kiln check` needs none); an output that needs it says so.
    let indexed = index.and_then(|cache| {
        let found = crate::image::index::load(cache, &desc.digest, layers.len())?;
        let whole = layers.iter().all(|l| {
            let (digest, size) = (&l.descriptor.digest, l.descriptor.size);
            !l.blob.exists() || crate::store::verified::check(cache, &l.blob, digest.as_str(), size)
        });
        whole.then_some(found)
    });
    let fs = match indexed {
        Some((fs, diff_sizes)) => {
            tracing::debug!("base {desc} from its index", desc = desc.digest);
            for (layer, size) in layers.iter_mut().zip(diff_sizes) {
                layer.diff_size = size;
            }
            fs
        }
        None => {
            let fs = read_layers(&mut layers, text, index)?;
            if let Some(cache) = index {
                let sizes: Vec<u64> = layers.iter().map(|l| l.diff_size).collect();
                crate::image::index::save(cache, &desc.digest, &fs, &sizes);
            }
            fs
        }
    };
    Ok(Base {
        reference: text.to_string(),
        digest: Some(digest),
        source: None,
        config,
        layers,
        fs,
    })
}

/// Read every layer in order into a view, checking digests and diff_ids
/// and filling in each layer's uncompressed size.
fn read_layers(layers: &mut [BaseLayer], text: &str, cache: Option<&Path>) -> Result<FsView> {
    let mut fs = FsView::default();
    for (n, layer) in layers.iter_mut().enumerate() {
        layer.diff_size = read_layer(layer, (&mut fs, n), text, cache)?;
    }
    crate::image::contents::finish(&mut fs, &mut |n| {
        let layer = &layers[n];
        tracing::debug!("reading base layer {} again", layer.descriptor.digest);
        let file = BufReader::new(File::open(&layer.blob)?);
        Ok(Box::new(crate::image::decode::ZeroTail::new(
            crate::image::decode::decoder(file, layer.compression)?,
        )))
    })
    .map_err(|e| Error::base(text, format!("reading the account files: {e}")))?;
    Ok(fs)
}

fn pick_platform(index: &Index, want: &Platform) -> Option<Descriptor> {
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == want.os
                    && p.architecture == want.arch
                    && (want.variant.is_none()
                        || variant(&p.architecture, p.variant.as_deref())
                            == variant(&want.arch, want.variant.as_deref()))
            })
        })
        .cloned()
}

/// A platform's variant with the default an index may leave out filled in,
/// as containerd's matcher does: arm64 is v8, arm is v7.
fn variant<'a>(arch: &str, variant: Option<&'a str>) -> Option<&'a str> {
    match (arch, variant) {
        ("arm64", None) => Some("v8"),
        ("arm", None) => Some("v7"),
        (_, v) => v,
    }
}

pub fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    text: &str,
) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::base(text, format!("`{}`: malformed JSON: {e}", path.display())))
}

pub fn read_limited(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).ctx("open", path)?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON)
        .read_to_end(&mut bytes)
        .ctx("read", path)?;
    Ok(bytes)
}

/// A blob of the store at `dir` (a layout or the cache).
pub fn blob_path(dir: &Path, desc: &Descriptor, text: &str) -> Result<PathBuf> {
    crate::store::BlobStore::at(dir)
        .path(&desc.digest)
        .ok_or_else(|| Error::base(text, format!("`{}` is not a sha256 digest", desc.digest)))
}

/// Read a small blob whole, checking its size and digest.
pub fn read_blob(dir: &Path, desc: &Descriptor, text: &str) -> Result<Vec<u8>> {
    let path = blob_path(dir, desc, text)?;
    if desc.size > MAX_JSON {
        return Err(Error::base(
            text,
            format!(
                "blob {} is {} bytes, more than kiln reads for JSON",
                desc.digest, desc.size
            ),
        ));
    }
    let bytes = read_limited(&path)?;
    if bytes.len() as u64 != desc.size || digest::sha256(&bytes) != desc.digest {
        return Err(Error::base(
            text,
            format!(
                "blob `{}` does not match its digest {}",
                path.display(),
                desc.digest
            ),
        )
        .with_hint("the layout is damaged; copy the base again"));
    }
    Ok(bytes)
}

/// Walk one layer's tar, applying it to `fs`; checks the blob's digest and
/// the diff_id (and remembers the blob as checked, in `cache`). Returns the
/// uncompressed size.
fn read_layer(
    layer: &BaseLayer,
    (fs, n): (&mut FsView, usize),
    text: &str,
    cache: Option<&Path>,
) -> Result<u64> {
    let (blob, desc) = (&layer.blob, &layer.descriptor);
    tracing::debug!("reading base layer {}", desc.digest);
    let file = File::open(blob).ctx("open base layer", blob)?;
    let read = apply_blob(&file, layer.compression, fs, n)
        .map_err(|e| Error::base(text, format!("layer {}: {e}", desc.digest)))?;
    if read.digest != desc.digest || read.size != desc.size {
        return Err(Error::base(
            text,
            format!(
                "layer blob `{}` does not match its digest {}",
                blob.display(),
                desc.digest
            ),
        ));
    }
    if read.diff_id != layer.diff_id {
        return Err(Error::base(
            text,
            format!(
                "layer {} does not match its diff_id {}",
                desc.digest, layer.diff_id
            ),
        ));
    }
    if let Some(cache) = cache {
        crate::store::verified::remember(cache, blob, &file, &desc.digest, desc.size);
    }
    Ok(read.diff_size)
}

/// What reading a layer blob measured.
pub struct BlobRead {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
    pub diff_size: u64,
}

/// Decompress a layer blob and apply it to `fs` as layer number `layer`,
/// hashing both the blob and the tar inside it.
pub fn apply_blob(
    blob: impl Read,
    compression: Compression,
    fs: &mut FsView,
    layer: usize,
) -> std::io::Result<BlobRead> {
    let mut compressed = HashReader::new(BufReader::with_capacity(1 << 20, blob));
    let (diff_id, diff_size) = {
        let decoder = crate::image::decode::decoder(BufReader::new(&mut compressed), compression)?;
        let mut tar_stream = HashReader::new(decoder);
        crate::image::fsview::apply_layer(
            crate::image::decode::ZeroTail::new(&mut tar_stream),
            fs,
            layer,
        )?;
        tar_stream.finish()?
    };
    let (digest, size) = compressed.finish()?;
    Ok(BlobRead {
        digest,
        size,
        diff_id,
        diff_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: oci::OCI_MANIFEST.into(),
            digest: oci::Digest::of(format!("{arch}{variant:?}").as_bytes()),
            size: 1,
            urls: None,
            annotations: Default::default(),
            platform: Some(oci::Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(String::from),
            }),
        }
    }

    fn want(arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.map(String::from),
        }
    }

    #[test]
    fn a_variant_an_index_leaves_out_is_its_default() {
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                entry("amd64", None),
                entry("arm64", None),
                entry("arm", None),
            ],
            annotations: Default::default(),
        };
        let picked =
            |w: Platform| pick_platform(&index, &w).map(|d| d.platform.unwrap().architecture);
        assert_eq!(picked(want("arm64", Some("v8"))).as_deref(), Some("arm64"));
        assert_eq!(picked(want("arm", Some("v7"))).as_deref(), Some("arm"));
        assert_eq!(picked(want("arm", Some("v6"))), None);
        let explicit = Index {
            manifests: vec![entry("arm64", Some("v8"))],
            ..index
        };
        assert!(pick_platform(&explicit, &want("arm64", None)).is_some());
        assert!(pick_platform(&explicit, &want("arm64", Some("v8"))).is_some());
    }
}
