//! Findings in the format GitHub code scanning reads.

use super::{Finding, RULES, Severity};

/// Findings as SARIF 2.1.0, the format GitHub code scanning reads.
pub fn sarif(findings: &[Finding], spec_path: &str) -> serde_json::Value {
    let level = |s: Severity| match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    };
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "shortDescription": { "text": r.title },
                "help": { "text": format!("{} (same as: {})", r.hint, if r.same_as.is_empty() { "-" } else { r.same_as }) },
                "defaultConfiguration": { "level": level(r.severity) },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let mut location = serde_json::json!({ "physicalLocation": { "artifactLocation": { "uri": spec_path } } });
            if let Some(line) = f.line {
                location["physicalLocation"]["region"] = serde_json::json!({ "startLine": line });
            }
            serde_json::json!({
                "ruleId": f.id,
                "level": level(f.severity),
                "message": { "text": format!("{} ({})", f.message, f.hint) },
                "locations": [location],
            })
        })
        .collect();
    serde_json::json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": { "driver": { "name": "kiln", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
        }],
    })
}
