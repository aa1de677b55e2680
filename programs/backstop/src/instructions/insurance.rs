//! Insurance fund in and out, deficit cover, and booking of direct donations.

use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::accounting::{
    check_invariants, close_epoch, transfer_from_exchange, transfer_from_user,
};
use crate::error::BackstopError;
use crate::events::{DeficitCovered, InsuranceContributed, InsuranceWithdrawn, SurplusSwept};
use crate::math::safe::SafeMath;
use crate::state::{EpochPhase, Exchange};

/// Anyone pays collateral into the insurance fund.
#[derive(Accounts)]
pub struct ContributeInsurance<'info> {
    pub contributor: Signer<'info>,
    #[account(mut)]
    pub exchange: Account<'info, Exchange>,
    #[account(address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Account<'info, TokenAccount>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Account<'info, TokenAccount>,
    #[account(
        mut,
        constraint = source.mint == exchange.collateral_mint @ BackstopError::WrongMint
    )]
    pub source: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn contribute(ctx: Context<ContributeInsurance>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let a = ctx.accounts;
    transfer_from_user(
        &a.token_program,
        a.source.to_account_info(),
        a.insurance_vault.to_account_info(),
        a.contributor.to_account_info(),
        amount,
    )?;
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    ex.insurance_balance = ex.insurance_balance.safe_add(amount)?;
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    crate::events::emit(InsuranceContributed {
        exchange: exchange_info.key(),
        contributor: a.contributor.key(),
        amount,
        balance_after: ex.insurance_balance,
    });
    Ok(())
}

/// The admin takes collateral out of the insurance fund — never while a deficit or a
/// bad-debt epoch is open.
#[derive(Accounts)]
pub struct WithdrawInsurance<'info> {
    pub admin: Signer<'info>,
    #[account(
        mut,
        has_one = admin @ BackstopError::NotAdmin,
        constraint = exchange.deficit == 0 && exchange.epoch.phase == EpochPhase::Normal
            @ BackstopError::InsuranceLocked
    )]
    pub exchange: Account<'info, Exchange>,
    #[account(address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Account<'info, TokenAccount>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Account<'info, TokenAccount>,
    #[account(
        mut,
        constraint = destination.mint == exchange.collateral_mint @ BackstopError::WrongMint
    )]
    pub destination: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn withdraw(ctx: Context<WithdrawInsurance>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let seeds = ex.seeds();
    require!(
        amount <= ex.insurance_balance,
        BackstopError::InsufficientInsurance
    );
    ex.insurance_balance -= amount;
    transfer_from_exchange(
        &a.token_program,
        &a.insurance_vault,
        a.destination.to_account_info(),
        exchange_info.clone(),
        &seeds,
        amount,
    )?;
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    crate::events::emit(InsuranceWithdrawn {
        exchange: exchange_info.key(),
        amount,
        balance_after: ex.insurance_balance,
    });
    Ok(())
}

/// Anyone pays collateral into the vault to reduce the deficit (at most the deficit is
/// taken). Allowed in `BadDebt` and `Tallying` — reaching zero closes the epoch and
/// cancels a round being tallied — but not while a round is being applied, whose rate was
/// fixed on the deficit at `finalize_tally`.
#[derive(Accounts)]
pub struct CoverDeficit<'info> {
    pub payer: Signer<'info>,
    #[account(
        mut,
        constraint = exchange.deficit > 0 @ BackstopError::NoDeficit,
        constraint = exchange.epoch.phase != EpochPhase::Applying @ BackstopError::CoverDuringApplying
    )]
    pub exchange: Account<'info, Exchange>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Account<'info, TokenAccount>,
    #[account(address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Account<'info, TokenAccount>,
    #[account(
        mut,
        constraint = source.mint == exchange.collateral_mint @ BackstopError::WrongMint
    )]
    pub source: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn cover_deficit(ctx: Context<CoverDeficit>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let a = ctx.accounts;
    let paid = amount.min(a.exchange.deficit);
    transfer_from_user(
        &a.token_program,
        a.source.to_account_info(),
        a.vault.to_account_info(),
        a.payer.to_account_info(),
        paid,
    )?;
    let key = a.exchange.key();
    let ex: &mut Exchange = &mut a.exchange;
    ex.vault_balance = ex.vault_balance.safe_add(paid)?;
    ex.deficit -= paid;
    ex.epoch.epoch_covered = ex.epoch.epoch_covered.safe_add(paid)?;
    crate::events::emit(DeficitCovered {
        exchange: key,
        payer: a.payer.key(),
        amount: paid,
        deficit_after: ex.deficit,
    });
    if ex.deficit == 0 {
        close_epoch(ex, key);
    }
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    Ok(())
}

/// Books tokens sent straight to the vaults (outside any instruction) into the insurance
/// fund, so a donation can never leave the token balances out of step with the books.
#[derive(Accounts)]
pub struct SweepSurplus<'info> {
    #[account(mut)]
    pub exchange: Account<'info, Exchange>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Account<'info, TokenAccount>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn sweep_surplus(ctx: Context<SweepSurplus>) -> Result<()> {
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let seeds = ex.seeds();
    let vault_surplus = a.vault.amount.safe_sub(ex.vault_balance)?;
    transfer_from_exchange(
        &a.token_program,
        &a.vault,
        a.insurance_vault.to_account_info(),
        exchange_info.clone(),
        &seeds,
        vault_surplus,
    )?;
    a.insurance_vault.reload()?;
    let insurance_surplus = a
        .insurance_vault
        .amount
        .safe_sub(ex.insurance_balance)?
        .safe_sub(vault_surplus)?;
    ex.insurance_balance = a.insurance_vault.amount;
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    crate::events::emit(SurplusSwept {
        exchange: exchange_info.key(),
        vault_surplus,
        insurance_surplus,
    });
    Ok(())
}
