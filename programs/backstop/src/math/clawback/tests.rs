use super::*;
use proptest::prelude::*;

fn profit(w: u64) -> (Weight, Weight) {
    (
        Weight {
            weight: w as u128,
            cap: w,
        },
        capital_weight(1_000_000),
    )
}

#[test]
fn two_winners_pay_pro_rata() {
    // Deficit 300 over winners with 1_000 and 2_000 of positive PnL: r = 0.1.
    let a = allocate(300, &[profit(1_000), profit(2_000), profit(0)], 10_000).unwrap();
    assert_eq!(a.basis, Basis::Profit);
    assert_eq!(
        a.rate,
        Rate {
            num: 300,
            den: 3_000
        }
    );
    assert_eq!(a.charges, vec![100, 200, 0]);
    assert_eq!(
        (a.to_deficit, a.to_insurance, a.remaining_deficit),
        (300, 0, 0)
    );
}

#[test]
fn rounding_excess_goes_to_insurance() {
    // 100 over three equal weights of 1: each ⌈1·100/3⌉ capped at 1.
    let a = allocate(2, &[profit(1), profit(1), profit(1)], 10_000).unwrap();
    assert_eq!(a.charges, vec![1, 1, 1]);
    assert_eq!((a.collected, a.to_deficit, a.to_insurance), (3, 2, 1));
}

#[test]
fn rate_cap_leaves_deficit_for_next_round() {
    // Cap 50%: weights 1_000 → at most 500 collected of a 800 deficit.
    let a = allocate(800, &[profit(1_000)], 5_000).unwrap();
    assert_eq!(
        a.rate,
        Rate {
            num: 5_000,
            den: 10_000
        }
    );
    assert_eq!(a.charges, vec![500]);
    assert_eq!(a.remaining_deficit, 300);
}

#[test]
fn deficit_larger_than_all_profit_takes_all_profit_only() {
    let a = allocate(10_000, &[profit(1_000), profit(3_000)], 10_000).unwrap();
    assert_eq!(a.charges, vec![1_000, 3_000]);
    assert_eq!(a.remaining_deficit, 6_000);
}

#[test]
fn no_profit_falls_to_capital_pro_rata() {
    let accounts = [
        (Weight::default(), capital_weight(1_000)),
        (Weight::default(), capital_weight(3_000)),
    ];
    let a = allocate(400, &accounts, 10_000).unwrap();
    assert_eq!(a.basis, Basis::Capital);
    assert_eq!(a.charges, vec![100, 300]);
}

#[test]
fn nobody_to_charge() {
    let a = allocate(400, &[(Weight::default(), capital_weight(0))], 10_000).unwrap();
    assert_eq!(a.rate, Rate::ZERO);
    assert_eq!(a.collected, 0);
    assert_eq!(a.remaining_deficit, 400);
}

#[test]
fn leverage_weighting_charges_levered_winners_more_but_caps_at_profit() {
    // Same profit 1_000; one at 1x notional/equity, one at 9x.
    let low = profit_weight(Policy::LeverageWeighted, 1_000, 0, 2_000, 2_000).unwrap();
    let high = profit_weight(Policy::LeverageWeighted, 1_000, 0, 18_000, 2_000).unwrap();
    assert_eq!(
        low,
        Weight {
            weight: 2_000,
            cap: 1_000
        }
    );
    assert_eq!(
        high,
        Weight {
            weight: 10_000,
            cap: 1_000
        }
    );
    let rate = round_rate(1_200, 12_000, 10_000).unwrap();
    assert_eq!(charge(low, rate).unwrap(), 200);
    assert_eq!(charge(high, rate).unwrap(), 1_000);
}

#[test]
fn positive_pnl_uses_unrealized() {
    assert_eq!(positive_pnl(-100, 300).unwrap(), 200);
    assert_eq!(positive_pnl(100, -300).unwrap(), 0);
}

fn population() -> impl Strategy<Value = (u64, Vec<u64>, u16)> {
    (
        0u64..10_000_000_000,
        prop::collection::vec(
            prop_oneof![Just(0u64), 0u64..1_000, 0u64..10_000_000_000],
            1..60,
        ),
        1u16..=10_000,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Σ charges = min(deficit, r·Σw) within one atom per account, and never more than
    /// r·Σw rounded up per account.
    #[test]
    fn charges_sum_to_target_within_one_atom_per_account((deficit, ws, cap) in population()) {
        let accounts: Vec<_> = ws.iter().map(|w| profit(*w)).collect();
        let a = allocate(deficit, &accounts, cap).unwrap();
        let n = accounts.len() as u128;
        let total: u128 = ws.iter().map(|w| *w as u128).sum();
        prop_assume!(total > 0);
        // target = r·Σw exactly (a rational); with the deficit-limited rate it is the deficit.
        let target_num = a.rate.num * total; // target = target_num / den
        let collected = a.collected as u128;
        prop_assert!(collected * a.rate.den >= target_num);
        prop_assert!(collected * a.rate.den < target_num + n * a.rate.den);
        prop_assert!(a.to_deficit <= deficit);
        prop_assert_eq!(a.to_deficit + a.to_insurance, a.collected);
        // r ≤ deficit/Σw: the target never exceeds the deficit.
        prop_assert!(target_num <= deficit as u128 * a.rate.den);
    }

    /// No charge exceeds the account's weight (its positive PnL), and charges are monotone
    /// in weight.
    #[test]
    fn charges_bounded_and_monotone((deficit, ws, cap) in population()) {
        let accounts: Vec<_> = ws.iter().map(|w| profit(*w)).collect();
        let a = allocate(deficit, &accounts, cap).unwrap();
        // The weight charged is the profit weight, or the capital one when no one has profit.
        let basis_w: Vec<u64> = match a.basis {
            Basis::Profit => ws.clone(),
            Basis::Capital => accounts.iter().map(|x| x.1.cap).collect(),
        };
        for (c, w) in a.charges.iter().zip(&basis_w) {
            prop_assert!(c <= w);
        }
        for i in 0..ws.len() {
            for j in 0..ws.len() {
                if basis_w[i] <= basis_w[j] {
                    prop_assert!(a.charges[i] <= a.charges[j]);
                }
            }
        }
    }

    /// The allocation does not depend on the order accounts are given (or cranked).
    #[test]
    fn order_independent((deficit, ws, cap) in population(), seed in any::<u64>()) {
        let accounts: Vec<_> = ws.iter().map(|w| profit(*w)).collect();
        let a = allocate(deficit, &accounts, cap).unwrap();
        let mut idx: Vec<usize> = (0..ws.len()).collect();
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..idx.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            idx.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let shuffled: Vec<_> = idx.iter().map(|i| accounts[*i]).collect();
        let b = allocate(deficit, &shuffled, cap).unwrap();
        for (k, i) in idx.iter().enumerate() {
            prop_assert_eq!(b.charges[k], a.charges[*i]);
        }
        prop_assert_eq!(a.collected, b.collected);
        prop_assert_eq!(a.to_insurance, b.to_insurance);
    }

    /// Losers (zero weight) are never charged while positive PnL exists.
    #[test]
    fn losers_untouched_while_profit_exists((deficit, ws, cap) in population()) {
        let accounts: Vec<_> = ws.iter().map(|w| profit(*w)).collect();
        let a = allocate(deficit, &accounts, cap).unwrap();
        if ws.iter().any(|w| *w > 0) {
            prop_assert_eq!(a.basis, Basis::Profit);
            for (c, w) in a.charges.iter().zip(&ws) {
                if *w == 0 { prop_assert_eq!(*c, 0); }
            }
        }
    }
}
