//! The raw TOML mirror turned into a typed, checked [`Spec`]: args
//! substituted, paths normalised, modes, durations and ids range-checked.
//! Checks that need the base image (owner names) happen in `plan`.
//!
//! A [`SpecFile`] is read and parsed once; each platform's `Spec` is
//! validated from it with that platform's `${TARGETARCH}` and friends.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::oci::Compression;
use crate::spec::raw::{RawSpec, Source};

mod annotations;
mod caps;
mod config;
mod healthcheck;
mod image;
mod layers;
mod platform;
mod user;
mod validator;

pub use config::Config;
pub use healthcheck::Healthcheck;
pub use image::{Created, Format, created_at};
pub use layers::{Copy, Dir, ImageSource, InlineFile, Symlink, image_path};
pub use platform::{BaseRef, Platform, host_platform, parse_platform};
pub use user::{Id, Owner, User};
use validator::Validator;

/// Where a value sits in the spec, to report errors found after validation.
pub type Span = Range<usize>;

pub struct Spec {
    /// The text every platform's spec was validated from, read once.
    pub source: Arc<Source>,
    /// The spec's directory, canonical: every local source must lie inside it.
    pub dir: PathBuf,
    pub name: String,
    pub tag: String,
    pub base: BaseRef,
    pub format: Format,
    pub created: Created,
    /// The platform this spec was loaded for (${TARGETARCH} and friends).
    pub platform: Platform,
    /// Every platform the build makes, `platform` first.
    pub platforms: Vec<Platform>,
    pub compression: Compression,
    pub compression_level: u32,
    pub args: BTreeMap<String, String>,
    pub user: Option<User>,
    pub copies: Vec<Copy>,
    pub dirs: Vec<Dir>,
    pub files: Vec<InlineFile>,
    pub symlinks: Vec<Symlink>,
    pub config: Config,
    pub healthcheck: Option<Healthcheck>,
    /// Local files no copy takes (.dockerignore).
    pub ignore: Option<crate::spec::ignore::Ignore>,
    pub policy: crate::spec::rules::Policy,
    /// Manifest annotations (`[annotations]`, `--annotation`; OCI format only).
    pub annotations: BTreeMap<String, String>,
    /// Annotations of a multi-platform build's index (`[index-annotations]`).
    pub index_annotations: BTreeMap<String, String>,
    /// `[image] sbom` and `provenance`: attach them to each image.
    pub sbom: bool,
    pub provenance: bool,
    /// Whether `kiln build` stops on error-level findings.
    pub enforce: bool,
    pub warnings: Vec<String>,
}

/// What comes from outside the spec file.
#[derive(Default, Clone)]
pub struct Inputs {
    pub build_args: Vec<(String, String)>,
    pub source_date_epoch: Option<String>,
    /// The one platform to load the spec for (set per platform by `build`).
    pub platform: Option<String>,
    /// `--platform`, repeated: the platforms to build, overriding the spec's.
    pub platforms: Vec<String>,
    /// `--compression`, overriding the spec.
    pub compression: Option<String>,
    /// `--no-check`: build even when checks find errors.
    pub no_check: bool,
    /// `--strict`: an unpinned base is an error.
    pub strict: bool,
    /// `--label KEY=VALUE`: image labels over the spec's.
    pub labels: Vec<(String, String)>,
    /// `--annotation KEY=VALUE`: manifest annotations.
    pub annotations: Vec<(String, String)>,
}

/// A spec file read and TOML-parsed once. A multi-platform build derives
/// each platform's `Spec` from it without touching the file again.
pub struct SpecFile {
    source: Arc<Source>,
    raw: RawSpec,
    /// The spec's directory, canonical.
    dir: PathBuf,
}

impl SpecFile {
    /// Read and parse the spec at `path`; errors name its file and line.
    pub fn read(path: &Path) -> Result<SpecFile> {
        let source = Source::read(path)?;
        let raw = source.parse()?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = parent
            .canonicalize()
            .ctx("open the spec's directory", parent)?;
        Ok(SpecFile {
            source: Arc::new(source),
            raw,
            dir,
        })
    }

    /// The spec for `inputs.platform`, else for the first platform it builds.
    pub fn spec(&self, inputs: &Inputs) -> Result<Spec> {
        Validator {
            source: self.source.clone(),
            dir: self.dir.clone(),
            args: BTreeMap::new(),
            warnings: Vec::new(),
            expanded: Cell::new(0),
        }
        .run(&self.raw, inputs)
    }

    /// The spec for one of the platforms it builds: the args and checks
    /// run again, the file is not read again.
    pub fn spec_for(&self, inputs: &Inputs, platform: &Platform) -> Result<Spec> {
        self.spec(&Inputs {
            platform: Some(platform.to_string()),
            ..inputs.clone()
        })
    }
}

/// Read, parse and validate the spec at `path`.
pub fn load(path: &Path, inputs: &Inputs) -> Result<Spec> {
    SpecFile::read(path)?.spec(inputs)
}

