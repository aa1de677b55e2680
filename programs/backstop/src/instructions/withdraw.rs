use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::accounting::{check_invariants, now, transfer_from_exchange};
use crate::constants::PAUSE_WITHDRAWALS;
use crate::error::BackstopError;
use crate::events::Withdrawn;
use crate::math::fixed::div_ceil_u128;
use crate::math::safe::{cast, SafeMath};
use crate::oracle::PriceCache;
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Withdraws capital. The account must meet initial margin afterwards (remaining
/// accounts: a (market, oracle) pair for every open position). While a deficit is open,
/// at most capital − ⌈(capital + withdrawn) · deficit / Σ(capital + withdrawn)⌉ may leave
/// (`withdrawn`: during this epoch) — the account's pro-rata share of the deficit stays
/// behind for a capital-basis round, which weighs capital + withdrawn as well.
#[derive(Accounts)]
pub struct Withdraw<'info> {
    pub owner: Signer<'info>,
    #[account(
        mut,
        constraint = !exchange.is_paused(PAUSE_WITHDRAWALS) @ BackstopError::Paused
    )]
    pub exchange: Account<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = owner @ BackstopError::NotAccountOwner
    )]
    pub margin_account: Account<'info, MarginAccount>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Account<'info, TokenAccount>,
    #[account(address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Account<'info, TokenAccount>,
    #[account(
        mut,
        constraint = destination.mint == exchange.collateral_mint @ BackstopError::WrongMint
    )]
    pub destination: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

/// The most capital that may leave while `deficit` is open: capital minus its share of
/// the deficit, ⌈(capital + withdrawn) · deficit / Σ(capital + withdrawn)⌉ (rounded up:
/// more stays in the pool), where `withdrawn` is what already left during this epoch.
pub fn bad_debt_withdrawable(
    capital: u64,
    withdrawn: u64,
    deficit: u64,
    total_weight: u128,
) -> Result<u64> {
    if deficit == 0 || total_weight == 0 {
        return Ok(capital);
    }
    let weight = (capital as u128).safe_add(withdrawn as u128)?;
    let share = div_ceil_u128(weight.safe_mul(deficit as u128)?, total_weight)?;
    Ok(capital.saturating_sub(cast::<u128, u64>(share.min(capital as u128))?))
}

pub fn handler<'info>(ctx: Context<'info, Withdraw<'info>>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let seeds = ex.seeds();
    let acct = &mut a.margin_account;
    require!(amount <= acct.capital, BackstopError::InsufficientCapital);
    if ex.epoch.phase != EpochPhase::Normal {
        // The share is taken on capital plus what already left during this epoch (by this
        // account and in total), the weights a capital-basis round will use: withdrawing
        // in steps cannot shrink it.
        let epoch = ex.epoch.epoch_id;
        let mine = acct.withdrawn_in(epoch);
        let all = ex.withdrawn_in(epoch);
        let limit = bad_debt_withdrawable(
            acct.capital,
            mine,
            ex.deficit,
            ex.total_capital.safe_add(all as u128)?,
        )?;
        require!(amount <= limit, BackstopError::BadDebtWithdrawalLimit);
        acct.epoch_withdrawn = mine.safe_add(amount)?;
        acct.withdrawn_epoch = epoch;
        ex.epoch_withdrawn_total = all.safe_add(amount)?;
        ex.withdrawn_epoch = epoch;
    }
    acct.add_capital(-cast::<u64, i64>(amount)?, &mut ex.total_capital)?;
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
    ex.vault_balance = ex.vault_balance.safe_sub(amount)?;
    transfer_from_exchange(
        &a.token_program,
        &a.vault,
        a.destination.to_account_info(),
        exchange_info.clone(),
        &seeds,
        amount,
    )?;
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    crate::events::emit(Withdrawn {
        account: acct.key(),
        amount,
        capital_after: acct.capital,
    });
    Ok(())
}
