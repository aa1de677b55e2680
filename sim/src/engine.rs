//! The price path, print by print: every account below maintenance margin is liquidated
//! with the program's sizing and pricing (`base_to_liquidate`, `liquidation_price`, the
//! insurance share of the discount, or the insurance-paid fee when equity is gone); an
//! account left flat with negative equity is bankrupt, its loss taken by the insurance
//! fund first and the rest recorded as the deficit.
//!
//! The liquidator is outside the population (a keeper with unlimited capacity). Under
//! [`Mode::Adl`] a bankrupt position whose loss the insurance fund cannot cover is instead
//! closed against the opposite side's auto-deleveraging queue at its bankruptcy price.
//! The queue is ranked once per print (as exchanges publish it) and consumed in order.

use anyhow::Result;
use backstop::math::fixed::{value_ceil, value_floor};
use backstop::math::health::bankruptcy_shortfall;
use backstop::math::liquidation::{
    insurance_paid_fee, liquidation_terms_sized, terms_for_base, LiquidationParams,
};
use backstop::math::trade::{apply_fill, taker_quote};

use crate::{health, math, Account, Market};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Liquidate into the liquidator; bankruptcies go to insurance, then the deficit.
    Liquidate,
    /// As `Liquidate`, except a bankruptcy the insurance fund cannot cover is closed
    /// against the ADL queue (BitMEX/Bybit): ranked by PnL% × effective leverage, filled at
    /// the bankrupt account's bankruptcy price.
    Adl,
}

/// The state after the path.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub accounts: Vec<Account>,
    pub final_price: u64,
    pub insurance_start: u64,
    pub insurance_end: u64,
    /// Insurance paid out: bankruptcy losses and liquidator fees on underwater accounts.
    pub insurance_paid: u64,
    /// Losses beyond capital, before insurance.
    pub bankrupt_loss: u64,
    /// What insurance could not cover: the deficit to allocate.
    pub deficit: u64,
    pub liquidations: u32,
    pub bankruptcies: u32,
    /// Accounts liquidated in the busiest single print: the largest one-step cascade.
    pub max_print_liquidations: u32,
    /// ADL mode: per account (by index), the value taken by closing its position at the
    /// bankruptcy price instead of the mark.
    pub adl_charges: Vec<u64>,
    /// ADL mode: bankruptcies resolved by deleveraging.
    pub adl_events: u32,
}

/// Runs `path` (the first price is where the population stands) over `accounts`.
pub fn run(
    accounts: &[Account],
    path: &[u64],
    m: &Market,
    insurance: u64,
    mode: Mode,
) -> Result<Outcome> {
    let mut o = Outcome {
        accounts: accounts.to_vec(),
        final_price: *path.last().unwrap_or(&0),
        insurance_start: insurance,
        insurance_end: insurance,
        insurance_paid: 0,
        bankrupt_loss: 0,
        deficit: 0,
        liquidations: 0,
        bankruptcies: 0,
        max_print_liquidations: 0,
        adl_charges: vec![0; accounts.len()],
        adl_events: 0,
    };
    let lp = LiquidationParams {
        maintenance_margin_bps: m.maintenance_margin_bps,
        liquidation_fee_bps: m.liquidation_fee_bps,
        buffer_bps: m.liquidation_buffer_bps,
        insurance_share_bps: m.insurance_share_bps,
    };
    for &price in path.iter().skip(1) {
        // ADL queues are ranked once per print (longs, shorts), then consumed in order.
        let mut queues: [Option<Queue>; 2] = [None, None];
        let mut liquidated = 0;
        for i in 0..o.accounts.len() {
            let before = o.liquidations;
            step_account(&mut o, i, price, m, &lp, mode, &mut queues)?;
            liquidated += u32::from(o.liquidations > before);
        }
        o.max_print_liquidations = o.max_print_liquidations.max(liquidated);
    }
    Ok(o)
}

