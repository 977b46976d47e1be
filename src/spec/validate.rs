//! The raw TOML mirror turned into a typed, checked [`Spec`]: args
//! substituted, paths normalised, modes, durations and ids range-checked.
//! Checks that need the base image (owner names) happen in `plan`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::oci::Compression;
use crate::oci::reference::Reference;
use crate::spec::args::{self, Unknown};
use crate::spec::duration;
use crate::spec::raw::{
    RawCopy, RawDir, RawFile, RawHealthcheck, RawImage, RawMode, RawSpec, RawSymlink, RawUser, S,
    Source,
};

/// Where a value sits in the spec, to report errors found after validation.
pub type Span = Range<usize>;

pub struct Spec {
    pub source: Source,
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
    /// Whether `kiln build` stops on error-level findings.
    pub enforce: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BaseRef {
    Scratch,
    /// A local OCI image layout, with an optional `org.opencontainers.image.ref.name`.
    OciLayout {
        path: PathBuf,
        tag: Option<String>,
        text: String,
    },
    /// An image in a registry.
    Registry(Reference),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Docker,
    Oci,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub unix: u64,
    pub rfc3339: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

pub struct User {
    pub name: String,
    pub uid: u32,
    pub group: String,
    pub gid: u32,
    pub home: Option<String>,
    pub shell: String,
    pub at: Span,
}

/// An owner as written: names are resolved against /etc/passwd and /etc/group later.
#[derive(Debug, Clone, PartialEq)]
pub enum Id {
    Num(u32),
    Name(String),
}

#[derive(Debug, Clone)]
pub struct Owner {
    pub user: Id,
    pub group: Option<Id>,
    pub text: String,
    pub at: Span,
}

#[derive(Clone)]
pub struct Copy {
    /// Relative to the spec's directory; with `image`, absolute in that image.
    pub src: String,
    /// Copy from this image rather than the spec's directory.
    pub image: Option<ImageSource>,
    pub dest: String,
    /// `dest` ended in `/`: sources go inside it.
    pub dest_is_dir: bool,
    pub owner: Option<Owner>,
    pub mode: Option<u32>,
    pub dir_mode: Option<u32>,
    pub exclude: Vec<String>,
    /// Copy what symlinks in the tree point to (inside the spec's directory only).
    pub follow_symlinks: bool,
    pub layer: Option<String>,
    pub at: Span,
}

/// The image a `[[copy]]` takes files from.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSource {
    pub image: BaseRef,
    /// As written (args filled in), for messages and history.
    pub text: String,
}

pub struct Dir {
    pub path: String,
    pub owner: Option<Owner>,
    pub mode: Option<u32>,
    pub layer: Option<String>,
}

pub struct InlineFile {
    pub path: String,
    pub content: String,
    pub owner: Option<Owner>,
    pub mode: Option<u32>,
    pub layer: Option<String>,
}

pub struct Symlink {
    pub path: String,
    pub target: String,
    pub owner: Option<Owner>,
    pub layer: Option<String>,
}

#[derive(Default)]
pub struct Config {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    /// Name, value as written (expanded against args and the image's env later), span.
    pub env: Vec<(String, String, Span)>,
    pub expose: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
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
}

/// The spec as read for one of the platforms it builds.
pub fn load_for(path: &Path, inputs: &Inputs, platform: &Platform) -> Result<Spec> {
    let inputs = Inputs {
        platform: Some(platform.to_string()),
        ..inputs.clone()
    };
    load(path, &inputs)
}

/// Read, parse and validate the spec at `path`.
pub fn load(path: &Path, inputs: &Inputs) -> Result<Spec> {
    let source = Source::read(path)?;
    let raw = source.parse()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = parent
        .canonicalize()
        .ctx("open the spec's directory", parent)?;
    Validator {
        source,
        dir: dir.clone(),
        args: BTreeMap::new(),
        warnings: Vec::new(),
        expanded: Cell::new(0),
    }
    .run(raw, dir, inputs)
}

struct Validator {
    source: Source,
    /// The spec's directory, canonical.
    dir: PathBuf,
    args: BTreeMap<String, String>,
    warnings: Vec<String>,
    /// Bytes of expanded values so far, against `args::MAX_TOTAL`.
    expanded: Cell<usize>,
}

impl Validator {
    fn err(&self, span: Span, msg: impl Into<String>) -> Error {
        self.source.error(span, msg)
    }

