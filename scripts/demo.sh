#!/usr/bin/env bash
# The main job: a real agave validator on 127.0.0.1:8899 running Backstop with the exchange
# from migrations/localnet.toml, the keeper binary, and a price crash played over JSON-RPC
# (liquidation → bankruptcy → insurance → clawback) ending with a summary table.
# Ctrl-C stops the validator and the keeper. Extra flags go to backstop-localnet
# (e.g. --exit-after-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --quiet -p backstop-keeper -p backstop-localnet -p backstop-cli
exec "${CARGO_TARGET_DIR:-target}/debug/backstop-localnet" --crash-demo "$@"
