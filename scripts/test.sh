#!/usr/bin/env bash
# The whole test suite, on a fresh machine: set-up, formatting, lints, then every test
# (pure math with property tests, the program in LiteSVM with the real SPL Token program).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== IDL drift: idl/backstop.json must be what the program builds"
cargo run --quiet -p backstop-idl -- --check
echo "== cargo test --workspace"
cargo test --workspace
