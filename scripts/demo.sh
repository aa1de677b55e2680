#!/usr/bin/env bash
# The main job: a price crash played through Backstop's whole default waterfall on the
# real SVM (the program natively in LiteSVM with the real SPL Token program).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo run --quiet -p backstop-tests --bin crash-demo
