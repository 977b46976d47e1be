#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine: installs the tools the
# tests need, then format, lint, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-tools.sh
# A clean CI checkout builds everything once: incremental compilation's
# bookkeeping only slows it (about 10 s per build of the kiln crate here).
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast "$@"
else
  cargo test --locked --all-targets "$@"
fi
