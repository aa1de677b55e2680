use anchor_lang::prelude::*;

use crate::engine::now;
use crate::error::BackstopError;
use crate::events::HealthReport;
use crate::oracle::PriceCache;
use crate::state::{Exchange, MarginAccount};

/// Read-only: the account's equity, IM and MM at current oracle prices (a market whose
/// oracle is stale or too uncertain valued conservatively, counted in
/// `degraded_positions`), through return data, so a keeper or wallet can simulate it. Remaining accounts: a (market, oracle)
/// pair per open position.
#[derive(Accounts)]
pub struct Health<'info> {
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(has_one = exchange @ BackstopError::WrongExchange)]
    pub margin_account: Box<Account<'info, MarginAccount>>,
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
    let report = HealthReport {
        equity: h.equity,
        equity_conservative: h.equity_conservative,
        unrealized: h.unrealized,
        notional: h.notional,
        initial_margin: h.initial_margin,
        maintenance_margin: h.maintenance_margin,
        open_positions: h.open_positions,
        liquidatable: h.is_liquidatable()?,
        bankrupt: h.is_bankrupt(),
        degraded_positions: h.degraded_positions,
    };
    mirror_return_data_in_native_hosts(&report)?;
    Ok(report)
}

/// Anchor returns `report` through `solana-cpi`'s `set_return_data`, which is a no-op
/// when the program is compiled for the host (it only calls the syscall on SBF). Native
/// hosts (LiteSVM, the localnet validator with the builtin) would see no return data, so
/// off SBF the same bytes also go through the syscall stubs. On SBF this compiles to
/// nothing and Anchor's own call is the only one.
fn mirror_return_data_in_native_hosts(report: &HealthReport) -> Result<()> {
    #[cfg(not(target_os = "solana"))]
    anchor_lang::compat::solana_sysvar::program_stubs::sol_set_return_data(&borsh::to_vec(report)?);
    let _ = report;
    Ok(())
}
