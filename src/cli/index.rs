//! `kiln index`: one multi-platform tag over per-platform pushes.

use std::path::PathBuf;

use kiln::error::Error;

use super::args::{ReferenceParser, RegistryArgs, parse_reference, parse_tag, stdout_once};

#[derive(clap::Args)]
pub struct IndexArgs {
    /// Where the index goes: HOST/REPO:TAG.
    #[arg(value_parser = ReferenceParser)]
    pub target: kiln::oci::reference::Reference,
    /// A platform's image, HOST/REPO@sha256:... (repeatable).
    #[arg(long = "add", value_name = "REF@DIGEST", value_parser = ReferenceParser)]
    pub add: Vec<kiln::oci::reference::Reference>,
    /// Files written by `kiln build --push ... --digest-file` (repeatable).
    #[arg(long = "from-digest-files", value_name = "FILE", num_args = 1..)]
    pub digest_files: Vec<PathBuf>,
    /// Also tag the index as TAG (repeatable).
    #[arg(long = "tag", value_name = "TAG", value_parser = parse_tag)]
    pub tags: Vec<String>,
    /// Write REF@sha256:... of the index to this file.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// `text` (default) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn index(args: IndexArgs) -> Result<(), Error> {
    let mut images = args.add;
    for file in &args.digest_files {
        let text = std::fs::read_to_string(file).map_err(|e| Error::Io {
            action: "read",
            path: file.clone(),
            source: e,
        })?;
        let mut listed = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let reference = parse_reference(line).map_err(|msg| Error::Usage {
                what: format!("`{}`", file.display()),
                msg,
                hint: Some("a digest file from `kiln build --push REF --digest-file FILE` holds REF@sha256:...".into()),
            })?;
            listed.push(reference);
        }
        images.extend(one_per_image(listed, &args.target));
    }
    let request = kiln::output::index::Request {
        target: &args.target,
        tags: &args.tags,
        images: &images,
    };
    let stdout = args
        .digest_file
        .iter()
        .filter(|f| kiln::output::file::is_stdout(f));
    stdout_once(stdout.map(|_| "--digest-file"), &args.format)?;
    let made = kiln::make_index(request, &args.registry.network())?;
    for (platform, digest) in &made.platforms {
        tracing::info!("{platform}: {digest}");
    }
    if let Some(file) = &args.digest_file {
        kiln::output::file::write(file, format!("{}\n", made.references[0]).as_bytes())?;
        if kiln::output::file::is_stdout(file) {
            return Ok(());
        }
    }
    if args.format == "json" {
        let platforms: Vec<serde_json::Value> = made
            .platforms
            .iter()
            .map(|(p, d)| serde_json::json!({ "platform": p, "digest": d }))
            .collect();
        let json = serde_json::json!({
            "references": made.references,
            "digest": made.digest,
            "media_type": made.media_type,
            "manifests": platforms,
        });
        out!("{}", serde_json::to_string_pretty(&json).expect("json"));
    } else {
        out!("{}", made.references[0]);
    }
    Ok(())
}

/// A build pushed to several destinations lists each, all with one digest:
/// of the lines naming one image, keep the index's own repository, else the
/// first on its registry (mounted from there), else the first.
fn one_per_image(
    listed: Vec<kiln::oci::reference::Reference>,
    target: &kiln::oci::reference::Reference,
) -> Vec<kiln::oci::reference::Reference> {
    let rank = |r: &kiln::oci::reference::Reference| match (
        r.registry == target.registry,
        r.repository == target.repository,
    ) {
        (true, true) => 0,
        (true, false) => 1,
        _ => 2,
    };
    let mut kept: Vec<kiln::oci::reference::Reference> = Vec::new();
    for r in listed {
        match kept.iter_mut().find(|k| k.digest == r.digest) {
            Some(k) if rank(&r) < rank(k) => *k = r,
            Some(_) => {}
            None => kept.push(r),
        }
    }
    kept
}
