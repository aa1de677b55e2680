#!/usr/bin/env bash
# Benchmarks (figures, not pass/fail): the keeper's per-tick health pass in an optimized
# build and the simulator's throughput, then the real keeper binary on the localnet
# validator: oracle update → confirmed liquidation latency, crash throughput (one update
# makes 1,000 accounts liquidatable), clawback rounds over 100 and 1,000 accounts, memory
# with 100,000 cached accounts, and a round over 100,000 accounts (10,000 holding
# positions) with a trader trading throughout, with and without lookup tables. Takes
# ~20 minutes on 2 cores once built.
# `scripts/bench.sh health|sim|latency|crash|clawback|memory|round` runs one part.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
target="${CARGO_TARGET_DIR:-target}"
part="${1:-all}"
if [[ "$part" == all || "$part" == health ]]; then
  cargo build --quiet --profile bench-fast -p backstop-bench --example bench_health
  "$target/bench-fast/examples/bench_health"
fi
if [[ "$part" == all || "$part" == sim ]]; then
  cargo build --quiet --profile bench-fast -p backstop-bench --example bench_sim
  "$target/bench-fast/examples/bench_sim"
fi
case "$part" in health|sim) exit 0 ;; esac
# The validator is the debug build the tests use (slot timing, not CPU, bounds latency).
cargo build --quiet -p backstop-keeper --bins --examples
run() { "$target/debug/examples/bench_localnet" "$@" 2>&1 | grep -v '^\[20' | grep -v '^Waiting for first slot'; }
if [[ "$part" == all || "$part" == latency ]]; then run latency 20; fi
if [[ "$part" == all || "$part" == crash ]]; then run crash 1000; fi
if [[ "$part" == all || "$part" == clawback ]]; then run clawback 100; run clawback 1000; fi
if [[ "$part" == all || "$part" == memory ]]; then run memory 100000; fi
if [[ "$part" == all || "$part" == round ]]; then
  run round 100000 10000
  run round 100000 10000 --no-lookup-tables
fi