    /// Substitute args in a string value; unknown names are errors.
    fn text(&self, value: &S<String>) -> Result<String> {
        let text = args::expand(value.get_ref(), &self.args, Unknown::Refuse)
            .map_err(|msg| self.err(value.span(), msg))?;
        self.count(&text, value.span())?;
        Ok(text)
    }

    /// Keep the sum of expanded values under `args::MAX_TOTAL`, so that
    /// many values each just under the cap cannot add up to gigabytes.
    fn count(&self, text: &str, span: Span) -> Result<()> {
        let total = self.expanded.get() + text.len();
        self.expanded.set(total);
        if total > args::MAX_TOTAL {
            return Err(self.err(
                span,
                "the spec's values add up to more than 16 MiB after `${NAME}` expansion, kiln's cap for one spec",
            )
            .with_hint("use fewer or shorter args; put large content in files and copy them"));
        }
        Ok(())
    }

    fn opt_text(&self, value: &Option<S<String>>) -> Result<Option<String>> {
        value.as_ref().map(|v| self.text(v)).transpose()
    }

    /// A command: args substituted, unknown `${NAME}` kept for the shell at run time.
    fn command(&self, value: &S<Vec<String>>) -> Result<Vec<String>> {
        value
            .get_ref()
            .iter()
            .map(|s| {
                let text = args::expand(s, &self.args, Unknown::Keep)
                    .map_err(|m| self.err(value.span(), m))?;
                self.count(&text, value.span())?;
                Ok(text)
            })
            .collect()
    }

