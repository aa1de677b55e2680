use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::accounting::{check_invariants, now, transfer_from_exchange};
use crate::error::BackstopError;
use crate::events::{BankruptcyResolved, EpochOpened};
use crate::math::safe::{cast, SafeMath};
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Permissionless (DESIGN §4.2): an account with no positions and equity −S < 0 is written
/// up to zero. Its capital is consumed first, then the insurance fund pays min(S′,
/// balance) into the vault (a real token transfer); the rest is added to the deficit and
/// opens a bad-debt epoch if none is open.
#[derive(Accounts)]
pub struct ResolveBankruptcy<'info> {
    #[account(mut)]
    pub exchange: Account<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = !margin_account.has_open_positions()
            && (margin_account.capital as i128) + (margin_account.pnl as i128) < 0
            @ BackstopError::NotBankrupt
    )]
    pub margin_account: Account<'info, MarginAccount>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Account<'info, TokenAccount>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

pub fn handler(ctx: Context<ResolveBankruptcy>) -> Result<()> {
    let now = now()?;
    let a = ctx.accounts;
    let key = a.exchange.key();
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let seeds = ex.seeds();
    let acct = &mut a.margin_account;
    let warmup = ex.params.pnl_warmup_secs;
    let shortfall: u64 = cast(-((acct.capital as i128) + (acct.pnl as i128)))?;
    let capital_consumed =
        acct.absorb_losses(&mut ex.total_capital, &mut ex.total_pnl, now, warmup)?;
    // Now capital = 0 and pnl = −shortfall.
    let insurance_before = ex.insurance_balance;
    let deficit_before = ex.deficit;
    let paid = shortfall.min(ex.insurance_balance);
    let deficit_added = shortfall - paid;
    acct.add_pnl(cast(shortfall)?, &mut ex.total_pnl, now, warmup)?;
    ex.insurance_balance -= paid;
    ex.vault_balance = ex.vault_balance.safe_add(paid)?;
    ex.deficit = ex.deficit.safe_add(deficit_added)?;
    transfer_from_exchange(
        &a.token_program,
        &a.insurance_vault,
        a.vault.to_account_info(),
        exchange_info.clone(),
        &seeds,
        paid,
    )?;
    if deficit_added > 0 {
        ex.epoch.epoch_deficit_opened = ex.epoch.epoch_deficit_opened.safe_add(deficit_added)?;
        if ex.epoch.phase == EpochPhase::Normal {
            ex.epoch.phase = EpochPhase::BadDebt;
            ex.epoch.epoch_opened_at = now;
            ex.epoch.rounds_in_epoch = 0;
            ex.epoch.cooldown_until = 0;
            crate::events::emit(EpochOpened {
                exchange: key,
                epoch_id: ex.epoch.epoch_id,
                deficit: ex.deficit,
                opened_at: now,
            });
        }
    }
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    crate::events::emit(BankruptcyResolved {
        account: acct.key(),
        owner: acct.owner,
        shortfall,
        capital_consumed,
        insurance_paid: paid,
        deficit_added,
        insurance_before,
        insurance_after: ex.insurance_balance,
        deficit_before,
        deficit_after: ex.deficit,
        epoch_id: ex.epoch.epoch_id,
    });
    Ok(())
}
