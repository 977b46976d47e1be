//! kiln compiles a declarative TOML spec straight into OCI image layers,
//! with no daemon, no root and no RUN.
//!
//! # Layout
//!
//! The data flow is the file order:
//!
//! - `spec`: the TOML as written (serde mirror, with spans for errors).
//! - `validate`: the checked, typed [`validate::Spec`]; `args` and `duration` help it.
//! - `base`: the base image (scratch, an OCI layout, or pulled by `pull` through
//!   `registry` into the `cache`), its config and filesystem view.
//! - `accounts`: /etc/passwd, /etc/group, /etc/shadow merged with the app user.
//! - `plan`: every path of every new layer, with owner and mode; `sources` walks local files.
//! - `check`: the hardening rules, evaluated before anything is written.
//! - `layers` / `layer`: one pass per layer: tar, diff_id, `compress`, digest, file;
//!   unchanged layers come from the cache; `stream` uploads while writing.
//! - `assemble`: the image config (`config`) and the manifest (`oci`).
//! - `layout` / `archive`: the OCI image layout and the docker-archive, written atomically.
//! - `push`: blobs then manifest to a registry, through `registry` (auth, TLS, mirrors).
//!
//! `inspect` reads any image back (registry, OCI layout, docker-archive) with
//! the same base reader.
//!
//! `build` runs them in that order.

pub mod accounts;
pub mod archive;
pub mod args;
pub mod assemble;
pub mod base;
pub mod cache;
pub mod check;
pub mod compress;
pub mod config;
pub mod digest;
pub mod duration;
pub mod error;
pub mod init;
pub mod inspect;
pub mod layer;
pub mod layers;
pub mod layout;
pub mod oci;
pub mod plan;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod schema;
pub mod sources;
pub mod spec;
pub mod stream;
pub mod summary;
pub mod validate;

use std::path::{Path, PathBuf};

use error::{Error, Result};
use layer::LayerBlob;
use layout::Staging;

pub use validate::Inputs;

/// Where a build writes its image.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The OCI image layout directory; None with `tar` alone.
    pub layout: Option<PathBuf>,
    /// A docker-archive file.
    pub tar: Option<PathBuf>,
    /// A file that receives the manifest digest (or `REF@DIGEST` after a push).
    pub digest_file: Option<PathBuf>,
    /// Push to this registry reference, and under these extra tags.
    pub push: Option<reference::Reference>,
    pub tags: Vec<String>,
}

/// How kiln reaches registries, used only when a build needs one.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub registry: registry::Options,
    pub cache_dir: PathBuf,
    /// Reuse finished layers whose inputs did not change (`--no-cache` turns it off).
    pub layer_cache: bool,
}

