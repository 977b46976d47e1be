//! `kiln inspect`: an image's config, layers and files, as text or JSON.

use kiln::error::Error;

use super::args::RegistryArgs;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A registry reference (HOST/REPO[:TAG|@DIGEST]), oci:DIR[:TAG], or tar:FILE (a docker-archive).
    pub target: String,
    /// Also list every path: owner uid:gid (with the image's own names), mode, size, and the layer that wrote it.
    #[arg(long)]
    pub files: bool,
    /// `text` (default) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Which image of a multi-platform index (os/arch[/variant]); default: this machine's.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn inspect(args: InspectArgs) -> Result<(), Error> {
    let platform = match &args.platform {
        Some(text) => kiln::spec::validate::parse_platform(text).map_err(|msg| Error::Usage {
            what: "--platform".into(),
            msg,
            hint: Some("e.g. linux/amd64 or linux/arm64/v8".into()),
        })?,
        None => kiln::spec::validate::host_platform(),
    };
    let opts = kiln::image::inspect::Options {
        platform,
        platform_asked: args.platform.is_some(),
        files: args.files,
    };
    let report = kiln::inspect(&args.target, &opts, &args.registry.network())?;
    if args.format == "json" {
        let json = serde_json::to_string_pretty(&report).expect("report serializes");
        out!("{json}");
    } else {
        out!("{}", report.text().trim_end());
    }
    Ok(())
}
