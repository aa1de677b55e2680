use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::round::touch;
use crate::engine::{bankruptcy, now, pnl_clock};
use crate::error::BackstopError;
use crate::state::{Exchange, MarginAccount};

/// Permissionless (docs/DESIGN.md §5.2): an account with no positions and equity −S < 0 is
/// written up to zero. Its capital is consumed first, then the insurance fund pays min(S′,
/// balance) into the vault (a real token transfer); the rest is added to the deficit and
/// opens a bad-debt epoch if none is open. Liquidations and trades that leave an account
/// bankrupt resolve it themselves; this instruction is for accounts that become bankrupt
/// any other way (a profit-basis clawback charge).
#[derive(Accounts)]
pub struct ResolveBankruptcy<'info> {
    #[account(
        mut,
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = margin_account.is_bankrupt() @ BackstopError::NotBankrupt
    )]
    pub margin_account: Box<Account<'info, MarginAccount>>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn handler(ctx: Context<ResolveBankruptcy>) -> Result<()> {
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let key = exchange_info.key();
    let account_key = a.margin_account.key();
    let ex: &mut Exchange = &mut a.exchange;
    let clock = pnl_clock(ex, now);
    let acct: &mut MarginAccount = &mut a.margin_account;
    let treasury = crate::treasury!(a, exchange_info, ex);
    let excess = touch(ex, key, account_key, acct, clock)?;
    treasury.vault_to_insurance(&mut ex.books, excess)?;
    bankruptcy::resolve(ex, key, account_key, acct, &treasury, clock)?;
    treasury.finish(&ex.books)
}
