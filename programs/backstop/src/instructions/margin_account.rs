//! Opening and closing margin accounts.

use anchor_lang::prelude::*;

use crate::constants::*;
use crate::engine::round::touch;
use crate::engine::{now, pnl_clock};
use crate::error::BackstopError;
use crate::events::{MarginAccountClosed, MarginAccountCreated};
use crate::state::{ClawbackRecord, Exchange, MarginAccount, Position, Warmup};

/// Opens the owner's margin account on this exchange, in every phase: an account created
/// during a clawback round did not exist at its snapshot, so it is born tallied with no
/// weight and owes that round nothing.
#[derive(Accounts)]
pub struct CreateMarginAccount<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(mut)]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        init,
        payer = owner,
        space = 8 + MarginAccount::INIT_SPACE,
        seeds = [MARGIN_SEED, exchange.key().as_ref(), owner.key().as_ref()],
        bump
    )]
    pub margin_account: Box<Account<'info, MarginAccount>>,
    pub system_program: Program<'info, System>,
}

pub fn create(ctx: Context<CreateMarginAccount>) -> Result<()> {
    let now = now()?;
    let exchange = &mut ctx.accounts.exchange;
    require!(
        !exchange.is_paused(PAUSE_NEW_ACCOUNTS, now),
        BackstopError::Paused
    );
    let mut clawback = ClawbackRecord::default();
    exchange.epoch.born_tallied(&mut clawback);
    ctx.accounts.margin_account.set_inner(MarginAccount {
        exchange: exchange.key(),
        owner: ctx.accounts.owner.key(),
        bump: ctx.bumps.margin_account,
        capital: 0,
        pnl: 0,
        positions: [Position::default(); MAX_POSITIONS],
        warmup: Warmup::default(),
        clawback,
        created_at: now,
        epoch_withdrawn: 0,
        withdrawn_epoch: 0,
        epoch_deposited: 0,
        deposited_epoch: 0,
    });
    exchange.num_accounts = exchange
        .num_accounts
        .checked_add(1)
        .ok_or(BackstopError::MathOverflow)?;
    crate::events::emit(MarginAccountCreated {
        exchange: exchange.key(),
        account: ctx.accounts.margin_account.key(),
        owner: ctx.accounts.owner.key(),
    });
    Ok(())
}

/// Closes an empty margin account (no capital, no pnl, no positions) and returns its rent,
/// in every phase: during `Tallying` it is tallied first (as it stood at the snapshot);
/// during `Applying` an account that still owes a share is refused (`ClawbackDue`) —
/// after its charge it would not be empty.
#[derive(Accounts)]
pub struct CloseMarginAccount<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(mut)]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        mut,
        close = owner,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = owner @ BackstopError::NotAccountOwner,
        constraint = margin_account.is_empty() @ BackstopError::AccountNotEmpty
    )]
    pub margin_account: Box<Account<'info, MarginAccount>>,
}

pub fn close(ctx: Context<CloseMarginAccount>) -> Result<()> {
    let now = now()?;
    let exchange_key = ctx.accounts.exchange.key();
    let account_key = ctx.accounts.margin_account.key();
    let exchange = &mut ctx.accounts.exchange;
    let acct = &mut ctx.accounts.margin_account;
    let clock = pnl_clock(exchange, now);
    // An account tallied with weight earlier in the round owes a charge the round counts
    // on — the clawback crank applies it — so it stays open until then. Otherwise a round
    // being tallied records it as it stood (an empty account weighs nothing).
    require!(
        !exchange.epoch.owes(&acct.clawback),
        BackstopError::ClawbackDue
    );
    touch(exchange, exchange_key, account_key, acct, clock)?;
    exchange.num_accounts = exchange
        .num_accounts
        .checked_sub(1)
        .ok_or(BackstopError::MathOverflow)?;
    crate::events::emit(MarginAccountClosed {
        exchange: exchange.key(),
        account: ctx.accounts.margin_account.key(),
        owner: ctx.accounts.owner.key(),
    });
    Ok(())
}
