//! kiln compiles a declarative TOML spec straight into OCI image layers,
//! with no daemon, no root and no RUN.
//!
//! # Layout
//!
//! Folders in data-flow order; each depends only on those above it (a test,
//! `tests/it/code_shape.rs`, keeps it so):
//!
//! - `shown`, `error`, `progress`, `tmp`: support every stage uses (escaping
//!   for the terminal, errors that say what to do and the exit code table,
//!   progress and logs, temp files removed on signals).
//! - `oci/`: the vocabulary, importing no other kiln module: manifests,
//!   indexes, descriptors, digests, references, the image config, and how a
//!   runtime resolves `User` (`runas`).
//! - `spec/`: the TOML as written (`raw`), checked and typed by `validate`
//!   into a `Spec`, with `args`, `duration`, `ignore`, the rule catalogue a
//!   spec can name (`rules`) and the JSON Schema (`schema`).
//! - `registry/`: the distribution API client (auth, credentials, retries,
//!   mirrors, proxies), at the network edge.
//! - `store/`: the one blob store (`blobs/sha256/<hex>`) behind the cache,
//!   the layout being written and the layouts read back.
//! - `image/`: reading images (scratch, a layout, a docker-archive, a
//!   registry through `pull`) into a filesystem held in memory (`fsview`).
//! - `plan/`: every path of every new layer with owner and mode: `accounts`,
//!   local `sources`, and what a copy `extract`s from another image.
//! - `check/`: the hardening rules evaluated on the plan, before a byte is written.
//! - `layer/`: tar, digest, compress, in one pass per layer; the `local` and
//!   `remote` (registry-shared) layer caches; `stream` uploads while writing.
//! - `assemble`: the image config and the manifest.
//! - `sbom`: what the image holds (files added, base packages) as SPDX and
//!   CycloneDX documents.
//! - `supply`: provenance, cosign-compatible signatures and DSSE attestations
//!   attached to each image as OCI 1.1 referrers, and reading them back to verify.
//! - `output/`: an OCI `layout`, a docker-`archive`, a registry `push`, an
//!   `index` over per-platform pushes, and plain `file`s.
//! - `pipeline`: runs the stages in that order, per platform; this file's
//!   functions are its entry points, `summary` its JSON.
//! - `init`: starter specs. The binary (`main.rs`, `cli/`) parses arguments,
//!   renders each subcommand's output and maps outcomes to exit codes.

pub mod assemble;
pub mod check;
pub mod error;
pub mod image;
pub mod init;
pub mod layer;
pub mod oci;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod sbom;
pub mod shown;
pub mod spec;
pub mod store;
pub mod summary;
pub mod supply;
pub mod tmp;

use std::path::{Path, PathBuf};

use error::{Error, Result};
use image::{base, inspect, pull};
use oci::reference;
use output::{index, push};
use plan::{accounts, extract};
use spec::validate;
use store::cache;

pub use validate::Inputs;

/// Where a build writes its image.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The OCI image layout directory; None with `tar` alone.
    pub layout: Option<PathBuf>,
    /// A docker-archive file.
    pub tar: Option<PathBuf>,
    /// Load the image into podman (or docker) with no archive on disk.
    pub load: bool,
    /// A file that receives the manifest digest (or `REF@DIGEST` after a push).
    pub digest_file: Option<PathBuf>,
    /// Push to each of these registry references (in order), and under
    /// these extra tags in each.
    pub push: Vec<reference::Reference>,
    pub tags: Vec<String>,
    /// SBOM, provenance and signing asked for on the command line (the
    /// spec can ask for the first two too).
    pub supply: supply::Request,
}

/// How kiln reaches registries, used only when a build needs one.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub registry: registry::Options,
    pub cache_dir: PathBuf,
    /// Reuse finished layers whose inputs did not change (`--no-cache` turns it off).
    pub layer_cache: bool,
    /// A registry repository that shares finished layers between machines.
    pub cache_repo: Option<reference::Reference>,
}

