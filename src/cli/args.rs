//! Arguments every subcommand shares (registry access) and the parsers
//! that turn command-line text into kiln's types.

use std::path::PathBuf;

use kiln::error::Error;

#[derive(clap::Args)]
pub struct RegistryArgs {
    /// Cache for pulled bases and built layers (default: $XDG_CACHE_HOME/kiln).
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Trust this CA (PEM) for registry TLS, in addition to the system's.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Allow plain HTTP to this registry (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]", global = true)]
    pub insecure: Vec<String>,
    /// Pull images of REGISTRY from this mirror first, e.g.
    /// docker.io=harbor.example.com/dockerhub (PATH is a repository prefix).
    /// Repeat for several, tried in order, then REGISTRY itself.
    #[arg(long = "registry-mirror", value_name = "REGISTRY=HOST[:PORT][/PATH]", value_parser = kiln::registry::mirror::Mirror::parse, global = true)]
    pub mirrors: Vec<kiln::registry::mirror::Mirror>,
    /// Pull from the mirrors only, never from a mirrored registry itself.
    #[arg(long = "registry-mirror-only", global = true)]
    pub mirror_only: bool,
}

impl RegistryArgs {
    pub fn network(self) -> kiln::Network {
        kiln::Network {
            registry: kiln::registry::Options {
                ca_file: self.ca_file,
                insecure: self.insecure,
                mirrors: self.mirrors,
                mirror_only: self.mirror_only,
                credentials: Default::default(),
            },
            cache_dir: self
                .cache_dir
                .unwrap_or_else(kiln::store::cache::Cache::default_dir),
            layer_cache: true,
            cache_repo: None,
        }
    }
}

pub fn parse_reference(text: &str) -> Result<kiln::oci::reference::Reference, String> {
    kiln::oci::reference::Reference::parse(text)
}

/// Parses a reference for clap without clap's "invalid value '...'" prefix,
/// which would print a password written into the reference.
#[derive(Clone)]
pub struct ReferenceParser;

impl clap::builder::TypedValueParser for ReferenceParser {
    type Value = kiln::oci::reference::Reference;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let fail = |msg: String| {
            let arg = arg.map_or(String::new(), |a| format!("{a}: "));
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{arg}{msg}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| fail("an image reference must be UTF-8".into()))?;
        parse_reference(text).map_err(fail)
    }
}

pub fn parse_tag(text: &str) -> Result<String, String> {
    match kiln::oci::reference::is_tag(text) {
        true => Ok(text.to_string()),
        false => Err(format!(
            "`{text}` is not a tag: up to 128 letters, digits, `.`, `_` and `-`, not starting with `.` or `-`"
        )),
    }
}

/// `--build-arg NAME=VALUE`, or `NAME` alone for the value of the
/// environment variable NAME, as docker does: none when it is unset, so
/// the spec's own default holds.
#[derive(Clone)]
pub struct BuildArg(Option<(String, String)>);

pub fn parse_build_arg(text: &str) -> Result<BuildArg, String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => {
            Ok(BuildArg(Some((name.to_string(), value.to_string()))))
        }
        None if !text.is_empty() => Ok(BuildArg(
            std::env::var(text)
                .ok()
                .map(|value| (text.to_string(), value)),
        )),
        _ => Err(format!(
            "`{text}` is not NAME=VALUE (or NAME, to take it from the environment)"
        )),
    }
}

/// `KEY=VALUE` for --label and --annotation.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// The build args that have values.
pub fn build_args(args: Vec<BuildArg>) -> Vec<(String, String)> {
    args.into_iter().filter_map(|a| a.0).collect()
}

/// The spec a command reads: `-f FILE`, a positional SPEC file, a
/// directory (its kiln.toml), or ./kiln.toml.
#[derive(clap::Args)]
pub struct SpecArgs {
    /// The spec file, or a directory holding kiln.toml (default: ./kiln.toml).
    #[arg(value_name = "SPEC|DIR")]
    pub spec: Option<PathBuf>,
    /// The spec file (as docker build -f).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl SpecArgs {
    pub fn path(&self) -> Result<PathBuf, Error> {
        match (&self.spec, &self.file) {
            (Some(_), Some(_)) => Err(Error::Usage {
                what: "-f".into(),
                msg: "names the spec, and so does the argument before it".into(),
                hint: Some("give one: kiln build -f FILE, or kiln build SPEC|DIR".into()),
            }),
            (None, Some(file)) => Ok(file.clone()),
            (Some(path), None) if path.is_dir() => Ok(path.join("kiln.toml")),
            (Some(path), None) => Ok(path.clone()),
            (None, None) => Ok(PathBuf::from("kiln.toml")),
        }
    }
}

/// At most one output may go to stdout, and then it is the only thing there:
/// the result line moves to stderr, and --format json is refused.
pub fn stdout_once<'a>(flags: impl Iterator<Item = &'a str>, format: &str) -> Result<(), Error> {
    let flags: Vec<&str> = flags.collect();
    let usage = |msg: String, hint: &str| Error::Usage {
        what: flags.join(" and "),
        msg,
        hint: Some(hint.into()),
    };
    if flags.len() > 1 {
        return Err(usage(
            "both write to stdout".into(),
            "send one of them to a file",
        ));
    }
    if !flags.is_empty() && format == "json" {
        return Err(usage(
            "writes to stdout, where --format json would go too".into(),
            "write it to a file, or drop --format json",
        ));
    }
    Ok(())
}