    fn run(mut self, raw: RawSpec, dir: PathBuf, inputs: &Inputs) -> Result<Spec> {
        self.collect_args(&raw, inputs)?;
        let image = &raw.image;

        let name = match &image.name {
            Some(n) => {
                let name = self.text(n)?;
                check_image_name(&name).map_err(|m| self.err(n.span(), m))?;
                name
            }
            None => default_name(&dir),
        };
        let tag = match &image.tag {
            Some(t) => {
                let tag = self.text(t)?;
                check_tag(&tag).map_err(|m| self.err(t.span(), m))?;
                tag
            }
            None => "latest".to_string(),
        };
        let base = match &image.base {
            None => BaseRef::Scratch,
            Some(b) => parse_base(&self.text(b)?, &dir).map_err(|m| {
                self.err(b.span(), m)
                    .with_hint("use \"scratch\", \"oci:PATH[:TAG]\" (a local OCI image layout) or a registry reference like \"python:3.13-slim\"")
            })?,
        };
        if let BaseRef::Registry(r) = &base {
            if r.digest.is_none() {
                self.warnings.push(format!(
                    "base `{r}` is not pinned by digest; the same spec can build a different image tomorrow (pin it as {r}@sha256:...)"
                ));
            }
        }
        let format = match image.format.as_ref() {
            None => Format::Docker,
            Some(f) => match self.text(f)?.as_str() {
                "docker" => Format::Docker,
                "oci" => Format::Oci,
                other => {
                    return Err(self.err(
                        f.span(),
                        format!("format `{other}` is not \"docker\" or \"oci\""),
                    ));
                }
            },
        };
        let created = match &image.created {
            Some(c) => parse_rfc3339(&self.text(c)?).map_err(|m| self.err(c.span(), m))?,
            None => match &inputs.source_date_epoch {
                Some(epoch) => from_source_date_epoch(epoch)?,
                None => created_at(0),
            },
        };
        let ignore = self.ignore_file(image, &dir)?;
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
        let compression = match (&inputs.compression, &image.compression) {
            (Some(text), _) => parse_compression(text).map_err(|msg| Error::Usage {
                what: "--compression".into(),
                msg,
                hint: None,
            })?,
            (None, Some(c)) => {
                parse_compression(&self.text(c)?).map_err(|m| self.err(c.span(), m))?
            }
            (None, None) => Compression::Gzip,
        };
        let compression = if compression == Compression::Zstd && format == Format::Docker {
            self.warnings.push(
                "zstd layers need format = \"oci\"; this Docker-format image keeps gzip".into(),
            );
            Compression::Gzip
        } else {
            compression
        };
        let (range, default) = match compression {
            Compression::Zstd => (1..=19, 1),
            _ => (0..=9, 1),
        };
        let compression_level = match &image.compression_level {
            None => default,
            Some(l) if range.contains(l.get_ref()) => *l.get_ref() as u32,
            Some(l) => {
                return Err(self.err(
                    l.span(),
                    format!(
                        "compression-level must be {} to {} for {}",
                        range.start(),
                        range.end(),
                        if compression == Compression::Zstd {
                            "zstd"
                        } else {
                            "gzip"
                        }
                    ),
                ));
            }
        };

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
        let config = self.config(&raw, user.as_ref())?;
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
            enforce,
            source: self.source,
            dir,
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

    /// `ignore-file`, else .dockerignore when the spec's directory has one.
    fn ignore_file(
        &self,
        image: &RawImage,
        dir: &Path,
    ) -> Result<Option<crate::spec::ignore::Ignore>> {
        use crate::spec::raw::RawIgnoreFile;
        let path = match &image.ignore_file {
            None => dir.join(".dockerignore"),
            Some(f) => match f.get_ref() {
                RawIgnoreFile::Use(false) => return Ok(None),
                RawIgnoreFile::Use(true) => dir.join(".dockerignore"),
                RawIgnoreFile::Path(p) => {
                    let path = dir.join(p);
                    if !path.is_file() {
                        return Err(self
                            .err(f.span(), format!("ignore-file `{p}` does not exist"))
                            .with_hint("the path is relative to the spec's directory; false turns ignoring off"));
                    }
                    path
                }
            },
        };
        if !path.is_file() {
            return Ok(None);
        }
        // It is part of the build context: it must not lead out of it.
        let real = path.canonicalize().ctx("open the ignore file", &path)?;
        if !real.starts_with(dir) {
            let msg = format!(
                "leads outside the spec's directory `{}` (to `{}`)",
                dir.display(),
                real.display()
            );
            let hint = "keep the ignore file inside the spec's directory (copy it there rather than linking), or set ignore-file = false";
            return Err(match &image.ignore_file {
                Some(f) if matches!(f.get_ref(), RawIgnoreFile::Path(_)) => {
                    self.err(f.span(), format!("ignore-file {msg}"))
                }
                _ => Error::source_path(&path, msg),
            }
            .with_hint(hint));
        }
        crate::spec::ignore::Ignore::read(&real).map(Some)
    }

    /// What to build: --platform (repeated), else `platforms`, else
    /// `platform`, else this machine's.
    fn platforms(&self, image: &RawImage, inputs: &Inputs) -> Result<Vec<Platform>> {
        let usage = |msg: String| Error::Usage {
            what: "--platform".into(),
            msg,
            hint: Some("e.g. --platform linux/amd64 --platform linux/arm64".into()),
        };
        let list: Vec<Platform> = if !inputs.platforms.is_empty() {
            inputs
                .platforms
                .iter()
                .map(|t| parse_platform(t).map_err(usage))
                .collect::<Result<_>>()?
        } else if let Some(list) = &image.platforms {
            if let Some(single) = &image.platform {
                return Err(self
                    .err(single.span(), "set `platform` or `platforms`, not both")
                    .with_hint("`platforms` builds an image for each and an index over them"));
            }
            if list.get_ref().is_empty() {
                return Err(self
                    .err(list.span(), "`platforms` is empty")
                    .with_hint("list at least one, e.g. [\"linux/amd64\", \"linux/arm64\"]"));
            }
            list.get_ref()
                .iter()
                .map(|p| parse_platform(&self.text(p)?).map_err(|m| self.err(p.span(), m)))
                .collect::<Result<_>>()?
        } else if let Some(p) = &image.platform {
            vec![parse_platform(&self.text(p)?).map_err(|m| self.err(p.span(), m))?]
        } else {
            vec![host_platform()]
        };
        for (i, p) in list.iter().enumerate() {
            if list[..i].contains(p) {
                let msg = format!("platform {p} is listed twice");
                return Err(match &image.platforms {
                    Some(l) if inputs.platforms.is_empty() => self.err(l.span(), msg),
                    _ => usage(msg),
                });
            }
        }
        Ok(list)
    }

    /// Docker's automatic platform args, for per-platform sources such as
    /// `dist/${TARGETARCH}/server`; a --build-arg of the same name wins.
    fn target_args(&mut self, p: &Platform, inputs: &Inputs) {
        let values = [
            ("TARGETPLATFORM", p.to_string()),
            ("TARGETOS", p.os.clone()),
            ("TARGETARCH", p.arch.clone()),
            ("TARGETVARIANT", p.variant.clone().unwrap_or_default()),
        ];
        for (name, value) in values {
            if !inputs.build_args.iter().any(|(n, _)| n == name) {
                self.args.insert(name.to_string(), value);
            }
        }
    }

    fn collect_args(&mut self, raw: &RawSpec, inputs: &Inputs) -> Result<()> {
        // In file order: an arg may use the args written above it.
        let mut declared: Vec<(&String, &S<String>)> = raw.args.iter().collect();
        declared.sort_by_key(|(_, v)| v.span().start);
        for (name, value) in declared {
            // Each value is expanded once, from the args above it, and never
            // read again for `${`: no arg can loop.
            let expanded = self.text(value).map_err(|e| match e {
                Error::Spec { msg, .. }
                    if msg.starts_with(&format!("`${{{name}}}` is not defined")) =>
                {
                    self.err(value.span(), format!("arg `{name}` uses itself"))
                        .with_hint("an arg can use only the args written above it")
                }
                Error::Spec { msg, .. } if msg.contains(args::CAP_NOTE) => self
                    .err(value.span(), format!("arg `{name}`: {msg}"))
                    .with_hint(
                        "an arg may expand to at most 1 MiB; check for args that repeat others",
                    ),
                Error::Spec { msg, .. }
                    if raw
                        .args
                        .keys()
                        .any(|k| msg.starts_with(&format!("`${{{k}}}` is not defined"))) =>
                {
                    self.err(
                        value.span(),
                        msg.split(';')
                            .next()
                            .unwrap_or("")
                            .replace("is not defined", "is declared further down in [args]"),
                    )
                    .with_hint("move it above the arg that uses it")
                }
                other => other,
            })?;
            self.args.insert(name.clone(), expanded);
        }
        for (name, value) in &inputs.build_args {
            if !raw.args.contains_key(name) {
                self.warnings.push(format!(
                    "--build-arg {name} is not declared in [args]; it is used for ${{{name}}} all the same"
                ));
            }
            self.args.insert(name.clone(), value.clone());
        }
        Ok(())
    }

    fn user(&self, raw: &S<RawUser>) -> Result<User> {
        let u = raw.get_ref();
        let name = self.text(&u.name)?;
        check_account_name(&name).map_err(|m| self.err(u.name.span(), m))?;
        let uid = self.id(&u.uid, "uid")?;
        if uid == 0 && *u.uid.get_ref() == 0 {
            return Err(self
                .err(u.uid.span(), "the app user must not be root (uid 0)")
                .with_hint("pick an unprivileged uid such as 10001"));
        }
        let group = match &u.group {
            Some(g) => {
                let group = self.text(g)?;
                check_account_name(&group).map_err(|m| self.err(g.span(), m))?;
                group
            }
            None => name.clone(),
        };
        let gid = match &u.gid {
            Some(g) => self.id(g, "gid")?,
            None => uid,
        };
        let home = match &u.home {
            Some(h) => Some(self.abs_path(h)?),
            None => None,
        };
        let shell = match &u.shell {
            Some(s) => self.abs_path(s)?,
            None => "/sbin/nologin".to_string(),
        };
        for (field, value, at) in [
            ("home", home.as_deref().unwrap_or(""), &u.home),
            ("shell", &shell, &u.shell),
        ] {
            if value.contains(':') {
                let span = at.as_ref().map_or(raw.span(), |v| v.span());
                return Err(self.err(span, format!("user {field} `{value}` must not contain `:`")));
            }
        }
        Ok(User {
            name,
            uid,
            group,
            gid,
            home,
            shell,
            at: raw.span(),
        })
    }

    fn id(&self, value: &S<i64>, what: &str) -> Result<u32> {
        let v = *value.get_ref();
        if !(0..=i64::from(i32::MAX)).contains(&v) {
            return Err(self.err(
                value.span(),
                format!("{what} {v} is out of range 0..=2147483647"),
            ));
        }
        Ok(v as u32)
    }

    fn owner(&self, raw: &Option<S<String>>) -> Result<Option<Owner>> {
        let Some(raw) = raw else { return Ok(None) };
        let text = self.text(raw)?;
        let bad = |m: String| {
            self.err(raw.span(), m).with_hint(
                "write `user:group` as names or numbers, e.g. \"app:app\" or \"10001:10001\"",
            )
        };
        if text.matches(':').count() > 1 {
            return Err(bad(format!("owner `{text}` has more than one `:`")));
        }
        let (user, group) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text.as_str(), None),
        };
        let user = parse_id(user).map_err(bad)?;
        let group = group.map(parse_id).transpose().map_err(bad)?;
        Ok(Some(Owner {
            user,
            group,
            text,
            at: raw.span(),
        }))
    }

