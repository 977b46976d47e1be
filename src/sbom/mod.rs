//! What an image holds, as SPDX 2.3 and CycloneDX 1.6 JSON: every file kiln
//! added, the base and the packages its layers record. Both documents are
//! derived from the image's own bytes and digest, so the same inputs give the
//! same documents.
//!
//! `files` hashes what the new layers hold, `dbfiles` reads the package
//! databases (the only base files whose bytes the SBOM reads), `packages`
//! parses them, `license` decides which declared licenses are SPDX
//! expressions; `spdx` and `cyclonedx` write the two documents from the
//! [`Facts`] gathered here. Both documents are plain serde structs: the one
//! model crate for each (spdx-rs, cyclonedx-bom) is either unmaintained
//! since SPDX 2.2 or heavier than the few fields written here.

mod cyclonedx;
pub mod dbfiles;
pub mod files;
pub mod license;
pub mod packages;
mod spdx;

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::assemble::Image;
use crate::error::Result;
use crate::image::base::Base;
use crate::plan::LayerPlan;
use crate::spec::validate::Spec;
use dbfiles::Db;
use files::AddedFile;
use packages::{Ecosystem, OsRelease, Package};

/// The two renderings of one image's SBOM.
pub struct Documents {
    pub spdx: Vec<u8>,
    pub cyclonedx: Vec<u8>,
}

pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// The SBOM of `image`, built from `spec` on `base` with `plans`.
pub fn generate(spec: &Spec, base: &Base, plans: &[LayerPlan], image: &Image) -> Result<Documents> {
    let started = std::time::Instant::now();
    let facts = Facts::gather(spec, base, plans, image)?;
    let documents = Documents {
        spdx: spdx::render(&facts),
        cyclonedx: cyclonedx::render(&facts),
    };
    tracing::debug!(
        "SBOM of {}: {} files, {} packages, in {:?}",
        facts.platform,
        facts.files.len(),
        facts.packages.len(),
        started.elapsed()
    );
    Ok(documents)
}

/// Everything both documents say, each list sorted.
pub(crate) struct Facts {
    /// `NAME:TAG`.
    pub name: String,
    pub tag: String,
    /// The image manifest's digest, `sha256:<hex>`.
    pub digest: String,
    pub platform: String,
    /// `created`, as RFC 3339 UTC.
    pub created: String,
    /// The spec's file name (not its path: the SBOM does not depend on
    /// where the build ran).
    pub spec_file: String,
    /// The base as written and its manifest digest; None for scratch.
    pub base: Option<(String, String)>,
    /// The images copies take files from: as written, and their digests.
    pub sources: Vec<(String, String)>,
    pub files: Vec<Described>,
    pub packages: Vec<Found>,
}

/// An added file with where in the spec it came from.
pub(crate) struct Described {
    pub file: AddedFile,
    /// "the copy of `app/`" and the like.
    pub what: Option<String>,
    /// The spec line (from 1).
    pub line: Option<usize>,
    /// The image it was copied out of, as written, and that image's digest.
    pub image: Option<(String, String)>,
}

/// A package the image's databases record.
pub(crate) struct Found {
    pub package: Package,
    pub purl: String,
    /// The declared license as an SPDX expression, when it is one.
    pub expression: Option<String>,
    /// The database files that record it.
    pub recorded_in: Vec<String>,
    /// Recorded in a file kiln added (rather than in the base).
    pub added: bool,
}