pub struct Built {
    pub name: String,
    pub tag: String,
    /// The image's manifest, or the index of several platforms' images.
    pub top: oci::Descriptor,
    pub images: Vec<BuiltImage>,
    /// The OCI layout written, if any.
    pub layout: Option<PathBuf>,
    pub pushed: Option<push::Pushed>,
    /// SBOMs, provenance, attestations and signatures attached.
    pub attached: Vec<supply::Attached>,
    pub warnings: Vec<String>,
    pub timings: Timings,
}

/// One platform's image.
pub struct BuiltImage {
    pub platform: String,
    pub manifest: oci::Descriptor,
    pub config: oci::Descriptor,
    pub layers: Vec<assemble::ImageLayer>,
    /// How many of `layers` came from the base.
    pub base_layers: usize,
}

/// Where a build's time went.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Spec, base (pulled if needed), plan and checks.
    pub resolve: std::time::Duration,
    /// Writing (or reusing) the new layers, and uploads streamed while writing.
    pub layers: std::time::Duration,
    /// Config, manifest, docker-archive.
    pub assemble: std::time::Duration,
    /// The rest of the push: HEADs, mounts, uploads from disk, the manifest.
    pub push: std::time::Duration,
    pub total: std::time::Duration,
}

/// Evaluate the checks on a spec and its resolved base, writing nothing.
/// Every platform the spec builds is checked; a finding they share is listed once.
pub fn check(spec_path: &Path, inputs: &Inputs, network: &Network) -> Result<Vec<check::Finding>> {
    let spec_file = validate::SpecFile::read(spec_path)?;
    let first = spec_file.spec(inputs)?;
    let mut net = Net::new(network, None);
    // Each finding, with the platforms it was found on.
    let mut findings: Vec<(check::Finding, Vec<String>)> = Vec::new();
    let all = first.platforms.len();
    let platforms = first.platforms.clone();
    let mut first = Some(first);
    for platform in platforms {
        // The spec read for the first platform is that platform's already.
        let spec = match first.take() {
            Some(spec) if spec.platform == platform => spec,
            _ => spec_file.spec_for(inputs, &platform)?,
        };
        let (base, plans) = resolve(&spec, &mut net, false)?;
        for f in check::run(&spec, &base, &plans, &spec.policy) {
            match findings
                .iter_mut()
                .find(|(g, _)| g.id == f.id && g.message == f.message)
            {
                Some((_, on)) => on.push(platform.to_string()),
                None => findings.push((f, vec![platform.to_string()])),
            }
        }
    }
    // A finding some platforms have and others not says which.
    Ok(findings
        .into_iter()
        .map(|(mut f, on)| {
            if on.len() < all {
                f.message = format!("{} (on {})", f.message, on.join(", "));
            }
            f
        })
        .collect())
}

/// Read an image's config, layers and (with `files`) every path in it.
pub fn inspect(text: &str, opts: &inspect::Options, network: &Network) -> Result<inspect::Report> {
    use inspect::Target;
    let target = Target::parse(text).map_err(|msg| Error::Usage {
        what: format!("`{}`", reference::redacted(text)),
        msg,
        hint: None,
    })?;
    let opened = match &target {
        Target::Layout { dir, tag } => inspect::open_layout(dir, tag.as_deref(), text, opts)?,
        Target::Archive(path) => inspect::open_archive(path, text)?,
        Target::Registry(reference) => {
            let mut net = Net::new(network, None);
            open_registry(&mut net, reference, &opts.platform, text, opts.files)?
        }
    };
    let c = &opened.config;
    if opts.platform_asked
        && opened.index.is_none()
        && (c.os != opts.platform.os || c.architecture != opts.platform.arch)
    {
        tracing::warn!(
            "{text} is a single {}/{} image, not an index; --platform {} does not apply",
            c.os,
            c.architecture,
            opts.platform
        );
    }
    // An image pulled into the cache is read from the cache's base index.
    let cached = matches!(target, Target::Registry(_)) && network.layer_cache;
    let index = cached.then_some(network.cache_dir.as_path());
    let fs = match opts.files {
        true => Some(inspect::read_files(&opened, text, index)?),
        false => None,
    };
    Ok(inspect::Report::new(text, opened, fs.as_ref()))
}

