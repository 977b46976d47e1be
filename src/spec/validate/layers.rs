//! `[[copy]]`, `[[dir]]`, `[[file]]` and `[[symlink]]`: what the new
//! layers hold, with their paths in the image, modes and layer names.

use std::path::Path;

use super::platform::parse_base;
use super::validator::Validator;
use super::{BaseRef, Owner, Span};
use crate::error::Result;
use crate::spec::raw::{RawCopy, RawDir, RawFile, RawMode, RawSymlink, S};

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
    /// `mode = "preserve"`: files and directories keep their sources' bits,
    /// a local file's or those an image gives it (`mode` is then None;
    /// `dir_mode` still wins for directories).
    pub preserve_mode: bool,
    pub dir_mode: Option<u32>,
    pub exclude: Vec<String>,
    /// Copy what symlinks in the tree point to (inside the spec's directory only).
    pub follow_symlinks: bool,
    /// File capabilities every copied file gets (bit N: capability N).
    pub capabilities: u64,
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
    pub at: Span,
}

pub struct InlineFile {
    pub path: String,
    pub content: String,
    pub owner: Option<Owner>,
    pub mode: Option<u32>,
    pub capabilities: u64,
    pub layer: Option<String>,
    pub at: Span,
}

pub struct Symlink {
    pub path: String,
    pub target: String,
    pub owner: Option<Owner>,
    pub layer: Option<String>,
    pub at: Span,
}

impl Validator {
    fn mode(&self, raw: &Option<S<RawMode>>) -> Result<Option<u32>> {
        let Some(raw) = raw else { return Ok(None) };
        let bad = |what: String| {
            self.err(raw.span(), what)
                .with_hint("write modes in octal: 0o644 or \"0644\"")
        };
        let value = match raw.get_ref() {
            RawMode::Text(t) if t == "preserve" => {
                return Err(self
                    .err(raw.span(), "\"preserve\" is a value for [[copy]] mode only")
                    .with_hint("write the mode in octal, e.g. 0o644"));
            }
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

    fn layer(&self, raw: &Option<S<String>>) -> Result<Option<String>> {
        let layer = self.opt_text(raw)?;
        if let (Some(name), Some(raw)) = (&layer, raw) {
            if name.is_empty() || name.chars().any(|c| c.is_control()) {
                return Err(self.err(raw.span(), "layer names must be non-empty and printable"));
            }
        }
        Ok(layer)
    }

    pub(super) fn copy(&self, raw: &S<RawCopy>) -> Result<Copy> {
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
        let preserve_mode = matches!(c.mode.as_ref().map(|m| m.get_ref()), Some(RawMode::Text(t)) if t == "preserve");
        let mode = match preserve_mode {
            true => None,
            false => self.mode(&c.mode)?,
        };
        Ok(Copy {
            src,
            image,
            dest_is_dir: dest_text.ends_with('/') || dest == "/",
            dest,
            owner: self.owner(&c.owner)?,
            mode,
            preserve_mode,
            dir_mode: self.mode(&c.dir_mode)?,
            exclude,
            follow_symlinks: c.follow_symlinks.as_ref().is_some_and(|f| *f.get_ref()),
            capabilities: self.capabilities(&c.capabilities)?,
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

    pub(super) fn dir(&self, raw: &S<RawDir>) -> Result<Dir> {
        let d = raw.get_ref();
        Ok(Dir {
            path: self.abs_path(&d.path)?,
            owner: self.owner(&d.owner)?,
            mode: self.mode(&d.mode)?,
            layer: self.layer(&d.layer)?,
            at: raw.span(),
        })
    }

    pub(super) fn file(&self, raw: &S<RawFile>) -> Result<InlineFile> {
        let f = raw.get_ref();
        Ok(InlineFile {
            path: self.abs_path(&f.path)?,
            content: self.text(&f.content)?,
            owner: self.owner(&f.owner)?,
            mode: self.mode(&f.mode)?,
            capabilities: self.capabilities(&f.capabilities)?,
            layer: self.layer(&f.layer)?,
            at: raw.span(),
        })
    }

    pub(super) fn symlink(&self, raw: &S<RawSymlink>) -> Result<Symlink> {
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
            at: raw.span(),
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
}
