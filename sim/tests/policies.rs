//! Closed-form cases for every policy, properties over random populations, determinism.
//!
//! Market: IM 10%, MM 5%, liquidation fee 1% (20% of it to insurance), no insurance fund
//! unless stated; prices 100 → 80 (a gap: the bankrupt long is closed at the mark).

use backstop_sim::engine::{self, Mode};
use backstop_sim::policy::PolicyReport;
use backstop_sim::population::{self, from_csv};
use backstop_sim::report::{simulate, Inputs, Report};
use backstop_sim::{Market, ONE_USD, USDC};
use proptest::prelude::*;

const U: u64 = USDC;

fn run(csv: &str, rate_cap_bps: u16) -> Report {
    simulate(&Inputs {
        scenario: "test".into(),
        seed: None,
        population: from_csv(csv).unwrap(),
        prices: vec![100 * ONE_USD, 80 * ONE_USD],
        market: Market::default(),
        insurance: 0,
        rate_cap_bps,
    })
    .unwrap()
}

fn policy<'a>(r: &'a Report, name: &str) -> &'a PolicyReport {
    r.policies.iter().find(|p| p.policy == name).unwrap()
}

/// (charges, collected, shortfall, to losers, to principal)
fn figures(p: &PolicyReport) -> (Vec<u64>, u64, u64, u64, u64) {
    (
        p.charges.clone(),
        p.collected,
        p.shortfall,
        p.charged_to_losers,
        p.charged_to_principal,
    )
}

/// A 10x long of 10 at $100 with 100 USDC (bankrupt at $80: loss 200, capital 100 → the
/// deficit is 100 USDC) against two shorts of 6 and 4 at $100 (profits 120 and 80).
const TWO_WINNERS: &str = "capital,base,entry_price\n100,10,100\n1000,-6,100\n1000,-4,100\n";

#[test]
fn two_winners_one_bankrupt() {
    let r = run(TWO_WINNERS, 1_000);
    assert_eq!((r.bankruptcies, r.deficit), (1, 100 * U));
    assert_eq!(r.total_positive_pnl, 200 * U);
    // Backstop: rate 100/200 = 1/2 of each profit.
    let b = policy(&r, "backstop");
    assert_eq!(figures(b), (vec![0, 60 * U, 40 * U], 100 * U, 0, 0, 0));
    assert_eq!(
        (b.max_charge_of_profit_bps, b.gini_bps, b.rounds),
        (Some(5_000), Some(0), 1)
    );
    // Capped at 10% a round: the same split, paid over 7 rounds (0.9^7 ≤ 1/2 < 0.9^6);
    // the last round's ceilings add at most an atom per account.
    let c = policy(&r, "backstop-cap-10pct");
    assert_eq!(c.rounds, 7);
    assert!(
        (100 * U..=100 * U + 2).contains(&c.collected),
        "{}",
        c.collected
    );
    assert!(c.charges[1].abs_diff(60 * U) <= 7 && c.charges[2].abs_diff(40 * U) <= 7);
    // LeverageWeighted: w = p + ⌊p · notional / equity⌋:
    //   120 + 120·480/1120 = 171.428571,  80 + 80·320/1080 = 103.703703 (USDC, floored atoms);
    //   charges ⌈w · 100 / 275.132274⌉ = 62.307693 and 37.692308 (one atom of rounding).
    let l = policy(&r, "backstop-leverage-weighted");
    assert_eq!(l.charges, vec![0, 62_307_693, 37_692_308]);
    assert_eq!(l.overshoot, 1);
    // ADL: bankruptcy price 90 (equity 100 + 10·(P − 100) = 0); the shorts buy back at 90
    // against a mark of 80, first the higher-ranked (PnL% × leverage: 6 before 4).
    let a = policy(&r, "adl-queue");
    assert_eq!(figures(a), (vec![0, 60 * U, 40 * U], 100 * U, 0, 0, 0));
    // OI socialization: the liquidator took the long; the shorts hold 6 and 4 lots.
    assert_eq!(
        policy(&r, "oi-socialization").charges,
        vec![0, 60 * U, 40 * U]
    );
    // Deposit haircut: equal capital, equal charges: 50/120 and 50/80 of profit.
    let h = policy(&r, "deposit-haircut");
    assert_eq!(figures(h), (vec![0, 50 * U, 50 * U], 100 * U, 0, 0, 0));
    assert_eq!(h.max_charge_of_profit_bps, Some(6_250));
    // Gini of {0.41667, 0.625}: |a − b| / (2 · (a + b)) = 0.1.
    assert_eq!(h.gini_bps, Some(1_000));
    // OKEx: the published rate ⌈100/200⌉ = 50.00%.
    assert_eq!(policy(&r, "okex-clawback").charges, vec![0, 60 * U, 40 * U]);
}

