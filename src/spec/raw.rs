//! The spec file as written: a serde mirror of the TOML, with the location of
//! every value kept so that later checks can point at the line.
//! `validate` turns this into a typed, checked [`crate::spec::validate::Spec`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, IoContext, Result};

pub type S<T> = Spanned<T>;

/// A kiln.toml as written. `kiln schema` prints its JSON Schema, derived
/// from these types: the doc comments below are the descriptions editors show.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// The image's name, tag, base, format and creation time.
    #[serde(default)]
    pub image: RawImage,
    /// Values for `${NAME}` in the spec's strings; `--build-arg NAME=VALUE` overrides them.
    /// An arg may use the args written above it.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub args: BTreeMap<String, S<String>>,
    /// The app user, added to /etc/passwd and /etc/group. The image runs as its
    /// numeric uid:gid unless [config] user says otherwise.
    #[schemars(with = "Option<RawUser>")]
    pub user: Option<S<RawUser>>,
    /// Files and directories from the spec's directory. Each [[copy]] is one layer
    /// unless `layer` groups several.
    #[serde(default)]
    #[schemars(with = "Vec<RawCopy>")]
    pub copy: Vec<S<RawCopy>>,
    /// Directories to create in the image (mkdir -p, then chown).
    #[serde(default)]
    #[schemars(with = "Vec<RawDir>")]
    pub dir: Vec<S<RawDir>>,
    /// Files with inline content.
    #[serde(default)]
    #[schemars(with = "Vec<RawFile>")]
    pub file: Vec<S<RawFile>>,
    /// Symbolic links.
    #[serde(default)]
    #[schemars(with = "Vec<RawSymlink>")]
    pub symlink: Vec<S<RawSymlink>>,
    /// The image config: entrypoint, cmd, workdir, env, ports, volumes, labels, user.
    #[serde(default)]
    pub config: RawConfig,
    /// How the runtime probes the container (Docker's HEALTHCHECK).
    #[schemars(with = "Option<RawHealthcheck>")]
    pub healthcheck: Option<S<RawHealthcheck>>,
    /// What `kiln check` findings stop `kiln build`.
    #[serde(default)]
    pub policy: RawPolicy,
    /// Manifest annotations (format = "oci"; Docker's manifest has none). Values take
    /// `${NAME}` from args; --annotation adds more. org.opencontainers.image.created is
    /// set from `created` unless given here. The base's annotations are not inherited.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub annotations: BTreeMap<String, S<String>>,
    /// Annotations of the index a multi-platform build writes (format = "oci"). Values
    /// take `${NAME}` from args.
    #[serde(default, rename = "index-annotations")]
    #[schemars(rename = "index-annotations", with = "BTreeMap<String, String>")]
    pub index_annotations: BTreeMap<String, S<String>>,
}

/// What `kiln check` findings stop `kiln build`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPolicy {
    /// Rule IDs (KILN-ROOT-USER...) allowed in this image; needs `reason`.
    /// `kiln check --list` shows the rules.
    #[serde(default)]
    #[schemars(with = "Vec<crate::spec::schema::RuleId>")]
    pub allow: Vec<S<String>>,
    /// Why the rules in `allow` do not apply to this image; required with `allow`.
    #[schemars(with = "Option<String>")]
    pub reason: Option<S<String>>,
    /// An unpinned base is an error, not a warning (as with --strict). Default false.
    pub strict: Option<bool>,
    /// `false`: `kiln build` does not stop on error-level findings (as with --no-check).
    /// Default true.
    pub enforce: Option<bool>,
}

