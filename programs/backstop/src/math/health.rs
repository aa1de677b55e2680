//! Account health: equity, initial and maintenance margin (docs/DESIGN.md §4).

use super::fixed::{bps_ceil, notional_ceil, value_floor};
use super::margin::{initial_margin_price, weighted_unrealized};
use super::oracle_price::widen;
use super::safe::{cast, MathResult, SafeMath};
use crate::constants::{BPS_DENOMINATOR, MAX_STALE_HAIRCUT_BPS, PRICE_PRECISION};

/// One open position with the price it is marked at and its market's margin ratios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionMark {
    /// Signed base atoms (long > 0).
    pub base_qty: i64,
    /// Quote atoms paid for the position (long > 0) or received (short < 0).
    pub quote_basis: i64,
    /// Oracle price (fixed point, see `constants`).
    pub price: u64,
    /// Oracle confidence interval, same units as `price`.
    pub conf: u64,
    /// The position's margin rates (`math::margin::size_scaled_rates` of its size).
    pub initial_margin_bps: u16,
    pub maintenance_margin_bps: u16,
    /// The market's smoothed price (0: none): initial margin values the position at the
    /// worse of it and the confidence edge.
    pub stable_price: u64,
    /// Share of unrealized profit initial margin counts (bps).
    pub unrealized_weight_bps: u16,
    /// The market's price failed a guard (stale, too uncertain, unusable) and is a
    /// conservative stand-in (`oracle_price::conservative`): the position is valued at the
    /// edge of `conf` against the holder in maintenance checks too, and its margin
    /// measured at the interval's upper edge.
    pub degraded: bool,
    /// Degraded because old or a fallback (`ValuedPrice::stale`): initial margin takes
    /// the widest interval, ±`MAX_STALE_HAIRCUT_BPS` (or the interval, if wider).
    pub stale: bool,
}

/// Health of one account at one set of prices. All amounts in collateral atoms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// capital + pnl + unrealized, positions valued at the oracle price (rounded down).
    pub equity: i128,
    /// What initial-margin checks use: each position valued at the worse for the holder
    /// of its confidence edge (longs at price − conf, shorts at price + conf) and its
    /// market's smoothed price, with unrealized profit counted at the market's weight.
    pub equity_conservative: i128,
    /// Equity with every degraded market at its midpoint instead of its edge (equal to
    /// `equity` when none is degraded): who pays a liquidation — the liquidatee's
    /// discount or the insurance fund's fee — is decided on it, so a haircut alone never
    /// makes the insurance fund pay (docs/DESIGN.md §8.2).
    pub equity_mid: i128,
    /// Σ (base·P − quote_basis), rounded down.
    pub unrealized: i128,
    /// Σ |base|·P, rounded up.
    pub notional: u128,
    /// Σ |base|·P·IM, rounded up.
    pub initial_margin: u128,
    /// Σ |base|·P·MM, rounded up.
    pub maintenance_margin: u128,
    /// Number of open positions.
    pub open_positions: u8,
    /// Open positions valued at a degraded price.
    pub degraded_positions: u8,
}

impl Health {
    /// Equity − MM. Negative means liquidatable.
    pub fn maintenance_health(&self) -> MathResult<i128> {
        self.equity.safe_sub(cast(self.maintenance_margin)?)
    }

    /// Conservative equity − IM. Negative means the account may not add risk or withdraw.
    pub fn initial_health(&self) -> MathResult<i128> {
        self.equity_conservative
            .safe_sub(cast(self.initial_margin)?)
    }

    /// Liquidatable iff equity < MM (docs/DESIGN.md §4).
    pub fn is_liquidatable(&self) -> MathResult<bool> {
        Ok(self.open_positions > 0 && self.maintenance_health()? < 0)
    }

    /// Bankrupt iff equity < 0 and no open positions.
    pub fn is_bankrupt(&self) -> bool {
        self.open_positions == 0 && self.equity < 0
    }