#[test]
fn all_losers() {
    // The short entered at $70: at $80 it is down 100. Nobody has positive PnL.
    let r = run("capital,base,entry_price\n100,10,100\n1000,-10,70\n", 1_000);
    assert_eq!((r.deficit, r.total_positive_pnl), (100 * U, 0));
    for name in [
        "backstop",
        "backstop-cap-10pct",
        "backstop-leverage-weighted",
    ] {
        // Capital basis: principal, only because no profit exists anywhere.
        let p = policy(&r, name);
        assert_eq!(
            figures(p),
            (vec![0, 100 * U], 100 * U, 0, 100 * U, 100 * U),
            "{name}"
        );
        assert_eq!((p.max_charge_of_profit_bps, p.gini_bps), (None, None));
    }
    // ADL: the only short buys back 10 at the bankruptcy price 90 against a mark of 80.
    assert_eq!(
        figures(policy(&r, "adl-queue")),
        (vec![0, 100 * U], 100 * U, 0, 100 * U, 100 * U)
    );
    assert_eq!(
        figures(policy(&r, "oi-socialization")),
        (vec![0, 100 * U], 100 * U, 0, 100 * U, 100 * U)
    );
    assert_eq!(
        figures(policy(&r, "deposit-haircut")),
        (vec![0, 100 * U], 100 * U, 0, 100 * U, 100 * U)
    );
    // OKEx never touched principal: nothing collected, all of it unpaid.
    assert_eq!(
        figures(policy(&r, "okex-clawback")),
        (vec![0, 0], 0, 100 * U, 0, 0)
    );
}

#[test]
fn deficit_larger_than_all_profit() {
    // Shorts of 9 and 1 entered at $82: at $80 they made 18 and 2; the deficit is 100.
    let r = run(
        "capital,base,entry_price\n100,10,100\n1000,-9,82\n1000,-1,82\n",
        1_000,
    );
    assert_eq!((r.deficit, r.total_positive_pnl), (100 * U, 20 * U));
    // Backstop: all profit first (18 + 2), then 80 pro rata on equal capital (40 + 40).
    let b = policy(&r, "backstop");
    assert_eq!(figures(b), (vec![0, 58 * U, 42 * U], 100 * U, 0, 0, 80 * U));
    assert_eq!(b.rounds, 2);
    // LeverageWeighted: its weights exceed the deficit's reach (rate capped at 100% of
    // the profit), so the same outcome.
    assert_eq!(
        policy(&r, "backstop-leverage-weighted").charges,
        vec![0, 58 * U, 42 * U]
    );
    // ADL: 9 · (90 − 80) and 1 · (90 − 80).
    assert_eq!(
        figures(policy(&r, "adl-queue")),
        (vec![0, 90 * U, 10 * U], 100 * U, 0, 0, 80 * U)
    );
    // OI: 90 and 10 per lot; haircut: 50 and 50.
    assert_eq!(
        figures(policy(&r, "oi-socialization")),
        (vec![0, 90 * U, 10 * U], 100 * U, 0, 0, 80 * U)
    );
    assert_eq!(
        figures(policy(&r, "deposit-haircut")),
        (vec![0, 50 * U, 50 * U], 100 * U, 0, 0, 80 * U)
    );
    // OKEx: 100% of profit, and 80 unpaid.
    assert_eq!(
        figures(policy(&r, "okex-clawback")),
        (vec![0, 18 * U, 2 * U], 20 * U, 80 * U, 0, 0)
    );
}