/// The image's name, tag, base, format and creation time.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(extend("not" = { "required": ["platform", "platforms"] }))]
pub struct RawImage {
    /// The image's name: lowercase letters, digits, `.`, `_`, `-` and `/`.
    /// Default: the spec directory's name.
    #[schemars(with = "Option<String>")]
    pub name: Option<S<String>>,
    /// The image's tag: letters, digits, `.`, `_` and `-`, at most 128. Default "latest".
    #[schemars(with = "Option<String>")]
    pub tag: Option<S<String>>,
    /// "scratch" (the default: an empty image), "oci:PATH[:TAG]" (a local OCI image
    /// layout, relative to the spec) or a registry reference, best pinned by digest:
    /// "python:3.13-slim@sha256:...".
    #[schemars(with = "Option<String>", extend("examples" = ["scratch"]))]
    pub base: Option<S<String>>,
    /// "docker" (the default) or "oci". podman honours a healthcheck only in
    /// Docker-format images.
    #[schemars(with = "Option<crate::spec::schema::FormatName>")]
    pub format: Option<S<String>>,
    /// The creation time, RFC 3339: "2025-01-01T00:00:00Z". Default: SOURCE_DATE_EPOCH,
    /// else 1970-01-01T00:00:00Z.
    #[schemars(with = "Option<String>")]
    pub created: Option<S<String>>,
    /// "os/arch[/variant]", e.g. "linux/arm64". Default: this machine's; --platform
    /// overrides it.
    #[schemars(with = "Option<String>")]
    pub platform: Option<S<String>>,
    /// Build one image per platform and an index over them, e.g.
    /// ["linux/amd64", "linux/arm64"]. ${TARGETOS}, ${TARGETARCH}, ${TARGETVARIANT} and
    /// ${TARGETPLATFORM} name the platform being built. --platform picks some of them.
    #[schemars(with = "Option<Vec<String>>")]
    pub platforms: Option<S<Vec<S<String>>>>,
    /// Patterns of local files no copy takes, in .dockerignore syntax: a path relative to the
    /// spec's directory, or false for none. Default: .dockerignore, if there is one.
    #[schemars(with = "Option<RawIgnoreFile>")]
    pub ignore_file: Option<S<RawIgnoreFile>>,
    /// Layer compression: "gzip" (the default) or "zstd", which needs format = "oci"
    /// (a Docker-format image keeps gzip). --compression overrides it.
    #[schemars(with = "Option<crate::spec::schema::CompressionName>")]
    pub compression: Option<S<String>>,
    /// 0 to 9 for gzip, 1 to 19 for zstd. Default 1.
    #[schemars(with = "Option<i64>", range(min = 0, max = 19))]
    pub compression_level: Option<S<i64>>,
    /// Attach an SBOM (SPDX 2.3 and CycloneDX 1.6 JSON) to each image, as --sbom does.
    /// Default false.
    pub sbom: Option<bool>,
    /// Attach SLSA provenance to each image, as --provenance does. Default false.
    pub provenance: Option<bool>,
}

/// The app user, added to /etc/passwd and /etc/group.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawUser {
    /// The user's name: letters, digits, `_`, `-` and `.`, at most 32.
    #[schemars(with = "String")]
    pub name: S<String>,
    /// 1 to 2147483647, never 0 (root). 10001 keeps clear of host users.
    #[schemars(with = "i64", range(min = 1, max = 2147483647))]
    pub uid: S<i64>,
    /// The group's name. Default: the user's name.
    #[schemars(with = "Option<String>")]
    pub group: Option<S<String>>,
    /// 0 to 2147483647. Default: the uid.
    #[schemars(with = "Option<i64>", range(min = 0, max = 2147483647))]
    pub gid: Option<S<i64>>,
    /// An absolute path, created and owned by uid:gid. Default: none (/nonexistent).
    #[schemars(with = "Option<String>")]
    pub home: Option<S<String>>,
    /// An absolute path. Default "/sbin/nologin".
    #[schemars(with = "Option<String>")]
    pub shell: Option<S<String>>,
    /// `true`: copy the base's /etc/skel into the new home, owned by the user, as
    /// `useradd -m` does. Needs `home`. Default false.
    #[schemars(with = "Option<bool>")]
    pub skel: Option<S<bool>>,
}

