//! backstop-keeper: watches oracle prices and margin accounts, liquidates accounts below
//! maintenance margin (worst first, within the keeper's own margin), resolves
//! bankruptcies, and drives every bad-debt epoch's clawback rounds until the exchange is
//! back to `Normal`.
//!
//! - [`plan`]: the decisions, pure functions of decoded accounts (unit-tested);
//! - [`exec`]: instructions, compute budget, simulation, confirmation, retries;
//! - [`feed`]: websocket subscriptions with reconnection;
//! - [`lut`]: the keeper's own address lookup tables for v0 round batches;
//! - [`runner`]: the decision loop, snapshot/resync, sending threads, dedupe, backoff;
//! - [`metrics`]: Prometheus `/metrics` and `/healthz`;
//! - [`config`]: flags, environment, TOML.

pub mod backoff;
pub mod config;
pub mod exec;
pub mod feed;
pub mod lut;
pub mod metrics;
pub mod plan;
pub mod runner;
pub mod screen;
