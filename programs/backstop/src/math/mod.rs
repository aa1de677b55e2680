//! Pure protocol math: no Anchor or Solana runtime types in any signature.
//!
//! The keeper, the CLI and the simulator link these very functions (through the program
//! crate with the `no-entrypoint` feature), so "healthy on-chain" and "healthy in the
//! keeper" can never disagree.
//!
//! Rounding rule: every division states its direction. Values owed *to* an account round
//! down, values owed *by* an account (margin requirements, fees, clawback charges) round
//! up — always in favour of the pool.

pub mod clawback;
pub mod fixed;
pub mod health;
pub mod liquidation;
pub mod margin;
pub mod oracle_price;
pub mod safe;
pub mod trade;
pub mod warmup;
pub mod withdrawal;

pub use safe::{MathError, MathResult};
