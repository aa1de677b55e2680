#!/usr/bin/env bash
# A real agave test validator on 127.0.0.1:8899 (websocket 8900) running Backstop, with a
# collateral mint, funded demo wallets and the exchange from migrations/localnet.toml.
# Addresses and demo keypairs: test-ledger/backstop/localnet.json. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo run --quiet -p backstop-localnet -- "$@"
