use anchor_lang::prelude::*;

use crate::accounting::now;
use crate::error::BackstopError;
use crate::events::TallyRecorded;
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
/// SBF build). `backstop_client::batch` packs each transaction to the limit.
#[derive(Accounts)]
pub struct Tally<'info> {
    #[account(
        mut,
        constraint = exchange.epoch.phase == EpochPhase::Tallying @ BackstopError::WrongEpochPhase
    )]
    pub exchange: Account<'info, Exchange>,
}

pub fn handler<'info>(ctx: Context<'info, Tally<'info>>, num_accounts: u8) -> Result<()> {
    let n = num_accounts as usize;
    require!(
        n > 0 && n <= ctx.remaining_accounts.len(),
        BackstopError::InvalidRemainingAccounts
    );
    let (accounts, pairs) = ctx.remaining_accounts.split_at(n);
    let now = now()?;
    let exchange_key = ctx.accounts.exchange.key();
    let ex: &mut Exchange = &mut ctx.accounts.exchange;
    let cache = PriceCache::load(&exchange_key, ex.collateral_decimals, pairs, now)?;
    let round = ex.epoch.round_seq;
    let policy = ex.epoch.policy.into();
    for (i, info) in accounts.iter().enumerate() {
        require!(
            !accounts[..i].iter().any(|o| o.key == info.key),
            BackstopError::DuplicateAccount
        );
        require!(info.is_writable, BackstopError::AccountNotWritable);
        let mut acct = Account::<MarginAccount>::try_from(info)?;
        require_keys_eq!(acct.exchange, exchange_key, BackstopError::WrongExchange);
        require!(
            acct.clawback.tally_round != round,
            BackstopError::AlreadyTallied
        );
        let h = cache.health(&acct)?;
        let w = profit_weight(policy, acct.pnl, h.unrealized, h.notional, h.equity)?;
        // Capital basis: capital plus what left during this epoch (charge still capped at
        // the capital the account has, in `clawback`).
        let capital = acct
            .capital
            .safe_add(acct.withdrawn_in(ex.epoch.epoch_id))?;
        let rec = &mut acct.clawback;
        rec.tally_round = round;
        rec.profit_weight = w.weight;
        rec.profit_cap = w.cap;
        rec.capital_weight = capital;
        let e = &mut ex.epoch;
        e.tallied = e.tallied.safe_add(1)?;
        if w.weight > 0 {
            e.profit_weight_total = e.profit_weight_total.safe_add(w.weight)?;
            e.profit_weighted_accounts = e.profit_weighted_accounts.safe_add(1)?;
        }
        if capital > 0 {
            e.capital_weight_total = e.capital_weight_total.safe_add(capital as u128)?;
            e.capital_weighted_accounts = e.capital_weighted_accounts.safe_add(1)?;
        }
        crate::events::emit(TallyRecorded {
            account: info.key(),
            round,
            profit_weight: w.weight,
            profit_cap: w.cap,
            capital, // the capital-basis weight: capital + withdrawn this epoch
        });
        // Written back at once, so a later copy of the same account would see the tally.
        acct.exit(&crate::ID)?;
    }
    // More accounts than existed at begin cannot be tallied (creation is paused), so this
    // only trips on a bug; it keeps `finalize_tally`'s completeness check meaningful.
    require!(
        ex.epoch.tallied <= ex.epoch.accounts_to_tally,
        BackstopError::TallyIncomplete
    );
    Ok(())
}
