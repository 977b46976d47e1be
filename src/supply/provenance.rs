//! SLSA provenance v1 as an in-toto statement: which image (subject), built
//! from which spec, base and copy sources (buildDefinition), by which kiln
//! (runDetails). CI facts come from an allow-list of environment variables,
//! so a secret in the environment never lands in the statement.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{SLSA_PROVENANCE, STATEMENT_V1};
use crate::oci::Descriptor;

/// kiln's build type: a spec compiled into an image, no RUN.
pub const BUILD_TYPE: &str = "https://kiln.dev/provenance/spec/v1";

/// The builder: kiln and its version.
pub fn builder_id() -> String {
    format!("https://kiln.dev/kiln@v{}", env!("CARGO_PKG_VERSION"))
}

/// CI variables recorded when set: what was built (repository, commit, ref)
/// and which run built it. Nothing else is ever read from the environment.
pub const CI_VARIABLES: &[&str] = &[
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_REPOSITORY_ID",
    "GITHUB_SHA",
    "GITHUB_REF",
    "GITHUB_EVENT_NAME",
    "GITHUB_WORKFLOW",
    "GITHUB_WORKFLOW_REF",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITLAB_CI",
    "CI_SERVER_URL",
    "CI_PROJECT_PATH",
    "CI_PROJECT_URL",
    "CI_COMMIT_SHA",
    "CI_COMMIT_REF_NAME",
    "CI_PIPELINE_ID",
    "CI_PIPELINE_URL",
    "CI_JOB_ID",
    "CI_JOB_URL",
];

/// Longest CI value recorded; longer ones are left out.
const MAX_VALUE: usize = 1024;

/// A name that may hold a secret: never recorded, whatever list it is on.
pub fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "PASSWORD", "SECRET", "KEY", "CREDENTIAL", "PASSWD"]
        .iter()
        .any(|w| upper.contains(w))
}

/// The allow-listed CI variables that are set, with printable values.
pub fn ci_environment(get: impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    CI_VARIABLES
        .iter()
        .filter(|name| !secret_name(name))
        .filter_map(|name| {
            let value = get(name)?;
            let fine = value.len() <= MAX_VALUE && !value.chars().any(char::is_control);
            fine.then(|| (name.to_string(), value))
        })
        .collect()
}

/// What the statement is made from.
pub struct Facts<'a> {
    /// The image, and the name it is known by (the push target's repository, or the spec's name).
    pub subject: &'a Descriptor,
    pub name: &'a str,
    /// The spec file as given on the command line, and its bytes.
    pub spec_path: &'a str,
    pub spec_bytes: &'a [u8],
    pub build_args: &'a [(String, String)],
    pub platform: &'a str,
    pub created: &'a str,
    /// The base as written and its manifest digest (None for scratch).
    pub base: (&'a str, Option<&'a str>),
    /// Images copies take files from: (as written, manifest digest).
    pub copy_sources: Vec<(String, String)>,
    pub ci: BTreeMap<String, String>,
}

fn digest_set(digest: &str) -> Value {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    let mut set = serde_json::Map::new();
    set.insert(algorithm.to_string(), json!(hex));
    Value::Object(set)
}

/// The provenance statement, as JSON bytes (keys sorted: stable bytes).
pub fn statement(f: &Facts) -> Vec<u8> {
    let mut dependencies = Vec::new();
    if let (name, Some(digest)) = f.base {
        dependencies.push(json!({
            "name": "base",
            "uri": name,
            "digest": digest_set(digest),
        }));
    }
    for (name, digest) in &f.copy_sources {
        dependencies.push(json!({
            "name": "copy",
            "uri": name,
            "digest": digest_set(digest),
        }));
    }
    // A build arg whose name says it holds a secret is named, not recorded.
    let args: BTreeMap<&str, &str> = f
        .build_args
        .iter()
        .map(|(k, v)| match secret_name(k) {
            true => (k.as_str(), "(withheld)"),
            false => (k.as_str(), v.as_str()),
        })
        .collect();
    let mut metadata = json!({});
    if let Some(id) = invocation_id(&f.ci) {
        metadata["invocationId"] = json!(id);
    }
    let value = json!({
        "_type": STATEMENT_V1,
        "subject": [{ "name": f.name, "digest": digest_set(&f.subject.digest) }],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "spec": {
                        "path": f.spec_path,
                        "digest": digest_set(&crate::oci::digest::sha256(f.spec_bytes)),
                    },
                    "buildArgs": args,
                    "platform": f.platform,
                },
                "internalParameters": {
                    "created": f.created,
                    "ci": f.ci,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": builder_id(),
                    "version": { "kiln": env!("CARGO_PKG_VERSION") },
                },
                "metadata": metadata,
            },
        },
    });
    serde_json::to_vec(&value).expect("statement serializes")
}

/// The CI run's address, when the CI says where it is.
fn invocation_id(ci: &BTreeMap<String, String>) -> Option<String> {
    let get = |k: &str| ci.get(k).map(String::as_str);
    if let (Some(server), Some(repo), Some(run)) = (
        get("GITHUB_SERVER_URL"),
        get("GITHUB_REPOSITORY"),
        get("GITHUB_RUN_ID"),
    ) {
        let attempt = get("GITHUB_RUN_ATTEMPT").unwrap_or("1");
        return Some(format!(
            "{server}/{repo}/actions/runs/{run}/attempts/{attempt}"
        ));
    }
    get("CI_JOB_URL").map(str::to_string)
}

/// The copy sources named in layer history: `--from=NAME@sha256:...`.
pub fn copy_sources<'a>(created_by: impl Iterator<Item = &'a String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in created_by {
        for word in line.split(' ') {
            let Some(from) = word.strip_prefix("--from=") else {
                continue;
            };
            if let Some((name, digest)) = from.rsplit_once('@') {
                if crate::oci::sha256_hex(digest).is_some()
                    && !out.iter().any(|(n, d)| n == name && d == digest)
                {
                    out.push((name.to_string(), digest.to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_listed_variable_looks_like_a_secret() {
        assert!(CI_VARIABLES.iter().all(|n| !secret_name(n)));
        assert!(secret_name("GITHUB_TOKEN"));
        assert!(secret_name("CI_JOB_TOKEN"));
        assert!(secret_name("AWS_SECRET_ACCESS_KEY"));
    }

    #[test]
    fn only_listed_variables_are_recorded() {
        let env: BTreeMap<&str, &str> = [
            ("GITHUB_SHA", "abc"),
            ("GITHUB_TOKEN", "ghp_secret"),
            ("CI_JOB_URL", "https://gitlab.example/j/1"),
            ("CI_JOB_TOKEN", "glcbt-secret"),
            ("GITHUB_REF", "bad\nvalue"),
        ]
        .into();
        let ci = ci_environment(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(ci.keys().collect::<Vec<_>>(), ["CI_JOB_URL", "GITHUB_SHA"]);
    }

    #[test]
    fn copy_sources_come_from_history() {
        let d = format!("sha256:{}", "b".repeat(64));
        let lines = [
            format!("COPY --from=reg/tools:1@{d} --chown=1:1 /bin/x /x # kiln"),
            "COPY app /app # kiln".to_string(),
        ];
        assert_eq!(
            copy_sources(lines.iter()),
            [("reg/tools:1".to_string(), d.clone())]
        );
    }
}
