use anchor_lang::prelude::*;

use crate::constants::MAX_TALLY_BATCH;
use crate::engine::round::tally_account;
use crate::error::BackstopError;
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Permissionless first pass of a round: records each account's weights at the round's
/// price snapshot (taken by `begin_clawback`) as the account stood then — the
/// profit-basis weight under the round's policy, with its cap (positive PnL), and its
/// capital (the capital-basis weight) — and adds them to the round's totals. Every account
/// at most once per round; an account any other instruction changed since the round began
/// was already tallied by it (touch first), so crank order, batching and timing cannot
/// change a weight. No oracle or market account is read.
///
/// Remaining accounts: writable margin accounts not yet tallied this round, at most
/// `MAX_TALLY_BATCH` (`BatchTooLarge` beyond). The round needs the accounts that can carry
/// profit weight (open positions or positive pnl) and — only when none of them has any —
/// those with capital (`EpochState::needs_tally`); others may be tallied (weight zero) but
/// need not be.
///
/// Batch size: 33 bytes per account (32-byte key + 1-byte index) in a legacy
/// transaction; with an address lookup table the 64 account locks bound it (60 with the
/// fee payer, exchange, program and compute-budget program), and the program takes at
/// most `MAX_TALLY_BATCH`, whose log fits the 10,000-byte budget. `backstop_client::batch`
/// packs each transaction to the limit.
#[derive(Accounts)]
pub struct Tally<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::Tallying @ BackstopError::WrongEpochPhase
    )]
    pub exchange: Box<Account<'info, Exchange>>,
}

pub fn handler<'info>(ctx: Context<'info, Tally<'info>>) -> Result<()> {
    let accounts = ctx.remaining_accounts;
    require!(
        !accounts.is_empty(),
        BackstopError::InvalidRemainingAccounts
    );
    require!(
        accounts.len() <= usize::from(MAX_TALLY_BATCH),
        BackstopError::BatchTooLarge
    );
    let exchange_key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    for (i, info) in accounts.iter().enumerate() {
        require!(
            !accounts.iter().take(i).any(|o| o.key == info.key),
            BackstopError::DuplicateAccount
        );
        require!(info.is_writable, BackstopError::AccountNotWritable);
        let mut acct = Account::<MarginAccount>::try_from(info)?;
        require_keys_eq!(acct.exchange, exchange_key, BackstopError::WrongExchange);
        tally_account(ex, info.key(), &mut acct)?;
        acct.exit(&crate::ID)?;
    }
    Ok(())
}