    fn mode(&self, raw: &Option<S<RawMode>>) -> Result<Option<u32>> {
        let Some(raw) = raw else { return Ok(None) };
        let bad = |what: String| {
            self.err(raw.span(), what)
                .with_hint("write modes in octal: 0o644 or \"0644\"")
        };
        let value = match raw.get_ref() {
            RawMode::Int(v) => {
                // TOML reads `755` as decimal 755 (0o1363): almost certainly not what was meant.
                let literal = self.source.text.get(raw.span()).unwrap_or("");
                if *v > 7 && !literal.trim_start_matches(['+', '-']).starts_with("0o") {
                    return Err(bad(format!("mode `{literal}` is a decimal number")));
                }
                *v
            }
            RawMode::Text(t) => {
                let digits = t.strip_prefix("0o").unwrap_or(t);
                if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                    return Err(bad(format!("mode `{t}` is not an octal number")));
                }
                i64::from_str_radix(digits, 8)
                    .map_err(|_| bad(format!("mode `{t}` is out of range 0o0..=0o7777")))?
            }
        };
        if !(0..=0o7777).contains(&value) {
            let shown = if value < 0 {
                value.to_string()
            } else {
                format!("{value:#o}")
            };
            return Err(bad(format!("mode {shown} is out of range 0o0..=0o7777")));
        }
        Ok(Some(value as u32))
    }

    /// An absolute path in the image, normalised; `..` is refused.
    fn abs_path(&self, raw: &S<String>) -> Result<String> {
        let text = self.text(raw)?;
        image_path(&text).map_err(|m| self.err(raw.span(), m))
    }

    fn layer(&self, raw: &Option<S<String>>) -> Result<Option<String>> {
        let layer = self.opt_text(raw)?;
        if let (Some(name), Some(raw)) = (&layer, raw) {
            if name.is_empty() || name.chars().any(|c| c.is_control()) {
                return Err(self.err(raw.span(), "layer names must be non-empty and printable"));
            }
        }
        Ok(layer)
    }

    fn copy(&self, raw: &S<RawCopy>) -> Result<Copy> {
        let c = raw.get_ref();
        let src = self.text(&c.src)?;
        if src.is_empty() {
            return Err(self.err(c.src.span(), "src is empty"));
        }
        let image = match &c.image {
            Some(i) => Some(self.image_source(i, &src, c)?),
            None => None,
        };
        if image.is_some() {
            if !src.starts_with('/') {
                return Err(self
                    .err(
                        c.src.span(),
                        format!("src `{src}` must be absolute in the image"),
                    )
                    .with_hint(format!("write \"/{src}\"")));
            }
        } else if Path::new(&src).is_absolute() {
            return Err(self
                .err(c.src.span(), format!("src `{src}` is absolute"))
                .with_hint("sources are relative to the spec's directory; to copy out of an image, add image = \"REF\""));
        }
        if Path::new(&src)
            .components()
            .any(|p| p == std::path::Component::ParentDir)
        {
            let msg = match image {
                Some(_) => format!("src `{src}` contains `..`"),
                None => format!("src `{src}` leaves the spec's directory through `..`"),
            };
            return Err(self.err(c.src.span(), msg).with_hint(
                "move the spec next to its sources, or copy the sources under its directory",
            ));
        }
        let dest_text = self.text(&c.dest)?;
        let dest = image_path(&dest_text).map_err(|m| self.err(c.dest.span(), m))?;
        let exclude = c
            .exclude
            .iter()
            .map(|e| {
                let pattern = self.text(e)?;
                globset::Glob::new(&pattern).map_err(|g| {
                    self.err(
                        e.span(),
                        format!("exclude pattern `{pattern}`: {}", g.kind()),
                    )
                })?;
                Ok(pattern)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Copy {
            src,
            image,
            dest_is_dir: dest_text.ends_with('/') || dest == "/",
            dest,
            owner: self.owner(&c.owner)?,
            mode: self.mode(&c.mode)?,
            dir_mode: self.mode(&c.dir_mode)?,
            exclude,
            follow_symlinks: c.follow_symlinks.as_ref().is_some_and(|f| *f.get_ref()),
            layer: self.layer(&c.layer)?,
            at: raw.span(),
        })
    }

    fn image_source(&self, raw: &S<String>, src: &str, c: &RawCopy) -> Result<ImageSource> {
        let text = self.text(raw)?;
        let image = match parse_base(&text, &self.dir) {
            Ok(BaseRef::Scratch) => {
                return Err(self.err(raw.span(), "scratch has no files to copy"));
            }
            Ok(image) => image,
            Err(m) => {
                return Err(self.err(raw.span(), m).with_hint(
                    "use a registry reference like \"ghcr.io/astral-sh/uv:0.8\" or \"oci:PATH[:TAG]\"",
                ));
            }
        };
        if let Some(f) = &c.follow_symlinks {
            if *f.get_ref() {
                return Err(self
                    .err(f.span(), format!("follow-symlinks is for local sources, not `{src}` in an image"))
                    .with_hint("links inside the image's tree are kept as links; a src that is a link is followed"));
            }
        }
        Ok(ImageSource { image, text })
    }

    fn dir(&self, raw: &S<RawDir>) -> Result<Dir> {
        let d = raw.get_ref();
        Ok(Dir {
            path: self.abs_path(&d.path)?,
            owner: self.owner(&d.owner)?,
            mode: self.mode(&d.mode)?,
            layer: self.layer(&d.layer)?,
        })
    }

    fn file(&self, raw: &S<RawFile>) -> Result<InlineFile> {
        let f = raw.get_ref();
        Ok(InlineFile {
            path: self.abs_path(&f.path)?,
            content: self.text(&f.content)?,
            owner: self.owner(&f.owner)?,
            mode: self.mode(&f.mode)?,
            layer: self.layer(&f.layer)?,
        })
    }

    fn symlink(&self, raw: &S<RawSymlink>) -> Result<Symlink> {
        let l = raw.get_ref();
        let target = self.text(&l.target)?;
        if target.is_empty() || target.contains('\0') {
            return Err(self.err(
                l.target.span(),
                "symlink target must be non-empty, without NUL",
            ));
        }
        Ok(Symlink {
            path: self.abs_path(&l.path)?,
            target,
            owner: self.owner(&l.owner)?,
            layer: self.layer(&l.layer)?,
        })
    }

    fn config(&self, raw: &RawSpec, user: Option<&User>) -> Result<Config> {
        let c = &raw.config;
        let mut env = Vec::new();
        for (key, value) in &c.env {
            if key.is_empty() || key.contains('=') {
                return Err(self.err(
                    value.span(),
                    format!("env name `{key}` must be non-empty, without `=`"),
                ));
            }
            // Expanded in `assemble`, where the base's env is known.
            env.push((key.clone(), value.get_ref().clone(), value.span()));
        }
        // File order, as Docker applies ENV lines: later values may use earlier ones.
        env.sort_by_key(|(_, _, span)| span.start);
        let mut expose = Vec::new();
        for port in &c.expose {
            let text = self.text(port)?;
            expose.push(normalize_port(&text).map_err(|m| self.err(port.span(), m))?);
        }
        let mut labels = BTreeMap::new();
        for (key, value) in &c.labels {
            labels.insert(key.clone(), self.text(value)?);
        }
        let volumes = c
            .volumes
            .iter()
            .map(|v| self.abs_path(v))
            .collect::<Result<Vec<_>>>()?;
        let workdir = c.workdir.as_ref().map(|w| self.abs_path(w)).transpose()?;
        let user_field = match &c.user {
            Some(u) => {
                let text = self.text(u)?;
                check_config_user(&text).map_err(|m| {
                    self.err(u.span(), m)
                        .with_hint("write it as \"10001:10001\" (uid:gid), or as name[:group] from the image's /etc/passwd")
                })?;
                Some(text)
            }
            None => user.map(|u| format!("{}:{}", u.uid, u.gid)),
        };
        let stop_signal = match &c.stop_signal {
            Some(s) => {
                let text = self.text(s)?;
                check_signal(&text).map_err(|m| self.err(s.span(), m))?;
                Some(text)
            }
            None => None,
        };
        Ok(Config {
            entrypoint: c.entrypoint.as_ref().map(|v| self.command(v)).transpose()?,
            cmd: c.cmd.as_ref().map(|v| self.command(v)).transpose()?,
            workdir,
            env,
            expose,
            volumes,
            labels,
            stop_signal,
            user: user_field,
        })
    }

    fn healthcheck(&self, raw: &S<RawHealthcheck>) -> Result<Healthcheck> {
        let h = raw.get_ref();
        let test = self.command(&h.test)?;
        let shape_ok = match test.first().map(String::as_str) {
            Some("NONE") => test.len() == 1,
            Some("CMD") => test.len() >= 2,
            Some("CMD-SHELL") => test.len() == 2,
            _ => false,
        };
        if !shape_ok {
            return Err(self
                .err(h.test.span(), "healthcheck test must be [\"CMD\", program, args...], [\"CMD-SHELL\", \"command\"] or [\"NONE\"]")
                .with_hint("for example test = [\"CMD\", \"/bin/busybox\", \"wget\", \"--spider\", \"-q\", \"http://127.0.0.1:8000/health\"]"));
        }
        let dur = |v: &Option<S<String>>| -> Result<i64> {
            let Some(v) = v else { return Ok(0) };
            let nanos = duration::parse(&self.text(v)?).map_err(|m| self.err(v.span(), m))?;
            if nanos != 0 && nanos < 1_000_000 {
                return Err(self.err(v.span(), "durations must be 0 or at least 1ms"));
            }
            Ok(nanos)
        };
        let retries = match &h.retries {
            Some(r) if *r.get_ref() < 0 || *r.get_ref() > i64::from(i32::MAX) => {
                return Err(self.err(r.span(), "retries must be 0 or more"));
            }
            Some(r) => *r.get_ref(),
            None => 0,
        };
        Ok(Healthcheck {
            test,
            interval: dur(&h.interval)?,
            timeout: dur(&h.timeout)?,
            start_period: dur(&h.start_period)?,
            start_interval: dur(&h.start_interval)?,
            retries,
        })
    }
}

