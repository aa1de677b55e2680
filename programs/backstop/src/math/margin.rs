//! Dynamic margin (docs/DESIGN.md §4.2): margin rates that grow with position size, the
//! weight unrealized profit carries in initial margin, and the per-market smoothed
//! ("stable") price initial margin also checks against. Pure functions; the program,
//! keeper, client, CLI, simulator and reference model all call these.

use super::safe::{cast, MathResult, SafeMath};
use crate::constants::{BPS_DENOMINATOR, IMF_SCALE, MAX_MARGIN_STEP_BPS, MAX_STABLE_STEP_SECS};

/// ⌈√n⌉ for a u64, exact.
pub fn sqrt_ceil(n: u64) -> u64 {
    let r = n.isqrt();
    if r.saturating_mul(r) < n {
        r.saturating_add(1) // r < 2³², so never saturates
    } else {
        r
    }
}

/// The initial and maintenance margin rates (bps) of a position of `base_qty` atoms
/// (Drift's IMF rule): the size premium `⌈imf · √|base| / 10⁶⌉` replaces the base initial
/// rate once it exceeds it, up to 100%; maintenance keeps the market's MM/IM proportion,
/// `⌈im · mm / im_base⌉`.
///
/// Properties (proptests below): non-decreasing in |base|; equal to the base rates for
/// small positions and with `imf_factor` 0; never below them; MM < IM whenever the base
/// rates are (so a position at initial margin is never liquidatable); continuous — one
/// more atom raises a rate by at most the size premium's step, 1 bps plus rounding.
///
/// Why size in base atoms (Drift) rather than notional tiers (Hyperliquid) or open
/// interest (dYdX): the rate of a given position does not move with its price, so margin
/// stays linear in the price — the keeper's division-free screen and its incremental
/// health pass stay exact — and no rate jumps at a tier edge; and it charges the position
/// that is hard to liquidate (its size against the book), not everyone when open interest
/// grows.
pub fn size_scaled_rates(
    initial_margin_bps: u16,
    maintenance_margin_bps: u16,
    imf_factor: u32,
    base_qty: i64,
) -> MathResult<(u16, u16)> {
    if imf_factor == 0 || initial_margin_bps == 0 {
        return Ok((initial_margin_bps, maintenance_margin_bps));
    }
    let root = u128::from(sqrt_ceil(base_qty.unsigned_abs()));
    let premium = u128::from(imf_factor)
        .safe_mul(root)?
        .div_ceil(u128::from(IMF_SCALE));
    let im = premium
        .max(u128::from(initial_margin_bps))
        .min(u128::from(BPS_DENOMINATOR));
    let mm = im
        .safe_mul(u128::from(maintenance_margin_bps))?
        .div_ceil(u128::from(initial_margin_bps));
    Ok((cast(im)?, cast(mm)?))
}

/// The reference position `imf_step_limit` measures a change on, in base atoms: what is
/// worth 100,000 quote units at the market's last accepted price (fixed point), or —
/// before any — 1,000 whole base units.
pub fn imf_reference_atoms(base_decimals: u8, quote_decimals: u8, last_price: u64) -> u128 {
    if last_price == 0 {
        return 10u128.saturating_pow(u32::from(base_decimals).saturating_add(3));
    }
    // 10^(quote_decimals + 5) quote atoms, at `last_price` quote atoms per base atom · 10⁹.
    10u128
        .saturating_pow(u32::from(quote_decimals).saturating_add(5))
        .saturating_mul(crate::constants::PRICE_PRECISION as u128)
        .checked_div(u128::from(last_price))
        .unwrap_or(0)
        .max(1)
}

/// The most one change may move `imf_factor`: the move that raises the size premium of
/// a position of `reference` base atoms ([`imf_reference_atoms`]) by `MAX_MARGIN_STEP_BPS`
/// (as much as one step of the base rates), rounded down, and at least 1. The premium
/// raises maintenance margin too, and `imf_factor` is per √atom, so a bound that ignored
/// decimals and price would let one step take a cheap or many-decimal market's ordinary
/// positions to liquidation.
pub fn imf_step_limit(reference: u128) -> u32 {
    // ⌈√reference⌉, as the premium takes it.
    let floor = reference.isqrt();
    let root = if floor.saturating_mul(floor) < reference {
        floor.saturating_add(1)
    } else {
        floor.max(1)
    };
    // 500 · 10⁶ fits; `root` ≥ 1.
    let limit = (u128::from(MAX_MARGIN_STEP_BPS))
        .saturating_mul(u128::from(IMF_SCALE))
        .checked_div(root)
        .unwrap_or(0);
    u32::try_from(limit).unwrap_or(u32::MAX).max(1)
}

/// Unrealized pnl as initial margin counts it: losses in full, profit at `weight_bps`
/// (rounded down), so paper profit from a pumped price cannot carry new risk in full
/// (the Mango v3 lesson). Maintenance margin and liquidations count it in full.
pub fn weighted_unrealized(unrealized: i128, weight_bps: u16) -> MathResult<i128> {
    if unrealized <= 0 {
        return Ok(unrealized);
    }
    unrealized
        .safe_mul(i128::from(weight_bps))?
        .safe_div(i128::from(BPS_DENOMINATOR as u16))
}

