//! `kiln inspect`: what an image holds, read without a container runtime.
//! The target is a registry reference, an OCI layout (`oci:DIR[:TAG]`) or a
//! docker-archive (`tar:FILE`). The config and layer list come from the
//! manifest and config alone; `--files` also reads every layer, in order,
//! with whiteouts applied, checking each against its digest.

mod docker_archive;
pub mod report;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::base::{self, FsView};
use crate::oci::config::ImageConfig;
use crate::oci::reference::Reference;
use crate::oci::{self, Compression, Descriptor, Index, Manifest};
use crate::spec::validate::Platform;

pub use report::Report;

/// What `kiln inspect` was asked to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Registry(Reference),
    Layout { dir: PathBuf, tag: Option<String> },
    Archive(PathBuf),
}

impl Target {
    /// `oci:DIR[:TAG]`, `tar:FILE` (or `docker-archive:FILE`), and anything
    /// else as a registry reference (an optional `docker://` is dropped).
    pub fn parse(text: &str) -> std::result::Result<Target, String> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') && !p.is_empty() => (p, Some(t.to_string())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err("oci: needs a directory, e.g. oci:kiln-out/web:latest".into());
            }
            return Ok(Target::Layout {
                dir: PathBuf::from(dir),
                tag,
            });
        }
        let archive = text
            .strip_prefix("tar:")
            .or_else(|| text.strip_prefix("docker-archive:"));
        if let Some(file) = archive {
            if file.is_empty() {
                return Err("tar: needs a file, e.g. tar:web.tar".into());
            }
            return Ok(Target::Archive(PathBuf::from(file)));
        }
        if let Some(local) = local_path(text)? {
            return Ok(local);
        }
        let reference = text.strip_prefix("docker://").unwrap_or(text);
        Reference::parse(reference)
            .map(Target::Registry)
            .map_err(|e| format!("{e} (or use oci:DIR[:TAG] or tar:FILE for local images)"))
    }
}

/// A target written as a plain path: an OCI layout directory is read as
/// `oci:DIR`; another path says which prefix it needs. A bare name is a
/// registry reference unless a layout is there.
fn local_path(text: &str) -> std::result::Result<Option<Target>, String> {
    let path = Path::new(text);
    let layout = path.join("index.json").is_file();
    if layout {
        return Ok(Some(Target::Layout {
            dir: path.to_path_buf(),
            tag: None,
        }));
    }
    let pathlike = text.starts_with('/') || text.starts_with("./") || text.starts_with("../");
    if !pathlike && (!path.exists() || text.contains(':')) {
        return Ok(None);
    }
    if path.is_dir() {
        Err(format!(
            "`{text}` is a directory but not an OCI image layout (no index.json)"
        ))
    } else if path.is_file() {
        Err(format!(
            "`{text}` is a file: did you mean tar:{text} (a docker-archive)?"
        ))
    } else if pathlike {
        Err(format!("`{text}` does not exist"))
    } else {
        Ok(None)
    }
}

pub struct Options {
    pub platform: Platform,
    /// The platform was asked for (--platform), not this machine's default.
    pub platform_asked: bool,
    /// List every path (reads all layers).
    pub files: bool,
}

/// An image found, before its layers are read.
pub struct Opened {
    pub kind: &'static str,
    pub index: Option<(Descriptor, Index)>,
    pub manifest: Option<Descriptor>,
    pub config_digest: String,
    pub config: ImageConfig,
    pub layers: Vec<LayerBlob>,
}

/// A layer's bytes, wherever they are.
pub struct LayerBlob {
    /// None in a docker-archive, which keeps no manifest.
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub size: u64,
    pub at: Bytes,
}

pub enum Bytes {
    File(PathBuf),
    /// `len` bytes at `offset` in a file (a member of a docker-archive).
    Section {
        file: PathBuf,
        offset: u64,
        len: u64,
    },
}

impl Bytes {
    fn open(&self) -> std::io::Result<Box<dyn Read>> {
        Ok(match self {
            Bytes::File(path) => Box::new(File::open(path)?),
            Bytes::Section { file, offset, len } => {
                let mut f = File::open(file)?;
                std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(*offset))?;
                Box::new(f.take(*len))
            }
        })
    }

    fn path(&self) -> &Path {
        match self {
            Bytes::File(path) => path,
            Bytes::Section { file, .. } => file,
        }
    }
}