/// Files and directories from the spec's directory.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCopy {
    /// A file, a directory or a glob, relative to the spec's directory and inside it;
    /// with `image`, an absolute path in that image. A directory's contents go into `dest`.
    #[schemars(with = "String")]
    pub src: S<String>,
    /// Copy from this image instead of the spec's directory (Dockerfile COPY --from): a
    /// registry reference ("ghcr.io/astral-sh/uv:0.8@sha256:...") or "oci:PATH[:TAG]",
    /// pulled for the platform being built.
    #[schemars(with = "Option<String>")]
    pub image: Option<S<String>>,
    /// An absolute path in the image; a trailing `/` means "into this directory".
    #[schemars(with = "crate::spec::schema::AbsolutePath")]
    pub dest: S<String>,
    /// "user:group" (or "user"): names from [user] or the base, or numbers like
    /// "10001:10001". Default 0:0.
    #[schemars(with = "Option<String>")]
    pub owner: Option<S<String>>,
    /// The files' mode. Default 0755 if the source is executable, else 0644.
    /// "preserve": each file and directory keeps its source's permission bits
    /// (setuid and setgid on files, and setuid on directories, taken off).
    #[schemars(with = "Option<crate::spec::schema::CopyMode>")]
    pub mode: Option<S<RawMode>>,
    /// The directories' mode. Default 0755 (with mode = "preserve", the source's).
    #[schemars(with = "Option<RawMode>")]
    pub dir_mode: Option<S<RawMode>>,
    /// Glob patterns to leave out; a pattern without `/` matches a name at any depth.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<S<String>>,
    /// `true`: copy what symlinks point to (inside the spec's directory only).
    /// Default false: links are kept as links.
    #[schemars(with = "Option<bool>")]
    pub follow_symlinks: Option<S<bool>>,
    /// File capabilities for every file copied, as `setcap NAMES=ep` sets them:
    /// names from capabilities(7) in any case, with or without `cap_`.
    #[schemars(with = "Option<Vec<String>>")]
    pub capabilities: Option<Vec<S<String>>>,
    /// The layer's name: entries naming the same layer share it. Default: a layer
    /// of its own.
    #[schemars(with = "Option<String>")]
    pub layer: Option<S<String>>,
}

/// A directory to create (mkdir -p, then chown).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDir {
    /// An absolute path in the image.
    #[schemars(with = "crate::spec::schema::AbsolutePath")]
    pub path: S<String>,
    /// "user:group" (or "user"): names from [user] or the base, or numbers like
    /// "10001:10001". Default 0:0.
    #[schemars(with = "Option<String>")]
    pub owner: Option<S<String>>,
    /// Default 0755.
    #[schemars(with = "Option<RawMode>")]
    pub mode: Option<S<RawMode>>,
    /// The layer's name. Default: the first layer.
    #[schemars(with = "Option<String>")]
    pub layer: Option<S<String>>,
}

/// A file with inline content.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFile {
    /// An absolute path in the image.
    #[schemars(with = "crate::spec::schema::AbsolutePath")]
    pub path: S<String>,
    /// The file's content; `${NAME}` takes args.
    #[schemars(with = "String")]
    pub content: S<String>,
    /// "user:group" (or "user"): names from [user] or the base, or numbers like
    /// "10001:10001". Default 0:0.
    #[schemars(with = "Option<String>")]
    pub owner: Option<S<String>>,
    /// Default 0644.
    #[schemars(with = "Option<RawMode>")]
    pub mode: Option<S<RawMode>>,
    /// File capabilities, as `setcap NAMES=ep` sets them (see [[copy]] capabilities).
    #[schemars(with = "Option<Vec<String>>")]
    pub capabilities: Option<Vec<S<String>>>,
    /// The layer's name. Default: the first layer.
    #[schemars(with = "Option<String>")]
    pub layer: Option<S<String>>,
}

/// A symbolic link.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSymlink {
    /// An absolute path in the image: the link itself.
    #[schemars(with = "crate::spec::schema::AbsolutePath")]
    pub path: S<String>,
    /// What the link points to, as written (relative or absolute).
    #[schemars(with = "String")]
    pub target: S<String>,
    /// "user:group" (or "user"): names from [user] or the base, or numbers like
    /// "10001:10001". Default 0:0.
    #[schemars(with = "Option<String>")]
    pub owner: Option<S<String>>,
    /// The layer's name. Default: the first layer.
    #[schemars(with = "Option<String>")]
    pub layer: Option<S<String>>,
}