/// The smoothed price after an accepted oracle read of `oracle` at `now`: an exponential
/// average with time constant `window_secs`, `stable + (oracle − stable) · dt / window`,
/// where one read counts for at most [`MAX_STABLE_STEP_SECS`] of elapsed time — so a
/// single print after a quiet hour moves it by at most that share of the gap, and a
/// one-slot spike barely at all. Rounded toward the previous value. The first read
/// (`stable` 0) or a `window_secs` of 0 (smoothing off) takes the oracle price.
pub fn next_stable_price(
    stable: u64,
    updated_at: i64,
    oracle: u64,
    now: i64,
    window_secs: u32,
) -> MathResult<u64> {
    if stable == 0 || window_secs == 0 {
        return Ok(oracle);
    }
    let dt = now
        .saturating_sub(updated_at)
        .clamp(0, i64::from(MAX_STABLE_STEP_SECS.min(window_secs)));
    let gap = u128::from(oracle.abs_diff(stable));
    let step: u64 = cast(gap.safe_mul(cast(dt)?)?.safe_div(u128::from(window_secs))?)?;
    Ok(if oracle >= stable {
        stable.safe_add(step)?
    } else {
        stable.safe_sub(step)?
    })
}

/// The price initial margin values a position at: the worse for the holder of the
/// confidence edge and the smoothed price (a long the lower, a short the higher). 0 for
/// `stable` means none yet.
pub fn initial_margin_price(price: u64, conf: u64, stable: u64, long: bool) -> MathResult<u64> {
    if long {
        let edge = price.saturating_sub(conf);
        Ok(if stable == 0 { edge } else { edge.min(stable) })
    } else {
        let edge = price.safe_add(conf)?;
        Ok(edge.max(stable))
    }
}