impl Facts {
    fn gather(spec: &Spec, base: &Base, plans: &[LayerPlan], image: &Image) -> Result<Facts> {
        let files = files::added(plans)?
            .into_iter()
            .map(|file| {
                let origin = file.origin.clone();
                Described {
                    what: origin.as_ref().map(|o| o.what.clone()),
                    line: origin
                        .as_ref()
                        .and_then(|o| o.at.as_ref())
                        .map(|at| spec.source.line_of(at.start)),
                    image: origin.and_then(|o| o.image.clone()),
                    file,
                }
            })
            .collect::<Vec<_>>();
        let mut sources: Vec<(String, String)> =
            files.iter().filter_map(|f| f.image.clone()).collect();
        sources.sort();
        sources.dedup();
        let spec_file = spec
            .source
            .path
            .file_name()
            .map_or_else(|| "kiln.toml".into(), |n| n.to_string_lossy().into_owned());
        Ok(Facts {
            name: spec.name.clone(),
            tag: spec.tag.clone(),
            digest: image.manifest_descriptor.digest.to_string(),
            platform: crate::assemble::platform(spec, base).to_string(),
            created: spec.created.rfc3339.clone(),
            spec_file,
            base: base.digest.clone().map(|d| (base.reference.clone(), d)),
            sources,
            files,
            packages: found_packages(dbfiles::read(base, plans)),
        })
    }

    /// A UUID (version 8, RFC 9562) derived from the image digest and
    /// `purpose`: the same image gives the same one.
    pub fn uuid(&self, purpose: &str) -> String {
        let mut h = Sha256::new();
        h.update(purpose.as_bytes());
        h.update([0]);
        h.update(self.digest.as_bytes());
        let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 of 32 bytes");
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

/// The packages the database files record, each once, sorted.
fn found_packages(dbs: Vec<dbfiles::DbFile>) -> Vec<Found> {
    let release = dbs
        .iter()
        .filter(|f| f.db == Db::OsRelease)
        // /usr/lib/os-release sorts after /etc/os-release: the /etc one wins.
        .map(|f| packages::os_release(&f.bytes))
        .next()
        .unwrap_or_default();
    let mut found: BTreeMap<Package, Found> = BTreeMap::new();
    for f in &dbs {
        let listed = match f.db {
            Db::Dpkg | Db::DpkgRecord => packages::dpkg(&f.bytes, f.truncated),
            Db::Apk => packages::apk(&f.bytes, f.truncated),
            Db::Python => packages::python(&f.bytes).into_iter().collect(),
            Db::OsRelease => continue,
        };
        for package in listed {
            let entry = found.entry(package.clone()).or_insert_with(|| Found {
                purl: purl(&package, &release),
                expression: package.license.as_deref().and_then(license::expression),
                package,
                recorded_in: Vec::new(),
                added: false,
            });
            if !entry.recorded_in.contains(&f.path) {
                entry.recorded_in.push(f.path.clone());
            }
            entry.added |= f.added;
        }
    }
    found.into_values().collect()
}

/// The package URL (github.com/package-url/purl-spec) of a package.
pub(crate) fn purl(p: &Package, release: &OsRelease) -> String {
    let distro = |default: &str| {
        let id = release
            .id
            .as_deref()
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| default.to_string());
        let with_version = match &release.version_id {
            Some(v) => format!("{id}-{v}"),
            None => id.clone(),
        };
        (id, with_version)
    };
    let (kind, namespace, name, mut qualifiers) = match p.ecosystem {
        Ecosystem::Deb => {
            let (id, distro) = distro("debian");
            let mut q = vec![("distro", distro)];
            if let Some(s) = &p.source {
                q.push(("upstream", s.clone()));
            }
            ("deb", Some(id), p.name.to_ascii_lowercase(), q)
        }
        Ecosystem::Apk => {
            let (id, distro) = distro("alpine");
            (
                "apk",
                Some(id),
                p.name.to_ascii_lowercase(),
                vec![("distro", distro)],
            )
        }
        Ecosystem::Python => ("pypi", None, pypi_name(&p.name), Vec::new()),
    };
    if let Some(arch) = &p.arch {
        qualifiers.push(("arch", arch.clone()));
    }
    qualifiers.sort();
    let mut out = format!("pkg:{kind}/");
    if let Some(ns) = namespace {
        out.push_str(&encode(&ns));
        out.push('/');
    }
    out.push_str(&encode(&name));
    out.push('@');
    out.push_str(&encode(&p.version));
    for (i, (k, v)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// A PyPI name as purl (and PEP 503) normalizes it: lowercase, each run of
/// `-`, `_` and `.` one `-`.
fn pypi_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Percent-encode all but the unreserved characters (RFC 3986).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