/// The image config.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    /// The program and its first arguments, e.g. ["/app/server"]. Setting it drops the
    /// base's cmd, as in a Dockerfile.
    #[schemars(with = "Option<Vec<String>>")]
    pub entrypoint: Option<S<Vec<String>>>,
    /// Arguments (or the command, without an entrypoint). An unknown `${NAME}` is kept
    /// for a shell to expand at run time.
    #[schemars(with = "Option<Vec<String>>")]
    pub cmd: Option<S<Vec<String>>>,
    /// An absolute path; created (0:0, 0755) if nothing else makes it.
    #[schemars(with = "Option<crate::spec::schema::AbsolutePath>")]
    pub workdir: Option<S<String>>,
    /// Environment variables. Values take `$NAME` and `${NAME}` from args, then from
    /// earlier env (the base's included); `$$` is a literal `$`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    #[schemars(extend("propertyNames" = { "pattern": "^[^=]+$" }))]
    pub env: BTreeMap<String, S<String>>,
    /// Ports the image listens on: "8000", "8000/tcp", "53/udp" or "N/sctp".
    #[serde(default)]
    #[schemars(with = "Vec<crate::spec::schema::Port>")]
    pub expose: Vec<S<String>>,
    /// Absolute paths of volumes.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub volumes: Vec<S<String>>,
    /// Labels, e.g. "org.opencontainers.image.version" = "${VERSION}".
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: BTreeMap<String, S<String>>,
    /// The signal that stops the container: "SIGTERM" or a number, 1 to 64.
    #[schemars(with = "Option<String>")]
    pub stop_signal: Option<S<String>>,
    /// "uid[:gid]" or "name[:group]". Default: [user]'s numeric uid:gid, else the base's.
    #[schemars(with = "Option<String>")]
    pub user: Option<S<String>>,
}

/// How the runtime probes the container (Docker's HEALTHCHECK).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawHealthcheck {
    /// ["CMD", program, args...], ["CMD-SHELL", "command"] or ["NONE"]. The program
    /// (/bin/sh for CMD-SHELL) must be in the image.
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub test: S<Vec<String>>,
    /// Time between probes, as Go/Docker write it: "30s", "1m30s", "500ms"; 0 or at
    /// least 1ms. Default: the runtime's (30s).
    #[schemars(with = "Option<crate::spec::schema::Duration>")]
    pub interval: Option<S<String>>,
    /// How long a probe may take: "10s". Default: the runtime's (30s).
    #[schemars(with = "Option<crate::spec::schema::Duration>")]
    pub timeout: Option<S<String>>,
    /// Time to start before failures count: "5s". Default: the runtime's (0s).
    #[schemars(with = "Option<crate::spec::schema::Duration>")]
    pub start_period: Option<S<String>>,
    /// Time between probes during the start period: "2s". Default: the runtime's (5s).
    #[schemars(with = "Option<crate::spec::schema::Duration>")]
    pub start_interval: Option<S<String>>,
    /// Failures in a row before the container is unhealthy. Default: the runtime's (3).
    #[schemars(with = "Option<i64>", range(min = 0, max = 2147483647))]
    pub retries: Option<S<i64>>,
}

/// `ignore-file`: a path, or `false` (`true` means the default, .dockerignore).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawIgnoreFile {
    Use(bool),
    Path(String),
}

/// A file mode: a TOML integer (`0o644`) or an octal string (`"0644"`).
#[derive(Debug)]
pub enum RawMode {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Mode;
        impl serde::de::Visitor<'_> for Mode {
            type Value = RawMode;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mode like 0o644 or \"0644\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<RawMode, E> {
                Ok(RawMode::Int(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<RawMode, E> {
                Ok(RawMode::Text(v.to_string()))
            }
        }
        d.deserialize_any(Mode)
    }
}

/// The spec text with its path, to turn byte offsets into `file:line:col`.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source> {
        let bytes = match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Usage {
                    what: format!("`{}`", path.display()),
                    msg: "no such spec file".into(),
                    hint: Some(
                        "pass the spec's path, or run kiln in the directory that holds kiln.toml"
                            .into(),
                    ),
                });
            }
            other => other.ctx("read the spec", path)?,
        };
        let text = super::explain::utf8(bytes).map_err(|msg| Error::Usage {
            what: format!("`{}`", path.display()),
            msg,
            hint: Some("save it as UTF-8 (TOML files are UTF-8)".into()),
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    pub fn parse(&self) -> Result<RawSpec> {
        toml::from_str(&self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let (msg, hint) =
                super::explain::explain(e.message().trim_end(), self.line_at(span.start));
            let err = self.error(span, msg);
            match hint {
                Some(h) => err.with_hint(h),
                None => err,
            }
        })
    }

    /// The text of the line holding byte `offset`.
    fn line_at(&self, offset: usize) -> &str {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        &self.text[start..end]
    }

    /// An error located at `span` (a byte range of the spec text).
    /// The line (from 1) of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        line_col(&self.text, offset).0
    }

    pub fn error(&self, span: Range<usize>, msg: impl Into<String>) -> Error {
        let (line, col) = line_col(&self.text, span.start);
        Error::Spec {
            file: self.path.clone(),
            line,
            col,
            msg: msg.into(),
            hint: None,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests;