/// An ADL queue: account indices best-ranked first, and how far it has been consumed.
type Queue = (Vec<usize>, usize);

fn step_account(
    o: &mut Outcome,
    i: usize,
    price: u64,
    m: &Market,
    lp: &LiquidationParams,
    mode: Mode,
    queues: &mut [Option<Queue>; 2],
) -> Result<()> {
    // A few passes: a partial liquidation can leave the account liquidatable after
    // rounding; each pass moves at least one atom, so this ends.
    for _ in 0..8 {
        let a = o.accounts[i];
        let h = health(&a, price, m).map_err(math)?;
        if !h.is_liquidatable().map_err(math)? {
            break;
        }
        if mode == Mode::Adl && h.equity < 0 {
            // Insurance would pay the loss and the liquidator's fee; when it cannot, ADL.
            let fee = insurance_paid_fee(
                a.base_qty.unsigned_abs(),
                price,
                m.liquidation_fee_bps,
                m.insurance_share_bps,
            )
            .map_err(math)?;
            if (-h.equity) as u128 + fee as u128 > o.insurance_end as u128 {
                deleverage(o, i, price, m, queues)?;
                break;
            }
        }
        // The program's liquidation terms; when its sizing needs nothing more (rounding at
        // the edge) the simulator closes the whole position so the crash always clears.
        let mut t = liquidation_terms_sized(&h, a.base_qty, price, lp, u64::MAX, |b| {
            m.rates(b).map(|r| r.1)
        })
        .map_err(math)?;
        if t.base == 0 {
            let full = a.base_qty.unsigned_abs();
            t = terms_for_base(h.equity, t.liquidatee_was_long, full, price, lp).map_err(math)?;
        }
        close(&mut o.accounts[i], t.liquidatee_base_delta, t.price)?;
        // The fund receives its share of the discount, then pays what the liquidator is
        // owed beyond it (as the program does).
        o.insurance_end += t.insurance_fee;
        let fee = t.insurance_paid_uncapped.min(o.insurance_end);
        o.insurance_end -= fee;
        o.insurance_paid += fee;
        o.liquidations += 1;
    }
    resolve_bankruptcy(o, i);
    Ok(())
}

/// Applies a fill of `delta` base at `price` to the account (the quote rounds against it).
fn close(a: &mut Account, delta: i64, price: u64) -> Result<()> {
    let quote = taker_quote(delta, price).map_err(math)?;
    let f = apply_fill(a.base_qty, a.quote_basis, delta, quote).map_err(math)?;
    a.base_qty = f.base_qty;
    a.quote_basis = f.quote_basis;
    a.pnl = a
        .pnl
        .checked_add(f.realized)
        .ok_or_else(|| anyhow::anyhow!("pnl overflow"))?;
    Ok(())
}

/// Flat with negative equity: insurance first, then the deficit; the account is zeroed.
fn resolve_bankruptcy(o: &mut Outcome, i: usize) {
    let a = &mut o.accounts[i];
    let Ok(Some(loss)) = bankruptcy_shortfall(a.capital, a.pnl, a.base_qty != 0) else {
        return;
    };
    let cover = loss.min(o.insurance_end);
    o.insurance_end -= cover;
    o.insurance_paid += cover;
    o.bankrupt_loss += loss;
    o.deficit += loss - cover;
    o.bankruptcies += 1;
    a.capital = 0;
    a.pnl = 0;
}

