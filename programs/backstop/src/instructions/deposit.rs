use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::accounting::{check_invariants, transfer_from_user};
use crate::constants::PAUSE_DEPOSITS;
use crate::error::BackstopError;
use crate::events::Deposited;
use crate::math::safe::{cast, SafeMath};
use crate::state::{Exchange, MarginAccount};

/// Moves collateral from the owner's token account into the vault as capital. Needs no
/// oracle, so it works while prices are stale.
#[derive(Accounts)]
pub struct Deposit<'info> {
    pub owner: Signer<'info>,
    #[account(
        mut,
        constraint = !exchange.is_paused(PAUSE_DEPOSITS) @ BackstopError::Paused
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
        constraint = source.mint == exchange.collateral_mint @ BackstopError::WrongMint
    )]
    pub source: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn handler(ctx: Context<Deposit>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let a = ctx.accounts;
    transfer_from_user(
        &a.token_program,
        a.source.to_account_info(),
        a.vault.to_account_info(),
        a.owner.to_account_info(),
        amount,
    )?;
    let ex: &mut Exchange = &mut a.exchange;
    a.margin_account
        .add_capital(cast(amount)?, &mut ex.total_capital)?;
    ex.vault_balance = ex.vault_balance.safe_add(amount)?;
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    crate::events::emit(Deposited {
        account: a.margin_account.key(),
        amount,
        capital_after: a.margin_account.capital,
    });
    Ok(())
}
