//! The spec: the TOML as written (`raw`, a serde mirror with spans for
//! errors), checked and typed by `validate` into a `Spec`, with `args`
//! (`${NAME}` expansion), `duration`, `ignore` (.dockerignore) and the
//! JSON Schema editors use (`schema`).

pub mod args;
pub mod duration;
pub mod explain;
pub mod ignore;
pub mod raw;
pub mod rules;
pub mod schema;
pub mod validate;
