//! Liquidation sizing and pricing (docs/DESIGN.md §5.1).

use super::fixed::{base_for_notional_ceil, bps_ceil, bps_floor, div_ceil_u128, notional_ceil};
use super::health::Health;
use super::safe::{cast, MathError, MathResult, SafeMath};
use super::trade::taker_quote;
use crate::constants::BPS_DENOMINATOR;

/// Market and exchange parameters a liquidation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiquidationParams {
    pub maintenance_margin_bps: u16,
    pub liquidation_fee_bps: u16,
    /// Target after liquidation: equity ≥ MM · (1 + buffer).
    pub buffer_bps: u16,
    /// Share of the liquidation fee that goes to the insurance fund.
    pub insurance_share_bps: u16,
}

/// Price at which the liquidator takes over the liquidatee's position: the oracle price
/// moved by the fee in the liquidator's favour. A long is bought from the liquidatee below
/// the oracle (rounded down), a short above it (rounded up) — both against the liquidatee.
pub fn liquidation_price(price: u64, fee_bps: u16, liquidatee_is_long: bool) -> MathResult<u64> {
    let d = BPS_DENOMINATOR as u128;
    if liquidatee_is_long {
        cast(
            (price as u128)
                .safe_mul(d.safe_sub(fee_bps as u128)?)?
                .safe_div(d)?,
        )
    } else {
        cast(div_ceil_u128(
            (price as u128).safe_mul(d.safe_add(fee_bps as u128)?)?,
            d,
        )?)
    }
}

/// Base atoms (absolute) to move from a liquidatee's position of `position_base` in one
/// market so that afterwards equity ≥ MM · (1 + buffer), assuming the transfer costs the
/// liquidatee `fee_bps` of the moved notional (0 when `discounted` is false, i.e. when its
/// equity is already ≤ 0 and the insurance fund pays the liquidator instead).
///
/// Derivation, with n the moved notional, E equity, M maintenance margin, m the MM ratio,
/// f the fee ratio and B = 1 + buffer:  E − n·f ≥ B·(M − n·m)  ⇔  n ≥ (B·M − E)/(B·m − f).
/// Rounded up, plus a slack for the atoms rounding costs (so the liquidatee ends at or
/// above target, not one atom short and liquidatable again for dust), capped at the whole
/// position and at `max_base` (the liquidator's own limit). Returns 0 when the account is
/// not below target.
pub fn base_to_liquidate(
    health: &Health,
    position_base: i64,
    price: u64,
    params: &LiquidationParams,
    discounted: bool,
    max_base: u64,
) -> MathResult<u64> {
    let d = BPS_DENOMINATOR as i128;
    let b = d.safe_add(params.buffer_bps as i128)?; // B · 10⁴
    let fee = if discounted {
        params.liquidation_fee_bps as i128
    } else {
        0
    };
    // Numerator and denominator scaled by 10⁴ · 10⁴.
    let mm: i128 = cast(health.maintenance_margin)?;
    let gap = b.safe_mul(mm)?.safe_sub(d.safe_mul(health.equity)?)?;
    if gap <= 0 {
        return Ok(0);
    }
    // Rounding slack: the closing fill's quote and the remaining position's value each
    // cost the liquidatee < 1 atom, and the remaining MM rounds up by < 1 atom (× B).
    let need = gap.safe_add(d.safe_mul(2)?)?.safe_add(b)?;
    let per_notional = b
        .safe_mul(params.maintenance_margin_bps as i128)?
        .safe_sub(d.safe_mul(fee)?)?;
    if per_notional <= 0 {
        // Parameter bounds forbid fee ≥ MM; refuse rather than divide by a non-positive.
        return Err(MathError::InvalidInput);
    }
    let notional = div_ceil_u128(cast(d.safe_mul(need)?)?, cast(per_notional)?)?;
    let base = base_for_notional_ceil(notional, price)?;
    let full = position_base.unsigned_abs() as u128;
    cast(base.min(full).min(max_base as u128))
}

/// Value of the discount the liquidator receives on `base` atoms: |base| · |P − P_liq|,
/// rounded up (it is charged against the liquidatee).
pub fn discount_value(base: u64, price: u64, liquidation_price: u64) -> MathResult<u128> {
    notional_ceil(cast(base)?, price.abs_diff(liquidation_price))
}