/// Closes account `i`'s whole position against the opposite side at its bankruptcy price,
/// in ADL-rank order, charging each counterparty |bankruptcy price − mark| per base atom.
fn deleverage(
    o: &mut Outcome,
    i: usize,
    price: u64,
    m: &Market,
    queues: &mut [Option<Queue>; 2],
) -> Result<()> {
    let a = o.accounts[i];
    let long = a.base_qty > 0;
    // Bankruptcy price: equity(P) = capital + pnl + base·P − basis = 0. Rounded so the
    // bankrupt account ends at equity ≥ 0 (a long sells a little higher, a short buys back
    // a little lower): the counterparties, not a deficit, absorb the last atom.
    let v = a.quote_basis as i128 - a.capital as i128 - a.pnl as i128; // = base·P_bk / 10⁹
    let scaled = v * backstop::constants::PRICE_PRECISION;
    let b = a.base_qty as i128;
    // The program's division helpers take a positive divisor: a short divides −V by −b.
    let p_bk = if long {
        backstop::math::fixed::div_ceil(scaled, b).map_err(math)?
    } else {
        backstop::math::fixed::div_floor(-scaled, -b).map_err(math)?
    };
    let p_bk =
        u64::try_from(p_bk.max(1)).map_err(|_| anyhow::anyhow!("bankruptcy price out of range"))?;
    // The queue of the opposite side (shorts for a bankrupt long), ranked at this print.
    let side = usize::from(long);
    if queues[side].is_none() {
        queues[side] = Some((rank(o, price, m, !long)?, 0));
    }
    let (queue, cursor) = queues[side].as_mut().expect("just built");
    let mut left = a.base_qty.unsigned_abs();
    while left > 0 && *cursor < queue.len() {
        let j = queue[*cursor];
        let c = o.accounts[j];
        if j == i || c.base_qty == 0 || (c.base_qty > 0) == long {
            *cursor += 1;
            continue;
        }
        let x = c.base_qty.unsigned_abs().min(left);
        // The counterparty closes x at P_bk instead of the mark: the difference is taken.
        let taken = if long {
            // A short buys back at P_bk > mark.
            value_ceil(x as i64, p_bk).map_err(math)?
                - value_floor(x as i64, price).map_err(math)?
        } else {
            // A long sells at P_bk < mark.
            value_ceil(x as i64, price).map_err(math)?
                - value_floor(x as i64, p_bk).map_err(math)?
        };
        let delta = if long { x as i64 } else { -(x as i64) };
        close(&mut o.accounts[j], delta, p_bk)?;
        o.adl_charges[j] += taken.max(0) as u64;
        left -= x;
    }
    let filled = a.base_qty.unsigned_abs() - left;
    let delta = if long {
        -(filled as i64)
    } else {
        filled as i64
    };
    if filled > 0 {
        close(&mut o.accounts[i], delta, p_bk)?;
    }
    if left > 0 {
        // The opposite side ran out (it was liquidated away): the rest goes to the
        // liquidator at the mark, and what is lost there to insurance and the deficit.
        let rest = if long { -(left as i64) } else { left as i64 };
        close(&mut o.accounts[i], rest, price)?;
    }
    o.adl_events += 1;
    resolve_bankruptcy(o, i);
    // Whatever dust the rounding left the bankrupt account is its own (equity ≥ 0).
    Ok(())
}

/// Accounts holding `longs` (or shorts) ranked for ADL: PnL% × effective leverage, highest
/// first (ties by id); accounts with no equity last.
fn rank(o: &Outcome, price: u64, m: &Market, longs: bool) -> Result<Vec<usize>> {
    let mut q: Vec<(i128, u32, usize)> = vec![];
    for (j, c) in o.accounts.iter().enumerate() {
        if c.base_qty == 0 || (c.base_qty > 0) != longs {
            continue;
        }
        let h = health(c, price, m).map_err(math)?;
        let upnl = c.pnl as i128 + h.unrealized;
        let score = if h.equity > 0 && c.capital > 0 {
            // (upnl / capital) · (notional / equity), scaled by 10⁶; used for order only.
            upnl.saturating_mul(h.notional as i128)
                .saturating_mul(1_000_000)
                / (c.capital as i128 * h.equity)
        } else {
            i128::MIN
        };
        q.push((score, c.id, j));
    }
    q.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    Ok(q.into_iter().map(|(_, _, j)| j).collect())
}
