//! Account types.

pub mod books;
pub mod epoch;
pub mod exchange;
pub mod margin_account;
pub mod oracle_feed;
pub mod perp_market;

pub use books::*;
pub use epoch::*;
pub use exchange::*;
pub use margin_account::*;
pub use oracle_feed::*;
pub use perp_market::*;
