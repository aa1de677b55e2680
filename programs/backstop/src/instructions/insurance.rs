//! Insurance fund in and out, deficit cover, and booking of direct donations.

use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::now;
use crate::error::BackstopError;
use crate::events::{
    ChangeCancelled, ChangeKind, DeficitCovered, InsuranceContributed, InsuranceWithdrawalQueued,
    InsuranceWithdrawn, SurplusSwept,
};
use crate::instructions::admin::{check_window, ready_at, UpdateExchange};
use crate::state::{EpochPhase, Exchange, QueuedWithdrawal};

/// Anyone pays collateral into the insurance fund.
#[derive(Accounts)]
pub struct ContributeInsurance<'info> {
    pub contributor: Signer<'info>,
    #[account(
        mut,
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    #[account(
        mut,
        constraint = source.mint == exchange.collateral_mint @ BackstopError::WrongMint
    )]
    pub source: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn contribute(ctx: Context<ContributeInsurance>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let key = exchange_info.key();
    let ex: &mut Exchange = &mut a.exchange;
    let treasury = crate::treasury!(a, exchange_info, ex);
    treasury.user_to_insurance(
        &mut ex.books,
        a.source.to_account_info(),
        a.contributor.to_account_info(),
        amount,
    )?;
    treasury.finish(&ex.books)?;
    crate::events::emit(InsuranceContributed {
        exchange: key,
        contributor: a.contributor.key(),
        amount,
        balance_after: ex.books.insurance_balance,
    });
    Ok(())
}

/// The admin queues a withdrawal from the insurance fund to `destination`. Anyone may
/// apply it once `admin_delay_secs` has passed — so keepers have that long to liquidate
/// and resolve underwater accounts the fund would cover — and only while no bad-debt
/// epoch is open and no bankruptcy is unresolved.
#[derive(Accounts)]
pub struct WithdrawInsurance<'info> {
    pub admin: Signer<'info>,
    #[account(
        mut, has_one = admin @ BackstopError::NotAdmin,
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    #[account(constraint = destination.mint == exchange.collateral_mint @ BackstopError::WrongMint)]
    pub destination: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn withdraw(ctx: Context<WithdrawInsurance>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let now = now()?;
    let a = ctx.accounts;
    let key = a.exchange.key();
    let ex = &mut a.exchange;
    require!(
        !ex.queued_withdrawal.active,
        BackstopError::ChangeAlreadyQueued
    );
    // The fund is checked when the withdrawal is paid out (`InsufficientInsurance`): it
    // may have grown or shrunk by then.
    let ready_at = ready_at(ex, now)?;
    ex.queued_withdrawal = QueuedWithdrawal {
        active: true,
        amount,
        destination: a.destination.key(),
        queued_at: now,
        ready_at,
    };
    crate::events::emit(InsuranceWithdrawalQueued {
        exchange: key,
        amount,
        destination: a.destination.key(),
        ready_at,
    });
    Ok(())
}

/// Permissionless: pays out the queued insurance withdrawal once due.
#[derive(Accounts)]
pub struct ApplyInsuranceWithdrawal<'info> {
    #[account(
        mut,
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    #[account(
        mut,
        constraint = destination.key() == exchange.queued_withdrawal.destination
            @ BackstopError::WrongDestination
    )]
    pub destination: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn apply_withdrawal(ctx: Context<ApplyInsuranceWithdrawal>) -> Result<()> {
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let key = exchange_info.key();
    let ex: &mut Exchange = &mut a.exchange;
    let q = ex.queued_withdrawal;
    require!(q.active, BackstopError::NothingQueued);
    check_window(q.ready_at, now)?;
    require!(
        ex.books.deficit == 0 && ex.epoch.phase == EpochPhase::Normal,
        BackstopError::InsuranceLocked
    );
    require!(
        ex.unresolved_bankruptcies == 0,
        BackstopError::BankruptcyPending
    );
    ex.queued_withdrawal = QueuedWithdrawal::default();
    let treasury = crate::treasury!(a, exchange_info, ex);
    treasury.insurance_to_user(&mut ex.books, a.destination.to_account_info(), q.amount)?;
    treasury.finish(&ex.books)?;
    crate::events::emit(InsuranceWithdrawn {
        exchange: key,
        amount: q.amount,
        balance_after: ex.books.insurance_balance,
    });
    Ok(())
}

/// The admin withdraws its queued insurance withdrawal.
pub fn cancel_withdrawal(ctx: Context<UpdateExchange>) -> Result<()> {
    let key = ctx.accounts.exchange.key();
    let ex = &mut ctx.accounts.exchange;
    require!(ex.queued_withdrawal.active, BackstopError::NothingQueued);
    ex.queued_withdrawal = QueuedWithdrawal::default();
    crate::events::emit(ChangeCancelled {
        exchange: key,
        target: key,
        kind: ChangeKind::InsuranceWithdrawal,
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
        constraint = exchange.books.deficit > 0 @ BackstopError::NoDeficit,
        constraint = exchange.epoch.phase != EpochPhase::Applying @ BackstopError::CoverDuringApplying,
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    #[account(
        mut,
        constraint = source.mint == exchange.collateral_mint @ BackstopError::WrongMint
    )]
    pub source: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn cover_deficit(ctx: Context<CoverDeficit>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let key = exchange_info.key();
    let ex: &mut Exchange = &mut a.exchange;
    let treasury = crate::treasury!(a, exchange_info, ex);
    // At most the deficit is taken: an over-payment stays with the payer.
    let paid = amount.min(ex.books.deficit);
    treasury.user_to_vault(
        &mut ex.books,
        a.source.to_account_info(),
        a.payer.to_account_info(),
        paid,
    )?;
    ex.books.reduce_deficit(paid);
    let closed = ex.epoch.covered(key, paid, ex.books.deficit)?;
    crate::events::emit(DeficitCovered {
        exchange: key,
        payer: a.payer.key(),
        amount: paid,
        deficit_after: ex.books.deficit,
    });
    if let Some(closed) = closed {
        crate::events::emit(closed);
    }
    treasury.finish(&ex.books)
}

/// Books tokens sent straight to the vaults (outside any instruction) into the insurance
/// fund, so a donation can never leave the token balances out of step with the books.
#[derive(Accounts)]
pub struct SweepSurplus<'info> {
    #[account(
        mut,
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

pub fn sweep_surplus(ctx: Context<SweepSurplus>) -> Result<()> {
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let key = exchange_info.key();
    let ex: &mut Exchange = &mut a.exchange;
    let mut treasury = crate::treasury!(a, exchange_info, ex);
    let (vault_surplus, insurance_surplus) = treasury.sweep_surplus(&mut ex.books)?;
    treasury.finish(&ex.books)?;
    crate::events::emit(SurplusSwept {
        exchange: key,
        vault_surplus,
        insurance_surplus,
    });
    Ok(())
}
