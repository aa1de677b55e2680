//! Fuzzing the program's math on the whole input range (proptest; `PROPTEST_CASES=N`
//! runs more): checked arithmetic gives an error, never a panic or a wrapped number, and
//! results respect their bounds. Its own test binary: the LiteSVM harness installs
//! process-wide syscall stubs that need an invoke context.

use backstop::math::clawback::{allocate, Weight};
use backstop::math::health::{compute_health, PositionMark};
use backstop::math::liquidation::{base_to_liquidate, liquidation_price, LiquidationParams};
use backstop_tests::env_u32;
use proptest::prelude::*;

fn cases(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: env_u32("PROPTEST_CASES", default),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(20_000))]

    /// Health, liquidation sizing and clawback allocation on the whole input range:
    /// checked arithmetic, an error instead of a panic or a wrapped number.
    #[test]
    fn math(capital in any::<u64>(), pnl in any::<i64>(), base in any::<i64>(), basis in any::<i64>(),
            price in any::<u64>(), conf in any::<u64>(), im in 0u16..=10_000, mm in 0u16..=10_000,
            fee in 0u16..=10_000, buffer in 0u16..=10_000, max_base in any::<u64>(),
            deficit in any::<u64>(), weights in proptest::collection::vec((any::<u128>(), any::<u64>(), any::<u64>()), 0..8),
            cap in any::<u16>()) {
        let mark = PositionMark { base_qty: base, quote_basis: basis, price, conf, initial_margin_bps: im, maintenance_margin_bps: mm , stable_price: 0, unrealized_weight_bps: 10_000, degraded: false, stale: false };
        if let Ok(h) = compute_health(capital, pnl, &[mark]) {
            let lp = LiquidationParams { maintenance_margin_bps: mm, liquidation_fee_bps: fee, buffer_bps: buffer, insurance_share_bps: 2_000 };
            if let Ok(q) = base_to_liquidate(&h, base, price, &lp, h.equity > 0, max_base) {
                prop_assert!(q <= base.unsigned_abs() && q <= max_base);
            }
        }
        let _ = liquidation_price(price, fee, base > 0);
        let ws: Vec<(Weight, Weight)> = weights.iter().map(|(w, c, k)| (Weight { weight: *w, cap: *c }, Weight { weight: *k as u128, cap: *k })).collect();
        if let Ok(a) = allocate(deficit, &ws, cap) {
            prop_assert!(a.to_deficit <= deficit);
            prop_assert_eq!(a.to_deficit + a.remaining_deficit, deficit);
            for (c, (p, k)) in a.charges.iter().zip(&ws) {
                prop_assert!(*c <= p.cap.max(k.cap));
            }
        }
    }
}
