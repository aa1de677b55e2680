use anchor_lang::prelude::*;

use crate::constants::MAX_TALLY_BATCH;
use crate::engine::now;
use crate::error::BackstopError;
use crate::math::clawback::profit_weight;
use crate::math::safe::SafeMath;
use crate::oracle::PriceCache;
use crate::state::{EpochPhase, Exchange, MarginAccount};

/// Permissionless first pass of a round: records each account's weights at current
/// oracle prices — the profit-basis weight under the round's policy, with its cap
/// (positive PnL), and its capital (the capital-basis weight) — and adds them to the
/// round's totals. Every account exactly once per round.
///
/// Remaining accounts: `num_accounts` writable margin accounts, then a (market, oracle)
/// pair for every market any of them holds a position in.
///
/// Batch size is bounded by the 1 232-byte transaction, not by compute: each margin
/// account costs 33 bytes (32-byte key + 1-byte index). With the keeper's two
/// compute-budget instructions, a legacy transaction carries 27 accounts when they hold
/// one market, 25 with two (measured by `documented_batch_limits_are_the_measured_ones`).
/// A v0 transaction with an address lookup table is bounded by the 64 account locks
/// instead (64 − 4 fixed − 2 per market), compute permitting (not measurable here: no
/// SBF build), and the program takes at most `MAX_TALLY_BATCH` (58, `BatchTooLarge`
/// beyond), whose log fits the 10,000-byte budget. `backstop_client::batch` packs each
/// transaction to the limit.
#[derive(Accounts)]
pub struct Tally<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::Tallying @ BackstopError::WrongEpochPhase
    )]
    pub exchange: Box<Account<'info, Exchange>>,
}

pub fn handler<'info>(ctx: Context<'info, Tally<'info>>, num_accounts: u8) -> Result<()> {
    let n = usize::from(num_accounts);
    require!(
        n > 0 && n <= ctx.remaining_accounts.len(),
        BackstopError::InvalidRemainingAccounts
    );
    require!(
        num_accounts <= MAX_TALLY_BATCH,
        BackstopError::BatchTooLarge
    );
    let (accounts, pairs) = ctx.remaining_accounts.split_at(n);
    let now = now()?;
    let exchange_key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    let cache = PriceCache::load(&exchange_key, ex.collateral_decimals, pairs, now)?;
    let policy = ex.epoch.round_policy();
    for (i, info) in accounts.iter().enumerate() {
        require!(
            !accounts.iter().take(i).any(|o| o.key == info.key),
            BackstopError::DuplicateAccount
        );
        require!(info.is_writable, BackstopError::AccountNotWritable);
        let mut acct = Account::<MarginAccount>::try_from(info)?;
        require_keys_eq!(acct.exchange, exchange_key, BackstopError::WrongExchange);
        require!(
            ex.epoch.due_for_tally(&acct.clawback),
            BackstopError::AlreadyTallied
        );
        let h = cache.health(&acct)?;
        let w = profit_weight(policy, acct.pnl, h.unrealized, h.notional, h.equity)?;
        // Capital basis: capital plus what left during this epoch (charge still capped at
        // the capital the account has, in `clawback`).
        let capital = acct
            .capital
            .safe_add(acct.withdrawn_in(ex.epoch.epoch_id))?;
        let recorded = ex
            .epoch
            .record_tally(info.key(), &mut acct.clawback, w, capital)?;
        crate::events::emit(recorded);
        // Written back at once, so a later copy of the same account would see the tally.
        acct.exit(&crate::ID)?;
    }
    Ok(())
}