/// Normalise an absolute path in the image: no `..`, no empty or `.` parts,
/// no NUL or control characters. Returns `/` or `/a/b` (no trailing slash).
pub fn image_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "`{text}` is not an absolute path in the image (start it with `/`)"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{text:?} contains a control character"));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("`{text}` contains `..`")),
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `[config] user` shapes that no runtime runs as intended. What it runs
/// as (`+0` is root) is for `kiln check` to judge, with the image's accounts.
fn check_config_user(text: &str) -> Result<(), String> {
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "user `{text}` must be `uid[:gid]` or `name[:group]`"
        ));
    }
    let mut parts = text.split(':');
    let (user, group) = (parts.next().unwrap_or(""), parts.next());
    if parts.next().is_some() {
        return Err(format!(
            "user `{text}` has more than one `:`; runtimes ignore all after the second"
        ));
    }
    if user.is_empty() {
        return Err(format!(
            "user `{text}` has no user before `:`, which runtimes run as root (uid 0)"
        ));
    }
    for (what, part) in [("uid", Some(user)), ("gid", group)] {
        let n = part.and_then(crate::oci::runas::atoi);
        if let Some(n) = n.filter(|n| !(0..=i64::from(i32::MAX)).contains(n)) {
            return Err(format!(
                "user `{text}`: {what} {n} is outside 0..=2147483647, so the container would not start"
            ));
        }
    }
    Ok(())
}

