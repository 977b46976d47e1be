//! `kiln schema` and validation against it, for the tests of the schema
//! and of the specs kiln writes.

use serde_json::Value;

use super::{kiln, parse_json, run};

/// The schema, as the real binary prints it.
pub fn schema() -> Value {
    parse_json(&run(kiln().arg("schema")))
}

pub fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("the schema is a valid JSON Schema")
}

/// A TOML spec as the JSON value editors validate (None if it is not TOML).
pub fn as_json(text: &str) -> Option<Value> {
    let value: toml::Value = toml::from_str(text).ok()?;
    Some(serde_json::to_value(value).unwrap())
}

/// The schema's complaints about a spec; empty when it validates.
pub fn errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    let json = as_json(text).expect("the spec is TOML");
    validator
        .iter_errors(&json)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}