/// Insurance fund's share of a liquidation discount, owed by the liquidator: rounds up.
pub fn insurance_share(discount: u128, insurance_share_bps: u16) -> MathResult<u64> {
    cast(bps_ceil(discount, insurance_share_bps)?)
}

/// The fee the insurance fund pays a liquidator who takes over an account whose equity is
/// already ≤ 0 (no discount): the liquidator's share of fee_bps on the moved notional,
/// rounded down (it is paid *to* the liquidator).
pub fn insurance_paid_fee(
    base: u64,
    price: u64,
    fee_bps: u16,
    insurance_share_bps: u16,
) -> MathResult<u64> {
    let notional = super::fixed::notional_floor(cast(base)?, price)?;
    let fee = bps_floor(notional, fee_bps)?;
    let keeper_share_bps = (BPS_DENOMINATOR as u16).safe_sub(insurance_share_bps)?;
    cast(bps_floor(fee, keeper_share_bps)?)
}

/// The liquidatee's side of a closing fill of `base` atoms of a position that was long
/// (`was_long`) at `price`: (base delta, quote delta). The liquidatee is the taker, so
/// rounding goes against it; the liquidator's side is the exact opposite.
pub fn liquidatee_fill(was_long: bool, base: u64, price: u64) -> MathResult<(i64, i64)> {
    let b: i64 = cast(base)?;
    let delta = if was_long { b.safe_mul(-1)? } else { b };
    Ok((delta, taker_quote(delta, price)?))
}

/// Everything one liquidation of one position does, decided from the liquidatee's
/// health and the market's oracle price. `liquidate` executes it; the keeper plans with
/// it, so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiquidationTerms {
    /// Base atoms moved (absolute); 0 when the account is not below target.
    pub base: u64,
    pub liquidatee_was_long: bool,
    /// The liquidatee's equity is positive: the liquidator takes the position at a
    /// discount — never more than that equity, so a liquidation never creates bad debt.
    /// Otherwise it moves at the oracle price and the insurance fund pays the liquidator's
    /// fee.
    pub discounted: bool,
    /// Price of the takeover (fee-shifted when discounted).
    pub price: u64,
    /// The liquidatee's fill; the liquidator's is the opposite.
    pub liquidatee_base_delta: i64,
    pub liquidatee_quote_delta: i64,
    /// Owed by the liquidator to the insurance fund (discounted liquidations).
    pub insurance_fee: u64,
    /// Owed by the insurance fund to the liquidator, before it is capped at the fund's
    /// balance: its whole fee when the equity is ≤ 0, or the part of its fee the equity
    /// cap withheld from the discount.
    pub insurance_paid_uncapped: u64,
}

/// The terms of liquidating at most `max_base` atoms of a position of `position_base`
/// at oracle price `price`, for a liquidatee of `health`, in a market with fixed margin
/// rates (see [`liquidation_terms_sized`]).
pub fn liquidation_terms(
    health: &Health,
    position_base: i64,
    price: u64,
    params: &LiquidationParams,
    max_base: u64,
) -> MathResult<LiquidationTerms> {
    liquidation_terms_sized(health, position_base, price, params, max_base, |_| {
        Ok(params.maintenance_margin_bps)
    })
}

/// [`liquidation_terms`] for a market whose maintenance rate depends on position size:
/// `mm_at(base)` is the rate of a position of `base` atoms (`margin::size_scaled_rates`).
///
/// Sizing needs the maintenance margin a partial close frees per unit of notional. With
/// size-scaled rates, closing q of b frees at least q·P·mm(b − q) (the rate only falls as
/// the position shrinks), so any rate at or below mm(b − q) gives a size that restores
/// the target. It starts from the base rate (always valid, but it over-closes a large
/// position — by 3x at 20% margin), then up to three times re-sizes with the rate at the
/// size the previous pass leaves: each pass is still valid, since its smaller close
/// leaves a larger position whose rate is at least the one used, and keeps the smaller.
///
/// Who pays — the liquidatee's discount (capped at its equity) or, at equity ≤ 0, the
/// insurance fund's fee — is decided on `health.equity_mid`, the equity with degraded
/// markets at their midpoint: a stale market's haircut may make an account liquidatable
/// (sizing uses it), but never makes the insurance fund pay for a shortfall that exists
/// only under the haircut.
pub fn liquidation_terms_sized(
    health: &Health,
    position_base: i64,
    price: u64,
    params: &LiquidationParams,
    max_base: u64,
    mm_at: impl Fn(i64) -> MathResult<u16>,
) -> MathResult<LiquidationTerms> {
    let discounted = health.equity_mid > 0;
    let was_long = position_base > 0;
    let mut p = *params;
    let mut base = base_to_liquidate(health, position_base, price, &p, discounted, max_base)?;
    for _ in 0..3 {
        let left: i64 = cast(position_base.unsigned_abs().safe_sub(base)?)?;
        let mm = mm_at(left)?;
        if mm <= p.maintenance_margin_bps {
            break;
        }
        p.maintenance_margin_bps = mm;
        let next = base_to_liquidate(health, position_base, price, &p, discounted, max_base)?;
        if next >= base {
            break;
        }
        base = next;
    }
    terms_for_base(health.equity_mid, was_long, base, price, params)
}

