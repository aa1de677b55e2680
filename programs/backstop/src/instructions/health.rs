use anchor_lang::prelude::*;

use crate::accounting::now;
use crate::error::BackstopError;
use crate::events::HealthReport;
use crate::oracle::PriceCache;
use crate::state::{Exchange, MarginAccount};

/// Read-only: the account's equity, IM and MM at current oracle prices, through return
/// data, so a keeper or wallet can simulate it. Remaining accounts: a (market, oracle)
/// pair per open position.
#[derive(Accounts)]
pub struct Health<'info> {
    pub exchange: Account<'info, Exchange>,
    #[account(has_one = exchange @ BackstopError::WrongExchange)]
    pub margin_account: Account<'info, MarginAccount>,
}

pub fn handler<'info>(ctx: Context<'info, Health<'info>>) -> Result<HealthReport> {
    let ex = &ctx.accounts.exchange;
    let cache = PriceCache::load(
        &ex.key(),
        ex.collateral_decimals,
        ctx.remaining_accounts,
        now()?,
    )?;
    let h = cache.health(&ctx.accounts.margin_account)?;
    Ok(HealthReport {
        equity: h.equity,
        equity_conservative: h.equity_conservative,
        unrealized: h.unrealized,
        notional: h.notional,
        initial_margin: h.initial_margin,
        maintenance_margin: h.maintenance_margin,
        open_positions: h.open_positions,
        liquidatable: h.is_liquidatable()?,
        bankrupt: h.is_bankrupt(),
    })
}
