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
echo "== TypeScript client (tests/ts): npm ci, tsc --noEmit"
npm ci --prefix tests/ts --no-audit --no-fund
(cd tests/ts && npx tsc --noEmit)
echo "== cargo test --workspace"
log="$(mktemp)"
cargo test --workspace 2>&1 | tee "$log"
# One closing line over every test binary (cargo's own last line is a doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