/// Atoms of equity a discounted takeover leaves unspent for rounding: the closing fill's
/// quote and the valuation of what remains each cost the liquidatee less than one atom.
const ROUNDING_ROOM: i128 = 2;

/// The takeover price for a liquidatee with `equity` > 0: the full fee discount when
/// it fits in the equity (less [`ROUNDING_ROOM`]), otherwise the oracle price moved only
/// as far as the equity pays for — so the liquidatee never ends below zero and the
/// liquidation never creates the bad debt it exists to prevent.
pub fn capped_liquidation_price(
    equity: i128,
    base: u64,
    price: u64,
    fee_bps: u16,
    was_long: bool,
) -> MathResult<u64> {
    let full = liquidation_price(price, fee_bps, was_long)?;
    let room = equity.safe_sub(ROUNDING_ROOM)?.max(0);
    if base == 0 || discount_value(base, price, full)? <= cast::<i128, u128>(room)? {
        return Ok(full);
    }
    // The largest per-atom move d with ⌈base · d / 10⁹⌉ ≤ room: d = ⌊room · 10⁹ / base⌋.
    let d: u64 = cast(
        cast::<i128, u128>(room)?
            .safe_mul(crate::constants::PRICE_PRECISION as u128)?
            .safe_div(u128::from(base))?,
    )?;
    if was_long {
        price.safe_sub(d.min(price))
    } else {
        price.safe_add(d)
    }
}

