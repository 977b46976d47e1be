//! `kiln build`: the image reference on stdout, or a JSON summary.

use std::path::PathBuf;

use kiln::error::Error;
use kiln::{Inputs, Outputs};

use super::Outcome;
use super::args::{
    BuildArg, ReferenceParser, RegistryArgs, SpecArgs, build_args, parse_build_arg, parse_pair,
    parse_tag, stdout_once,
};

#[derive(clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Write the OCI image layout here (default: ./kiln-out/NAME unless --tar is given alone).
    #[arg(long, value_name = "DIR")]
    pub oci: Option<PathBuf>,
    /// Write a docker-archive that `docker load` and `podman load` read
    /// (`-` for stdout; a device, FIFO or symlink is written through).
    #[arg(long, value_name = "FILE")]
    pub tar: Option<PathBuf>,
    /// Load the image into podman (or docker, where a daemon answers), with no archive on disk.
    #[arg(long)]
    pub load: bool,
    /// Write the manifest digest (sha256:...) to this file (`-` for stdout); after --push,
    /// REF@sha256:... (one line per --push).
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// Set a ${NAME} value, overriding [args].
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]", value_parser = parse_build_arg)]
    pub build_args: Vec<BuildArg>,
    /// Add or override an image label (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub labels: Vec<(String, String)>,
    /// Add a manifest annotation (repeatable; format = "oci").
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub annotations: Vec<(String, String)>,
    /// Attach an SBOM (SPDX and CycloneDX JSON) to each image, in the layout and the registry.
    #[arg(long)]
    pub sbom: bool,
    /// Attach SLSA provenance (an in-toto statement) to each image.
    #[arg(long)]
    pub provenance: bool,
    /// Sign each image (cosign-compatible) and its attestations with this EC P-256 key
    /// (PEM PKCS#8; an encrypted one takes its passphrase from KILN_SIGN_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Layer compression, gzip or zstd (zstd needs format = "oci"), overriding the spec.
    #[arg(long, value_name = "gzip|zstd")]
    pub compression: Option<String>,
    /// Build for these platforms (os/arch[/variant]; repeat, or separate with commas),
    /// overriding the spec's; default: the spec's, else this machine's.
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',')]
    pub platforms: Vec<String>,
    /// Push the image to a registry (HOST[:PORT]/REPO[:TAG]); repeat to push to several.
    #[arg(long, value_name = "REF", value_parser = ReferenceParser)]
    pub push: Vec<kiln::oci::reference::Reference>,
    /// Build even when checks find errors.
    #[arg(long)]
    pub no_check: bool,
    /// An unpinned base is an error.
    #[arg(long)]
    pub strict: bool,
    /// Also push under this tag, in every --push destination (repeatable).
    #[arg(long = "tag", value_name = "TAG", requires = "push", value_parser = parse_tag)]
    pub tags: Vec<String>,
    /// Share finished layers through this registry repository (HOST/REPO): a build on another
    /// machine reuses them instead of compressing and uploading again.
    #[arg(long, value_name = "REF", value_parser = ReferenceParser)]
    pub cache_repo: Option<kiln::oci::reference::Reference>,
    /// Build every layer again, even when its inputs did not change (--cache-repo is still written).
    #[arg(long)]
    pub no_cache: bool,
    /// `text` (default: the image reference on stdout) or `json` (digests, layers, bytes pushed, timings).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn build(args: BuildArgs) -> Result<Outcome, Error> {
    let spec = args.spec.path()?;
    let stdout: Vec<&str> = [("--tar", &args.tar), ("--digest-file", &args.digest_file)]
        .into_iter()
        .filter(|(_, p)| p.as_deref().is_some_and(kiln::output::file::is_stdout))
        .map(|(flag, _)| flag)
        .collect();
    stdout_once(stdout.iter().copied(), &args.format)?;
    // Every destination is checked before anything is built or pushed.
    if let Some(bad) = args.push.iter().find(|p| p.digest.is_some()) {
        return Err(Error::Usage {
            what: format!("--push {bad}"),
            msg: "a push target names a tag, not a digest".into(),
            hint: Some("write --push HOST/REPO:TAG".into()),
        });
    }
    let inputs = Inputs {
        build_args: build_args(args.build_args),
        labels: args.labels,
        annotations: args.annotations,
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        platform: None,
        platforms: args.platforms,
        compression: args.compression,
        no_check: args.no_check,
        strict: args.strict,
    };
    let password = std::env::var(kiln::supply::key::PASSWORD_ENV).ok();
    let key = args
        .sign_key
        .as_deref()
        .map(|path| kiln::supply::key::Key::read(path, password.as_deref()))
        .transpose()?;
    drop(password);
    let outputs = Outputs {
        supply: kiln::supply::Request {
            sbom: args.sbom,
            provenance: args.provenance,
            key,
        },
        layout: args.oci,
        tar: args.tar,
        load: args.load,
        digest_file: args.digest_file,
        push: args.push,
        tags: args.tags,
    };
    let mut network = args.registry.network();
    network.cache_repo = args.cache_repo;
    network.layer_cache = !args.no_cache;
    let built = kiln::build(&spec, &inputs, &outputs, &network)?;
    if let Some(dir) = built.layout.as_ref() {
        tracing::info!("wrote OCI layout {}", dir.display());
    }
    if let Some(tar) = outputs.tar.as_ref() {
        tracing::info!("wrote docker-archive {}", tar.display());
    }
    if let Some(p) = &built.pushed {
        tracing::info!(
            "pushed {}: {} blobs uploaded ({}), {} mounted, {} already there",
            p.reference,
            p.uploaded,
            kiln::progress::human(p.uploaded_bytes),
            p.mounted,
            p.skipped
        );
    }
    tracing::info!("built in {:.2?}", built.timings.total);
    if args.format == "json" {
        let summary = kiln::summary::Summary::new(&built, outputs.tar.as_deref());
        let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
        out!("{json}");
        return Ok(Outcome::Done);
    }
    let line = match &built.pushed {
        Some(p) => p.reference.clone(),
        None => format!("{}:{}@{}", built.name, built.tag, built.top.digest),
    };
    match stdout.is_empty() {
        true => out!("{line}"),
        false => tracing::info!("built {line}"),
    }
    Ok(Outcome::Done)
}
