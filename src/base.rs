//! Resolve the base image: `scratch`, or a manifest in a local OCI image
//! layout. Every blob read is checked against its digest, and the base's
//! layers are read once to learn what the image's filesystem holds: which
//! paths exist with what owner and mode, and the account files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::config::{ImageConfig, RootFs};
use crate::digest::{self, HashReader};
use crate::error::{Error, IoContext, Result};
use crate::oci::{self, Compression, Descriptor, Index, Manifest};
use crate::validate::{BaseRef, Platform};

/// Largest manifest, index or config read into memory.
const MAX_JSON: u64 = 16 << 20;
/// Largest account file (/etc/passwd, /etc/group, /etc/shadow) kept from a base.
const MAX_ACCOUNT_FILE: u64 = 16 << 20;

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

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Bytes of a regular file; 0 for the rest.
    pub size: u64,
    /// Which layer (from 0) last wrote the path.
    pub layer: usize,
}

/// The base image's filesystem as the last of its layers leaves it.
#[derive(Default)]
pub struct FsView {
    pub entries: BTreeMap<String, Meta>,
    pub passwd: Option<Vec<u8>>,
    pub group: Option<Vec<u8>>,
    pub shadow: Option<Vec<u8>>,
    /// Symlink targets, to resolve destinations through the base's links (`/bin` -> `usr/bin`).
    pub links: BTreeMap<String, String>,
}

impl FsView {
    /// Resolve symlinks among the ancestors of `path` the way a runtime
    /// extracting a layer would, staying inside the image's root.
    pub fn resolve_parents(&self, path: &str) -> String {
        let mut hops = 0;
        let mut current = path.to_string();
        'outer: loop {
            let mut prefix = String::new();
            let parts: Vec<&str> = current.split('/').filter(|p| !p.is_empty()).collect();
            for (i, part) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
                prefix.push('/');
                prefix.push_str(part);
                if let Some(target) = self.links.get(&prefix) {
                    hops += 1;
                    if hops > 40 {
                        return current;
                    }
                    let parent = split(&prefix).0;
                    let joined = if target.starts_with('/') {
                        target.clone()
                    } else {
                        format!("{parent}/{target}")
                    };
                    let rest = parts[i + 1..].join("/");
                    current = format!("{}/{rest}", resolve_dots(&joined));
                    current = current.replace("//", "/");
                    continue 'outer;
                }
            }
            return current;
        }
    }
}

/// Collapse `.` and `..` in an absolute path, never going above `/`.
pub fn resolve_dots(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    format!("/{}", out.join("/"))
}

pub fn resolve(base: &BaseRef, platform: &Platform) -> Result<Base> {
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
        BaseRef::OciLayout { path, tag, text } => from_layout(path, tag.as_deref(), text, platform),
        BaseRef::Registry(r) => Err(Error::base(&r.to_string(), "pulling a base from a registry is not supported yet")
            .with_hint("copy it to a local layout with `skopeo copy docker://REF oci:DIR:TAG` and use base = \"oci:DIR:TAG\"")),
    }
}

fn from_layout(dir: &Path, tag: Option<&str>, text: &str, platform: &Platform) -> Result<Base> {
    let chosen = select_in_layout(dir, tag, text, platform)?;
    from_manifest(dir, &chosen.manifest, text, platform, chosen.top.digest)
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
        None if index.manifests.len() == 1 => index.manifests.first(),
        None => None,
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
/// reference resolved to.
pub fn from_manifest(
    store: &Path,
    desc: &Descriptor,
    text: &str,
    platform: &Platform,
    digest: String,
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

    let mut fs = FsView::default();
    let mut layers = Vec::new();
    for (n, (desc, diff_id)) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
    {
        let compression = oci::layer_compression(&desc.media_type).ok_or_else(|| {
            fail(format!(
                "layer {} has unsupported media type `{}`",
                desc.digest, desc.media_type
            ))
        })?;
        let blob = blob_path(dir, desc, text)?;
        let diff_size = read_layer(&blob, desc, compression, diff_id, (&mut fs, n), text)?;
        layers.push(BaseLayer {
            descriptor: desc.clone(),
            blob,
            compression,
            diff_id: diff_id.clone(),
            diff_size,
        });
    }
    Ok(Base {
        reference: text.to_string(),
        digest: Some(digest),
        source: None,
        config,
        layers,
        fs,
    })
}

fn pick_platform(index: &Index, want: &Platform) -> Option<Descriptor> {
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == want.os
                    && p.architecture == want.arch
                    && (want.variant.is_none() || p.variant == want.variant)
            })
        })
        .cloned()
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

