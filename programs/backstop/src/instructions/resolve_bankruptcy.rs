use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::{now, pnl_clock};
use crate::error::BackstopError;
use crate::events::BankruptcyResolved;
use crate::math::health::bankruptcy_shortfall;
use crate::math::safe::{cast, SafeMath};
use crate::state::{Exchange, MarginAccount};

/// Permissionless (docs/DESIGN.md §5.2): an account with no positions and equity −S < 0 is written
/// up to zero. Its capital is consumed first, then the insurance fund pays min(S′,
/// balance) into the vault (a real token transfer); the rest is added to the deficit and
/// opens a bad-debt epoch if none is open.
#[derive(Accounts)]
pub struct ResolveBankruptcy<'info> {
    #[account(mut)]
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
    let ex: &mut Exchange = &mut a.exchange;
    let clock = pnl_clock(ex, now);
    let acct: &mut MarginAccount = &mut a.margin_account;
    let treasury = crate::treasury!(a, exchange_info, ex);
    let books = &mut ex.books;
    let shortfall = bankruptcy_shortfall(acct.capital, acct.pnl, acct.has_open_positions())?
        .ok_or(BackstopError::NotBankrupt)?;
    let capital_consumed = acct.absorb_losses(books, clock)?;
    // Now capital = 0 and pnl = −shortfall: the insurance fund pays what it can, the rest
    // joins the deficit.
    let insurance_before = books.insurance_balance;
    let deficit_before = books.deficit;
    let paid = shortfall.min(books.insurance_balance);
    let deficit_added = shortfall.safe_sub(paid)?;
    acct.add_pnl(cast(shortfall)?, books, clock)?;
    treasury.insurance_to_vault(books, paid)?;
    books.add_deficit(deficit_added)?;
    let opened = ex.epoch.open(key, deficit_added, ex.books.deficit, now)?;
    crate::engine::track_bankruptcy(ex, true, false)?;
    if let Some(opened) = opened {
        crate::events::emit(opened);
    }
    treasury.finish(&ex.books)?;
    crate::events::emit(BankruptcyResolved {
        account: a.margin_account.key(),
        owner: a.margin_account.owner,
        shortfall,
        capital_consumed,
        insurance_paid: paid,
        deficit_added,
        insurance_before,
        insurance_after: ex.books.insurance_balance,
        deficit_before,
        deficit_after: ex.books.deficit,
        epoch_id: ex.epoch.epoch_id,
    });
    Ok(())
}