    pub fn meets_initial_margin(&self) -> MathResult<bool> {
        Ok(self.initial_health()? >= 0)
    }
}

/// An account is bankrupt when it holds no open position and capital + pnl < 0. Returns
/// its shortfall S (the negative equity, written up to zero by `resolve_bankruptcy`)
/// then, `None` otherwise. Needs no price: a flat account's equity is capital + pnl.
pub fn bankruptcy_shortfall(
    capital: u64,
    pnl: i64,
    has_open_positions: bool,
) -> MathResult<Option<u64>> {
    let equity = i128::from(capital).safe_add(i128::from(pnl))?;
    if has_open_positions || equity >= 0 {
        return Ok(None);
    }
    Ok(Some(cast(equity.unsigned_abs())?))
}

/// Health of an account with `capital`, settled `pnl` and the given marked positions.
pub fn compute_health(capital: u64, pnl: i64, positions: &[PositionMark]) -> MathResult<Health> {
    let mut h = Health {
        equity: (capital as i128).safe_add(pnl as i128)?,
        ..Health::default()
    };
    h.equity_conservative = h.equity;
    h.equity_mid = h.equity;
    for p in positions {
        if p.base_qty == 0 && p.quote_basis == 0 {
            continue;
        }
        // Confidence-adjusted price: against the holder in both directions.
        let long = p.base_qty >= 0;
        let conservative_price = if long {
            p.price.saturating_sub(p.conf)
        } else {
            p.price.safe_add(p.conf)?
        };
        let conservative_value = value_floor(p.base_qty, conservative_price)?;
        // Initial margin: the worse of that edge and the smoothed price; a stale price at
        // the widest stand-in interval, ±MAX_STALE_HAIRCUT_BPS (its haircut grows with
        // age, but a real price can move faster: nothing is withdrawn or added against a
        // stale price that has not yet widened enough).
        let im_conf = if p.degraded && p.stale {
            widen(p.price, MAX_STALE_HAIRCUT_BPS)?.max(p.conf)
        } else {
            p.conf
        };
        let im_price = initial_margin_price(p.price, im_conf, p.stable_price, long)?;
        let im_unrealized = weighted_unrealized(
            value_floor(p.base_qty, im_price)?.safe_sub(p.quote_basis as i128)?,
            p.unrealized_weight_bps,
        )?;
        // A degraded price is valued at the conservative edge everywhere, and its margin
        // measured at the interval's top (the larger notional).
        let mid_value = value_floor(p.base_qty, p.price)?;
        let (value, notional) = if p.degraded {
            (
                conservative_value,
                notional_ceil(p.base_qty, p.price.safe_add(p.conf)?)?,
            )
        } else {
            (mid_value, notional_ceil(p.base_qty, p.price)?)
        };
        let unrealized = value.safe_sub(p.quote_basis as i128)?;
        h.unrealized = h.unrealized.safe_add(unrealized)?;
        h.equity = h.equity.safe_add(unrealized)?;
        h.equity_mid = h
            .equity_mid
            .safe_add(mid_value.safe_sub(p.quote_basis as i128)?)?;
        h.equity_conservative = h.equity_conservative.safe_add(im_unrealized)?;
        h.notional = h.notional.safe_add(notional)?;
        h.initial_margin = h
            .initial_margin
            .safe_add(bps_ceil(notional, p.initial_margin_bps)?)?;
        h.maintenance_margin = h
            .maintenance_margin
            .safe_add(bps_ceil(notional, p.maintenance_margin_bps)?)?;
        if p.degraded && p.base_qty != 0 {
            h.degraded_positions = h.degraded_positions.safe_add(1)?;
        }
        if p.base_qty != 0 {
            h.open_positions = h.open_positions.safe_add(1)?;
        }
    }
    Ok(h)
}