pub fn blob_path(dir: &Path, desc: &Descriptor, text: &str) -> Result<PathBuf> {
    let hex = oci::sha256_hex(&desc.digest)
        .ok_or_else(|| Error::base(text, format!("`{}` is not a sha256 digest", desc.digest)))?;
    Ok(dir.join("blobs/sha256").join(hex))
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
/// the diff_id. Returns the uncompressed size.
fn read_layer(
    blob: &Path,
    desc: &Descriptor,
    compression: Compression,
    diff_id: &str,
    (fs, layer): (&mut FsView, usize),
    text: &str,
) -> Result<u64> {
    let file = File::open(blob).ctx("open base layer", blob)?;
    let read = apply_blob(file, compression, fs, layer)
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
    if read.diff_id != diff_id {
        return Err(Error::base(
            text,
            format!("layer {} does not match its diff_id {diff_id}", desc.digest),
        ));
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
        let decoder = crate::compress::decoder(BufReader::new(&mut compressed), compression)?;
        let mut tar_stream = HashReader::new(decoder);
        apply_layer(&mut ZeroTail::new(&mut tar_stream), fs, layer)?;
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

/// Some writers (umoci 0.4) end a layer without the last entry's padding or
/// the two zero blocks; the digests already vouch for the bytes, so supply
/// the zeros rather than refuse the layer.
pub(crate) struct ZeroTail<R> {
    inner: R,
    zeros_left: usize,
}

impl<R> ZeroTail<R> {
    pub(crate) fn new(inner: R) -> Self {
        ZeroTail {
            inner,
            zeros_left: 512 + 1024,
        }
    }
}

impl<R: Read> Read for ZeroTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let n = buf.len().min(self.zeros_left);
        buf[..n].fill(0);
        self.zeros_left -= n;
        Ok(n)
    }
}

/// Apply one layer's entries to `fs`, honouring whiteouts and opaque directories.
fn apply_layer(reader: &mut dyn Read, fs: &mut FsView, layer: usize) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    let mut added = BTreeSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let Some(path) = std::str::from_utf8(&raw).ok().and_then(normalize) else {
            continue;
        };
        let (parent, name) = split(&path);
        match whiteout(parent, name) {
            Some(Whiteout::Opaque) => {
                let prefix = child_prefix(parent);
                let doomed: Vec<String> =
                    under(fs, &prefix).filter(|k| !added.contains(k)).collect();
                for k in doomed {
                    remove(fs, &k);
                }
                continue;
            }
            Some(Whiteout::Remove(target)) => {
                remove(fs, &target);
                let doomed: Vec<String> = under(fs, &child_prefix(&target)).collect();
                for k in doomed {
                    remove(fs, &k);
                }
                continue;
            }
            None => {}
        }
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Link => {
                Kind::File
            }
            tar::EntryType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        let meta = Meta {
            kind,
            uid: header.uid().unwrap_or(0) as u32,
            gid: header.gid().unwrap_or(0) as u32,
            mode: header.mode().unwrap_or(0o755) & 0o7777,
            size: match kind {
                Kind::File => header.size().unwrap_or(0),
                _ => 0,
            },
            layer,
        };
        if kind == Kind::File && header.entry_type() != tar::EntryType::Link {
            let slot = match path.as_str() {
                "/etc/passwd" => Some(&mut fs.passwd),
                "/etc/group" => Some(&mut fs.group),
                "/etc/shadow" => Some(&mut fs.shadow),
                _ => None,
            };
            if let Some(slot) = slot {
                let mut bytes = Vec::new();
                (&mut entry)
                    .take(MAX_ACCOUNT_FILE)
                    .read_to_end(&mut bytes)?;
                *slot = Some(bytes);
            }
        }
        fs.links.remove(&path);
        if kind == Kind::Symlink {
            if let Some(target) = header.link_name_bytes() {
                fs.links
                    .insert(path.clone(), String::from_utf8_lossy(&target).into_owned());
            }
        }
        added.insert(path.clone());
        fs.entries.insert(path, meta);
    }
    Ok(())
}