/// Open what `kiln verify` and `kiln sbom` read: `oci:DIR[:TAG]` or a
/// registry reference; `f` gets the source and the tag or digest asked for.
pub fn with_attachments<T>(
    text: &str,
    network: &Network,
    f: impl FnOnce(&mut supply::read::Source, Option<&str>) -> Result<T>,
) -> Result<T> {
    use inspect::Target;
    let usage = |msg: String| Error::Usage {
        what: format!("`{}`", reference::redacted(text)),
        msg,
        hint: None,
    };
    match Target::parse(text).map_err(usage)? {
        Target::Layout { dir, tag } => {
            f(&mut supply::read::Source::Layout { dir }, tag.as_deref())
        }
        Target::Archive(_) => Err(usage(
            "a docker-archive carries no signatures or attachments; name an OCI layout (oci:DIR) or a registry image".into(),
        )),
        Target::Registry(r) => {
            let mut net = Net::new(network, None);
            let (rt, client, _) = net.get()?;
            let scratch = tempfile::tempdir().map_err(|e| Error::Io {
                action: "create a temporary directory in",
                path: std::env::temp_dir(),
                source: e,
            })?;
            let mut source = supply::read::Source::Registry {
                rt,
                client,
                host: r.registry.clone(),
                repo: r.repository.clone(),
                scratch,
            };
            let wanted = r.digest.clone().or_else(|| r.tag.clone());
            f(&mut source, wanted.as_deref())
        }
    }
}

/// Put per-platform images pushed by separate jobs under one index tag.
pub fn make_index(request: index::Request, network: &Network) -> Result<index::Made> {
    let mut net = Net::new(network, Some(request.target.registry.as_str()));
    let (rt, client, cache) = net.get()?;
    rt.block_on(index::make(client, cache, request))
}

/// The base image, and every path of every new layer.
/// With `bytes` false (kiln check), files copied from images are picked
/// but their bytes are not copied into the cache.
pub(crate) fn resolve(
    spec: &validate::Spec,
    net: &mut Net,
    bytes: bool,
) -> Result<(base::Base, Vec<plan::LayerPlan>)> {
    // The base's view from the cache's index, unless --no-cache.
    let use_index = net.network.layer_cache;
    let base = match &spec.base {
        validate::BaseRef::Registry(r) => {
            let (rt, client, cache) = net.get()?;
            rt.block_on(pull::pull(client, cache, r, &spec.platform, use_index))?
        }
        other => {
            let index = use_index.then_some(net.network.cache_dir.as_path());
            base::resolve(other, &spec.platform, index)?
        }
    };
    let days = spec.created.unix / 86_400;
    let accounts = accounts::merge(&base.fs, spec.user.as_ref(), days).map_err(|msg| {
        let at = spec.user.as_ref().map_or(0..0, |u| u.at.clone());
        spec.source.error(at, msg)
    })?;
    // Each image once, however many copies take from it: one tag, one digest.
    let mut opened = std::collections::BTreeMap::new();
    let mut images = Vec::new();
    for copy in &spec.copies {
        images.push(match &copy.image {
            Some(source) => {
                if !opened.contains_key(&source.text) {
                    opened.insert(source.text.clone(), open_image(source, spec, net)?);
                }
                let cache_dir = net.network.cache_dir.as_path();
                let store = bytes.then_some(cache_dir);
                let image = &opened[&source.text];
                Some(extract::extract(
                    copy,
                    image,
                    &source.text,
                    &spec.platform,
                    (store, use_index.then_some(cache_dir)),
                )?)
            }
            None => None,
        });
    }
    let plans = plan::plan(spec, &base, &accounts, &images)?;
    Ok((base, plans))
}

