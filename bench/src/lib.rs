//! Benchmarks live in `examples/`; see `scripts/bench.sh`.
