use anchor_lang::prelude::*;

use crate::engine::now;
use crate::engine::round::snapshot_price;
use crate::error::BackstopError;
use crate::oracle::load_market;
use crate::state::{EpochPhase, Exchange, TallyCounts};

/// Permissionless: starts a clawback round once the bad-debt epoch is `min_epoch_secs`
/// old and any cooldown after the previous round has passed. Freezes the round's policy
/// and rate cap, the tallies it needs (counted in O(1): accounts able to carry profit
/// weight, and accounts with capital), and records the round's price snapshot: the
/// price every market's positions are valued at for the whole round
/// (`engine::round::snapshot_price` states the rule for stale or unreadable oracles).
/// Nothing is paused: trades, deposits, withdrawals and account changes go on, each
/// touching its accounts first.
///
/// Remaining accounts: a (market, oracle) pair for every market of the exchange, any
/// order, each market once (`MissingMarketAccounts` when one is left out).
#[derive(Accounts)]
pub struct BeginClawback<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::BadDebt @ BackstopError::WrongEpochPhase
    )]
    pub exchange: Box<Account<'info, Exchange>>,
}

pub fn handler<'info>(ctx: Context<'info, BeginClawback<'info>>) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    let (pairs, rest) = ctx.remaining_accounts.as_chunks::<2>();
    require!(rest.is_empty(), BackstopError::InvalidRemainingAccounts);
    let n = usize::from(ex.num_markets);
    let mut prices = ex.round_prices;
    let mut seen = [false; crate::constants::MAX_MARKETS as usize];
    for pair in pairs {
        let market = load_market(&pair[0], &key)?;
        let i = usize::from(market.index);
        let slot = seen
            .get_mut(i)
            .ok_or(BackstopError::InvalidRemainingAccounts)?;
        require!(!*slot, BackstopError::DuplicateAccount);
        *slot = true;
        let price = snapshot_price(&pair[1], &market, ex.collateral_decimals)?;
        if let Some(p) = prices.get_mut(i) {
            *p = price;
        }
    }
    require!(
        seen.iter().take(n).all(|s| *s),
        BackstopError::MissingMarketAccounts
    );
    let counts = TallyCounts {
        accounts: ex.num_accounts,
        profit_capable: ex.profit_capable_accounts,
        with_capital: ex.capital_accounts,
    };
    let started = ex
        .epoch
        .begin_round(key, ex.books.deficit, &ex.params, counts, now)?;
    ex.round_prices = prices;
    crate::events::emit(started);
    Ok(())
}
