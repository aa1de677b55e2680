use anchor_lang::prelude::*;

use crate::engine::now;
use crate::error::BackstopError;
use crate::state::{EpochPhase, Exchange};

/// Permissionless: starts a clawback round once the bad-debt epoch is `min_epoch_secs`
/// old and any cooldown after the previous round has passed. Freezes the round's policy
/// and rate cap and the number of accounts to tally; trades and account creation pause
/// until the round ends.
#[derive(Accounts)]
pub struct BeginClawback<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::BadDebt @ BackstopError::WrongEpochPhase
    )]
    pub exchange: Box<Account<'info, Exchange>>,
}

pub fn handler(ctx: Context<BeginClawback>) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    let started = ex
        .epoch
        .begin_round(key, ex.books.deficit, &ex.params, ex.num_accounts, now)?;
    crate::events::emit(started);
    Ok(())
}