/// The terms of moving exactly `base` atoms of a position (long if `was_long`) at oracle
/// price `price` for a liquidatee whose equity is `equity`: discounted (capped at the
/// equity) when it is positive, at the oracle otherwise (see
/// [`LiquidationTerms::discounted`]). The liquidator's fee is the same either way — the
/// discount net of the insurance share, topped up by the insurance fund where the
/// discount falls short.
pub fn terms_for_base(
    equity: i128,
    was_long: bool,
    base: u64,
    price: u64,
    params: &LiquidationParams,
) -> MathResult<LiquidationTerms> {
    let discounted = equity > 0;
    let fee_bps = params.liquidation_fee_bps;
    let px = if discounted {
        capped_liquidation_price(equity, base, price, fee_bps, was_long)?
    } else {
        price
    };
    let (delta, quote) = liquidatee_fill(was_long, base, px)?;
    let (insurance_fee, insurance_paid_uncapped) = if discounted {
        let discount = discount_value(base, price, px)?;
        let share = insurance_share(discount, params.insurance_share_bps)?;
        // What the liquidator would have kept of the full discount, and what it keeps of
        // the capped one: the fund pays the difference.
        let full = discount_value(base, price, liquidation_price(price, fee_bps, was_long)?)?;
        let full_net = full.safe_sub(u128::from(insurance_share(
            full,
            params.insurance_share_bps,
        )?))?;
        let net = discount.safe_sub(u128::from(share))?;
        (share, cast(full_net.saturating_sub(net))?)
    } else {
        let paid = insurance_paid_fee(base, price, fee_bps, params.insurance_share_bps)?;
        (0, paid)
    };
    Ok(LiquidationTerms {
        base,
        liquidatee_was_long: was_long,
        discounted,
        price: px,
        liquidatee_base_delta: delta,
        liquidatee_quote_delta: quote,
        insurance_fee,
        insurance_paid_uncapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::PRICE_PRECISION;
    use crate::math::health::{compute_health, PositionMark};
    use crate::math::trade::{apply_fill, taker_quote};
    use proptest::prelude::*;

    const P: u64 = PRICE_PRECISION as u64; // 1 quote atom per base atom

    fn params() -> LiquidationParams {
        LiquidationParams {
            maintenance_margin_bps: 500,
            liquidation_fee_bps: 100,
            buffer_bps: 1_000,
            insurance_share_bps: 2_000,
        }
    }

    fn mark(base: i64, basis: i64, price: u64) -> PositionMark {
        PositionMark {
            base_qty: base,
            quote_basis: basis,
            price,
            conf: 0,
            initial_margin_bps: 1_000,
            maintenance_margin_bps: 500,
            stable_price: 0,
            unrealized_weight_bps: 10_000,
            degraded: false,
            stale: false,
        }
    }

    #[test]
    fn liquidation_price_moves_against_liquidatee() {
        assert_eq!(liquidation_price(10_000, 100, true).unwrap(), 9_900);
        assert_eq!(liquidation_price(10_000, 100, false).unwrap(), 10_100);
        assert_eq!(liquidation_price(1, 100, true).unwrap(), 0);
        assert_eq!(liquidation_price(1, 100, false).unwrap(), 2);
    }

    #[test]
    fn worked_partial_liquidation() {
        // Long 1_000_000 atoms bought at 1.0, now 0.95: equity 10_000 + (950_000 − 1_000_000)
        // − ... capital 60_000 → equity 10_000; MM = 5% of 950_000 = 47_500.
        let h = compute_health(60_000, 0, &[mark(1_000_000, 1_000_000, 95 * P / 100)]).unwrap();
        assert_eq!(h.equity, 10_000);
        assert_eq!(h.maintenance_margin, 47_500);
        let q = base_to_liquidate(&h, 1_000_000, 95 * P / 100, &params(), true, u64::MAX).unwrap();
        // n ≥ (1.1·47_500 − 10_000 + 3.1 slack)/(1.1·0.05 − 0.01) = 42_253.1/0.045
        //   = 938_957.8 → 938_958 notional → ⌈938_958 / 0.95⌉ = 988_377 base.
        assert_eq!(q, 988_377);
        // After: the liquidatee is at or above target.
        let px = liquidation_price(95 * P / 100, 100, true).unwrap();
        let quote = taker_quote(-(q as i64), px).unwrap();
        let after = apply_fill(1_000_000, 1_000_000, -(q as i64), quote).unwrap();
        let h2 = compute_health(
            60_000,
            after.realized,
            &[mark(after.base_qty, after.quote_basis, 95 * P / 100)],
        )
        .unwrap();
        assert!(h2.equity * 10_000 >= h2.maintenance_margin as i128 * 11_000);
    }

    #[test]
    fn healthy_account_needs_nothing() {
        let h = compute_health(1_000_000, 0, &[mark(1_000, 1_000, P)]).unwrap();
        assert_eq!(
            base_to_liquidate(&h, 1_000, P, &params(), true, u64::MAX).unwrap(),
            0
        );
    }

    #[test]
    fn underwater_account_is_closed_in_full_and_capped() {
        let h = compute_health(0, 0, &[mark(1_000, 2_000, P)]).unwrap();
        assert!(h.equity < 0);
        assert_eq!(
            base_to_liquidate(&h, 1_000, P, &params(), false, u64::MAX).unwrap(),
            1_000
        );
        assert_eq!(
            base_to_liquidate(&h, 1_000, P, &params(), false, 10).unwrap(),
            10
        );
    }

    #[test]
    fn fee_at_mm_is_refused() {
        let mut p = params();
        p.liquidation_fee_bps = 600;
        p.buffer_bps = 0;
        let h = compute_health(0, 0, &[mark(1_000, 1_000, P)]).unwrap();
        assert_eq!(
            base_to_liquidate(&h, 1_000, P, &p, true, u64::MAX),
            Err(MathError::InvalidInput)
        );
    }

    #[test]
    fn insurance_paid_fee_rounds_down() {
        // notional 1_000, fee 1% = 10, keeper share 80% = 8.
        assert_eq!(insurance_paid_fee(1_000, P, 100, 2_000).unwrap(), 8);
        assert_eq!(insurance_share(10, 2_000).unwrap(), 2);
        assert_eq!(insurance_share(1, 1).unwrap(), 1);
    }

    /// A one-position account entered at `entry_bps` of P and moved `move_bps` against it,
    /// with capital chosen so that its equity lands at `equity_share_bps` of its MM:
    /// (base, basis, price, capital, health).
    fn below_maintenance(
        size: i64,
        entry_bps: u64,
        move_bps: u64,
        equity_share_bps: u64,
        long: bool,
    ) -> (i64, i64, u64, u64, Health) {
        let entry = P * entry_bps / 10_000;
        let base = if long { size } else { -size };
        let basis = taker_quote(base, entry).unwrap();
        let price = if long {
            entry * (10_000 - move_bps) / 10_000
        } else {
            entry * (10_000 + move_bps) / 10_000
        };
        let probe = compute_health(0, 0, &[mark(base, basis, price)]).unwrap();
        let target = (probe.maintenance_margin as i128 * equity_share_bps as i128 / 10_000).max(1);
        let capital = (target - probe.equity).max(0) as u64;
        let h = compute_health(capital, 0, &[mark(base, basis, price)]).unwrap();
        (base, basis, price, capital, h)
    }

    proptest! {
        /// A liquidatee with positive equity never ends below zero, whatever its equity
        /// relative to the fee, and the liquidator's fee (kept discount plus what the
        /// fund owes it) is never less than the uncapped takeover would have given it.
        #[test]
        fn liquidation_never_creates_bad_debt(
            size in 1i64..1_000_000_000,
            entry_bps in 9_000u64..11_000,
            move_bps in 0u64..2_000,
            equity_share_bps in 1u64..10_000,
            long in any::<bool>(),
        ) {
            // Equity strictly between 0 and MM (often below the fee on the whole
            // position, where the cap binds).
            let (base, basis, price, capital, h) =
                below_maintenance(size, entry_bps, move_bps, equity_share_bps, long);
            prop_assume!(h.is_liquidatable().unwrap() && h.equity > 0);
            let t = terms_for_base(h.equity, long, size as u64, price, &params()).unwrap();
            let after = apply_fill(base, basis, t.liquidatee_base_delta, t.liquidatee_quote_delta).unwrap();
            let h2 = compute_health(capital, after.realized, &[mark(after.base_qty, after.quote_basis, price)]).unwrap();
            prop_assert!(h2.equity >= 0, "equity {} -> {}", h.equity, h2.equity);
            let uncapped = terms_for_base(i128::MAX / 4, long, size as u64, price, &params()).unwrap();
            let fee = |t: &LiquidationTerms| discount_value(size as u64, price, t.price).unwrap() as i128
                - t.insurance_fee as i128 + t.insurance_paid_uncapped as i128;
            prop_assert!(fee(&t) >= fee(&uncapped));
        }

        /// A partial liquidation leaves the liquidatee at or above MM·(1+buffer) whenever it
        /// does not have to close the whole position.
        #[test]
        fn partial_liquidation_reaches_target(
            size in 1_000i64..1_000_000_000,
            entry_bps in 9_000u64..11_000,
            move_bps in 0u64..3_000,
            equity_share_bps in 1u64..10_000,
            long in any::<bool>(),
        ) {
            // Equity strictly between 0 and MM.
            let (base, basis, price, capital, h) =
                below_maintenance(size, entry_bps, move_bps, equity_share_bps, long);
            prop_assume!(h.is_liquidatable().unwrap() && h.equity > 0);
            let q = base_to_liquidate(&h, base, price, &params(), true, u64::MAX).unwrap();
            prop_assert!(q > 0);
            prop_assume!(q < size as u64);
            let px = liquidation_price(price, 100, long).unwrap();
            let moved = if long { -(q as i64) } else { q as i64 };
            let quote = taker_quote(moved, px).unwrap();
            let after = apply_fill(base, basis, moved, quote).unwrap();
            let h2 = compute_health(capital, after.realized, &[mark(after.base_qty, after.quote_basis, price)]).unwrap();
            prop_assert!(h2.equity * 10_000 >= h2.maintenance_margin as i128 * 11_000,
                "equity {} mm {}", h2.equity, h2.maintenance_margin);
        }
    }
}