/// An image in a registry, for `platform` if it is an index: its manifest
/// and config fetched into the cache, and its layers too with `layers`.
fn open_registry(
    net: &mut Net,
    reference: &reference::Reference,
    platform: &validate::Platform,
    text: &str,
    layers: bool,
) -> Result<inspect::Opened> {
    let (rt, client, cache) = net.get()?;
    rt.block_on(async {
        let resolved = pull::resolve(client, cache, reference, platform)
            .await
            .map_err(inspect::as_image)?;
        let mut blobs = vec![resolved.manifest.config.clone()];
        if layers {
            blobs.extend(resolved.manifest.layers.iter().cloned());
        }
        pull::fetch(client, cache, &resolved, blobs).await?;
        let index = resolved.index.clone().map(|i| {
            let top = oci::Descriptor {
                media_type: i
                    .media_type
                    .clone()
                    .unwrap_or_else(|| oci::OCI_INDEX.to_string()),
                digest: oci::Digest::computed(resolved.top.clone()),
                size: 0,
                urls: None,
                annotations: Default::default(),
                platform: None,
            };
            (top, i)
        });
        inspect::open_store(cache.dir(), index, &resolved.desc, &resolved.manifest, text)
    })
}

/// Pull (or open) an image copies take files from.
fn open_image(
    source: &validate::ImageSource,
    spec: &validate::Spec,
    net: &mut Net,
) -> Result<inspect::Opened> {
    let text = source.text.as_str();
    Ok(match &source.image {
        validate::BaseRef::Registry(r) => open_registry(net, r, &spec.platform, text, true)?,
        validate::BaseRef::OciLayout { path, tag, .. } => {
            let opts = inspect::Options {
                platform: spec.platform.clone(),
                platform_asked: true,
                files: true,
            };
            inspect::open_layout(path, tag.as_deref(), text, &opts)?
        }
        validate::BaseRef::Scratch => {
            return Err(Error::base(text, "scratch has no files to copy"));
        }
    })
}

/// Build the image (or, for several platforms, the images and their
/// index) that the spec at `spec_path` describes.
pub fn build(
    spec_path: &Path,
    inputs: &Inputs,
    outputs: &Outputs,
    network: &Network,
) -> Result<Built> {
    pipeline::build(spec_path, inputs, outputs, network)
}

/// The network edge, set up on first use: a one-worker runtime, the
/// registry client and the cache.
pub(crate) struct Net<'a> {
    network: &'a Network,
    push_host: Option<String>,
    ready: Option<(
        tokio::runtime::Runtime,
        std::sync::Arc<registry::Client>,
        cache::Cache,
    )>,
}

impl<'a> Net<'a> {
    pub(crate) fn new(network: &'a Network, push_host: Option<&str>) -> Self {
        Net {
            network,
            push_host: push_host.map(str::to_string),
            ready: None,
        }
    }

    pub(crate) fn get(
        &mut self,
    ) -> Result<(
        &tokio::runtime::Runtime,
        &std::sync::Arc<registry::Client>,
        &cache::Cache,
    )> {
        if self.ready.is_none() {
            // One worker thread: it drives uploads while the build's own threads compress.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| Error::Io {
                    action: "start the network runtime",
                    path: PathBuf::from("-"),
                    source: e,
                })?;
            let mut options = self.network.registry.clone();
            if options.credentials.files.is_empty() && options.credentials.env.is_none() {
                options.credentials =
                    registry::credentials::Sources::from_env(self.push_host.as_deref());
            }
            let client = std::sync::Arc::new(registry::Client::new(options)?);
            let cache = cache::Cache::open(&self.network.cache_dir)?;
            self.ready = Some((rt, client, cache));
        }
        let (rt, client, cache) = self.ready.as_ref().expect("set above");
        Ok((rt, client, cache))
    }
}
