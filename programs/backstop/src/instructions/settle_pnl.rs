use anchor_lang::prelude::*;

use crate::engine::position::mark_to_price;
use crate::engine::{now, pnl_clock};
use crate::error::BackstopError;
use crate::events::PnlSettled;
use crate::math::safe::SafeMath;
use crate::oracle::PriceCache;
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Marks every open position to its oracle (moving unrealized pnl into settled pnl),
/// realizes losses against capital at once, and — only in `Normal` — converts *vested*
/// positive pnl into capital. Remaining accounts: a (market, oracle) pair per position.
#[derive(Accounts)]
pub struct SettlePnl<'info> {
    pub owner: Signer<'info>,
    #[account(mut)]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = owner @ BackstopError::NotAccountOwner
    )]
    pub margin_account: Box<Account<'info, MarginAccount>>,
}

pub fn handler<'info>(ctx: Context<'info, SettlePnl<'info>>) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let account_key = ctx.accounts.margin_account.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    let acct: &mut MarginAccount = &mut ctx.accounts.margin_account;
    let cache = PriceCache::load(&key, ex.collateral_decimals, ctx.remaining_accounts, now)?;
    let clock = pnl_clock(ex, now);
    let books = &mut ex.books;
    let mut marked: i64 = 0;
    for slot in 0..acct.positions.len() {
        let p = acct.positions[slot];
        if !p.active {
            continue;
        }
        let price = cache
            .get(p.market_index)
            .ok_or(BackstopError::MissingMarketAccounts)?
            .price
            .price;
        let delta = mark_to_price(acct, slot, price, books, clock)?;
        marked = marked.safe_add(delta)?;
    }
    let absorbed = acct.absorb_losses(books, clock)?;
    // Profit becomes senior capital only while no deficit is open (positive pnl is frozen
    // during a bad-debt epoch, reachable by clawback).
    let converted = if ex.epoch.phase == EpochPhase::Normal {
        acct.convert_vested(books, clock)?
    } else {
        0
    };
    books.check()?;
    crate::events::emit(PnlSettled {
        account: account_key,
        marked,
        losses_absorbed: absorbed,
        converted_to_capital: converted,
        capital_after: acct.capital,
        pnl_after: acct.pnl,
    });
    Ok(())
}
