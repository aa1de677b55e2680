//! Writing a bankrupt account up to zero (docs/DESIGN.md §5.2): capital first, then the
//! insurance fund, then the deficit, which opens a bad-debt epoch.

use anchor_lang::prelude::*;

use crate::error::BackstopError;
use crate::events::BankruptcyResolved;
use crate::math::health::bankruptcy_shortfall;
use crate::math::safe::{cast, SafeMath};
use crate::state::{Exchange, MarginAccount, PnlClock};

use super::track;
use super::treasury::Treasury;

/// Resolves `acct` (flat, capital + pnl = −S < 0): its capital is consumed first, then the
/// insurance fund pays min(S′, balance) into the vault (a real token transfer), the rest
/// joins the deficit and opens a bad-debt epoch if none is open. `resolve_bankruptcy`
/// calls it, and so do `liquidate` and `trade` when they leave an account bankrupt — a
/// bankruptcy opens its epoch in the instruction that creates it, so no profit can be
/// converted to capital in between. The caller touched the account first.
pub fn resolve(
    ex: &mut Exchange,
    exchange_key: Pubkey,
    key: Pubkey,
    acct: &mut MarginAccount,
    treasury: &Treasury,
    clock: PnlClock,
) -> Result<()> {
    let before = acct.standing();
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
    let opened = ex
        .epoch
        .open(exchange_key, deficit_added, ex.books.deficit, clock.now)?;
    track(ex, before, acct.standing())?;
    if let Some(opened) = opened {
        ex.start_holdback();
        crate::events::emit(opened);
    }
    crate::events::emit(BankruptcyResolved {
        account: key,
        owner: acct.owner,
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