#[test]
fn csv_mistakes_are_reported() {
    let e = from_csv("capital,base,entry_price\n100,10,100\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("must balance"), "{e}");
    let e = from_csv("cap,base\n").unwrap_err().to_string();
    assert!(e.contains("header"), "{e}");
    let e = from_csv("capital,base,entry_price\n1.0000001,0,1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("decimal places"), "{e}");
    let e = population::prices_from_csv("100\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least one move"), "{e}");
    assert!(population::scenario("nope")
        .unwrap_err()
        .to_string()
        .contains("gap-20"));
}

#[test]
fn same_seed_same_bytes() {
    let json = |seed| {
        let prices = population::scenario("crash-30").unwrap();
        let r = simulate(&Inputs {
            scenario: "crash-30".into(),
            seed: Some(seed),
            population: population::generate(3_000, seed, prices[0], &Market::default()).unwrap(),
            prices,
            market: Market::default(),
            insurance: 50_000 * U,
            rate_cap_bps: 1_000,
        })
        .unwrap();
        (
            serde_json::to_string(&r).unwrap(),
            backstop_sim::svg::charges_chart(&r) + &backstop_sim::svg::waterfall_chart(&r),
        )
    };
    assert_eq!(json(42), json(42));
    assert_ne!(json(42).0, json(43).0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn properties(
        seed in any::<u64>(),
        n in 2usize..400,
        scenario in 0usize..population::SCENARIOS.len(),
        insurance in 0u64..20_000,
        cap in 1u16..=10_000,
    ) {
        let (name, _, _) = population::SCENARIOS[scenario];
        let prices = population::scenario(name).unwrap();
        let pop = population::generate(n, seed, prices[0], &Market::default()).unwrap();
        let r = simulate(&Inputs {
            scenario: name.into(),
            seed: Some(seed),
            population: pop.clone(),
            prices: prices.clone(),
            market: Market::default(),
            insurance: insurance * U,
            rate_cap_bps: cap,
        }).unwrap();
        let d = r.deficit;
        for p in &r.policies {
            let backstop = p.policy.starts_with("backstop");
            if backstop {
                // Backstop pays the deficit in full, overshooting by at most one atom per
                // account charged (ceilings of the last round).
                prop_assert!(p.collected >= d, "{}: {} < {d}", p.policy, p.collected);
                prop_assert!(p.overshoot <= p.accounts_charged, "{}: overshoot {}", p.policy, p.overshoot);
                // While positive PnL covers the deficit, no loser and no principal pays.
                if r.total_positive_pnl >= d {
                    prop_assert_eq!(p.charged_to_losers, 0, "{}", p.policy);
                    prop_assert_eq!(p.charged_to_principal, 0, "{}", p.policy);
                }
            }
            if p.policy != "adl-queue" {
                // Collected covers the deficit, or the shortfall says by how much not.
                prop_assert_eq!(p.shortfall, d.saturating_sub(p.collected), "{}", p.policy);
            }
        }
        // The ADL run's books: every loss beyond capital was paid by insurance, taken
        // from the queue, or left as its (reported) unpaid deficit.
        let adl = engine::run(&pop, &prices, &Market::default(), insurance * U, Mode::Adl).unwrap();
        let a = r.policies.iter().find(|p| p.policy == "adl-queue").unwrap();
        prop_assert_eq!(a.shortfall, adl.deficit);
        prop_assert!(adl.bankrupt_loss <= adl.insurance_paid + adl.deficit);
    }
}

/// Found by `properties` in CI: a squeeze where a short is deleveraged.
#[test]
fn regression_squeeze_five_accounts() {
    let prices = population::scenario("squeeze-25").unwrap();
    let seed = 11771748324614047157;
    simulate(&Inputs {
        scenario: "squeeze-25".into(),
        seed: Some(seed),
        population: population::generate(5, seed, prices[0], &Market::default()).unwrap(),
        prices,
        market: Market::default(),
        insurance: 0,
        rate_cap_bps: 1,
    })
    .unwrap();
}
