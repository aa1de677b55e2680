use anchor_lang::prelude::*;

use crate::accounting::{check_books, now};
use crate::error::BackstopError;
use crate::events::PnlSettled;
use crate::math::fixed::value_floor;
use crate::math::safe::{cast, SafeMath};
use crate::math::warmup::WarmupSchedule;
use crate::oracle::PriceCache;
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Marks every open position to its oracle (moving unrealized pnl into settled pnl),
/// realizes losses against capital at once, and — only in `Normal` — converts *vested*
/// positive pnl into capital. Remaining accounts: a (market, oracle) pair per position.
#[derive(Accounts)]
pub struct SettlePnl<'info> {
    pub owner: Signer<'info>,
    #[account(mut)]
    pub exchange: Account<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = owner @ BackstopError::NotAccountOwner
    )]
    pub margin_account: Account<'info, MarginAccount>,
}

pub fn handler<'info>(ctx: Context<'info, SettlePnl<'info>>) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    let acct = &mut ctx.accounts.margin_account;
    let cache = PriceCache::load(&key, ex.collateral_decimals, ctx.remaining_accounts, now)?;
    let warmup = ex.params.pnl_warmup_secs;
    let mut marked: i64 = 0;
    for i in 0..acct.positions.len() {
        let p = acct.positions[i];
        if !p.active {
            continue;
        }
        let price = cache
            .get(p.market_index)
            .ok_or(BackstopError::MissingMarketAccounts)?
            .price
            .price;
        // Value rounds down; pnl and basis move by the same amount, so Σ(pnl − basis) and
        // therefore I1 are unchanged exactly.
        let value: i64 = cast(value_floor(p.base_qty, price)?)?;
        let delta = value.safe_sub(p.quote_basis)?;
        acct.positions[i].quote_basis = value;
        ex.total_basis = ex.total_basis.safe_add(delta as i128)?;
        acct.add_pnl(delta, &mut ex.total_pnl, now, warmup)?;
        marked = marked.safe_add(delta)?;
    }
    let absorbed = acct.absorb_losses(&mut ex.total_capital, &mut ex.total_pnl, now, warmup)?;
    let mut converted = 0;
    if ex.epoch.phase == EpochPhase::Normal {
        let mut w: WarmupSchedule = acct.warmup.into();
        converted = w.vested(acct.positive_pnl(), now, warmup)?;
        if converted > 0 {
            w.convert(converted)?;
            acct.warmup = w.into();
            acct.pnl = acct.pnl.safe_sub(cast(converted)?)?;
            ex.total_pnl = ex.total_pnl.safe_sub(converted as i128)?;
            acct.add_capital(cast(converted)?, &mut ex.total_capital)?;
        }
    }
    check_books(ex)?;
    crate::events::emit(PnlSettled {
        account: acct.key(),
        marked,
        losses_absorbed: absorbed,
        converted_to_capital: converted,
        capital_after: acct.capital,
        pnl_after: acct.pnl,
    });
    Ok(())
}
