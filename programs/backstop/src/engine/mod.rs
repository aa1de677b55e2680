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

pub mod bankruptcy;
pub mod position;
pub mod round;
pub mod treasury;

use anchor_lang::prelude::*;

use crate::math::safe::SafeMath;
use crate::state::{Exchange, PnlClock, Standing};

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

/// Keeps the exchange's per-account counters in step when an instruction changes an
/// account that stood as `before` and now stands as `after` (`MarginAccount::standing`):
/// `unresolved_bankruptcies` (an account becomes bankrupt — flat, capital + pnl < 0 —
/// through a fill or a charge, and stops being one when it is resolved or receives a
/// deposit), `profit_capable_accounts` and `capital_accounts` (what a round must tally).
/// Every handler that changes an account calls it once per account, after its last
/// change.
pub fn track(ex: &mut Exchange, before: Standing, after: Standing) -> Result<()> {
    fn step(counter: &mut u32, was: bool, is: bool) -> Result<()> {
        match (was, is) {
            (false, true) => *counter = counter.safe_add(1)?,
            // Saturating: a miscount must never block an instruction.
            (true, false) => *counter = counter.saturating_sub(1),
            _ => {}
        }
        Ok(())
    }
    step(
        &mut ex.unresolved_bankruptcies,
        before.bankrupt,
        after.bankrupt,
    )?;
    step(
        &mut ex.profit_capable_accounts,
        before.profit_capable,
        after.profit_capable,
    )?;
    step(
        &mut ex.capital_accounts,
        before.has_capital,
        after.has_capital,
    )
}
