#![allow(ambiguous_glob_reexports)]
//! One file per instruction: the Accounts struct first, then the handler. Handlers are
//! called by path from lib.rs, so the `handler` names clashing in the globs is harmless.

pub mod add_market;
pub mod admin;
pub mod begin_clawback;
pub mod clawback;
pub mod deposit;
pub mod finalize_tally;
pub mod health;
pub mod initialize_exchange;
pub mod insurance;
pub mod liquidate;
pub mod margin_account;
pub mod oracle_feed;
pub mod resolve_bankruptcy;
pub mod settle_pnl;
pub mod tally;
pub mod trade;
pub mod withdraw;

pub use add_market::*;
pub use admin::*;
pub use begin_clawback::*;
pub use clawback::*;
pub use deposit::*;
pub use finalize_tally::*;
pub use health::*;
pub use initialize_exchange::*;
pub use insurance::*;
pub use liquidate::*;
pub use margin_account::*;
pub use oracle_feed::*;
pub use resolve_bankruptcy::*;
pub use settle_pnl::*;
pub use tally::*;
pub use trade::*;
pub use withdraw::*;
