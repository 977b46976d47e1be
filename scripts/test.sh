#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine: installs the tools the
# tests need, then format, lint, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-tools.sh
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast "$@"
else
  cargo test --locked --all-targets "$@"
fi
