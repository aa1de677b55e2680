use anchor_lang::prelude::*;

use crate::accounting::now;
use crate::error::BackstopError;
use crate::events::RoundStarted;
use crate::math::safe::SafeMath;
use crate::state::{ClawbackBasis, EpochPhase, Exchange};

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
    pub exchange: Account<'info, Exchange>,
}

pub fn handler(ctx: Context<BeginClawback>) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    require!(ex.deficit > 0, BackstopError::NoDeficit);
    let ready_at = ex
        .epoch
        .epoch_opened_at
        .safe_add(ex.params.min_epoch_secs as i64)?;
    require!(
        now >= ready_at && now >= ex.epoch.cooldown_until,
        BackstopError::EpochNotReady
    );
    let e = &mut ex.epoch;
    e.phase = EpochPhase::Tallying;
    e.round_seq = e.round_seq.safe_add(1)?;
    e.rounds_in_epoch = e.rounds_in_epoch.safe_add(1)?;
    e.round_started_at = now;
    e.policy = ex.params.clawback_policy;
    e.rate_cap_bps = ex.params.clawback_rate_cap_bps;
    e.accounts_to_tally = ex.num_accounts;
    e.tallied = 0;
    e.profit_weight_total = 0;
    e.profit_weighted_accounts = 0;
    e.capital_weight_total = 0;
    e.capital_weighted_accounts = 0;
    e.basis = ClawbackBasis::Profit;
    e.deficit_at_finalize = 0;
    e.rate_num = 0;
    e.rate_den = 1;
    e.to_apply = 0;
    e.applied = 0;
    e.round_charged = 0;
    e.round_to_insurance = 0;
    crate::events::emit(RoundStarted {
        exchange: key,
        epoch_id: e.epoch_id,
        round: e.round_seq,
        deficit: ex.deficit,
        accounts_to_tally: e.accounts_to_tally,
        rate_cap_bps: e.rate_cap_bps,
    });
    Ok(())
}