fn parse_id(text: &str) -> Result<Id, String> {
    if text.is_empty() {
        return Err("owner has an empty user or group".to_string());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = text
            .parse()
            .map_err(|_| format!("`{text}` is not a number"))?;
        if n > i32::MAX as u64 {
            return Err(format!("id {n} is out of range 0..=2147483647"));
        }
        return Ok(Id::Num(n as u32));
    }
    check_account_name(text)?;
    Ok(Id::Name(text.to_string()))
}

fn check_account_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        // Debug form, so a newline in the name cannot break the message in two.
        Err(format!(
            "{name:?} is not a valid user or group name (letters, digits, `_`, `-`, `.`; at most 32)"
        ))
    }
}

fn check_image_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/')
        })
        && !name.starts_with(['.', '-', '/', '_'])
        && !name.ends_with('/');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "image name `{name}` must be lowercase letters, digits, `.`, `_`, `-` and `/`"
        ))
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag `{tag}` must be letters, digits, `.`, `_` and `-` (at most 128)"
        ))
    }
}

fn check_signal(text: &str) -> Result<(), String> {
    let numeric = text.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n));
    let named = text.starts_with("SIG")
        && text.len() > 3
        && text[3..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+');
    if numeric || named {
        Ok(())
    } else {
        Err(format!(
            "stop-signal `{text}` is not a signal like \"SIGTERM\" or \"15\""
        ))
    }
}

