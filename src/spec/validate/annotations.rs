//! `[annotations]` and `[index-annotations]`: values with args expanded,
//! `--annotation` over the spec's, and the creation time recorded unless
//! the spec gives one. Docker's manifests and lists carry none: an error there.

use std::collections::BTreeMap;

use super::validator::Validator;
use super::{Created, Format, Inputs};
use crate::error::Result;
use crate::spec::raw::RawSpec;

pub const CREATED: &str = "org.opencontainers.image.created";

type Annotations = BTreeMap<String, String>;

impl Validator {
    pub(super) fn annotations(
        &self,
        raw: &RawSpec,
        inputs: &Inputs,
        format: Format,
        created: &Created,
    ) -> Result<(Annotations, Annotations)> {
        let docker = format == Format::Docker;
        let mut manifest = BTreeMap::new();
        for (key, value) in &raw.annotations {
            if docker {
                return Err(self
                    .err(
                        value.span(),
                        "[annotations] need format = \"oci\": Docker's schema2 manifest has none",
                    )
                    .with_hint("set [image] format = \"oci\", or use [config] labels"));
            }
            manifest.insert(key.clone(), self.text(value)?);
        }
        let mut index = BTreeMap::new();
        for (key, value) in &raw.index_annotations {
            if docker {
                return Err(self
                    .err(value.span(), "[index-annotations] need format = \"oci\": a Docker manifest list has no annotations")
                    .with_hint("set [image] format = \"oci\""));
            }
            index.insert(key.clone(), self.text(value)?);
        }
        manifest.extend(inputs.annotations.iter().cloned());
        if !docker {
            manifest
                .entry(CREATED.to_string())
                .or_insert_with(|| created.rfc3339.clone());
        }
        Ok((manifest, index))
    }
}
