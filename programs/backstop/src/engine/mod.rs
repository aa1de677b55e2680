//! The engine: every rule that changes money or positions, in one place.
//!
//! Handlers load accounts, call the engine, emit the events it returns. The keeper links
//! the same functions to simulate what an instruction will do (a liquidation takeover
//! is `position::fill` on copies of the accounts), so its plans cannot drift from the
//! program.
//!
//! - [`position`]: fills (trade, liquidation) and marking a position to a price.
//! - [`treasury`]: every token movement, paired with its update of the books.
//! - the epoch state machine: methods on [`crate::state::EpochState`].
//! - the books: [`crate::state::Books`].

pub mod position;
pub mod treasury;

use anchor_lang::prelude::*;

use crate::math::safe::SafeMath;
use crate::state::{Exchange, PnlClock};

/// The cluster's unix time.
pub fn now() -> Result<i64> {
    Ok(Clock::get()?.unix_timestamp)
}

/// The clock pnl changes of `exchange` are booked with at `now`.
pub fn pnl_clock(exchange: &Exchange, now: i64) -> PnlClock {
    PnlClock {
        now,
        warmup_secs: exchange.params.pnl_warmup_secs,
    }
}

/// Ends the round on `ex` and emits what that led to: the round's summary, and the
/// epoch's when the deficit is gone.
pub fn end_round(ex: &mut Exchange, key: Pubkey, now: i64) -> Result<()> {
    let outcome = ex
        .epoch
        .end_round(key, ex.books.deficit, ex.params.round_cooldown_secs, now)?;
    crate::events::emit(outcome.ended);
    if let Some(closed) = outcome.closed {
        crate::events::emit(closed);
    }
    Ok(())
}

/// Keeps `exchange.unresolved_bankruptcies` in step when an instruction changes an
/// account that was bankrupt before (`was`) or is after (`is`). An account becomes
/// bankrupt (flat, capital + pnl < 0) through a fill or a capital-basis charge, and
/// stops being one when it is resolved or receives a deposit.
pub fn track_bankruptcy(ex: &mut Exchange, was: bool, is: bool) -> Result<()> {
    match (was, is) {
        (false, true) => {
            ex.unresolved_bankruptcies = ex.unresolved_bankruptcies.safe_add(1)?;
        }
        // Saturating: a miscount must never block a resolution.
        (true, false) => {
            ex.unresolved_bankruptcies = ex.unresolved_bankruptcies.saturating_sub(1);
        }
        _ => {}
    }
    Ok(())
}
