//! Trade settlement: quote amounts, fees, price band and risk direction.

use super::fixed::{bps_ceil, div_ceil, notional_ceil};
use super::health::Health;
use super::safe::{cast, MathError, MathResult, SafeMath};
use crate::constants::{BPS_DENOMINATOR, PRICE_PRECISION};

/// Change of the taker's quote basis for a fill of `base_qty` (taker side, signed) at
/// `price`: ⌈base_qty · price⌉, i.e. a buying taker pays the rounding atom and a selling
/// taker receives one atom less. The maker's basis changes by exactly the negative, so
/// the trade is zero-sum to the atom.
pub fn taker_quote(base_qty: i64, price: u64) -> MathResult<i64> {
    let p: i128 = cast(price)?;
    cast(div_ceil((base_qty as i128).safe_mul(p)?, PRICE_PRECISION)?)
}

/// Taker fee on a fill: ⌈|notional| · bps⌉ (owed by the taker, rounds up).
pub fn taker_fee(base_qty: i64, price: u64, fee_bps: u16) -> MathResult<u64> {
    cast(bps_ceil(notional_ceil(base_qty, price)?, fee_bps)?)
}

/// `price` is within `max_deviation_bps` of `oracle_price` (inclusive).
pub fn within_band(price: u64, oracle_price: u64, max_deviation_bps: u16) -> MathResult<bool> {
    let diff = price.abs_diff(oracle_price) as u128;
    Ok(diff.safe_mul(BPS_DENOMINATOR as u128)?
        <= (oracle_price as u128).safe_mul(max_deviation_bps as u128)?)
}

/// Why a trade's price is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceRefusal {
    /// Further from the oracle than the market's band.
    OutsideBand,
    /// A deficit is open and the price is not the oracle price.
    NotOracle,
}

/// The price rule of a trade: within `max_deviation_bps` of the oracle and, while a
/// deficit is open (`deficit > 0`), exactly the oracle price — a fill at the oracle moves
/// no value between the two sides (each gets a position worth what it paid at the mark),
/// so frozen profit cannot be netted into a colluding loser whatever the band
/// (docs/DESIGN.md §6.3). `Ok(None)`: allowed.
pub fn price_allowed(
    price: u64,
    oracle_price: u64,
    max_deviation_bps: u16,
    deficit: u64,
) -> MathResult<Option<PriceRefusal>> {
    if deficit > 0 && price != oracle_price {
        return Ok(Some(PriceRefusal::NotOracle));
    }
    if !within_band(price, oracle_price, max_deviation_bps)? {
        return Ok(Some(PriceRefusal::OutsideBand));
    }
    Ok(None)
}

/// The position after the fill reduces exposure: strictly smaller in size and not flipped.
pub fn is_risk_reducing(before: i64, after: i64) -> bool {
    after.unsigned_abs() < before.unsigned_abs() && (after == 0 || (after > 0) == (before > 0))
}

/// Why one side of a trade is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideRefusal {
    /// Below initial margin afterwards without reducing its position in the market.
    InitialMargin,
    /// Reduces its position below initial margin but ends less healthy (maintenance).
    HealthDecreased,
    /// Reduces below initial margin at a price worse for it than the oracle.
    WorseThanOracle,
    /// Below initial margin, ends with negative equity lower than it had.
    NegativeEquity,
}

/// Whether a fill at `price` is at the oracle price or better for the side that buys
/// (`buys`) or sells.
pub fn at_oracle_or_better(buys: bool, price: u64, oracle_price: u64) -> bool {
    if buys {
        price <= oracle_price
    } else {
        price >= oracle_price
    }
}

