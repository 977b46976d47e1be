//! The state one platform's validation carries, and the plumbing every
//! part uses: values read with `${NAME}` filled in, errors pointed at the
//! value's line in the spec file.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Inputs, Platform, Span, image_path};
use crate::error::{Error, Result};
use crate::spec::args::{self, Unknown};
use crate::spec::raw::{RawSpec, S, Source};

pub(super) struct Validator {
    pub(super) source: Arc<Source>,
    /// The spec's directory, canonical.
    pub(super) dir: PathBuf,
    pub(super) args: BTreeMap<String, String>,
    pub(super) warnings: Vec<String>,
    /// Bytes of expanded values so far, against `args::MAX_TOTAL`.
    pub(super) expanded: Cell<usize>,
}

impl Validator {
    pub(super) fn err(&self, span: Span, msg: impl Into<String>) -> Error {
        self.source.error(span, msg)
    }

    /// Substitute args in a string value; unknown names are errors.
    pub(super) fn text(&self, value: &S<String>) -> Result<String> {
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

    pub(super) fn opt_text(&self, value: &Option<S<String>>) -> Result<Option<String>> {
        value.as_ref().map(|v| self.text(v)).transpose()
    }

    /// A command: args substituted, unknown `${NAME}` kept for the shell at run time.
    pub(super) fn command(&self, value: &S<Vec<String>>) -> Result<Vec<String>> {
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

    /// Docker's automatic platform args, for per-platform sources such as
    /// `dist/${TARGETARCH}/server`; a --build-arg of the same name wins.
    pub(super) fn target_args(&mut self, p: &Platform, inputs: &Inputs) {
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

    pub(super) fn collect_args(&mut self, raw: &RawSpec, inputs: &Inputs) -> Result<()> {
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

    /// An absolute path in the image, normalised; `..` is refused.
    pub(super) fn abs_path(&self, raw: &S<String>) -> Result<String> {
        let text = self.text(raw)?;
        image_path(&text).map_err(|m| self.err(raw.span(), m))
    }
}
