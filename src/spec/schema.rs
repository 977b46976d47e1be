//! The JSON Schema of kiln.toml, generated from the spec types, for editors.
//!
//! The schema comes from `#[derive(JsonSchema)]` on the `Raw*` types in
//! `spec`, so a key added there shows up here. Where it can, it is as
//! strict as kiln (formats, compressions, durations, ports, absolute
//! paths, platform or platforms); a value with `${NAME}` in it passes,
//! since only `validate` can judge it once args are filled in. The broken
//! specs only kiln refuses are listed in testdata/schema-gap.txt.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use crate::spec::raw::{RawMode, RawSpec};

/// The schema's identifier. No URL serves it yet: editors get the schema from
/// `kiln schema > kiln.schema.json` and a path.
pub const ID: &str = "https://example.invalid/kiln/kiln.toml.schema.json";

/// The schema as JSON.
pub fn schema() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(drop_null))
        .with_transform(RecursiveTransform(join_lines))
        .into_generator();
    let mut schema = generator.into_root_schema_for::<RawSpec>();
    schema.insert("$id".into(), ID.into());
    schema.insert("title".into(), "kiln.toml".into());
    schema.insert(
        "description".into(),
        "A kiln image spec: a base, an app user, files to copy and the image config, \
         built into an OCI image by `kiln build` with no daemon and no RUN. Most string values \
         take ${NAME} from [args]."
            .into(),
    );
    schema.to_value()
}

/// A `kiln check` rule ID, for `[policy] allow`: the IDs are read as
/// written (no `${NAME}`), so the list is exact.
pub struct RuleId;

impl JsonSchema for RuleId {
    fn schema_name() -> Cow<'static, str> {
        "RuleId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let ids: Vec<&str> = crate::spec::rules::RULES.iter().map(|r| r.id).collect();
        json_schema!({
            "description": "A `kiln check` rule ID.",
            "type": "string",
            "enum": ids,
        })
    }
}

/// Modes are read as written (no `${NAME}`): a TOML integer, or a string of
/// octal digits with an optional `0o`, at most 0o7777 (leading zeros allowed).
impl JsonSchema for RawMode {
    fn schema_name() -> Cow<'static, str> {
        "Mode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A mode in octal, 0 to 7777: a TOML integer written 0o644, or a string \"0644\".",
            "anyOf": [
                { "type": "integer", "minimum": 0, "maximum": 0o7777 },
                { "type": "string", "pattern": "^(0o)?0*[0-7]{1,4}$" },
            ],
        })
    }
}

/// A `[[copy]]` mode: a mode, or "preserve" (the sources' own bits).
pub struct CopyMode;

impl JsonSchema for CopyMode {
    fn schema_name() -> Cow<'static, str> {
        "CopyMode".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A mode in octal (0o644 or \"0644\"), or \"preserve\": the source's permission bits, setuid and setgid taken off.",
            "anyOf": [
                generator.subschema_for::<RawMode>(),
                { "const": "preserve" },
            ],
        })
    }
}

/// TOML has no null: take out the `null` that schemars adds for `Option`s,
/// so editors show `string`, not `string | null`.
fn drop_null(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            obj.insert("type".into(), only);
        }
    }
    let Some(Value::Array(any)) = obj.get_mut("anyOf") else {
        return;
    };
    any.retain(|s| s.get("type").is_none_or(|t| t != "null"));
    if let [only] = any.as_slice() {
        let Value::Object(only) = only.clone() else {
            return;
        };
        obj.remove("anyOf");
        for (key, value) in only {
            obj.entry(key).or_insert(value);
        }
    }
}

/// Doc comments wrap at 90 columns; editors wrap descriptions themselves.
fn join_lines(schema: &mut Schema) {
    if let Some(Value::String(text)) = schema.get_mut("description") {
        *text = text.replace('\n', " ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(schema: &'a Value, pointer: &str) -> &'a Value {
        schema
            .pointer(pointer)
            .unwrap_or_else(|| panic!("no {pointer} in the schema"))
    }

    #[test]
    fn options_are_not_nullable() {
        let text = schema().to_string();
        assert!(!text.contains("null"), "{text}");
    }

    #[test]
    fn keys_are_kebab_case_and_closed() {
        let s = schema();
        let image = at(&s, "/$defs/RawImage");
        assert!(image["properties"]["compression-level"].is_object());
        assert_eq!(image["additionalProperties"], false);
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(
            at(&s, "/$defs/RawUser/required"),
            &serde_json::json!(["name", "uid"])
        );
    }
}

/// A string the schema can check: either `strict`, or a value with `${`
/// in it, which only `validate` can judge once args are filled in.
fn or_arg(description: &str, strict: Value) -> Schema {
    json_schema!({
        "description": description,
        "anyOf": [
            strict,
            { "type": "string", "pattern": "\\$\\{" },
        ],
    })
}

macro_rules! checked_string {
    ($name:ident, $title:literal, $description:literal, $strict:tt) => {
        #[doc = $description]
        pub struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $title.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                or_arg($description, serde_json::json!($strict))
            }
        }
    };
}

checked_string!(
    FormatName,
    "Format",
    "\"docker\" or \"oci\".",
    { "enum": ["docker", "oci"] }
);
checked_string!(
    CompressionName,
    "Compression",
    "\"gzip\" or \"zstd\".",
    { "enum": ["gzip", "zstd"] }
);
checked_string!(
    Duration,
    "Duration",
    "A duration like \"30s\", \"1m30s\" or \"500ms\" (units ns, us, ms, s, m, h).",
    { "type": "string", "pattern": "^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$" }
);
checked_string!(
    Port,
    "Port",
    "A port, \"8000\", \"8000/tcp\", \"53/udp\" or \"9/sctp\".",
    { "type": "string", "pattern": "^[0-9]{1,5}(/(tcp|udp|sctp))?$" }
);
checked_string!(
    AbsolutePath,
    "AbsolutePath",
    "An absolute path in the image.",
    { "type": "string", "pattern": "^/" }
);
