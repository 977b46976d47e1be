//! The command line: clap's argument types, one file per subcommand with
//! its own rendering, and the shared parsers and logging.

pub mod args;
pub mod build;
pub mod check;
pub mod index;
pub mod inspect;
pub mod log;
pub mod supply;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kiln::error::Error;
use kiln::shown::Shown;

pub use build::BuildArgs;
pub use check::CheckArgs;
pub use index::IndexArgs;
pub use inspect::InspectArgs;
pub use supply::{SbomArgs, VerifyArgs};

#[derive(Parser)]
#[command(
    name = "kiln",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KILN_REVISION"), ")"),
    about = "Daemonless, reproducible OCI image builder"
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but the result (errors still go to stderr).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Color in log lines: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the build variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Build the image a spec describes.
    Build(BuildArgs),
    /// Check a spec against the hardening rules, writing nothing.
    Check(CheckArgs),
    /// Show an image's config, layers and (--files) every path with its owner, without running it.
    Inspect(InspectArgs),
    /// Put images that separate jobs pushed (one per platform) under one multi-platform tag.
    Index(IndexArgs),
    /// Check an image's signature and attestations with a public key, and print what they say.
    Verify(VerifyArgs),
    /// Print the SBOM attached to an image (built with --sbom).
    Sbom(SbomArgs),
    /// Write a commented starter kiln.toml for a directory.
    Init(InitArgs),
    /// Print the JSON Schema of kiln.toml, for editor completion and validation.
    Schema,
    /// Print kiln's version and the source revision it was built from.
    Version,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
pub struct InitArgs {
    /// The directory to write kiln.toml in (default: ., or the Dockerfile's with --from).
    pub dir: Option<PathBuf>,
    /// Replace an existing kiln.toml.
    #[arg(long)]
    pub force: bool,
    /// Write the spec from this Dockerfile: its final stage, or --target's.
    #[arg(long, value_name = "DOCKERFILE")]
    pub from: Option<PathBuf>,
    /// The Dockerfile stage to write the spec from (default: the last).
    #[arg(long, value_name = "STAGE", requires = "from")]
    pub target: Option<String>,
}

/// How a subcommand that did not fail ended: cleanly, or with check
/// findings that are errors (exit 1, as for a build they stop).
pub enum Outcome {
    Done,
    Findings,
}

pub fn init(args: InitArgs) -> Result<(), Error> {
    let Some(dockerfile) = &args.from else {
        let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
        let path = kiln::init::write(&dir, args.force)?;
        tracing::info!(
            "wrote {}; edit it, then run `kiln check` and `kiln build`",
            path.display()
        );
        return Ok(());
    };
    let (path, unsupported) = kiln::init::dockerfile::write(
        dockerfile,
        args.dir.as_deref(),
        args.target.as_deref(),
        args.force,
    )?;
    let shown = dockerfile.display().to_string();
    for u in &unsupported {
        eprintln!(
            "{}:{}: not in the spec: {}\n  {}; {}",
            Shown(&shown),
            u.line,
            Shown(&u.what),
            Shown(&u.why),
            Shown(&u.todo)
        );
    }
    eprintln!(
        "wrote {} from {} ({} thing{} left out, listed at its top); edit it, then run `kiln check` and `kiln build`",
        Shown(&path.display().to_string()),
        Shown(&shown),
        unsupported.len(),
        if unsupported.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

pub fn schema() -> Result<(), Error> {
    let schema = kiln::spec::schema::schema();
    out!(
        "{}",
        serde_json::to_string_pretty(&schema).expect("schema serializes")
    );
    Ok(())
}

pub fn version() -> Result<(), Error> {
    out!(
        "kiln {} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("KILN_REVISION")
    );
    Ok(())
}

pub fn completions(shell: clap_complete::Shell) -> Result<(), Error> {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "kiln", &mut std::io::stdout());
    Ok(())
}
