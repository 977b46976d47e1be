//! The command line: clap's argument types, one file per subcommand with
//! its own rendering, and the shared parsers and logging.

pub mod args;
pub mod build;
pub mod check;
pub mod index;
pub mod inspect;
pub mod log;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kiln::error::Error;

pub use build::BuildArgs;
pub use check::CheckArgs;
pub use index::IndexArgs;
pub use inspect::InspectArgs;

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
    /// The directory to write kiln.toml in.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Replace an existing kiln.toml.
    #[arg(long)]
    pub force: bool,
}

/// How a subcommand that did not fail ended: cleanly, or with check
/// findings that are errors (exit 1, as for a build they stop).
pub enum Outcome {
    Done,
    Findings,
}

pub fn init(args: InitArgs) -> Result<(), Error> {
    let path = kiln::init::write(&args.dir, args.force)?;
    tracing::info!(
        "wrote {}; edit it, then run `kiln check` and `kiln build`",
        path.display()
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