/// The paths in `fs` that start with `prefix`.
fn under<'a>(fs: &'a FsView, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
    fs.entries
        .range(prefix.to_string()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
        .map(|(k, _)| k.clone())
}

fn remove(fs: &mut FsView, path: &str) {
    fs.entries.remove(path);
    fs.links.remove(path);
    match path {
        "/etc/passwd" => fs.passwd = None,
        "/etc/group" => fs.group = None,
        "/etc/shadow" => fs.shadow = None,
        _ => {}
    }
}

/// What a layer entry named `name` in directory `parent` means, if it is a whiteout.
pub enum Whiteout {
    /// `.wh..wh..opq`: what earlier layers put in `parent` is gone.
    Opaque,
    /// `.wh.NAME`: this path (and what is under it) is gone.
    Remove(String),
}

pub fn whiteout(parent: &str, name: &str) -> Option<Whiteout> {
    if name == ".wh..wh..opq" {
        return Some(Whiteout::Opaque);
    }
    let hidden = name.strip_prefix(".wh.")?;
    Some(Whiteout::Remove(if parent == "/" {
        format!("/{hidden}")
    } else {
        format!("{parent}/{hidden}")
    }))
}

/// `./etc/passwd`, `etc/passwd/` and `/etc/passwd` all become `/etc/passwd`;
/// a name with `..` is None.
pub fn normalize(name: &str) -> Option<String> {
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return None;
    }
    Some(format!("/{}", parts.join("/")))
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

fn child_prefix(dir: &str) -> String {
    if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(7);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_apply() {
        use tar::EntryType::{Directory, Regular};
        let mut fs = FsView::default();
        let l1 = layer(&[
            ("etc/", Directory, b""),
            ("etc/passwd", Regular, b"root:x:0:0::/:/bin/sh\n"),
            ("app/", Directory, b""),
            ("app/a", Regular, b"a"),
            ("app/b", Regular, b"b"),
        ]);
        apply_layer(&mut &l1[..], &mut fs, 0).unwrap();
        assert_eq!(fs.passwd.as_deref(), Some(&b"root:x:0:0::/:/bin/sh\n"[..]));
        assert_eq!(fs.entries["/app/a"].uid, 7);
        let l2 = layer(&[
            ("./etc/.wh.passwd", Regular, b""),
            ("app/.wh..wh..opq", Regular, b""),
            ("app/c", Regular, b"c"),
        ]);
        apply_layer(&mut &l2[..], &mut fs, 1).unwrap();
        assert!(fs.passwd.is_none());
        assert!(!fs.entries.contains_key("/etc/passwd"));
        assert!(!fs.entries.contains_key("/app/a"));
        assert!(fs.entries.contains_key("/app/c"));
        assert!(fs.entries.contains_key("/app"));
    }

    #[test]
    fn parents_resolve_through_base_links() {
        let mut fs = FsView::default();
        fs.links.insert("/bin".into(), "usr/bin".into());
        fs.links
            .insert("/usr/local/lib64".into(), "/usr/lib".into());
        fs.links.insert("/loop".into(), "/loop".into());
        assert_eq!(fs.resolve_parents("/bin/uv"), "/usr/bin/uv");
        assert_eq!(fs.resolve_parents("/bin"), "/bin");
        assert_eq!(fs.resolve_parents("/usr/local/lib64/x/y"), "/usr/lib/x/y");
        assert_eq!(fs.resolve_parents("/loop/x"), "/loop/x");
        fs.links.insert("/up".into(), "../../..".into());
        assert_eq!(fs.resolve_parents("/up/etc/x"), "/etc/x");
    }

    #[test]
    fn names_normalise() {
        assert_eq!(normalize("./etc/passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(normalize("etc/").as_deref(), Some("/etc"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(split("/etc/passwd"), ("/etc", "passwd"));
        assert_eq!(split("/etc"), ("/", "etc"));
    }
}