impl Validator {
    /// The order of the checks is the order of the errors a broken spec
    /// shows first; platform args exist only from `target_args` on.
    fn run(mut self, raw: &RawSpec, inputs: &Inputs) -> Result<Spec> {
        self.collect_args(raw, inputs)?;
        let image = &raw.image;
        let name = self.name(image)?;
        let tag = self.tag(image)?;
        let base = self.base(image)?;
        let format = self.format(image)?;
        let created = self.created(image, inputs)?;
        let ignore = self.ignore_file(image, &self.dir)?;
        let platforms = self.platforms(image, inputs)?;
        let platform = match &inputs.platform {
            Some(text) => parse_platform(text).map_err(|msg| Error::Usage {
                what: "--platform".into(),
                msg,
                hint: None,
            })?,
            None => platforms[0].clone(),
        };
        self.target_args(&platform, inputs);
        let (compression, compression_level) = self.compression(image, inputs, format)?;

        let user = raw.user.as_ref().map(|u| self.user(u)).transpose()?;
        let copies = raw
            .copy
            .iter()
            .map(|c| self.copy(c))
            .collect::<Result<Vec<_>>>()?;
        let dirs = raw
            .dir
            .iter()
            .map(|d| self.dir(d))
            .collect::<Result<Vec<_>>>()?;
        let files = raw
            .file
            .iter()
            .map(|f| self.file(f))
            .collect::<Result<Vec<_>>>()?;
        let symlinks = raw
            .symlink
            .iter()
            .map(|l| self.symlink(l))
            .collect::<Result<Vec<_>>>()?;
        let mut config = self.config(raw, user.as_ref())?;
        config.labels.extend(inputs.labels.iter().cloned());
        let (annotations, index_annotations) = self.annotations(raw, inputs, format, &created)?;
        if !inputs.annotations.is_empty() && format != Format::Oci {
            return Err(crate::error::Error::Usage {
                what: "--annotation".into(),
                msg: "manifest annotations need format = \"oci\" (Docker's schema2 manifest has none)".into(),
                hint: Some("set [image] format = \"oci\", or use --label".into()),
            });
        }
        let healthcheck = raw
            .healthcheck
            .as_ref()
            .map(|h| self.healthcheck(h))
            .transpose()?;
        if healthcheck.is_some() && format == Format::Oci {
            self.warnings.push(
                "format = \"oci\" with a healthcheck: podman and CRI-O ignore Healthcheck in OCI images; use format = \"docker\" to keep it".into(),
            );
        }

        let mut policy = crate::spec::rules::Policy {
            ignore: Vec::new(),
            strict: raw.policy.strict.unwrap_or(false) || inputs.strict,
        };
        for id in &raw.policy.allow {
            if !crate::spec::rules::RULES
                .iter()
                .any(|r| r.id == id.get_ref())
            {
                return Err(self
                    .err(id.span(), format!("`{}` is not a check rule", id.get_ref()))
                    .with_hint("`kiln check --list` shows the rules"));
            }
            policy.ignore.push(id.get_ref().clone());
        }
        let reason = raw
            .policy
            .reason
            .as_ref()
            .map(|r| r.get_ref().trim())
            .unwrap_or("");
        if let (Some(first), true) = (raw.policy.allow.first(), reason.is_empty()) {
            return Err(self
                .err(first.span(), "[policy] allow needs a reason")
                .with_hint(
                    "add reason = \"...\" saying why these rules do not apply to this image",
                ));
        }
        let enforce = raw.policy.enforce.unwrap_or(true) && !inputs.no_check;
        Ok(Spec {
            policy,
            annotations,
            index_annotations,
            sbom: raw.image.sbom.unwrap_or(false),
            provenance: raw.image.provenance.unwrap_or(false),
            enforce,
            source: self.source,
            dir: self.dir,
            name,
            tag,
            base,
            format,
            created,
            platforms,
            platform,
            compression,
            compression_level,
            args: self.args,
            user,
            copies,
            dirs,
            files,
            symlinks,
            config,
            healthcheck,
            ignore,
            warnings: self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_serves_every_platform() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        let text = "[image]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
                    [[copy]]\nsrc = \"dist/${TARGETARCH}/server\"\ndest = \"/app/\"\n";
        std::fs::write(&path, text).unwrap();
        let file = SpecFile::read(&path).unwrap();
        // Gone from disk: every platform's spec must come from the one read.
        std::fs::remove_file(&path).unwrap();
        let inputs = Inputs::default();
        let first = file.spec(&inputs).unwrap();
        assert_eq!(first.platforms.len(), 2);
        for platform in &first.platforms {
            let spec = file.spec_for(&inputs, platform).unwrap();
            assert_eq!(spec.platform, *platform);
            assert_eq!(spec.copies[0].src, format!("dist/{}/server", platform.arch));
            assert!(Arc::ptr_eq(&spec.source, &first.source));
        }
    }

    #[test]
    fn errors_point_into_the_file_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        let text = "[image]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
                    [[dir]]\npath = \"${TARGETARCH}\"\n";
        std::fs::write(&path, text).unwrap();
        let file = SpecFile::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let arm = parse_platform("linux/arm64").unwrap();
        match file.spec_for(&Inputs::default(), &arm) {
            Err(Error::Spec {
                file, line, msg, ..
            }) => {
                assert_eq!((file, line), (path, 5));
                assert!(msg.contains("`arm64` is not an absolute path"), "{msg}");
            }
            other => panic!("{:?}", other.err()),
        }
    }
}
