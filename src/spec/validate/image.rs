//! `[image]`: name, tag, base, format, created, compression and the
//! ignore file. Platforms are in `platform`.

use std::path::Path;

use super::platform::parse_base;
use super::validator::Validator;
use super::{BaseRef, Inputs};
use crate::error::{Error, IoContext, Result};
use crate::oci::Compression;
use crate::spec::raw::RawImage;

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

impl Validator {
    pub(super) fn name(&self, image: &RawImage) -> Result<String> {
        Ok(match &image.name {
            Some(n) => {
                let name = self.text(n)?;
                check_image_name(&name).map_err(|m| self.err(n.span(), m))?;
                name
            }
            None => default_name(&self.dir),
        })
    }

    pub(super) fn tag(&self, image: &RawImage) -> Result<String> {
        Ok(match &image.tag {
            Some(t) => {
                let tag = self.text(t)?;
                check_tag(&tag).map_err(|m| self.err(t.span(), m))?;
                tag
            }
            None => "latest".to_string(),
        })
    }

    pub(super) fn base(&mut self, image: &RawImage) -> Result<BaseRef> {
        let base = match &image.base {
            None => BaseRef::Scratch,
            Some(b) => parse_base(&self.text(b)?, &self.dir).map_err(|m| {
                self.err(b.span(), m)
                    .with_hint("use \"scratch\", \"oci:PATH[:TAG]\" (a local OCI image layout) or a registry reference like \"python:3.13-slim\"")
            })?,
        };
        // An unpinned base is KILN-BASE-NOT-PINNED, said once by the check
        // with the digest it resolved to.
        Ok(base)
    }

    pub(super) fn format(&self, image: &RawImage) -> Result<Format> {
        Ok(match image.format.as_ref() {
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
        })
    }

    pub(super) fn created(&self, image: &RawImage, inputs: &Inputs) -> Result<Created> {
        Ok(match &image.created {
            Some(c) => parse_rfc3339(&self.text(c)?).map_err(|m| self.err(c.span(), m))?,
            None => match &inputs.source_date_epoch {
                Some(epoch) => from_source_date_epoch(epoch)?,
                None => created_at(0),
            },
        })
    }

    /// The compression and its level. Read after the platform is known,
    /// so ${TARGETARCH} and friends may appear in it.
    pub(super) fn compression(
        &mut self,
        image: &RawImage,
        inputs: &Inputs,
        format: Format,
    ) -> Result<(Compression, u32)> {
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
        Ok((compression, compression_level))
    }

    /// `ignore-file`, else .dockerignore when the spec's directory has one.
    pub(super) fn ignore_file(
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

fn parse_compression(text: &str) -> Result<Compression, String> {
    match text {
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        other => Err(format!("compression `{other}` is not \"gzip\" or \"zstd\"")),
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
    fn names_and_tags() {
        assert!(check_image_name("Web").is_err());
        assert!(check_image_name("team/web").is_ok());
        assert_eq!(default_name(Path::new("/x/My App")), "my-app");
        assert!(check_tag("v1.2_3-rc").is_ok());
        assert!(check_tag(".v1").is_err());
    }
}
