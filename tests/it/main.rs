//! kiln's integration tests, one binary: each module drives the real
//! `kiln` binary against real tools and registries (see `common`).
//! One binary links once; nextest still runs every test in its own process.

mod common;

mod accounts;
mod auth;
mod base_index;
mod base_layout;
mod broken_specs;
mod build_json;
mod cache;
mod capabilities;
mod check;
mod check_programs;
mod check_rules;
mod cli_flags;
mod code_shape;
mod config;
mod copy_from;
mod destinations;
mod dockerignore;
mod errors;
mod expansion_cap;
mod faults;
mod fuzz_spec;
mod hostile_config;
mod hostile_images;
mod hostile_outputs;
mod hostile_registry;
mod image;
mod init;
mod init_from;
mod inspect;
mod interrupts;
mod mirrors;
mod modes;
mod platforms;
mod progress;
mod proxies;
mod proxy_fixture;
mod python_apps;
mod registry;
mod registry_fixtures;
mod registry_quirks;
mod reproducible;
mod run_as;
mod safety;
mod sbom;
mod schema;
mod seeds;
mod shared_cache;
mod snapshots;
mod specs;
mod supply;