pub struct Built {
    pub name: String,
    pub tag: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub manifest: oci::Descriptor,
    pub config: oci::Descriptor,
    pub layers: Vec<assemble::ImageLayer>,
    /// The OCI layout written, if any.
    pub layout: Option<PathBuf>,
    pub pushed: Option<push::Pushed>,
    pub warnings: Vec<String>,
    /// How many of `layers` came from the base.
    pub base_layers: usize,
    pub timings: Timings,
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
pub fn check(spec_path: &Path, inputs: &Inputs, network: &Network) -> Result<Vec<check::Finding>> {
    let spec = validate::load(spec_path, inputs)?;
    let mut net = Net::new(network, None);
    let (base, plans) = resolve(&spec, &mut net)?;
    Ok(check::run(&spec, &base, &plans, &spec.policy))
}

/// Read an image's config, layers and (with `files`) every path in it.
pub fn inspect(text: &str, opts: &inspect::Options, network: &Network) -> Result<inspect::Report> {
    use inspect::Target;
    let target = Target::parse(text).map_err(|msg| Error::Usage {
        what: format!("`{text}`"),
        msg,
        hint: None,
    })?;
    let opened = match &target {
        Target::Layout { dir, tag } => inspect::open_layout(dir, tag.as_deref(), text, opts)?,
        Target::Archive(path) => inspect::open_archive(path, text)?,
        Target::Registry(reference) => {
            let mut net = Net::new(network, None);
            let (rt, client, cache) = net.get()?;
            rt.block_on(async {
                let resolved = pull::resolve(client, cache, reference, &opts.platform)
                    .await
                    .map_err(inspect::as_image)?;
                let mut blobs = vec![resolved.manifest.config.clone()];
                if opts.files {
                    blobs.extend(resolved.manifest.layers.iter().cloned());
                }
                pull::fetch(client, cache, &resolved, blobs).await?;
                let index = resolved.index.clone().map(|i| {
                    let top = oci::Descriptor {
                        media_type: i
                            .media_type
                            .clone()
                            .unwrap_or_else(|| oci::OCI_INDEX.to_string()),
                        digest: resolved.top.clone(),
                        size: 0,
                        urls: None,
                        annotations: Default::default(),
                        platform: None,
                    };
                    (top, i)
                });
                inspect::open_store(cache.dir(), index, &resolved.desc, &resolved.manifest, text)
            })?
        }
    };
    let fs = match opts.files {
        true => Some(inspect::read_files(&opened, text)?),
        false => None,
    };
    Ok(inspect::Report::new(text, opened, fs.as_ref()))
}

/// The base image, and every path of every new layer.
fn resolve(spec: &validate::Spec, net: &mut Net) -> Result<(base::Base, Vec<plan::LayerPlan>)> {
    let base = match &spec.base {
        validate::BaseRef::Registry(r) => {
            let (rt, client, cache) = net.get()?;
            rt.block_on(pull::pull(client, cache, r, &spec.platform))?
        }
        other => base::resolve(other, &spec.platform)?,
    };
    let days = spec.created.unix / 86_400;
    let accounts = accounts::merge(&base.fs, spec.user.as_ref(), days).map_err(|msg| {
        let at = spec.user.as_ref().map_or(0..0, |u| u.at.clone());
        spec.source.error(at, msg)
    })?;
    let plans = plan::plan(spec, &base, &accounts)?;
    Ok((base, plans))
}

/// Build the image that the spec at `spec_path` describes.
pub fn build(
    spec_path: &Path,
    inputs: &Inputs,
    outputs: &Outputs,
    network: &Network,
) -> Result<Built> {
    let started = std::time::Instant::now();
    let mut timings = Timings::default();
    let spec = validate::load(spec_path, inputs)?;
    for w in &spec.warnings {
        tracing::warn!("{w}");
    }
    let layer_cache = match network.layer_cache {
        false => None,
        true => cache::Cache::open(&network.cache_dir)
            .map_err(|e| tracing::warn!("building without a layer cache: {e}"))
            .ok(),
    };
    let mut net = Net::new(network, outputs.push.as_ref().map(|r| r.registry.as_str()));
    let (base, plans) = resolve(&spec, &mut net)?;
    let findings = check::run(&spec, &base, &plans, &spec.policy);
    for f in &findings {
        let at =
            f.at.as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
        match f.severity {
            check::Severity::Error => tracing::error!("{}[{}] {}{at}", "check", f.id, f.message),
            check::Severity::Warning => tracing::warn!("{}[{}] {}{at}", "check", f.id, f.message),
            check::Severity::Info => tracing::debug!("{}[{}] {}{at}", "check", f.id, f.message),
        }
    }
    let errors: Vec<&check::Finding> = findings
        .iter()
        .filter(|f| f.severity == check::Severity::Error)
        .collect();
    if spec.enforce && !errors.is_empty() {
        return Err(Error::Policy {
            count: errors.len(),
            first: format!("{} {}", errors[0].id, errors[0].message),
        });
    }

    let default_layout = PathBuf::from("kiln-out").join(&spec.name);
    let layout_dest = match (&outputs.layout, &outputs.tar, &outputs.push) {
        (Some(dir), _, _) => Some(dir.clone()),
        (None, None, None) => Some(default_layout),
        _ => None,
    };
    let staging_near = match (&layout_dest, &outputs.tar) {
        (Some(dir), _) => dir.clone(),
        (None, Some(tar)) => tar.clone(),
        (None, None) => network.cache_dir.join("staging").join(&spec.name),
    };
    let staging = Staging::near(&staging_near)?;
    timings.resolve = started.elapsed();

    // With --push, new layers upload while they are written.
    let streams = match &outputs.push {
        Some(target) if target.digest.is_none() => {
            let (rt, client, _) = net.get()?;
            Some(stream::Streams::new(
                rt.handle().clone(),
                client.clone(),
                &target.registry,
                &target.repository,
            ))
        }
        _ => None,
    };
    let tee = |i: usize| streams.as_ref().and_then(|s| s.tee(i));
    let settings = layers::Settings {
        mtime: spec.created.unix,
        compression: spec.compression,
        level: spec.compression_level,
        cache: layer_cache.as_ref(),
        verify_hits: outputs.layout.is_some() || outputs.tar.is_some() || outputs.push.is_none(),
        tee: streams
            .as_ref()
            .map(|_| &tee as &(dyn Fn(usize) -> Option<Box<dyn std::io::Write + Send>> + Sync)),
    };
    let blobs = layers::build(&plans, &staging, &settings)?;
    let streamed = streams.map(|s| s.finish(&blobs)).unwrap_or_default();
    timings.layers = started.elapsed() - timings.resolve;
    let new: Vec<(Vec<String>, LayerBlob)> = plans
        .iter()
        .map(|p| p.created_by.clone())
        .zip(blobs)
        .collect();
    let image = assemble::assemble(&spec, &base, &new)?;
    staging.put_blob(&image.config_descriptor.digest, &image.config)?;
    staging.put_blob(&image.manifest_descriptor.digest, &image.manifest)?;

    if let Some(tar) = &outputs.tar {
        let repo_tag = format!("{}:{}", spec.name, spec.tag);
        archive::write(tar, &image, &repo_tag, spec.created.unix)?;
    }
    timings.assemble = started.elapsed() - timings.resolve - timings.layers;
    let pushed = match &outputs.push {
        Some(target) => {
            let (rt, client, _) = net.get()?;
            let config_path = staging.blob_path(&image.config_descriptor.digest);
            let request = push::Request {
                image: &image,
                config_path,
                target,
                tags: &outputs.tags,
                base_source: base.source.as_ref(),
                base_layers: base.layers.len(),
                streamed: &streamed,
            };
            let future = push::push(client, request);
            Some(rt.block_on(future)?)
        }
        None => None,
    };
    timings.push = started.elapsed() - timings.resolve - timings.layers - timings.assemble;
    if let Some(dest) = &layout_dest {
        staging.commit_layout(&image, &spec.tag, dest)?;
    }
    if let Some(file) = &outputs.digest_file {
        let line = pushed
            .as_ref()
            .map_or(image.manifest_descriptor.digest.clone(), |p| {
                p.reference.clone()
            });
        layout::write_atomic(file, format!("{line}\n").as_bytes())?;
    }
    Ok(Built {
        name: spec.name,
        tag: spec.tag,
        manifest_digest: image.manifest_descriptor.digest.clone(),
        config_digest: image.config_descriptor.digest.clone(),
        manifest: image.manifest_descriptor,
        config: image.config_descriptor,
        layers: image.layers,
        layout: layout_dest,
        pushed,
        warnings: spec.warnings,
        base_layers: base.layers.len(),
        timings: Timings {
            total: started.elapsed(),
            ..timings
        },
    })
}

/// The network edge, set up on first use: a one-worker runtime, the
/// registry client and the cache.
struct Net<'a> {
    network: &'a Network,
    push_host: Option<String>,
    ready: Option<(
        tokio::runtime::Runtime,
        std::sync::Arc<registry::Client>,
        cache::Cache,
    )>,
}

impl<'a> Net<'a> {
    fn new(network: &'a Network, push_host: Option<&str>) -> Self {
        Net {
            network,
            push_host: push_host.map(str::to_string),
            ready: None,
        }
    }

    fn get(
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
