use anchor_lang::prelude::*;

use crate::accounting::{end_round, now};
use crate::error::BackstopError;
use crate::events::TallyFinalized;
use crate::math::clawback::round_rate;
use crate::state::{ClawbackBasis, EpochPhase, Exchange};

/// Permissionless: once every account is tallied, fixes the round's basis and exact rate.
///
/// Basis: profit when any account has positive PnL; otherwise capital — principal last.
/// (DESIGN.md has a Σw = 0 profit round hand over to a capital round *next time*; since
/// each tally records both weights, the same round switches basis instead, which saves a
/// whole tally pass and a cooldown and charges exactly the same accounts.)
/// Rate: r = min(rate_cap, deficit / Σw), kept as a fraction. With nothing to charge the
/// round ends at once and the deficit waits for `cover_deficit` or new weight.
#[derive(Accounts)]
pub struct FinalizeTally<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::Tallying @ BackstopError::WrongEpochPhase,
        constraint = exchange.epoch.tallied == exchange.epoch.accounts_to_tally @ BackstopError::TallyIncomplete
    )]
    pub exchange: Account<'info, Exchange>,
}

pub fn handler(ctx: Context<FinalizeTally>) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    let deficit = ex.deficit;
    let e = &mut ex.epoch;
    let (basis, total, count) = if e.profit_weight_total > 0 {
        (
            ClawbackBasis::Profit,
            e.profit_weight_total,
            e.profit_weighted_accounts,
        )
    } else {
        (
            ClawbackBasis::Capital,
            e.capital_weight_total,
            e.capital_weighted_accounts,
        )
    };
    let rate = round_rate(deficit, total, e.rate_cap_bps)?;
    e.basis = basis;
    e.deficit_at_finalize = deficit;
    e.rate_num = rate.num;
    e.rate_den = rate.den;
    e.to_apply = if rate.num == 0 { 0 } else { count };
    e.applied = 0;
    crate::events::emit(TallyFinalized {
        exchange: key,
        epoch_id: e.epoch_id,
        round: e.round_seq,
        basis_is_capital: basis == ClawbackBasis::Capital,
        deficit,
        total_weight: total,
        rate_num: rate.num,
        rate_den: rate.den,
        accounts_to_apply: e.to_apply,
    });
    if e.to_apply == 0 {
        end_round(ex, key, now)
    } else {
        e.phase = EpochPhase::Applying;
        Ok(())
    }
}
