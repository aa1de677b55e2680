use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::constants::MAX_CLAWBACK_BATCH;
use crate::engine::round::charge_account;
use crate::engine::{end_round, now, pnl_clock};
use crate::error::BackstopError;
use crate::math::safe::SafeMath;
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Permissionless second pass: charges each tallied account with weight in the round's
/// basis cᵢ = min(⌈wᵢ · r⌉, capᵢ) — from pnl in the profit basis, from capital in the
/// capital basis (never more than the capital it has now) — and writes its receipt. The
/// part of a charge beyond the remaining deficit (rounding up leaves < 1 atom per account)
/// moves to the insurance fund. When the last account is applied the round ends. An
/// account any other instruction touched during `Applying` has already paid (touch first)
/// and is refused here (`AlreadyClawedBack`).
///
/// Remaining accounts: writable margin accounts (no prices needed). Batch size: 26 accounts
/// in a legacy transaction with the compute-budget pair (33 bytes each, measured by
/// `documented_batch_limits_are_the_measured_ones`). With an address lookup table the
/// locks would allow 57, but the log would not: at most `MAX_CLAWBACK_BATCH` (34)
/// accounts, so the batch's events fit the 10,000-byte log (`BatchTooLarge` beyond).
#[derive(Accounts)]
pub struct Clawback<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::Applying @ BackstopError::WrongEpochPhase,
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn handler<'info>(ctx: Context<'info, Clawback<'info>>) -> Result<()> {
    let accounts = ctx.remaining_accounts;
    require!(
        !accounts.is_empty(),
        BackstopError::InvalidRemainingAccounts
    );
    require!(
        accounts.len() <= usize::from(MAX_CLAWBACK_BATCH),
        BackstopError::BatchTooLarge
    );
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let key = exchange_info.key();
    let ex: &mut Exchange = &mut a.exchange;
    let clock = pnl_clock(ex, now);
    let treasury = crate::treasury!(a, exchange_info, ex);
    let mut excess_total = 0u64;
    for (i, info) in accounts.iter().enumerate() {
        require!(
            !accounts.iter().take(i).any(|o| o.key == info.key),
            BackstopError::DuplicateAccount
        );
        require!(info.is_writable, BackstopError::AccountNotWritable);
        let mut acct = Account::<MarginAccount>::try_from(info)?;
        require_keys_eq!(acct.exchange, key, BackstopError::WrongExchange);
        let excess = charge_account(ex, info.key(), &mut acct, clock)?;
        excess_total = excess_total.safe_add(excess)?;
        acct.exit(&crate::ID)?;
    }
    treasury.vault_to_insurance(&mut ex.books, excess_total)?;
    if ex.epoch.round_complete() {
        end_round(ex, key, now)?;
    }
    treasury.finish(&ex.books)
}
