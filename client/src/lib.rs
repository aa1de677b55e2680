//! Backstop client library: PDA derivation, one builder per instruction, account
//! decoding and the `(market, oracle)` remaining-account lists the program expects.
//!
//! No math of its own: health and allocation come from `backstop::math`.

pub mod batch;
pub mod decode;
pub mod errors;
pub mod events;
pub mod ix;
pub mod pda;
#[cfg(feature = "rpc")]
pub mod rpc;
pub mod token;
pub mod view;

pub use backstop::ID as PROGRAM_ID;