impl LayerBlob {
    /// The blob's bytes, and how they are compressed (by media type, else
    /// by their first bytes). `name` and `text` are for messages.
    pub fn reader(
        &self,
        name: &str,
        text: &str,
    ) -> Result<(BufReader<Box<dyn Read>>, Compression)> {
        // A blob missing from a layout (or the cache) is a damaged image.
        let blob = self.at.open().map_err(|e| {
            image_error(
                text,
                format!(
                    "layer {name}: cannot open `{}`: {e}",
                    self.at.path().display()
                ),
            )
            .with_hint("the image is damaged; copy it again")
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, blob);
        let compression = match self.media_type.as_deref() {
            Some(t) => oci::layer_compression(t).ok_or_else(|| {
                image_error(
                    text,
                    format!("layer {name} has unsupported media type `{t}`"),
                )
            })?,
            None => {
                sniff(&mut reader).map_err(|e| image_error(text, format!("layer {name}: {e}")))?
            }
        };
        Ok((reader, compression))
    }
}

/// An image in an OCI layout.
pub fn open_layout(dir: &Path, tag: Option<&str>, text: &str, opts: &Options) -> Result<Opened> {
    let chosen = base::select_in_layout(dir, tag, text, &opts.platform).map_err(as_image)?;
    let index = match chosen.index {
        Some(i) => Some((chosen.top, i)),
        None => None,
    };
    let manifest: Manifest = read_json(dir, &chosen.manifest, text)?;
    let mut opened = open_store(dir, index, &chosen.manifest, &manifest, text)?;
    opened.kind = "oci";
    Ok(opened)
}

/// An image whose manifest and config are in a `blobs/sha256` store (the
/// cache, after a registry pull).
pub fn open_store(
    store: &Path,
    index: Option<(Descriptor, Index)>,
    desc: &Descriptor,
    manifest: &Manifest,
    text: &str,
) -> Result<Opened> {
    let layers = manifest
        .layers
        .iter()
        .map(|d| {
            Ok(LayerBlob {
                digest: Some(d.digest.to_string()),
                media_type: Some(d.media_type.clone()),
                size: d.size,
                at: Bytes::File(base::blob_path(store, d, text).map_err(as_image)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Opened {
        kind: "registry",
        index,
        manifest: Some(desc.clone()),
        config_digest: manifest.config.digest.to_string(),
        config: read_json(store, &manifest.config, text)?,
        layers,
    })
}

pub use docker_archive::open as open_archive;

/// Read every layer in order into one view of the filesystem, checking each
/// blob's digest (when known) and diff_id. With `index` (a cache directory)
/// an image known by its manifest digest is read from its base index when
/// one is kept there, and its index is kept there after reading.
pub fn read_files(opened: &Opened, text: &str, index: Option<&Path>) -> Result<FsView> {
    let diff_ids = &opened.config.rootfs.diff_ids;
    if diff_ids.len() != opened.layers.len() {
        return Err(image_error(
            text,
            format!(
                "config lists {} layers, the image has {}",
                diff_ids.len(),
                opened.layers.len()
            ),
        ));
    }
    // Only an image named by a manifest digest has an index.
    let keyed = opened.manifest.as_ref().map(|m| m.digest.to_string());
    let index = index.zip(keyed);
    if let Some((cache, manifest)) = &index {
        if let Some((fs, _)) = crate::image::index::load(cache, manifest, opened.layers.len()) {
            return Ok(fs);
        }
    }
    let mut fs = FsView::default();
    let mut diff_sizes = Vec::new();
    for (n, (layer, diff_id)) in opened.layers.iter().zip(diff_ids).enumerate() {
        let name = layer.digest.as_deref().unwrap_or(diff_id);
        let (reader, compression) = layer.reader(name, text)?;
        let read = base::apply_blob(reader, compression, &mut fs, n)
            .map_err(|e| image_error(text, format!("layer {name}: {e}")))?;
        if layer.digest.as_ref().is_some_and(|d| *d != read.digest) || read.size != layer.size {
            return Err(image_error(
                text,
                format!("layer {name} does not match its digest and size"),
            )
            .with_hint("the image is damaged; copy it again"));
        }
        if read.diff_id != *diff_id {
            return Err(image_error(
                text,
                format!("layer {name} does not match its diff_id {diff_id}"),
            )
            .with_hint("the image is damaged; copy it again"));
        }
        diff_sizes.push(read.diff_size);
    }
    crate::image::contents::finish(&mut fs, &mut |n| {
        let layer = &opened.layers[n];
        let (reader, compression) = layer
            .reader(&n.to_string(), text)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Box::new(crate::image::decode::ZeroTail::new(
            crate::image::decode::decoder(reader, compression)?,
        )))
    })
    .map_err(|e| image_error(text, format!("reading the account files: {e}")))?;
    if let Some((cache, manifest)) = &index {
        crate::image::index::save(cache, manifest, &fs, &diff_sizes);
    }
    Ok(fs)
}

/// A docker-archive's layers carry no media type: tell by the magic bytes.
fn sniff(reader: &mut impl BufRead) -> std::io::Result<Compression> {
    let head = reader.fill_buf()?;
    Ok(match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    desc: &Descriptor,
    text: &str,
) -> Result<T> {
    let bytes = base::read_blob(dir, desc, text).map_err(as_image)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| image_error(text, format!("blob {} is not valid JSON: {e}", desc.digest)))
}

pub fn image_error(text: &str, msg: impl Into<String>) -> Error {
    Error::Image {
        reference: text.to_string(),
        msg: msg.into(),
        hint: None,
    }
}

/// The base reader's errors call the image a base; here it is the subject.
pub fn as_image(err: Error) -> Error {
    match err {
        Error::Base {
            reference,
            msg,
            hint,
        } => Error::Image {
            reference,
            msg,
            hint,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("oci:out/web:1.0").unwrap(),
            Target::Layout {
                dir: "out/web".into(),
                tag: Some("1.0".into())
            }
        );
        assert_eq!(
            Target::parse("oci:/tmp/x").unwrap(),
            Target::Layout {
                dir: "/tmp/x".into(),
                tag: None
            }
        );
        assert_eq!(
            Target::parse("tar:web.tar").unwrap(),
            Target::Archive("web.tar".into())
        );
        assert_eq!(
            Target::parse("docker-archive:a/b.tar").unwrap(),
            Target::Archive("a/b.tar".into())
        );
        let Target::Registry(r) = Target::parse("docker://127.0.0.1:5000/web:1").unwrap() else {
            panic!("not a registry target");
        };
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert!(Target::parse("oci:").is_err());
        assert!(Target::parse("tar:").is_err());
        assert!(Target::parse("Not A Ref").is_err());
    }

    #[test]
    fn a_missing_layer_blob_is_an_image_error() {
        let dir = tempfile::tempdir().unwrap();
        let diff_id = format!("sha256:{}", "0".repeat(64));
        let mut config = ImageConfig::default();
        config.rootfs.diff_ids = vec![diff_id.clone()];
        let opened = Opened {
            kind: "oci",
            index: None,
            manifest: None,
            config_digest: String::new(),
            config,
            layers: vec![LayerBlob {
                digest: Some(diff_id.clone()),
                media_type: Some(oci::OCI_LAYER_TAR.to_string()),
                size: 0,
                at: Bytes::File(dir.path().join("gone")),
            }],
        };
        let err = read_files(&opened, "oci:x", None)
            .err()
            .expect("no blob, no files");
        assert_eq!(err.exit_code(), crate::error::EXIT_BAD_INPUT);
        let text = err.to_string();
        assert!(text.contains("oci:x") && text.contains(&diff_id), "{text}");
        assert_eq!(err.hint(), Some("the image is damaged; copy it again"));
    }

    proptest::proptest! {
        /// Any target text parses or is refused, never a panic.
        #[test]
        fn targets_never_panic(text in "[ -~]{0,60}") {
            let _ = Target::parse(&text);
        }

        /// Any bytes given as a docker-archive: an error, never a panic.
        #[test]
        fn archives_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.tar");
            std::fs::write(&path, &bytes).unwrap();
            let _ = open_archive(&path, "tar:x.tar");
        }
    }
}
