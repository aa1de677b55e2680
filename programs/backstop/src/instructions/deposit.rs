use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::round::touch;
use crate::engine::{now, pnl_clock, track};
use crate::error::BackstopError;
use crate::events::Deposited;
use crate::math::safe::{cast, SafeMath};
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Moves collateral from the owner's token account into the vault as capital. Needs no
/// oracle, so it works while prices are stale; works in every phase (a round in progress
/// tallies or charges the account first, as it stood).
#[derive(Accounts)]
pub struct Deposit<'info> {
    pub owner: Signer<'info>,
    /// No pause stops deposits (they can only make an account safer).
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
    /// Receives a clawback charge's rounding excess when the deposit pays the account's
    /// charge first (touch first during `Applying`).
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
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
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let (exchange_key, account_key) = (exchange_info.key(), a.margin_account.key());
    let ex: &mut Exchange = &mut a.exchange;
    let clock = pnl_clock(ex, now);
    let treasury = crate::treasury!(a, exchange_info, ex);
    let excess = touch(ex, exchange_key, account_key, &mut a.margin_account, clock)?;
    treasury.vault_to_insurance(&mut ex.books, excess)?;
    treasury.user_to_vault(
        &mut ex.books,
        a.source.to_account_info(),
        a.owner.to_account_info(),
        amount,
    )?;
    let before = a.margin_account.standing();
    a.margin_account.add_capital(cast(amount)?, &mut ex.books)?;
    if ex.epoch.phase != EpochPhase::Normal {
        // Remembered for the leverage a LeverageWeighted round measures (see
        // `engine::round::weights_at_snapshot`).
        let epoch = ex.epoch.epoch_id;
        let acct = &mut a.margin_account;
        acct.epoch_deposited = acct.deposited_in(epoch).safe_add(amount)?;
        acct.deposited_epoch = epoch;
    }
    track(ex, before, a.margin_account.standing())?;
    treasury.finish(&ex.books)?;
    crate::events::emit(Deposited {
        account: a.margin_account.key(),
        amount,
        capital_after: a.margin_account.capital,
    });
    Ok(())
}
