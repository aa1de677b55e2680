//! Opening and closing margin accounts.

use anchor_lang::prelude::*;

use crate::constants::*;
use crate::engine::now;
use crate::error::BackstopError;
use crate::events::{MarginAccountClosed, MarginAccountCreated};
use crate::state::{ClawbackRecord, Exchange, MarginAccount, Position, Warmup};

/// Opens the owner's margin account on this exchange. Refused during a clawback round
/// (the round must tally every account that exists when it begins).
#[derive(Accounts)]
pub struct CreateMarginAccount<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(
        mut,
        constraint = !exchange.epoch.in_round() @ BackstopError::WrongEpochPhase
    )]
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
    ctx.accounts.margin_account.set_inner(MarginAccount {
        exchange: exchange.key(),
        owner: ctx.accounts.owner.key(),
        bump: ctx.bumps.margin_account,
        capital: 0,
        pnl: 0,
        positions: [Position::default(); MAX_POSITIONS],
        warmup: Warmup::default(),
        clawback: ClawbackRecord::default(),
        created_at: now,
        epoch_withdrawn: 0,
        withdrawn_epoch: 0,
        reserved: [0; 16],
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

/// Closes an empty margin account (no capital, no pnl, no positions) and returns its rent.
#[derive(Accounts)]
pub struct CloseMarginAccount<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,
    #[account(
        mut,
        constraint = !exchange.epoch.in_round() @ BackstopError::WrongEpochPhase
    )]
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
    let exchange = &mut ctx.accounts.exchange;
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
