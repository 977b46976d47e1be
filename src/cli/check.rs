//! `kiln check`: the findings as text, JSON or SARIF.

use kiln::Inputs;
use kiln::error::Error;
use kiln::shown::Shown;

use super::Outcome;
use super::args::{BuildArg, RegistryArgs, SpecArgs, build_args, parse_build_arg};

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// An unpinned base is an error.
    #[arg(long)]
    pub strict: bool,
    /// Set a ${NAME} value, overriding [args].
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]", value_parser = parse_build_arg)]
    pub build_args: Vec<BuildArg>,
    /// Check for these platforms (os/arch[/variant]; repeat, or separate with commas),
    /// overriding the spec's.
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',')]
    pub platforms: Vec<String>,
    /// `text` (default), `json`, or `sarif` (SARIF 2.1.0, for GitHub code scanning).
    #[arg(long, default_value = "text", value_parser = ["text", "json", "sarif"])]
    pub format: String,
    /// List the rules and exit.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Print the findings; any error among them is a failure (exit 1).
pub fn check(args: CheckArgs) -> Result<Outcome, Error> {
    use kiln::check::{RULES, Severity};
    if args.list {
        for r in RULES {
            out!(
                "{} {:<7} {}\n        fix: {}\n        same as: {}",
                r.id,
                format!("{:?}", r.severity).to_lowercase(),
                r.title,
                r.hint,
                if r.same_as.is_empty() { "-" } else { r.same_as }
            );
        }
        return Ok(Outcome::Done);
    }
    let spec = args.spec.path()?;
    let inputs = Inputs {
        build_args: build_args(args.build_args),
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        platforms: args.platforms,
        strict: args.strict,
        ..Inputs::default()
    };
    let findings = kiln::check(&spec, &inputs, &args.registry.network())?;
    if args.format == "json" {
        out!(
            "{}",
            serde_json::to_string_pretty(&findings).expect("findings serialize")
        );
    } else if args.format == "sarif" {
        let sarif = kiln::check::sarif(&findings, &spec.display().to_string());
        out!(
            "{}",
            serde_json::to_string_pretty(&sarif).expect("sarif serializes")
        );
    } else {
        for f in &findings {
            let at =
                f.at.as_deref()
                    .map(|a| format!("{a}: "))
                    .unwrap_or_default();
            out!(
                "{}[{}] {}{}",
                format!("{:?}", f.severity).to_lowercase(),
                f.id,
                Shown(&at),
                Shown(&f.message)
            );
            out!("  hint: {}", f.hint);
            if !f.same_as.is_empty() {
                out!("  same as: {}", f.same_as);
            }
        }
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        out!(
            "{} error(s), {} warning(s), {} info",
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info)
        );
    }
    match findings.iter().any(|f| f.severity == Severity::Error) {
        true => Ok(Outcome::Findings),
        false => Ok(Outcome::Done),
    }
}