fn default_name(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("image")
        .to_ascii_lowercase();
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches(['.', '-', '_']).to_string();
    if cleaned.is_empty() {
        "image".to_string()
    } else {
        cleaned
    }
}

fn normalize_port(text: &str) -> Result<String, String> {
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let bad = || format!("port `{text}` must be like \"8000\", \"8000/tcp\" or \"53/udp\"");
    let n: u32 = port.parse().map_err(|_| bad())?;
    if !(1..=65535).contains(&n) || !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    Ok(format!("{n}/{proto}"))
}

fn parse_base(text: &str, spec_dir: &Path) -> Result<BaseRef, String> {
    if text == "scratch" {
        return Ok(BaseRef::Scratch);
    }
    let Some(rest) = text.strip_prefix("oci:") else {
        return Reference::parse(text).map(BaseRef::Registry);
    };
    // A `:TAG` suffix is the part after the last `:` when it holds no `/`.
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') && !p.is_empty() => (p, Some(t.to_string())),
        _ => (rest, None),
    };
    if path.is_empty() {
        return Err("oci: needs a path, e.g. \"oci:../base-layout:latest\"".to_string());
    }
    Ok(BaseRef::OciLayout {
        path: spec_dir.join(path),
        tag,
        text: text.to_string(),
    })
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    match text {
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        other => Err(format!("compression `{other}` is not \"gzip\" or \"zstd\"")),
    }
}

