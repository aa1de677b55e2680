use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::position::mark_to_price;
use crate::engine::round::touch;
use crate::engine::{now, pnl_clock, track};
use crate::error::BackstopError;
use crate::events::PnlSettled;
use crate::math::margin::settlement_price;
use crate::math::safe::SafeMath;
use crate::oracle::PriceCache;
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Marks every open position (moving unrealized pnl into settled pnl) at the worse for the
/// holder of its oracle and smoothed price — except in a market whose price is degraded
/// (stale or too uncertain), left unrealized —
/// realizes losses against capital at once, and — only in `Normal` with no bankruptcy
/// unresolved — converts *vested* positive pnl into capital. Works in every phase: a round
/// in progress tallies or charges the account first, as it stood. Remaining accounts: a
/// (market, oracle) pair per position.
#[derive(Accounts)]
pub struct SettlePnl<'info> {
    pub owner: Signer<'info>,
    #[account(
        mut,
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = owner @ BackstopError::NotAccountOwner
    )]
    pub margin_account: Box<Account<'info, MarginAccount>>,
    /// With the insurance vault: receives a clawback charge's rounding excess when the
    /// settlement pays the account's charge first (touch first during `Applying`).
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn handler<'info>(ctx: Context<'info, SettlePnl<'info>>) -> Result<()> {
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let key = exchange_info.key();
    let account_key = a.margin_account.key();
    let ex: &mut Exchange = &mut a.exchange;
    let acct: &mut MarginAccount = &mut a.margin_account;
    let cache = PriceCache::load(&key, ex.collateral_decimals, ctx.remaining_accounts, now)?;
    let clock = pnl_clock(ex, now);
    let treasury = crate::treasury!(a, exchange_info, ex);
    let excess = touch(ex, key, account_key, acct, clock)?;
    treasury.vault_to_insurance(&mut ex.books, excess)?;
    let before = acct.standing();
    let books = &mut ex.books;
    let mut marked: i64 = 0;
    for slot in 0..acct.positions.len() {
        let p = acct.positions[slot];
        if !p.active {
            continue;
        }
        let mp = cache
            .get(p.market_index)
            .ok_or(BackstopError::MissingMarketAccounts)?;
        if mp.degraded {
            // Never realize at a stale or uncertain price (realized profit vests into
            // capital): the position stays unrealized until its oracle is good again;
            // the account's other markets settle as usual.
            continue;
        }
        // Realized at the worse for the holder of the oracle and the smoothed price: a
        // single-print spike cannot be turned into settled pnl (which counts in full
        // toward initial margin and vests into capital) — the Mango v3 lesson. Losses
        // are realized at the oracle or worse.
        let price = settlement_price(mp.price.price, mp.stable_price, p.base_qty > 0);
        let delta = mark_to_price(acct, slot, price, books, clock)?;
        marked = marked.safe_add(delta)?;
    }
    let absorbed = acct.absorb_losses(books, clock)?;
    // Profit becomes senior capital only while no deficit is open (positive pnl is frozen
    // during a bad-debt epoch, reachable by clawback) and no bankrupt account waits to be
    // written up (its loss could open one: profit converted first would escape it).
    let converted = if ex.epoch.phase == EpochPhase::Normal && ex.unresolved_bankruptcies == 0 {
        acct.convert_vested(books, clock)?
    } else {
        0
    };
    track(ex, before, acct.standing())?;
    treasury.finish(&ex.books)?;
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
