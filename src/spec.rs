//! The spec file as written: a serde mirror of the TOML, with the location of
//! every value kept so that later checks can point at the line.
//! `validate` turns this into a typed, checked [`crate::validate::Spec`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, IoContext, Result};

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    #[serde(default)]
    pub image: RawImage,
    #[serde(default)]
    pub args: BTreeMap<String, S<String>>,
    pub user: Option<S<RawUser>>,
    #[serde(default)]
    pub copy: Vec<S<RawCopy>>,
    #[serde(default)]
    pub dir: Vec<S<RawDir>>,
    #[serde(default)]
    pub file: Vec<S<RawFile>>,
    #[serde(default)]
    pub symlink: Vec<S<RawSymlink>>,
    #[serde(default)]
    pub config: RawConfig,
    pub healthcheck: Option<S<RawHealthcheck>>,
    #[serde(default)]
    pub policy: RawPolicy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPolicy {
    /// Rule IDs (KILN-ROOT-USER...) allowed in this image; needs `reason`.
    #[serde(default)]
    pub allow: Vec<S<String>>,
    pub reason: Option<S<String>>,
    /// An unpinned base is an error.
    pub strict: Option<bool>,
    /// `false`: `kiln build` does not stop on error-level findings.
    pub enforce: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawImage {
    pub name: Option<S<String>>,
    pub tag: Option<S<String>>,
    pub base: Option<S<String>>,
    pub format: Option<S<String>>,
    pub created: Option<S<String>>,
    pub platform: Option<S<String>>,
    pub compression: Option<S<String>>,
    pub compression_level: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawUser {
    pub name: S<String>,
    pub uid: S<i64>,
    pub group: Option<S<String>>,
    pub gid: Option<S<i64>>,
    pub home: Option<S<String>>,
    pub shell: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCopy {
    pub src: S<String>,
    pub dest: S<String>,
    pub owner: Option<S<String>>,
    pub mode: Option<S<RawMode>>,
    pub dir_mode: Option<S<RawMode>>,
    #[serde(default)]
    pub exclude: Vec<S<String>>,
    pub follow_symlinks: Option<S<bool>>,
    pub layer: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDir {
    pub path: S<String>,
    pub owner: Option<S<String>>,
    pub mode: Option<S<RawMode>>,
    pub layer: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFile {
    pub path: S<String>,
    pub content: S<String>,
    pub owner: Option<S<String>>,
    pub mode: Option<S<RawMode>>,
    pub layer: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSymlink {
    pub path: S<String>,
    pub target: S<String>,
    pub owner: Option<S<String>>,
    pub layer: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    pub entrypoint: Option<S<Vec<String>>>,
    pub cmd: Option<S<Vec<String>>>,
    pub workdir: Option<S<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, S<String>>,
    #[serde(default)]
    pub expose: Vec<S<String>>,
    #[serde(default)]
    pub volumes: Vec<S<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, S<String>>,
    pub stop_signal: Option<S<String>>,
    pub user: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawHealthcheck {
    pub test: S<Vec<String>>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub start_period: Option<S<String>>,
    pub start_interval: Option<S<String>>,
    pub retries: Option<S<i64>>,
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
        let text = match std::fs::read_to_string(path) {
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
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    pub fn parse(&self) -> Result<RawSpec> {
        toml::from_str(&self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let (msg, hint) = explain(e.message().trim_end(), self.line_at(span.start));
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

/// The TOML parser's and serde's messages, said for people writing a spec.
fn explain(msg: &str, line: &str) -> (String, Option<String>) {
    let hint = |h: &str| Some(h.to_string());
    let plain = msg
        .replace("expected i64", "expected an integer")
        .replace("expected u32", "expected an integer");
    if msg.starts_with("unknown field") {
        (
            plain,
            hint("check the key's spelling against the spec reference in README.md"),
        )
    } else if msg.starts_with("invalid type: string") && plain.contains("expected an integer") {
        (plain, hint("write the number without quotes"))
    } else if msg == "invalid type: map, expected a sequence" {
        (
            plain,
            hint(
                "[[copy]], [[dir]], [[file]] and [[symlink]] take double brackets: each is one entry in a list",
            ),
        )
    } else if msg == "invalid type: map, expected a string" && line.contains(char::is_numeric) {
        (
            plain,
            hint("quote the time: created = \"2025-01-01T00:00:00Z\""),
        )
    } else if msg.starts_with("duplicate key") {
        (
            format!("duplicate key or table `{}`", line.trim()),
            hint("each key and each [table] may appear once; remove or merge the repeat"),
        )
    } else if msg.contains("string values must be quoted") && line.trim_end().ends_with('=') {
        (
            format!("`{}` has no value", line.trim()),
            hint("write a value after `=`, e.g. name = \"web\""),
        )
    } else {
        (plain, None)
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
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            path: PathBuf::from("kiln.toml"),
            text: text.to_string(),
        }
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn unknown_key_is_located() {
        let err = src("[image]\nname = \"x\"\nbse = \"scratch\"\n")
            .parse()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("kiln.toml:3:1: unknown field `bse`"),
            "{text}"
        );
        assert!(err.hint().is_some());
    }

    #[test]
    fn modes_parse_as_int_or_text() {
        let raw =
            src("[[dir]]\npath = \"/a\"\nmode = 0o750\n[[dir]]\npath = \"/b\"\nmode = \"0700\"\n")
                .parse()
                .unwrap();
        assert!(matches!(
            raw.dir[0].get_ref().mode.as_ref().unwrap().get_ref(),
            RawMode::Int(0o750)
        ));
        assert!(
            matches!(raw.dir[1].get_ref().mode.as_ref().unwrap().get_ref(), RawMode::Text(t) if t == "0700")
        );
    }
}