pub fn parse_platform(text: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = text.split('/').collect();
    let ok = (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty());
    if !ok {
        return Err(format!(
            "platform `{text}` must be like \"linux/amd64\" or \"linux/arm64/v8\""
        ));
    }
    Ok(Platform {
        os: parts[0].to_string(),
        arch: parts[1].to_string(),
        variant: parts.get(2).map(|v| v.to_string()),
    })
}

pub fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "arm" => "arm",
        other => other,
    };
    Platform {
        os: "linux".to_string(),
        arch: arch.to_string(),
        variant: None,
    }
}

fn parse_rfc3339(text: &str) -> Result<Created, String> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            format!("created `{text}` is not an RFC 3339 time like \"2025-01-01T00:00:00Z\"")
        })?;
    let unix = parsed.unix_timestamp();
    if unix < 0 {
        return Err(format!("created `{text}` is before 1970"));
    }
    Ok(created_at(unix as u64))
}

fn from_source_date_epoch(text: &str) -> Result<Created> {
    let trimmed = text.trim();
    match trimmed.parse::<u64>() {
        Ok(secs) if trimmed.bytes().all(|b| b.is_ascii_digit()) && secs < 253_402_300_800 => {
            Ok(created_at(secs))
        }
        _ => Err(Error::Usage {
            what: "SOURCE_DATE_EPOCH".to_string(),
            msg: format!("`{text}` is not a whole number of seconds since 1970"),
            hint: Some("set it to e.g. $(git log -1 --format=%ct), or unset it".to_string()),
        }),
    }
}

pub fn created_at(unix: u64) -> Created {
    let time = time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let rfc3339 = time
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string());
    Created { unix, rfc3339 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_are_normalised() {
        assert_eq!(image_path("/app/").unwrap(), "/app");
        assert_eq!(image_path("//a/./b").unwrap(), "/a/b");
        assert_eq!(image_path("/").unwrap(), "/");
        assert!(image_path("app").is_err());
        assert!(image_path("/a/../b").is_err());
        assert!(image_path("/a\nb").is_err());
    }

    #[test]
    fn owners_parse() {
        assert_eq!(parse_id("10001").unwrap(), Id::Num(10001));
        assert_eq!(parse_id("app").unwrap(), Id::Name("app".into()));
        assert!(parse_id("a:b").is_err());
        assert!(parse_id("99999999999").is_err());
    }

    #[test]
    fn created_from_epoch_and_text() {
        assert_eq!(created_at(0).rfc3339, "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2025-01-01T01:00:00+01:00").unwrap().rfc3339,
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            from_source_date_epoch("1735689600").unwrap().rfc3339,
            "2025-01-01T00:00:00Z"
        );
        for bad in ["", "abc", "-1", "1.5", "1e9"] {
            assert!(from_source_date_epoch(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bases_parse() {
        let dir = Path::new("/specs");
        assert_eq!(parse_base("scratch", dir).unwrap(), BaseRef::Scratch);
        match parse_base("oci:../layout:v1", dir).unwrap() {
            BaseRef::OciLayout { path, tag, .. } => {
                assert_eq!(path, Path::new("/specs/../layout"));
                assert_eq!(tag.as_deref(), Some("v1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(parse_base("python:3.13-slim", dir).unwrap(), BaseRef::Registry(r) if r.repository == "library/python")
        );
        assert!(parse_base("Python", dir).is_err());
    }

    #[test]
    fn ports_and_names() {
        assert_eq!(normalize_port("8000").unwrap(), "8000/tcp");
        assert_eq!(normalize_port("53/udp").unwrap(), "53/udp");
        assert!(normalize_port("0").is_err());
        assert!(normalize_port("80/http").is_err());
        assert!(check_image_name("Web").is_err());
        assert!(check_image_name("team/web").is_ok());
        assert_eq!(default_name(Path::new("/x/My App")), "my-app");
    }
}