/// A fast screen: true when an account is certainly at or above maintenance margin,
/// shown without a division. `positions` yields each open position's mark, or `None`
/// when its market has no usable price (then the screen says nothing: false, as for a
/// degraded mark).
///
/// [`compute_health`] gives equity − MM = capital + pnl + Σ(⌊b·P/10⁹⌋ − basis)
/// − Σ⌈⌈|b|·P/10⁹⌉·mm/10⁴⌉; each floor loses less than 1 atom and each margin term gains
/// less than 2, so for k positions
/// 10¹³·(equity − MM) ≥ 10¹³·(capital + pnl − Σbasis − 3k) + Σ 10⁴·b·P − Σ |b|·P·mm.
/// When that bound is ≥ 0 the exact health (integer divisions, the keeper's per-tick
/// cost) can be skipped; otherwise — or on an overflow — the exact function decides.
pub fn clearly_above_maintenance(
    capital: u64,
    pnl: i64,
    positions: impl IntoIterator<Item = Option<PositionMark>>,
) -> bool {
    let bound = || -> Option<i128> {
        let mut base = i128::from(capital).checked_add(i128::from(pnl))?;
        let mut scaled: i128 = 0;
        for p in positions {
            let p = p?;
            if p.degraded {
                return None; // valued at its interval's edge: not linear in the price
            }
            let price = i128::from(p.price);
            let b = i128::from(p.base_qty);
            base = base.checked_sub(i128::from(p.quote_basis).checked_add(3)?)?;
            scaled = scaled.checked_add(b.checked_mul(price)?.checked_mul(BPS_SCALE)?)?;
            scaled = scaled.checked_sub(
                b.checked_abs()?
                    .checked_mul(price)?
                    .checked_mul(i128::from(p.maintenance_margin_bps))?,
            )?;
        }
        base.checked_mul(PRICE_PRECISION.checked_mul(BPS_SCALE)?)?
            .checked_add(scaled)
    };
    bound().is_some_and(|v| v >= 0)
}

