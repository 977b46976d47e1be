//! Platforms (`platform`, `platforms`, --platform, this machine's) and
//! image references (`base`, a copy's `image`).

use std::path::{Path, PathBuf};

use super::Inputs;
use super::validator::Validator;
use crate::error::{Error, Result};
use crate::oci::reference::Reference;
use crate::spec::raw::RawImage;

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

impl Validator {
    /// What to build: --platform (repeated), else `platforms`, else
    /// `platform`, else this machine's.
    pub(super) fn platforms(&self, image: &RawImage, inputs: &Inputs) -> Result<Vec<Platform>> {
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
}

pub(super) fn parse_base(text: &str, spec_dir: &Path) -> Result<BaseRef, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn platforms_parse() {
        let p = parse_platform("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(parse_platform("linux/amd64").unwrap().variant, None);
        for bad in ["linux", "linux//v8", "a/b/c/d"] {
            assert!(parse_platform(bad).is_err(), "{bad:?}");
        }
    }
}
