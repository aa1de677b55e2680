use anchor_lang::prelude::*;

use crate::engine::{end_round, now};
use crate::error::BackstopError;
use crate::state::{EpochPhase, Exchange};

/// Permissionless: once every account is tallied, fixes the round's basis and exact rate.
///
/// Basis: profit when any account has positive PnL; otherwise capital — principal last.
/// (The original spec has a Σw = 0 profit round hand over to a capital round *next time*;
/// since each tally records both weights, the same round switches basis instead, which
/// saves a whole tally pass and a cooldown and charges exactly the same accounts:
/// docs/DESIGN.md §10.1.)
/// Rate: r = min(rate_cap, deficit / Σw), kept as a fraction. With nothing to charge the
/// round ends at once and the deficit waits for `cover_deficit` or new weight.
#[derive(Accounts)]
pub struct FinalizeTally<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::Tallying @ BackstopError::WrongEpochPhase,
        constraint = exchange.epoch.tally_complete() @ BackstopError::TallyIncomplete
    )]
    pub exchange: Box<Account<'info, Exchange>>,
}

pub fn handler(ctx: Context<FinalizeTally>) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    let finalized = ex.epoch.finalize(key, ex.books.deficit)?;
    crate::events::emit(finalized);
    if ex.epoch.round_complete() {
        end_round(ex, key, now)?;
    }
    Ok(())
}
