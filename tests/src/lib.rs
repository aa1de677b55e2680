//! Test harness for Backstop: the native program inside LiteSVM, next to the real SPL
//! Token program running in the SBF VM.
//!
//! Cases read like scenarios (`ex.deposit(&alice, 1_000)`, `ex.set_price(0, 90.0)`) and
//! after **every** transaction the harness asserts the invariants against the real token
//! balances: I1 conservation, I2 zero-sum, I3 insurance, I4 epoch consistency — and for a
//! rejected transaction I5, that no tracked account changed by a single byte.

pub mod harness;

pub use harness::*;
