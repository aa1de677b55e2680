use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::round::touch;
use crate::engine::{now, pnl_clock, track};
use crate::error::BackstopError;
use crate::events::Withdrawn;
use crate::math::safe::{negative, SafeMath};
use crate::math::withdrawal::withdrawable_during_deficit;
use crate::oracle::PriceCache;
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Withdraws capital. The account must meet initial margin afterwards (remaining
/// accounts: a (market, oracle) pair for every open position). While a deficit is open,
/// at most capital − ⌈(capital + withdrawn) · deficit / base⌉ may leave (`withdrawn`:
/// during this epoch; `base`: the smallest Σ(capital + withdrawn) since the epoch opened,
/// `Exchange::holdback_base`) — the account's pro-rata share of the deficit stays behind
/// for a capital-basis round, which weighs capital + withdrawn as well, and no one else's
/// deposit can shrink it. During a round the account is tallied or charged first (touch
/// first), so a withdrawal never changes what it owes this round (docs/DESIGN.md §6.4).
#[derive(Accounts)]
pub struct Withdraw<'info> {
    pub owner: Signer<'info>,
    /// No pause stops withdrawals of free capital.
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
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    /// Receives a clawback charge's rounding excess when the withdrawal pays the account's
    /// charge first (touch first during `Applying`).
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    #[account(
        mut,
        constraint = destination.mint == exchange.collateral_mint @ BackstopError::WrongMint
    )]
    pub destination: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn handler<'info>(ctx: Context<'info, Withdraw<'info>>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let (exchange_key, account_key) = (exchange_info.key(), a.margin_account.key());
    let ex: &mut Exchange = &mut a.exchange;
    let clock = pnl_clock(ex, now);
    let acct: &mut MarginAccount = &mut a.margin_account;
    let excess = touch(ex, exchange_key, account_key, acct, clock)?;
    require!(amount <= acct.capital, BackstopError::InsufficientCapital);
    let before = acct.standing();
    if ex.epoch.phase != EpochPhase::Normal {
        // The share is taken on capital plus what already left during this epoch (by this
        // account and in total), the weights a capital-basis round will use: withdrawing
        // in steps cannot shrink it.
        let epoch = ex.epoch.epoch_id;
        let mine = acct.withdrawn_in(epoch);
        let all = ex.withdrawn_in(epoch);
        let base = ex.holdback_base_now()?;
        let limit = withdrawable_during_deficit(acct.capital, mine, ex.books.deficit, base)?;
        require!(amount <= limit, BackstopError::BadDebtWithdrawalLimit);
        acct.epoch_withdrawn = mine.safe_add(amount)?;
        acct.withdrawn_epoch = epoch;
        ex.epoch_withdrawn_total = all.safe_add(amount)?;
        ex.withdrawn_epoch = epoch;
    }
    acct.add_capital(negative(amount)?, &mut ex.books)?;
    track(ex, before, acct.standing())?;
    let cache = PriceCache::load(
        &exchange_info.key(),
        ex.collateral_decimals,
        ctx.remaining_accounts,
        now,
    )?;
    let health = cache.health(acct)?;
    require!(
        health.meets_initial_margin()?,
        BackstopError::InitialMarginViolated
    );
    let treasury = crate::treasury!(a, exchange_info, ex);
    treasury.vault_to_insurance(&mut ex.books, excess)?;
    treasury.vault_to_user(&mut ex.books, a.destination.to_account_info(), amount)?;
    treasury.finish(&ex.books)?;
    crate::events::emit(Withdrawn {
        account: a.margin_account.key(),
        amount,
        capital_after: a.margin_account.capital,
    });
    Ok(())
}