/// The rule for each side of a trade: it must meet initial margin afterwards, or — below
/// initial margin — only reduce its position in the traded market (`base_before` →
/// `base_after`), at the oracle price or better for it (`at_oracle_or_better`), never
/// lowering its equity below zero, and end at least as healthy, by maintenance health, as
/// it started. An underwater account therefore cannot hand value to a colluding
/// counterparty through a band-edge "risk-reducing" trade. `Ok(None)`: allowed.
pub fn check_side(
    before: &Health,
    after: &Health,
    base_before: i64,
    base_after: i64,
    at_oracle_or_better: bool,
) -> MathResult<Option<SideRefusal>> {
    if after.meets_initial_margin()? {
        return Ok(None);
    }
    if !is_risk_reducing(base_before, base_after) {
        return Ok(Some(SideRefusal::InitialMargin));
    }
    if !at_oracle_or_better {
        return Ok(Some(SideRefusal::WorseThanOracle));
    }
    if after.equity < 0 && after.equity < before.equity {
        return Ok(Some(SideRefusal::NegativeEquity));
    }
    if after.maintenance_health()? < before.maintenance_health()? {
        return Ok(Some(SideRefusal::HealthDecreased));
    }
    Ok(None)
}

/// A position after a fill. When the base goes to zero the remaining basis is realized
/// into pnl (returned as `realized`) and the slot is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillResult {
    pub base_qty: i64,
    pub quote_basis: i64,
    /// Amount to add to the account's pnl (non-zero only when the position closes).
    pub realized: i64,
}

/// Applies a fill (`base_delta`, `quote_delta` on this side) to a position.
pub fn apply_fill(
    base_qty: i64,
    quote_basis: i64,
    base_delta: i64,
    quote_delta: i64,
) -> MathResult<FillResult> {
    let base = base_qty.safe_add(base_delta)?;
    let basis = quote_basis.safe_add(quote_delta)?;
    if base == 0 {
        // Flat: value is 0, so everything left in the basis is realized pnl (−basis).
        Ok(FillResult {
            base_qty: 0,
            quote_basis: 0,
            realized: 0i64.checked_sub(basis).ok_or(MathError::Overflow)?,
        })
    } else {
        Ok(FillResult {
            base_qty: base,
            quote_basis: basis,
            realized: 0,
        })
    }
}

/// Whether a trade that takes the market's open interest (per side) from `before` to
/// `after` respects the market's cap (`cap` = 0: none). Growing past the cap is refused;
/// a trade that does not grow open interest (closing, or handing a position over) always
/// passes, even above a cap that was lowered below the current open interest.
pub fn open_interest_allowed(before: u64, after: u64, cap: u64) -> bool {
    after <= before || cap == 0 || after <= cap
}

/// Long open interest contributed by a position (Σ positive base = Σ |negative base| is I2).
pub fn long_oi(base_qty: i64) -> u64 {
    if base_qty > 0 {
        base_qty as u64
    } else {
        0
    }
}

