//! Write a docker-archive: the `docker save` layout that `docker load`,
//! `podman load` and skopeo's `docker-archive:` read. Layers go in
//! uncompressed, named by diff_id, as `docker save` writes them. The file
//! is written as `output` says: replaced whole, or through a device, FIFO or link.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::assemble::{Assembled, ImageLayer};
use crate::error::{Error, IoContext, Result};
use crate::oci;
use crate::oci::digest::HashReader;
use crate::output::file::Output;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Entry<'a> {
    config: String,
    repo_tags: Vec<&'a str>,
    layers: Vec<String>,
}

/// Write `assembled` (its one image) as a docker-archive at `path`.
pub fn write(assembled: &Assembled, path: &Path) -> Result<()> {
    let out = Output::open(path)?;
    write_to(assembled, out.file(), path)?;
    out.finish()
}

/// Stream the docker-archive into `sink`; `path` names it in errors.
pub fn write_to(assembled: &Assembled, sink: impl Write, path: &Path) -> Result<()> {
    let image = &assembled.images[0];
    let repo_tag = assembled.repo_tag();
    let mtime = assembled.created;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, sink));
    // A base's diff_ids come from its config: not trusted to be sha256.
    let name = |digest: &str| match oci::sha256_hex(digest) {
        Some(hex) => Ok(format!("blobs/sha256/{hex}")),
        None => Err(Error::Output {
            path: path.to_path_buf(),
            msg: format!(
                "a layer's diff_id {:?} is not a sha256 digest; a docker-archive cannot name it",
                crate::shown::Shown(digest).to_string()
            ),
        }),
    };

    for dir in ["blobs/", "blobs/sha256/"] {
        append(
            &mut tar,
            dir,
            tar::EntryType::Directory,
            0,
            0o755,
            mtime,
            io::empty(),
        )
        .ctx("write", path)?;
    }
    let config_name = name(&image.config_descriptor.digest)?;
    append(
        &mut tar,
        &config_name,
        tar::EntryType::Regular,
        image.config.len() as u64,
        0o644,
        mtime,
        &image.config[..],
    )
    .ctx("write", path)?;
    let mut written = BTreeSet::new();
    for layer in &image.layers {
        let layer_name = name(&layer.diff_id)?;
        if written.insert(layer_name.clone()) {
            write_layer(&mut tar, &layer_name, layer, mtime)?;
        }
    }
    let manifest = vec![Entry {
        config: config_name,
        repo_tags: vec![&repo_tag],
        layers: image
            .layers
            .iter()
            .map(|l| name(&l.diff_id))
            .collect::<Result<_>>()?,
    }];
    let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
    append(
        &mut tar,
        "manifest.json",
        tar::EntryType::Regular,
        manifest.len() as u64,
        0o644,
        mtime,
        &manifest[..],
    )
    .ctx("write", path)?;
    let buffered = tar.into_inner().ctx("write", path)?;
    buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .ctx("write", path)?;
    Ok(())
}

/// Decompress a layer into the archive, checking it against its diff_id.
fn write_layer<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    layer: &ImageLayer,
    mtime: u64,
) -> Result<()> {
    let file = File::open(&layer.blob).ctx("open layer", &layer.blob)?;
    let file = BufReader::with_capacity(1 << 20, file);
    let stream =
        crate::image::decode::decoder(file, layer.compression).ctx("read layer", &layer.blob)?;
    let mut hashed = HashReader::new(stream.take(layer.diff_size));
    append(
        tar,
        name,
        tar::EntryType::Regular,
        layer.diff_size,
        0o644,
        mtime,
        &mut hashed,
    )
    .ctx("read layer", &layer.blob)?;
    let (digest, count) = hashed.finish().ctx("read layer", &layer.blob)?;
    if digest != layer.diff_id || count != layer.diff_size {
        return Err(Error::Output {
            path: layer.blob.clone(),
            msg: format!("layer does not match its diff_id {}", layer.diff_id),
        });
    }
    Ok(())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    kind: tar::EntryType,
    size: u64,
    mode: u32,
    mtime: u64,
    data: impl Read,
) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_cksum();
    tar.append(&h, data)
}
