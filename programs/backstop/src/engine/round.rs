//! Clawback rounds on accounts: the price snapshot, tallies at it, charges, and "touch
//! first" (docs/DESIGN.md §6).
//!
//! A round values every account as it stood at `begin_clawback`, at one price per market
//! recorded then. Every instruction that changes a margin account calls [`touch`] before
//! its own change: during `Tallying` an untallied account is tallied first (so its weight
//! is its state at the snapshot, whatever happens to it afterwards), during `Applying` an
//! account that owes a charge pays it first (so no withdrawal, trade or settlement can
//! shrink what it owes). With that, nothing needs to be refused while a round runs.

use anchor_lang::prelude::*;

use crate::error::BackstopError;
use crate::math::clawback::{charge, profit_weight, Weight};
use crate::math::health::{compute_health, PositionMark};
use crate::math::oracle_price;
use crate::math::safe::{negative, SafeMath};
use crate::oracle::decode_oracle;
use crate::state::{ClawbackBasis, EpochPhase, Exchange, MarginAccount, PerpMarket, PnlClock};

use super::{end_round, track};

/// The price a market's positions are valued at for a round (docs/DESIGN.md §6.1):
///
/// - the oracle's price when it passes every check (fresh, confident, positive);
/// - a stale or too uncertain oracle: the price it still holds (its midpoint), with no
///   age or confidence check — one price for every account keeps offsetting positions'
///   weights exactly offsetting, and refusing would let one dead feed stall the round;
/// - an oracle account that cannot be read at all (closed, garbage, non-positive, not
///   representable): the market's `last_price`, the last price a trade or liquidation
///   accepted.
///
/// A wrong oracle account (not `market.oracle`) is refused: the caller must not choose
/// which rule applies.
pub fn snapshot_price(
    oracle: &AccountInfo,
    market: &PerpMarket,
    quote_decimals: u8,
) -> Result<u64> {
    require_keys_eq!(oracle.key(), market.oracle, BackstopError::WrongOracle);
    let read = decode_oracle(oracle, market).ok().and_then(|raw| {
        if raw.price <= 0 {
            return None;
        }
        oracle_price::to_fixed(&raw, quote_decimals, market.base_decimals)
            .ok()
            .map(|f| f.price)
            .filter(|p| *p > 0)
    });
    Ok(read.unwrap_or(market.last_price))
}

/// An account's weights at the round's snapshot: its profit-basis weight under the
/// round's policy (with its cap) and its capital-basis weight — capital plus what it
/// withdrew during this epoch, for an account that has capital (the charge stays capped
/// at the capital it has when charged). LeverageWeighted measures leverage on equity
/// without the capital deposited during this epoch: a deposit made after the loss cannot
/// dilute the weight (touch first covers deposits during the round itself).
pub fn weights_at_snapshot(ex: &Exchange, acct: &MarginAccount) -> Result<(Weight, u64)> {
    let marks: Vec<PositionMark> = acct
        .positions
        .iter()
        .filter(|p| p.active)
        .map(|p| {
            let price = ex
                .round_prices
                .get(usize::from(p.market_index))
                .copied()
                .ok_or(BackstopError::MissingMarketAccounts)?;
            Ok(PositionMark {
                base_qty: p.base_qty,
                quote_basis: p.quote_basis,
                price,
                conf: 0,
                initial_margin_bps: 0,
                maintenance_margin_bps: 0,
                stable_price: 0,
                unrealized_weight_bps: 10_000,
                degraded: false,
                stale: false,
            })
        })
        .collect::<Result<_>>()?;
    let h = compute_health(acct.capital, acct.pnl, &marks)?;
    let deposited = i128::from(acct.deposited_in(ex.epoch.epoch_id));
    let w = profit_weight(
        ex.epoch.round_policy(),
        acct.pnl,
        h.unrealized,
        h.notional,
        h.equity.safe_sub(deposited)?,
    )?;
    let capital = if acct.capital > 0 {
        acct.capital
            .safe_add(acct.withdrawn_in(ex.epoch.epoch_id))?
    } else {
        0
    };
    Ok((w, capital))
}

/// Tallies an untallied account at the snapshot (the `tally` crank and touch first).
pub fn tally_account(ex: &mut Exchange, key: Pubkey, acct: &mut MarginAccount) -> Result<()> {
    require!(
        ex.epoch.due_for_tally(&acct.clawback),
        BackstopError::AlreadyTallied
    );
    let (w, capital) = weights_at_snapshot(ex, acct)?;
    // Untallied means untouched since `begin_clawback`: its standing now is its standing
    // then.
    let at_begin = acct.standing();
    let recorded = ex
        .epoch
        .record_tally(key, &mut acct.clawback, w, capital, at_begin)?;
    crate::events::emit(recorded);
    Ok(())
}

/// Charges an account its share of the round, cᵢ = min(⌈wᵢ · r⌉, capᵢ) — from pnl in
/// the profit basis, from capital in the capital basis — and writes its receipt. Returns
/// the part of the charge beyond the remaining deficit (rounding up leaves less than one
/// atom per account), which the caller moves to the insurance fund.
pub fn charge_account(
    ex: &mut Exchange,
    key: Pubkey,
    acct: &mut MarginAccount,
    clock: PnlClock,
) -> Result<u64> {
    let w = ex.epoch.chargeable(&acct.clawback, acct.capital)?;
    let before = acct.standing();
    let amount = charge(w, ex.epoch.rate())?;
    let debit = negative(amount)?;
    match ex.epoch.basis {
        ClawbackBasis::Profit => acct.add_pnl(debit, &mut ex.books, clock)?,
        ClawbackBasis::Capital => acct.add_capital(debit, &mut ex.books)?,
    }
    let to_deficit = ex.books.reduce_deficit(amount);
    track(ex, before, acct.standing())?;
    let owner = acct.owner;
    let applied = ex
        .epoch
        .apply_charge(key, owner, &mut acct.clawback, w, amount, to_deficit)?;
    crate::events::emit(applied);
    amount.safe_sub(to_deficit).map_err(Into::into)
}

/// Touch first: call before any change to a margin account. During `Tallying` an
/// untallied account is tallied at the snapshot; during `Applying` an account that owes
/// a charge pays it (and the round ends when it was the last). Returns the excess the
/// caller moves to the insurance fund (zero unless a charge was applied).
pub fn touch(
    ex: &mut Exchange,
    exchange_key: Pubkey,
    key: Pubkey,
    acct: &mut MarginAccount,
    clock: PnlClock,
) -> Result<u64> {
    match ex.epoch.phase {
        EpochPhase::Tallying if ex.epoch.due_for_tally(&acct.clawback) => {
            tally_account(ex, key, acct)?;
            Ok(0)
        }
        EpochPhase::Applying if ex.epoch.due_for_clawback(&acct.clawback) => {
            let excess = charge_account(ex, key, acct, clock)?;
            if ex.epoch.round_complete() {
                end_round(ex, exchange_key, clock.now)?;
            }
            Ok(excess)
        }
        _ => Ok(0),
    }
}
