//! `kiln build`: every platform's spec resolved and checked before anything
//! is written; then layers (each distinct one written once), images, an
//! index when there are several platforms, and the outputs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use crate::assemble::{self, Assembled, Image};
use crate::error::{Error, Result};
use crate::image::base;
use crate::layer::remote::RemoteCache;
use crate::layer::write::LayerBlob;
use crate::layer::{self, stream};
use crate::output::{archive, attach, file, layout, load, push};
use crate::spec::validate::{self, Inputs, Platform, Spec};
use crate::store::{Staging, cache};
use crate::{Built, BuiltImage, Net, Network, Outputs, Timings, check, plan, resolve, supply};

/// One platform, resolved: its spec (args such as ${TARGETARCH} filled in),
/// base and planned layers.
struct Target {
    spec: Spec,
    base: base::Base,
    plans: Vec<plan::LayerPlan>,
}

pub fn build(
    spec_path: &std::path::Path,
    inputs: &Inputs,
    outputs: &Outputs,
    network: &Network,
) -> Result<Built> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let spec_file = validate::SpecFile::read(spec_path)?;
    let first = spec_file.spec(inputs)?;
    let platforms = first.platforms.clone();
    if platforms.len() > 1 {
        let one_image = match (&outputs.tar, outputs.load) {
            (Some(tar), _) => Some(format!("--tar {}", tar.display())),
            (None, true) => Some("--load".to_string()),
            (None, false) => None,
        };
        if let Some(what) = one_image {
            let list: Vec<String> = platforms.iter().map(Platform::to_string).collect();
            return Err(Error::Usage {
                what,
                msg: format!(
                    "a docker-archive holds one image, and this build makes {} ({})",
                    platforms.len(),
                    list.join(", ")
                ),
                hint: Some(format!(
                    "pick one with --platform {}, or write an OCI layout (--oci), which holds the index",
                    list[0]
                )),
            });
        }
    }
    // Refuse an output kiln would not write to before doing any work.
    for path in outputs.tar.iter().chain(&outputs.digest_file) {
        file::kind(path)?;
    }
    for w in &first.warnings {
        tracing::warn!("{w}");
    }
    let layer_cache = match network.layer_cache {
        false => None,
        true => cache::Cache::open(&network.cache_dir)
            .map_err(|e| tracing::warn!("building without a layer cache: {e}"))
            .ok(),
    };
    let mut net = Net::new(network, outputs.push.first().map(|r| r.registry.as_str()));

    let mut targets = Vec::new();
    let mut logged = std::collections::BTreeSet::new();
    let mut first = Some(first);
    for p in &platforms {
        let spec = match first.take() {
            Some(spec) if spec.platform == *p => spec,
            _ => spec_file.spec_for(inputs, p)?,
        };
        let (base, plans) = resolve(&spec, &mut net, true)?;
        enforce_checks(&spec, &base, &plans, &mut logged)?;
        targets.push(Target { spec, base, plans });
    }
    let lead = &targets[0].spec;

    let default_layout = PathBuf::from("kiln-out").join(&lead.name);
    let elsewhere = outputs.tar.is_some() || outputs.load || !outputs.push.is_empty();
    let layout_dest = match (&outputs.layout, elsewhere) {
        (Some(dir), _) => Some(layout::destination(dir)?),
        (None, false) => Some(layout::destination(&default_layout)?),
        (None, true) => None,
    };
    // Staging goes beside the output it becomes; a tar written through a
    // device or FIFO has no such place, so the cache holds it.
    let staging_near = match (&layout_dest, &outputs.tar) {
        (Some(dir), _) => dir.clone(),
        (None, Some(tar)) if file::kind(tar)? == file::Kind::Replace => tar.clone(),
        _ => network.cache_dir.join("staging").join(&lead.name),
    };
    let staging = Staging::near(&staging_near)?;
    timings.resolve = started.elapsed();

    let remote = match &network.cache_repo {
        Some(repo) => {
            let (rt, client, _) = net.get()?;
            Some(RemoteCache::new(
                rt.handle().clone(),
                client.clone(),
                repo,
                cache::Cache::open(&network.cache_dir).ok(),
                // Hits are mounted only when every destination is on one registry.
                outputs
                    .push
                    .first()
                    .filter(|first| outputs.push.iter().all(|p| p.registry == first.registry))
                    .map(|p| p.registry.as_str()),
                network.layer_cache,
            ))
        }
        None => None,
    };
    let made = Mutex::new(BTreeMap::new());
    let mut images = Vec::new();
    let mut sboms = Vec::new();
    let mut streamed = Vec::new();
    for t in &targets {
        // With --push, new layers upload while they are written.
        let streams = match outputs.push.first() {
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
        let settings = layer::Settings {
            mtime: t.spec.created.unix,
            compression: t.spec.compression,
            level: t.spec.compression_level,
            cache: layer_cache.as_ref(),
            verify_hits: outputs.layout.is_some()
                || outputs.tar.is_some()
                || outputs.load
                || outputs.push.is_empty(),
            tee: streams
                .as_ref()
                .map(|_| &tee as &(dyn Fn(usize) -> Option<Box<dyn std::io::Write + Send>> + Sync)),
            made: &made,
            remote: remote.as_ref(),
            need_bytes: outputs.layout.is_some() || outputs.tar.is_some() || outputs.load,
            media_type: assemble::new_layer_type(t.spec.format, t.spec.compression),
            platform: (targets.len() > 1).then(|| t.spec.platform.to_string()),
        };
        let blobs = layer::build(&t.plans, &staging, &settings)?;
        streamed.push(streams.map(|s| s.finish(&blobs)).unwrap_or_default());
        let new: Vec<(Vec<String>, LayerBlob)> = t
            .plans
            .iter()
            .map(|p| p.created_by.clone())
            .zip(blobs)
            .collect();
        let image = assemble::assemble(&t.spec, &t.base, &new)?;
        if t.spec.sbom || outputs.supply.sbom {
            sboms.push(Some(crate::sbom::generate(
                &t.spec, &t.base, &t.plans, &image,
            )?));
        } else {
            sboms.push(None);
        }
        staging
            .store()
            .put(&image.config_descriptor.digest, &image.config)?;
        staging
            .store()
            .put(&image.manifest_descriptor.digest, &image.manifest)?;
        images.push(image);
    }
    timings.layers = started.elapsed() - timings.resolve;

    let index = (images.len() > 1).then(|| {
        let platforms: Vec<Platform> = targets
            .iter()
            .map(|t| assemble::platform(&t.spec, &t.base))
            .collect();
        let list: Vec<(&Platform, &Image)> = platforms.iter().zip(&images).collect();
        assemble::index(lead.format, &list, &lead.index_annotations)
    });
    if index.is_none() && !lead.index_annotations.is_empty() {
        tracing::warn!(
            "[index-annotations] apply to a multi-platform build's index; this build makes one image, so they are not written"
        );
    }
    if let Some(index) = &index {
        staging
            .store()
            .put(&index.descriptor.digest, &index.bytes)?;
    }
    for (image, streamed) in images.iter_mut().zip(streamed) {
        image.streamed = streamed;
    }
    let assembled = Assembled {
        name: lead.name.clone(),
        tag: lead.tag.clone(),
        created: lead.created.unix,
        images,
        index,
    };
    let top = assembled.top().clone();
    let attachments = attachments_for(spec_path, inputs, outputs, &targets, &assembled, &sboms);
    for artifact in attachments.iter().flat_map(|a| &a.artifacts) {
        for blob in &artifact.blobs {
            staging.store().put(&blob.descriptor.digest, &blob.bytes)?;
        }
        staging
            .store()
            .put(&artifact.descriptor.digest, &artifact.manifest)?;
    }
    if !attachments.is_empty() && layout_dest.is_none() && outputs.push.is_empty() {
        tracing::warn!(
            "a docker-archive carries no SBOM, provenance or signature: write an OCI layout (--oci) or push to keep them"
        );
    }
    if let Some(tar) = &outputs.tar {
        archive::write(&assembled, tar)?;
    }
    if outputs.load {
        let engine = load::load(&assembled)?;
        tracing::info!("loaded {} into {engine}", assembled.repo_tag());
    }
    timings.assemble = started.elapsed() - timings.resolve - timings.layers;

    let pushed = match outputs.push.is_empty() {
        false => {
            let (rt, client, _) = net.get()?;
            let future = push::push(
                client,
                &assembled,
                staging.store(),
                &outputs.push,
                &outputs.tags,
            );
            let mut pushed = rt.block_on(future)?;
            if !attachments.is_empty() {
                for target in &outputs.push {
                    let future = attach::publish(client, target, staging.store(), &attachments);
                    pushed.referrers = rt.block_on(future)?;
                }
            }
            Some(pushed)
        }
        true => None,
    };
    if let Some(remote) = &remote {
        remote.record(&outputs.push);
    }
    timings.push = started.elapsed() - timings.resolve - timings.layers - timings.assemble;

    if let Some(dest) = &layout_dest {
        layout::write(&assembled, staging, dest, &attachments)?;
    }
    if let Some(path) = &outputs.digest_file {
        // One line per destination: REF@sha256:... for each --push.
        let lines = pushed
            .as_ref()
            .map_or(vec![top.digest.to_string()], |p| p.destinations.clone());
        file::write(path, format!("{}\n", lines.join("\n")).as_bytes())?;
    }
    let mut warnings = Vec::new();
    for t in &targets {
        for w in &t.spec.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    let built_images = targets
        .iter()
        .zip(assembled.images)
        .map(|(t, image)| BuiltImage {
            platform: t.spec.platform.to_string(),
            manifest: image.manifest_descriptor,
            config: image.config_descriptor,
            layers: image.layers,
            base_layers: image.base_layers,
        })
        .collect();
    Ok(Built {
        name: lead.name.clone(),
        tag: lead.tag.clone(),
        top,
        images: built_images,
        layout: layout_dest,
        pushed,
        attached: supply::listed(&attachments),
        warnings,
        timings: Timings {
            total: started.elapsed(),
            ..timings
        },
    })
}

/// What the build attaches to each image (and to the index, its
/// signature): SBOMs, provenance, attestations, signatures. Empty unless asked for.
fn attachments_for(
    spec_path: &std::path::Path,
    inputs: &Inputs,
    outputs: &Outputs,
    targets: &[Target],
    assembled: &Assembled,
    sboms: &[Option<crate::sbom::Documents>],
) -> Vec<supply::Attachments> {
    let lead = &targets[0].spec;
    let asked = &outputs.supply;
    let provenance = asked.provenance || lead.provenance;
    let any_sbom = sboms.iter().any(Option::is_some);
    if !provenance && !any_sbom && asked.key.is_none() {
        return Vec::new();
    }
    // The name signatures and statements give the image: where it is pushed first.
    let name = outputs
        .push
        .first()
        .map(|r| format!("{}/{}", r.registry, r.repository))
        .unwrap_or_else(|| lead.name.clone());
    let ci = supply::provenance::ci_environment(|k| std::env::var(k).ok());
    let mut out = Vec::new();
    for ((t, image), docs) in targets.iter().zip(&assembled.images).zip(sboms) {
        let subject = &image.manifest_descriptor;
        let statement = provenance.then(|| {
            supply::provenance::statement(&supply::provenance::Facts {
                subject,
                name: &name,
                spec_path: &spec_path.display().to_string(),
                spec_bytes: t.spec.source.text.as_bytes(),
                build_args: &inputs.build_args,
                platform: &t.spec.platform.to_string(),
                created: &t.spec.created.rfc3339,
                base: (&t.base.reference, t.base.digest.as_deref()),
                copy_sources: supply::provenance::copy_sources(
                    t.plans.iter().flat_map(|p| &p.created_by),
                ),
                ci: ci.clone(),
            })
        });
        let parts = supply::attach::Parts {
            name: &name,
            created: &t.spec.created.rfc3339,
            sbom: docs.as_ref(),
            provenance: statement.as_deref(),
            key: asked.key.as_ref(),
        };
        out.push(supply::attach::attachments(subject, &parts));
    }
    if let (Some(index), Some(key)) = (&assembled.index, &asked.key) {
        out.push(supply::Attachments {
            subject: index.descriptor.clone(),
            artifacts: vec![supply::sign::signature(
                &index.descriptor,
                key,
                &name,
                &lead.created.rfc3339,
            )],
        });
    }
    out
}

/// Log every finding (once, though several platforms find it); stop on
/// error-level ones unless the spec says not to.
fn enforce_checks(
    spec: &Spec,
    base: &base::Base,
    plans: &[plan::LayerPlan],
    logged: &mut std::collections::BTreeSet<String>,
) -> Result<()> {
    let findings = check::run(spec, base, plans, &spec.policy);
    for f in &findings {
        if !logged.insert(format!("{} {}", f.id, f.message)) {
            continue;
        }
        let at =
            f.at.as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
        match f.severity {
            check::Severity::Error => tracing::error!("check[{}] {}{at}", f.id, f.message),
            check::Severity::Warning => tracing::warn!("check[{}] {}{at}", f.id, f.message),
            check::Severity::Info => tracing::debug!("check[{}] {}{at}", f.id, f.message),
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
    Ok(())
}
