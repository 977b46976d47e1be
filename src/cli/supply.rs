//! `kiln verify` (signatures and attestations, checked) and `kiln sbom`
//! (the attached SBOM, printed).

use std::path::PathBuf;

use kiln::error::Error;
use kiln::shown::Shown;
use kiln::supply::{key, verify};

use super::args::RegistryArgs;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The image: HOST/REPO[:TAG|@DIGEST], or oci:DIR[:TAG].
    #[arg(value_name = "REF|oci:DIR")]
    pub image: String,
    /// The public key (PEM) the signature and attestations must verify with.
    #[arg(long, value_name = "PUB.pem")]
    pub key: PathBuf,
    /// `text` or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(clap::Args)]
pub struct SbomArgs {
    /// The image: HOST/REPO[:TAG|@DIGEST], or oci:DIR[:TAG].
    #[arg(value_name = "REF|oci:DIR")]
    pub image: String,
    /// `spdx` (SPDX 2.3 JSON) or `cyclonedx` (CycloneDX 1.6 JSON).
    #[arg(long, default_value = "spdx", value_parser = ["spdx", "cyclonedx"])]
    pub format: String,
    /// The platform's image of a multi-platform index (default: this machine's).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn verify(args: VerifyArgs) -> Result<(), Error> {
    let key = key::PublicKey::read(&args.key)?;
    let network = args.registry.network();
    let checked = kiln::with_attachments(&args.image, &network, |source, wanted| {
        let (top, bytes) = verify::top(source, wanted)?;
        let mut all = Vec::new();
        for (subject, platform) in verify::subjects(source, &top, &bytes)? {
            all.push(verify::check(source, &subject, platform, &key)?);
        }
        Ok(all)
    })?;
    if args.format == "json" {
        let json = serde_json::to_string_pretty(&checked).expect("report serializes");
        out!("{json}");
        return Ok(());
    }
    for c in &checked {
        let on = c
            .platform
            .as_ref()
            .map(|p| format!(" ({})", Shown(p)))
            .unwrap_or_default();
        out!(
            "{}{on}: signature verified, signed as {}",
            c.digest,
            Shown(c.signed_as.as_deref().unwrap_or("?"))
        );
        for a in &c.attestations {
            let how = if a.signed { "verified" } else { "UNSIGNED" };
            out!(
                "  attestation {} ({how}): {}",
                Shown(&a.predicate_type),
                Shown(&a.summary)
            );
        }
        for s in &c.sboms {
            out!("  sbom {}", Shown(s));
        }
    }
    Ok(())
}

pub fn sbom(args: SbomArgs) -> Result<(), Error> {
    let media_type = match args.format.as_str() {
        "cyclonedx" => kiln::sbom::CYCLONEDX_MEDIA_TYPE,
        _ => kiln::sbom::SPDX_MEDIA_TYPE,
    };
    let platform = match &args.platform {
        Some(p) => kiln::spec::validate::parse_platform(p).map_err(|msg| Error::Usage {
            what: "--platform".into(),
            msg,
            hint: None,
        })?,
        None => kiln::spec::validate::host_platform(),
    };
    let network = args.registry.network();
    let bytes = kiln::with_attachments(&args.image, &network, |source, wanted| {
        let (top, bytes) = verify::top(source, wanted)?;
        let subjects = verify::subjects(source, &top, &bytes)?;
        let subject = match subjects.len() {
            1 => subjects[0].0.clone(),
            _ => subjects
                .iter()
                .skip(1)
                .find(|(_, p)| {
                    p.as_deref().is_some_and(|p| {
                        p == platform.to_string()
                            || (platform.variant.is_none()
                                && p.starts_with(&format!("{platform}/")))
                    })
                })
                .map(|(d, _)| d.clone())
                .ok_or_else(|| Error::Usage {
                    what: args.image.clone(),
                    msg: format!("has no image for {platform}"),
                    hint: Some("name one with --platform OS/ARCH".into()),
                })?,
        };
        verify::sbom(source, &subject, media_type)
    })?;
    out!("{}", String::from_utf8_lossy(&bytes).trim_end());
    Ok(())
}
