use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::error::BackstopError;
use crate::events::Deposited;
use crate::math::safe::cast;
use crate::state::{Exchange, MarginAccount};

/// Moves collateral from the owner's token account into the vault as capital. Needs no
/// oracle, so it works while prices are stale.
#[derive(Accounts)]
pub struct Deposit<'info> {
    pub owner: Signer<'info>,
    /// No pause stops deposits (they can only make an account safer).
    #[account(mut)]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = owner @ BackstopError::NotAccountOwner
    )]
    pub margin_account: Box<Account<'info, MarginAccount>>,
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

pub fn handler(ctx: Context<Deposit>, amount: u64) -> Result<()> {
    require!(amount > 0, BackstopError::ZeroAmount);
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let treasury = crate::treasury!(a, exchange_info, ex);
    treasury.user_to_vault(
        &mut ex.books,
        a.source.to_account_info(),
        a.owner.to_account_info(),
        amount,
    )?;
    let was_bankrupt = a.margin_account.is_bankrupt();
    a.margin_account.add_capital(cast(amount)?, &mut ex.books)?;
    crate::engine::track_bankruptcy(ex, was_bankrupt, a.margin_account.is_bankrupt())?;
    treasury.finish(&ex.books)?;
    crate::events::emit(Deposited {
        account: a.margin_account.key(),
        amount,
        capital_after: a.margin_account.capital,
    });
    Ok(())
}