/// Short open interest contributed by a position.
pub fn short_oi(base_qty: i64) -> u64 {
    if base_qty < 0 {
        base_qty.unsigned_abs()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HALF: u64 = (PRICE_PRECISION / 2) as u64;

    #[test]
    fn taker_pays_the_rounding_atom_both_ways() {
        assert_eq!(taker_quote(1, HALF).unwrap(), 1); // buys for ⌈0.5⌉
        assert_eq!(taker_quote(-1, HALF).unwrap(), 0); // sells for ⌊0.5⌋
        assert_eq!(taker_quote(3, 2 * PRICE_PRECISION as u64).unwrap(), 6);
    }

    #[test]
    fn fee_rounds_up() {
        assert_eq!(taker_fee(1, PRICE_PRECISION as u64, 1).unwrap(), 1);
        assert_eq!(taker_fee(0, PRICE_PRECISION as u64, 10).unwrap(), 0);
        assert_eq!(taker_fee(-10_000, PRICE_PRECISION as u64, 10).unwrap(), 10);
    }

    #[test]
    fn band_is_inclusive() {
        assert!(within_band(101, 100, 100).unwrap());
        assert!(!within_band(102, 100, 100).unwrap());
        assert!(within_band(99, 100, 100).unwrap());
        assert!(!within_band(98, 100, 100).unwrap());
    }

    #[test]
    fn only_the_oracle_price_while_a_deficit_is_open() {
        assert_eq!(price_allowed(101, 100, 100, 0).unwrap(), None);
        assert_eq!(
            price_allowed(101, 100, 100, 1).unwrap(),
            Some(PriceRefusal::NotOracle)
        );
        assert_eq!(price_allowed(100, 100, 100, 1).unwrap(), None);
        assert_eq!(
            price_allowed(102, 100, 100, 0).unwrap(),
            Some(PriceRefusal::OutsideBand)
        );
    }

    #[test]
    fn risk_reduction() {
        assert!(is_risk_reducing(10, 5));
        assert!(is_risk_reducing(10, 0));
        assert!(is_risk_reducing(-10, -1));
        assert!(!is_risk_reducing(10, -1));
        assert!(!is_risk_reducing(10, 11));
        assert!(!is_risk_reducing(0, 0));
    }

    #[test]
    fn closing_realizes_the_basis() {
        // Bought 10 for 1_000, sold 10 for 1_200: +200 realized.
        let r = apply_fill(10, 1_000, -10, -1_200).unwrap();
        assert_eq!(
            r,
            FillResult {
                base_qty: 0,
                quote_basis: 0,
                realized: 200
            }
        );
    }

    fn health(equity: i128, conservative: i128, im: u128, mm: u128) -> Health {
        Health {
            equity,
            equity_conservative: conservative,
            initial_margin: im,
            maintenance_margin: mm,
            open_positions: 1,
            ..Health::default()
        }
    }

    proptest! {
        /// The cap: never grows open interest past a non-zero cap, never refuses a trade
        /// that does not grow it, and is monotone (allowed at `after` ⇒ allowed below it).
        #[test]
        fn open_interest_cap(before in 0u64..1_000, after in 0u64..1_000, cap in 0u64..1_000, less in 0u64..1_000) {
            let ok = open_interest_allowed(before, after, cap);
            if cap != 0 && after > cap && after > before {
                prop_assert!(!ok);
            }
            if after <= before || cap == 0 {
                prop_assert!(ok);
            }
            if ok {
                prop_assert!(open_interest_allowed(before, after.min(less), cap));
            }
        }

        /// A side is allowed exactly when it meets initial margin afterwards, or reduces
        /// its position without lowering its maintenance health.
        #[test]
        fn side_rule(
            eq0 in -1_000_000i128..1_000_000, eq1 in -1_000_000i128..1_000_000,
            haircut in 0i128..1_000, im in 0u128..500_000, mm in 0u128..500_000,
            mm1 in 0u128..500_000, b0 in -1_000i64..1_000, b1 in -1_000i64..1_000,
            fair in any::<bool>(),
        ) {
            let before = health(eq0, eq0 - haircut, im, mm);
            let after = health(eq1, eq1 - haircut, im, mm1);
            let r = check_side(&before, &after, b0, b1, fair).unwrap();
            let meets = eq1 - haircut >= im as i128;
            let reducing = is_risk_reducing(b0, b1);
            let healthier = eq1 - mm1 as i128 >= eq0 - mm as i128;
            let solvent = eq1 >= 0 || eq1 >= eq0;
            prop_assert_eq!(r.is_none(), meets || (reducing && fair && solvent && healthier));
            if !meets && !reducing {
                prop_assert_eq!(r, Some(SideRefusal::InitialMargin));
            }
            // Below initial margin an allowed trade never lowers equity below zero.
            if r.is_none() && !meets {
                prop_assert!(eq1 >= 0 || eq1 >= eq0);
            }
        }

        /// Σ quote deltas of both sides is zero and each side's rounding is under one atom.
        #[test]
        fn fills_are_zero_sum(q in -1_000_000_000_000i64..1_000_000_000_000, p in 1u64..1_000_000_000_000_000) {
            let taker = taker_quote(q, p).unwrap();
            let maker = -taker;
            prop_assert_eq!(taker + maker, 0);
            let exact = q as i128 * p as i128;
            prop_assert!(taker as i128 * PRICE_PRECISION >= exact);
            prop_assert!((taker as i128 - 1) * PRICE_PRECISION < exact);
        }
    }
}
