use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::accounting::{check_invariants, end_round, now, transfer_from_exchange};
use crate::error::BackstopError;
use crate::events::ClawbackApplied;
use crate::math::clawback::{charge, Weight};
use crate::math::safe::{cast, SafeMath};
use crate::state::{ClawbackBasis, EpochPhase, Exchange, MarginAccount};

/// Permissionless second pass: charges each tallied account with weight in the round's
/// basis cᵢ = min(⌈wᵢ · r⌉, capᵢ) — from pnl in the profit basis, from capital in the
/// capital basis (never more than the capital it has now) — and writes its receipt. The
/// part of a charge beyond the remaining deficit (rounding up leaves < 1 atom per account)
/// moves to the insurance fund. When the last account is applied the round ends.
///
/// Remaining accounts: writable margin accounts (no prices needed). Batch size: 26 accounts
/// in a legacy transaction with the compute-budget pair (33 bytes each, measured by
/// `documented_batch_limits_are_the_measured_ones`), or 64 − 7 fixed = 57 with an address
/// lookup table, compute permitting.
#[derive(Accounts)]
pub struct Clawback<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::Applying @ BackstopError::WrongEpochPhase
    )]
    pub exchange: Account<'info, Exchange>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Account<'info, TokenAccount>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn handler<'info>(ctx: Context<'info, Clawback<'info>>) -> Result<()> {
    let accounts = ctx.remaining_accounts;
    require!(
        !accounts.is_empty(),
        BackstopError::InvalidRemainingAccounts
    );
    let now = now()?;
    let a = ctx.accounts;
    let key = a.exchange.key();
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let seeds = ex.seeds();
    let round = ex.epoch.round_seq;
    let rate = ex.epoch.rate();
    let basis = ex.epoch.basis;
    let warmup = ex.params.pnl_warmup_secs;
    let mut excess_total = 0u64;
    for (i, info) in accounts.iter().enumerate() {
        require!(
            !accounts[..i].iter().any(|o| o.key == info.key),
            BackstopError::DuplicateAccount
        );
        require!(info.is_writable, BackstopError::AccountNotWritable);
        let mut acct = Account::<MarginAccount>::try_from(info)?;
        require_keys_eq!(acct.exchange, key, BackstopError::WrongExchange);
        require!(
            acct.clawback.tally_round == round,
            BackstopError::NotTallied
        );
        require!(
            acct.clawback.applied_round != round,
            BackstopError::AlreadyClawedBack
        );
        let w = match basis {
            ClawbackBasis::Profit => Weight {
                weight: acct.clawback.profit_weight,
                cap: acct.clawback.profit_cap,
            },
            ClawbackBasis::Capital => Weight {
                weight: acct.clawback.capital_weight as u128,
                cap: acct.clawback.capital_weight.min(acct.capital),
            },
        };
        require!(w.weight > 0, BackstopError::NothingToClawBack);
        let amount = charge(w, rate)?;
        match basis {
            ClawbackBasis::Profit => {
                acct.add_pnl(-cast::<u64, i64>(amount)?, &mut ex.total_pnl, now, warmup)?
            }
            ClawbackBasis::Capital => {
                acct.add_capital(-cast::<u64, i64>(amount)?, &mut ex.total_capital)?
            }
        }
        let to_deficit = amount.min(ex.deficit);
        let to_insurance = amount - to_deficit;
        ex.deficit -= to_deficit;
        excess_total = excess_total.safe_add(to_insurance)?;
        let epoch_id = ex.epoch.epoch_id;
        let rec = &mut acct.clawback;
        rec.applied_round = round;
        rec.last_epoch = epoch_id;
        rec.last_round = round;
        rec.last_basis_is_capital = basis == ClawbackBasis::Capital;
        rec.last_weight = w.weight;
        rec.last_rate_num = rate.num;
        rec.last_rate_den = rate.den;
        rec.last_amount = amount;
        rec.lifetime_total = rec.lifetime_total.safe_add(amount)?;
        let e = &mut ex.epoch;
        e.applied = e.applied.safe_add(1)?;
        e.round_charged = e.round_charged.safe_add(amount)?;
        e.round_to_insurance = e.round_to_insurance.safe_add(to_insurance)?;
        e.epoch_charged = e.epoch_charged.safe_add(amount)?;
        crate::events::emit(ClawbackApplied {
            account: info.key(),
            owner: acct.owner,
            epoch_id,
            round,
            basis_is_capital: basis == ClawbackBasis::Capital,
            weight: w.weight,
            rate_num: rate.num,
            rate_den: rate.den,
            amount,
            to_deficit,
            to_insurance,
        });
        acct.exit(&crate::ID)?;
    }
    ex.vault_balance = ex.vault_balance.safe_sub(excess_total)?;
    ex.insurance_balance = ex.insurance_balance.safe_add(excess_total)?;
    transfer_from_exchange(
        &a.token_program,
        &a.vault,
        a.insurance_vault.to_account_info(),
        exchange_info.clone(),
        &seeds,
        excess_total,
    )?;
    if ex.epoch.applied == ex.epoch.to_apply {
        end_round(ex, key, now)?;
    }
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    Ok(())
}