/// The price `settle_pnl` realizes a position at: the worse for the holder of the oracle
/// and the smoothed price (a long the lower, a short the higher; the oracle while there is
/// no smoothed price), so a spike's paper profit stays unrealized — weighted in initial
/// margin — until the smoothed price confirms it.
pub fn settlement_price(oracle: u64, stable: u64, long: bool) -> u64 {
    match (stable, long) {
        (0, _) => oracle,
        (s, true) => oracle.min(s),
        (s, false) => oracle.max(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_positions_pay_the_base_rates() {
        assert_eq!(
            size_scaled_rates(1_000, 500, 0, i64::MAX).unwrap(),
            (1_000, 500)
        );
        // imf 63,246: √(2.5·10⁸) = 15,812 → 1,001 bps; √10⁸ → 633 < 1,000.
        assert_eq!(
            size_scaled_rates(1_000, 500, 63_246, 100_000_000).unwrap(),
            (1_000, 500)
        );
        assert_eq!(
            size_scaled_rates(1_000, 500, 63_246, -250_000_000).unwrap(),
            (1_001, 501)
        );
        // 10⁹ atoms: √ = 31,623 → 2,001 bps, MM half.
        assert_eq!(
            size_scaled_rates(1_000, 500, 63_246, 1_000_000_000).unwrap(),
            (2_001, 1_001)
        );
        // Capped at 100%.
        assert_eq!(
            size_scaled_rates(1_000, 500, 1_000_000, i64::MAX).unwrap(),
            (10_000, 5_000)
        );
    }

    #[test]
    fn the_imf_step_moves_the_reference_position_by_one_margin_step() {
        // Before any price: 1,000 units. 6 decimals: ⌈√10⁹⌉ = 31,623 → 15,811.
        assert_eq!(imf_step_limit(imf_reference_atoms(6, 6, 0)), 15_811);
        assert_eq!(imf_step_limit(imf_reference_atoms(9, 6, 0)), 500);
        assert_eq!(imf_step_limit(imf_reference_atoms(0, 6, 0)), 15_625_000);
        // 18 decimals: still a step of at least 1.
        assert_eq!(imf_step_limit(imf_reference_atoms(18, 6, 0)), 1);
        // With a price: 100,000 quote units' worth. $100 for a 6-decimal base and USDC:
        // 10⁹ atoms again; a $0.00002 token with 5 decimals: 5·10¹⁴ atoms → 22.
        assert_eq!(imf_reference_atoms(6, 6, 100_000_000_000), 1_000_000_000);
        let cheap = imf_reference_atoms(5, 6, 200_000);
        assert_eq!(cheap, 500_000_000_000_000);
        assert_eq!(imf_step_limit(cheap), 22);
        for (bd, price) in [
            (6u8, 100_000_000_000u64),
            (9, 150_000_000),
            (5, 200_000),
            (8, 1_000_000),
        ] {
            let reference = imf_reference_atoms(bd, 6, price);
            let step = imf_step_limit(reference);
            let size = i64::try_from(reference).unwrap_or(i64::MAX);
            let (im, _) = size_scaled_rates(1, 0, step, size).unwrap();
            assert!(im <= MAX_MARGIN_STEP_BPS + 1, "{bd} {price}: {im}");
        }
    }

    #[test]
    fn weights_and_stable_price() {
        assert_eq!(weighted_unrealized(-7, 5_000).unwrap(), -7);
        assert_eq!(weighted_unrealized(7, 5_000).unwrap(), 3);
        assert_eq!(weighted_unrealized(7, 10_000).unwrap(), 7);
        // A 50% spike one second after an update moves a 600 s average by 1/600.
        assert_eq!(
            next_stable_price(100_000, 0, 150_000, 1, 600).unwrap(),
            100_083
        );
        // After a quiet hour, one read moves it by at most 60/600 of the gap.
        assert_eq!(
            next_stable_price(100_000, 0, 150_000, 3_600, 600).unwrap(),
            105_000
        );
        assert_eq!(
            next_stable_price(0, 0, 150_000, 3_600, 600).unwrap(),
            150_000
        );
        assert_eq!(
            next_stable_price(100_000, 0, 150_000, 3_600, 0).unwrap(),
            150_000
        );
        assert_eq!(initial_margin_price(100, 2, 90, true).unwrap(), 90);
        assert_eq!(initial_margin_price(100, 2, 0, true).unwrap(), 98);
        assert_eq!(initial_margin_price(100, 2, 110, false).unwrap(), 110);
        assert_eq!(initial_margin_price(100, 2, 0, false).unwrap(), 102);
        assert_eq!(settlement_price(130, 100, true), 100);
        assert_eq!(settlement_price(130, 100, false), 130);
        assert_eq!(settlement_price(70, 100, true), 70);
        assert_eq!(settlement_price(70, 100, false), 100);
        assert_eq!(settlement_price(70, 0, false), 70);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// Monotone in size, never below the base rates, MM < IM, at most 100%.
        #[test]
        fn size_scaled_rates_are_monotone_and_bounded(
            im in 2u16..=10_000,
            mm_frac in 1u16..10_000,
            imf in 0u32..=1_000_000,
            a in 0i64..i64::MAX,
            b in 0i64..i64::MAX,
        ) {
            let mm = ((u32::from(im) * u32::from(mm_frac)) / 10_000).clamp(1, u32::from(im) - 1) as u16;
            let (small, large) = (a.min(b), a.max(b));
            let (im_s, mm_s) = size_scaled_rates(im, mm, imf, small).unwrap();
            let (im_l, mm_l) = size_scaled_rates(im, mm, imf, -large).unwrap();
            prop_assert!(im_s <= im_l && mm_s <= mm_l, "monotone");
            prop_assert!(im_s >= im && mm_s >= mm, "never below the base");
            prop_assert!(im_l <= 10_000);
            prop_assert!(mm_l < im_l && mm_s < im_s, "MM below IM");
        }

        /// Continuous: one more atom moves a rate by at most a couple of bps (ceil steps).
        #[test]
        fn size_scaled_rates_are_continuous(
            imf in 0u32..=1_000_000,
            a in 0i64..(i64::MAX - 1),
        ) {
            let (im0, mm0) = size_scaled_rates(1_000, 500, imf, a).unwrap();
            let (im1, mm1) = size_scaled_rates(1_000, 500, imf, a + 1).unwrap();
            // √ moves by ≤ 1 per atom, so the premium by ≤ imf/10⁶ + 1 ≤ 2 bps.
            prop_assert!(im1 - im0 <= 2 && mm1 - mm0 <= 2);
        }

        /// sqrt_ceil is the least r with r² ≥ n.
        #[test]
        fn sqrt_ceil_is_exact(n in 0u64..u64::MAX) {
            let r = sqrt_ceil(n) as u128;
            prop_assert!(r * r >= n as u128);
            prop_assert!(r == 0 || (r - 1) * (r - 1) < n as u128);
        }

        /// Weighted profit is never above the profit, and a full weight is the identity.
        #[test]
        fn weighted_unrealized_never_adds(u in -1_000_000_000_000i128..1_000_000_000_000, w in 0u16..=10_000) {
            let v = weighted_unrealized(u, w).unwrap();
            prop_assert!(v <= u.max(0) && v >= u.min(0));
            prop_assert_eq!(weighted_unrealized(u, 10_000).unwrap(), u);
        }

        /// The stable price moves toward the oracle, never past it, by at most the capped
        /// share of the gap.
        #[test]
        fn the_stable_price_never_overshoots(
            stable in 1u64..1_000_000_000_000,
            oracle in 1u64..1_000_000_000_000,
            dt in 0i64..100_000,
            window in 1u32..86_400,
        ) {
            let next = next_stable_price(stable, 0, oracle, dt, window).unwrap();
            prop_assert!(next >= stable.min(oracle) && next <= stable.max(oracle));
            let moved = u128::from(next.abs_diff(stable));
            let step = dt.min(i64::from(MAX_STABLE_STEP_SECS.min(window))) as u128;
            prop_assert!(moved * u128::from(window) <= u128::from(stable.abs_diff(oracle)) * step);
        }
    }
}