/// Basis points in one, as the screen's integer type.
const BPS_SCALE: i128 = BPS_DENOMINATOR as i128;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::PRICE_PRECISION;
    use proptest::prelude::*;

    const P100: u64 = 100 * PRICE_PRECISION as u64; // 100 quote atoms per base atom

    fn pos(base_qty: i64, quote_basis: i64, price: u64, conf: u64) -> PositionMark {
        PositionMark {
            base_qty,
            quote_basis,
            price,
            conf,
            initial_margin_bps: 1_000,
            maintenance_margin_bps: 500,
            stable_price: 0,
            unrealized_weight_bps: 10_000,
            degraded: false,
            stale: false,
        }
    }

    #[test]
    fn flat_account_is_capital_plus_pnl() {
        let h = compute_health(1_000, -200, &[]).unwrap();
        assert_eq!(h.equity, 800);
        assert_eq!(h.initial_margin, 0);
        assert!(!h.is_liquidatable().unwrap());
        assert!(!h.is_bankrupt());
        let h = compute_health(100, -200, &[]).unwrap();
        assert!(h.is_bankrupt());
    }

    #[test]
    fn long_position_marks_and_margins() {
        // 10 base bought for 1_000, now at 90 per atom: unrealized −100.
        let h = compute_health(500, 0, &[pos(10, 1_000, 90 * PRICE_PRECISION as u64, 0)]).unwrap();
        assert_eq!(h.unrealized, -100);
        assert_eq!(h.equity, 400);
        assert_eq!(h.notional, 900);
        assert_eq!(h.initial_margin, 90);
        assert_eq!(h.maintenance_margin, 45);
        assert_eq!(h.maintenance_health().unwrap(), 355);
    }

    #[test]
    fn confidence_counts_against_both_sides() {
        let conf = PRICE_PRECISION as u64; // 1 quote atom per base atom
        let long = compute_health(0, 0, &[pos(10, 1_000, P100, conf)]).unwrap();
        assert_eq!(long.equity, 0);
        assert_eq!(long.equity_conservative, -10);
        let short = compute_health(0, 0, &[pos(-10, -1_000, P100, conf)]).unwrap();
        assert_eq!(short.equity, 0);
        assert_eq!(short.equity_conservative, -10);
    }

    #[test]
    fn liquidatable_below_maintenance() {
        // Notional 1_000, MM 50: equity 49 is liquidatable, 50 is not.
        let h = compute_health(49, 0, &[pos(10, 1_000, P100, 0)]).unwrap();
        assert!(h.is_liquidatable().unwrap());
        let h = compute_health(50, 0, &[pos(10, 1_000, P100, 0)]).unwrap();
        assert!(!h.is_liquidatable().unwrap());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// The division-free screen never calls an account healthy that [`compute_health`]
        /// puts below maintenance margin — including within an atom of the edge.
        #[test]
        fn screen_agrees_with_compute_health(
            capital in 0u64..2_000_000_000_000,
            pnl in -1_000_000_000_000i64..1_000_000_000_000,
            base in -10_000_000_000i64..10_000_000_000,
            entry in 1i64..1_000_000,
            price in 1u64..10_000,
            mm in 1u16..5_000,
            pick_edge in proptest::bool::ANY,
            offset in -1i128..=1,
        ) {
            let mark = PositionMark {
                base_qty: base,
                quote_basis: ((base as i128 * entry as i128) / 1_000) as i64,
                price: price * PRICE_PRECISION as u64 / 1_000,
                conf: 0,
                initial_margin_bps: mm.saturating_mul(2),
                maintenance_margin_bps: mm,
                stable_price: 0,
                unrealized_weight_bps: 10_000,
                degraded: false,
                stale: false,
            };
            let marks: Vec<PositionMark> = if base == 0 { vec![] } else { vec![mark] };
            let mut capital = capital;
            if pick_edge {
                // Move capital so the exact health lands at −1, 0 or +1 atom.
                let mh = compute_health(capital, pnl, &marks).unwrap().maintenance_health().unwrap();
                let target = (capital as i128 - mh + offset).max(0);
                capital = u64::try_from(target).unwrap_or(capital);
            }
            let exact = compute_health(capital, pnl, &marks).unwrap().maintenance_health().unwrap();
            if clearly_above_maintenance(capital, pnl, marks.iter().copied().map(Some)) {
                prop_assert!(exact >= 0, "screen said healthy, exact health {}", exact);
            }
            // A missing price never passes the screen.
            if !marks.is_empty() {
                prop_assert!(!clearly_above_maintenance(capital, pnl, [None]));
            }
        }

        /// Equity is exact up to one atom per position, rounded down.
        #[test]
        fn equity_rounds_down_within_one_atom(
            capital in 0u64..1_000_000_000_000,
            pnl in -1_000_000_000_000i64..1_000_000_000_000,
            qty in -1_000_000_000_000i64..1_000_000_000_000,
            basis in -1_000_000_000_000i64..1_000_000_000_000,
            price in 1u64..1_000_000_000_000_000,
        ) {
            let h = compute_health(capital, pnl, &[pos(qty, basis, price, 0)]).unwrap();
            let exact_num = (qty as i128) * (price as i128) - (basis as i128) * PRICE_PRECISION
                + (capital as i128 + pnl as i128) * PRICE_PRECISION;
            // equity * PREC <= exact < (equity + 1) * PREC
            prop_assert!(h.equity * PRICE_PRECISION <= exact_num);
            prop_assert!(exact_num < (h.equity + 1) * PRICE_PRECISION);
            prop_assert!(h.equity_conservative <= h.equity);
            prop_assert!(h.maintenance_margin <= h.initial_margin);
        }

        /// Margin requirements scale with size and never round in the account's favour.
        #[test]
        fn margins_round_up(qty in -1_000_000_000i64..1_000_000_000, price in 1u64..1_000_000_000_000) {
            let h = compute_health(0, 0, &[pos(qty, 0, price, 0)]).unwrap();
            let exact = (qty.unsigned_abs() as u128) * (price as u128) * 1_000;
            prop_assert!(h.initial_margin * (PRICE_PRECISION as u128) * 10_000 >= exact);
        }
    }
}
