//! Margin-engine integrity against the outside review's attacks (issue 14), on the real
//! program: a liquidation never creates bad debt, an underwater account is always worth
//! liquidating, and below initial margin a trade only reduces risk at the oracle price or
//! better, never lowering equity below zero. The harness checks I1–I4 against token
//! balances after every transaction and I5 after every refusal.

use backstop::error::BackstopError as E;
use backstop::state::EpochPhase;
use backstop_client::ix;
use backstop_tests::*;
use solana_sdk::signer::Signer;

/// Equity of `u` from the program's own health report.
fn equity(ex: &mut TestExchange, u: &User) -> i128 {
    ex.health(&u.margin).unwrap().equity
}

/// Attack 1 (before: at equity +10 the keeper gained 71.28 and the pool got a 61.28
/// deficit). The discount is capped at the liquidatee's equity; the insurance fund tops
/// the liquidator's fee up as far as it can.
#[test]
fn a_liquidation_at_small_positive_equity_creates_no_deficit() {
    let mut ex = TestExchange::new();
    let l = ex.funded_user(1_100 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    let k = ex.funded_user(100_000 * USDC);
    ex.trade(&l, &w, 0, 100 * BASE, 100.0).unwrap();
    assert_eq!(ex.insurance_balance(), 10 * USDC, "the taker fee");
    // $89.20: 1,100 − 10 − 1,080 = +10, far below MM (446).
    ex.set_price(0, 89.2);
    assert_eq!(equity(&mut ex, &l), 10 * USDC as i128);
    ex.liquidate(&k, &l.margin, 0, u64::MAX).unwrap();
    let a = ex.account(&l);
    assert!(!a.positions.iter().any(|p| p.active), "closed in full");
    let left = a.capital as i128 + a.pnl as i128;
    assert!(
        (0..=2).contains(&left),
        "the liquidatee keeps 0..=2 atoms, has {left}"
    );
    let e = ex.exchange();
    assert_eq!(e.books.deficit, 0);
    assert_eq!(e.epoch.phase, EpochPhase::Normal);
    assert_eq!(e.unresolved_bankruptcies, 0);
    // The keeper: the capped discount (≈ 10, less the fund's 20% share) plus what the fund
    // could pay of the rest of its 71.36 fee — all of the fund's 10 + 2.
    // The keeper holds the position bought ≈ 10 below the oracle (its discount, in its
    // unrealized pnl), paid the fund's 20% share of it (2) and received everything the
    // fund then had (10 + 2) towards the rest of its 71.36 fee.
    assert_eq!(ex.insurance_balance(), 0, "the fund paid what it had");
    assert_eq!(ex.account(&k).pnl, 10 * USDC as i64);
    let keeper_gain = equity(&mut ex, &k) - 100_000 * USDC as i128;
    assert_eq!(keeper_gain, 10 * USDC as i128 - left + 10 * USDC as i128);
}

/// Attack 5 (before: nobody was paid to liquidate an account at equity ≤ 0 once the fund
/// was empty). The liquidatee owes the fee the fund cannot pay; its shortfall, and so the
/// deficit the winners share, grows by exactly that fee.
#[test]
fn an_underwater_account_is_worth_liquidating_with_the_fund_empty() {
    let mut ex = TestExchange::fee_free();
    let l = ex.funded_user(1_100 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    let k = ex.funded_user(100_000 * USDC);
    ex.trade(&l, &w, 0, 100 * BASE, 100.0).unwrap();
    assert_eq!(ex.insurance_balance(), 0);
    ex.set_price(0, 85.0);
    assert_eq!(equity(&mut ex, &l), -400 * USDC as i128);
    ex.liquidate(&k, &l.margin, 0, u64::MAX).unwrap();
    // 1% of 8,500, the keeper's 80%: 68 USDC, owed by the liquidatee.
    assert_eq!(ex.account(&k).pnl, 68 * USDC as i64);
    let e = ex.exchange();
    assert_eq!(e.books.deficit, 468 * USDC, "400 of loss and the 68 fee");
    assert_eq!(e.epoch.phase, EpochPhase::BadDebt);
    let a = ex.account(&l);
    assert_eq!((a.capital, a.pnl), (0, 0));
}

/// Attack 2 (before: an account at equity 50 closed 100 at oracle −2% to its owner's other
/// account, went bankrupt and the insurance fund paid: +129 risk-free). Below initial
/// margin a reducing trade must be at the oracle price or better for the account.
#[test]
fn below_initial_margin_a_reducing_trade_cannot_hand_value_away() {
    let mut ex = TestExchange::new();
    let a = ex.funded_user(1_100 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    let colluder = ex.funded_user(10_000 * USDC);
    ex.trade(&a, &w, 0, 100 * BASE, 100.0).unwrap();
    // $89.60: equity 1,100 − 10 − 1,040 = +50, far below MM (448). Selling at −2% would
    // hand the colluder 179.20 and leave A at −129.20 for the fund to cover.
    ex.set_price(0, 89.6);
    assert_eq!(equity(&mut ex, &a), 50 * USDC as i128);
    assert_backstop_err(
        ex.trade(&colluder, &a, 0, 100 * BASE, 89.6 * 0.98),
        E::ReduceWorseThanOracle,
    );
    // (A price a little below the oracle that leaves A solvent and flat meets initial
    // margin — a bad trade for A, but no loss for anyone else — and is allowed.)
    // At the oracle (or better) the account may close.
    ex.trade(&colluder, &a, 0, 100 * BASE, 89.6).unwrap();
    assert_eq!(equity(&mut ex, &a), 50 * USDC as i128);
    assert_eq!(ex.exchange().books.deficit, 0);
}

/// Below initial margin a trade may not take equity below zero: here the taker fee
/// would.
#[test]
fn below_initial_margin_a_trade_never_takes_equity_below_zero() {
    let mut ex = TestExchange::new();
    let a = ex.funded_user(1_100 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    let b = ex.funded_user(10_000 * USDC);
    ex.trade(&a, &w, 0, 100 * BASE, 100.0).unwrap();
    // $89.15: equity 1,100 − 10 − 1,085 = +5.
    ex.set_price(0, 89.15);
    assert_eq!(equity(&mut ex, &a), 5 * USDC as i128);
    // Selling as taker pays 8.915 of fee: −3.915 afterwards. Refused.
    assert_backstop_err(ex.trade(&a, &b, 0, -100 * BASE, 89.15), E::EquityBelowZero);
    // As the maker (the counterparty pays the fee) it closes at +5.
    ex.trade(&b, &a, 0, 100 * BASE, 89.15).unwrap();
    assert_eq!(equity(&mut ex, &a), 5 * USDC as i128);
}

/// Open-interest caps (issue 14): a trade may not grow a market's open interest past its
/// cap, while trades that close or hand over positions always fill — so a cap lowered
/// below the open interest (through the admin delay, 0 here) makes the market
/// reduce-only — and liquidations are never capped. Refusals change nothing (the harness
/// checks every account after each).
#[test]
fn the_open_interest_cap_stops_growth_never_exits() {
    let mp = backstop::state::MarketParams {
        max_open_interest: 150 * BASE as u64,
        ..default_market_params()
    };
    let mut ex = TestExchange::with_params(default_exchange_params(), &[mp], &[100.0]);
    let a = ex.funded_user(1_500 * USDC);
    let b = ex.funded_user(20_000 * USDC);
    let c = ex.funded_user(20_000 * USDC);
    let d = ex.funded_user(20_000 * USDC);
    let e = ex.funded_user(20_000 * USDC);
    let k = ex.funded_user(100_000 * USDC);
    let oi = |ex: &TestExchange| ex.market(0).long_open_interest / BASE as u64;
    ex.trade(&a, &b, 0, 100 * BASE, 100.0).unwrap();
    assert_eq!(oi(&ex), 100);
    // 160 > 150: refused, with the error that says what to do.
    assert_backstop_err(
        ex.trade(&c, &d, 0, 60 * BASE, 100.0),
        E::OpenInterestCapExceeded,
    );
    ex.trade(&c, &d, 0, 50 * BASE, 100.0).unwrap();
    assert_eq!(oi(&ex), 150);
    // At the cap: a hand-over (A's long to E) and a close (B buys back) both fill.
    ex.trade(&e, &a, 0, 40 * BASE, 100.0).unwrap();
    assert_eq!(oi(&ex), 150);
    ex.trade(&b, &c, 0, 20 * BASE, 100.0).unwrap();
    assert_eq!(oi(&ex), 130);
    // Growth back to the cap is fine, one atom past it is not.
    ex.trade(&e, &d, 0, 20 * BASE, 100.0).unwrap();
    assert_backstop_err(ex.trade(&e, &d, 0, 1, 100.0), E::OpenInterestCapExceeded);

    // Reduce-only: the admin lowers the cap to one atom, below the open interest.
    let admin = ex.admin.insecure_clone();
    let (exk, m) = (ex.exchange_key(), ex.markets[0].pubkey);
    let reduce_only = backstop::state::MarketParams {
        max_open_interest: 1,
        ..mp
    };
    ex.send(
        &[backstop_client::ix::update_market_params(
            &admin.pubkey(),
            &exk,
            &m,
            reduce_only,
        )],
        &[&admin],
    )
    .unwrap();
    ex.send(&[backstop_client::ix::apply_market_params(&exk, &m)], &[])
        .unwrap();
    // C buying from D would grow both sides: refused. From E (long) it is a hand-over.
    assert_backstop_err(ex.trade(&c, &d, 0, BASE, 100.0), E::OpenInterestCapExceeded);
    ex.trade(&c, &e, 0, BASE, 100.0).unwrap();
    assert_eq!(oi(&ex), 150);
    ex.trade(&b, &a, 0, 10 * BASE, 100.0).unwrap(); // A closes 10 of its 60 against B
    assert_eq!(oi(&ex), 140);
    // A liquidation is never capped: A (long 50 with ~1,500 USDC) falls below maintenance.
    ex.set_price(0, 72.0);
    ex.liquidate(&k, &a.margin, 0, u64::MAX).unwrap();
    assert!(oi(&ex) <= 140);
    assert_eq!(ex.exchange().books.deficit, 0);
}

/// Two markets at $100 and $10 (default parameters), with a victim long 100 PERP in
/// market 0 (1,100 USDC, 10x) and a 1-atom "shield" long in market 1, and a keeper.
fn shielded() -> (TestExchange, User, User, User) {
    let mp = default_market_params();
    let mut ex = TestExchange::with_params(default_exchange_params(), &[mp, mp], &[100.0, 10.0]);
    let v = ex.funded_user(1_100 * USDC);
    let w = ex.funded_user(100_000 * USDC);
    let k = ex.funded_user(100_000 * USDC);
    ex.trade(&v, &w, 0, 100 * BASE, 100.0).unwrap();
    ex.trade(&v, &w, 1, 1, 10.0).unwrap();
    (ex, v, w, k)
}

/// Attack 3 (before: dust in a market whose oracle was stale or too uncertain made every
/// health check of its holder fail, so a large position elsewhere could not be liquidated
/// until the shield lifted — at equity −434.5). The dust market is now valued
/// conservatively and the liquidation of the other market proceeds at once, with no
/// deficit; only the dust market itself cannot be liquidated at its degraded price.
#[test]
fn dust_in_a_stale_or_uncertain_market_never_shields_a_position_elsewhere() {
    // Stale: market 1's oracle stops while market 0 falls to $93 (equity ≈ 390 < MM 465).
    let (mut ex, v, _w, k) = shielded();
    ex.advance(120);
    ex.set_price(0, 93.0);
    let h = ex.health(&v.margin).unwrap();
    assert!(h.liquidatable, "the stale dust does not hide the shortfall");
    assert_backstop_err(ex.liquidate(&k, &v.margin, 1, u64::MAX), E::OracleStale);
    ex.liquidate(&k, &v.margin, 0, u64::MAX).unwrap();
    let after = ex.health(&v.margin).unwrap();
    assert!(after.equity > 0 && !after.liquidatable);
    assert_eq!(ex.exchange().books.deficit, 0);

    // Too uncertain: market 1 publishes a 50% confidence interval (limit 2%).
    let (mut ex, v, _w, k) = shielded();
    ex.set_raw_price(1, raw_price(10.0), raw_price(5.0) as u64)
        .unwrap();
    ex.set_price(0, 93.0);
    assert!(ex.health(&v.margin).unwrap().liquidatable);
    assert_backstop_err(
        ex.liquidate(&k, &v.margin, 1, u64::MAX),
        E::OracleConfidenceTooWide,
    );
    ex.liquidate(&k, &v.margin, 0, u64::MAX).unwrap();
    assert_eq!(ex.exchange().books.deficit, 0);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
}

/// Attack 4 (before: withdrawing, settling and reducing trades needed a fresh price for
/// every market the account held, so a stale oracle froze its holders). With market 1
/// stale, its position is valued at the stale price less the haircut, and every
/// risk-reducing action works; only trading in the stale market itself waits for a price.
#[test]
fn a_stale_market_never_blocks_risk_reducing_actions() {
    let mp = default_market_params();
    let mut ex = TestExchange::with_params(default_exchange_params(), &[mp, mp], &[100.0, 10.0]);
    let a = ex.funded_user(3_000 * USDC);
    let w = ex.funded_user(100_000 * USDC);
    ex.trade(&a, &w, 0, 10 * BASE, 100.0).unwrap();
    ex.trade(&a, &w, 1, 100 * BASE, 10.0).unwrap();
    let fresh = ex.health(&a.margin).unwrap();
    // Market 1 goes 130 s without an update (70 s past its 60 s age: 2 started minutes);
    // market 0 keeps publishing.
    ex.advance(130);
    ex.set_price(0, 100.0);
    let stale = ex.health(&a.margin).unwrap();
    // The haircut: 2% confidence limit + 2 · 1% = 4% of $10 on 100 PERP = 40 USDC off the
    // equity; margin measured at $10.40 (1,040 notional, +40).
    assert_eq!(fresh.equity - stale.equity, 40 * USDC as i128);
    assert_eq!(stale.notional - fresh.notional, 40 * USDC as u128);
    assert!(stale.equity_conservative <= stale.equity);
    assert_eq!((fresh.degraded_positions, stale.degraded_positions), (0, 1));

    // Deposits, withdrawals within margin at the conservative values, settling.
    ex.withdraw(&a, 500 * USDC).unwrap();
    ex.deposit(&a, 100 * USDC).unwrap();
    let basis_before = ex.account(&a).positions[1].quote_basis;
    ex.settle(&a).unwrap();
    assert_eq!(
        ex.account(&a).positions[1].quote_basis,
        basis_before,
        "a degraded market is never realized at its stale price"
    );
    // Reducing trades in the fresh market.
    ex.trade(&a, &w, 0, -5 * BASE, 100.0).unwrap();
    // A withdrawal that passes at the fresh price but not at the conservative one.
    let h = ex.health(&a.margin).unwrap();
    let room = (h.equity_conservative - h.initial_margin as i128) as u64;
    assert_backstop_err(ex.withdraw(&a, room + USDC), E::InitialMarginViolated);
    ex.withdraw(&a, room).unwrap();
    // The stale market itself trades again once its oracle publishes.
    assert_backstop_err(ex.trade(&a, &w, 1, -BASE, 10.0), E::OracleStale);
    ex.set_price(1, 10.0);
    ex.trade(&a, &w, 1, -BASE, 10.0).unwrap();
}

/// Each dynamic-margin parameter out of bounds is refused with `InvalidParameter` when a
/// market is added and when a change is queued; the size premium moves by at most one
/// step per change (`StepTooLarge`) because it raises maintenance margin too. The harness
/// checks that every refusal changed nothing.
#[test]
fn bad_dynamic_margin_parameters_are_refused() {
    use backstop::constants::{MAX_IMF_FACTOR, MAX_STABLE_WINDOW_SECS};
    use backstop::math::margin::{imf_reference_atoms, imf_step_limit};
    // No trade yet: the reference is 1,000 units.
    let max_imf_step = imf_step_limit(imf_reference_atoms(BASE_DECIMALS, 6, 0));
    use backstop::state::MarketParams;
    let mut ex = TestExchange::new();
    let d = default_market_params();
    let bad = [
        MarketParams {
            imf_factor: MAX_IMF_FACTOR + 1,
            ..d
        },
        MarketParams {
            unrealized_weight_bps: 10_001,
            ..d
        },
        MarketParams {
            stable_price_window_secs: MAX_STABLE_WINDOW_SECS + 1,
            ..d
        },
    ];
    let admin = ex.admin.insecure_clone();
    let exk = ex.exchange_key();
    let m = ex.markets[0].pubkey;
    for p in bad {
        let feed = ex.markets[0].oracle;
        let r = ex.send(
            &[ix::add_market(
                &admin.pubkey(),
                &exk,
                1,
                &feed,
                feed_market_args(p),
            )],
            &[&admin],
        );
        assert_backstop_err(r, E::InvalidParameter);
        let r = ex.send(
            &[ix::update_market_params(&admin.pubkey(), &exk, &m, p)],
            &[&admin],
        );
        assert_backstop_err(r, E::InvalidParameter);
    }
    let jump = MarketParams {
        imf_factor: max_imf_step + 1,
        ..d
    };
    let r = ex.send(
        &[ix::update_market_params(&admin.pubkey(), &exk, &m, jump)],
        &[&admin],
    );
    assert_backstop_err(r, E::StepTooLarge);
    // One step is fine.
    let step = MarketParams {
        imf_factor: max_imf_step,
        unrealized_weight_bps: 0,
        stable_price_window_secs: MAX_STABLE_WINDOW_SECS,
        ..d
    };
    ex.send(
        &[ix::update_market_params(&admin.pubkey(), &exk, &m, step)],
        &[&admin],
    )
    .unwrap();
    ex.send(&[ix::apply_market_params(&exk, &m)], &[]).unwrap();
    assert_eq!(ex.market(0).params, step);
}

/// Dynamic margin on the real program (`MarketParams::DYNAMIC_EXAMPLE`): a large position
/// needs the size premium's initial margin; unrealized profit counts at 80% toward
/// initial margin (in full toward maintenance); and a single-print spike barely moves the
/// smoothed price, so paper profit from it cannot be withdrawn or carry new risk.
#[test]
fn dynamic_margins_scale_with_size_and_discount_paper_profit() {
    use backstop::math::margin::size_scaled_rates;
    use backstop::state::MarketParams;
    let dp = MarketParams::DYNAMIC_EXAMPLE;
    let mut ex = TestExchange::with_params(default_exchange_params(), &[dp], &[100.0]);
    let w = ex.funded_user(10_000_000 * USDC);
    // 1,000 units (10⁹ atoms) at $100 = 100,000 notional: the premium is 2,001 bps.
    let (im, mm) = size_scaled_rates(1_000, 500, dp.imf_factor, 1_000 * BASE).unwrap();
    assert_eq!((im, mm), (2_001, 1_001));
    // 15,000 USDC is 15%: enough under static 10%, not under the 20.01% premium.
    let a = ex.funded_user(15_000 * USDC);
    assert_backstop_err(
        ex.trade(&a, &w, 0, 1_000 * BASE, 100.0),
        E::InitialMarginViolated,
    );
    // 250 units sit at the threshold: 10.01% of 25,000 (the premium just past 10%).
    ex.trade(&a, &w, 0, 250 * BASE, 100.0).unwrap();
    let h = ex.health(&a.margin).unwrap();
    assert_eq!(h.initial_margin, 2_502_500_000);
    // A one-print spike to $130: +7,500 of paper profit. The smoothed price moved by
    // at most 1 s / 300 s of the gap, so initial margin values the long near $100:
    // nothing of the spike can be withdrawn.
    ex.advance(1);
    ex.set_price(0, 130.0);
    let t = ex.funded_user(100_000 * USDC);
    ex.trade(&t, &w, 0, BASE, 130.0).unwrap(); // accepts the read: updates the smoothed price
    let stable = ex.market(0).stable_price;
    assert!(stable < ex.fixed(100.2), "smoothed {stable}");
    let h = ex.health(&a.margin).unwrap();
    assert_eq!(h.unrealized, 7_500 * USDC as i128); // (the fee is in settled pnl)
    let free_before_spike = 15_000 * USDC as i128 - 25 * USDC as i128 - 2_502_500_000;
    assert!(h.equity_conservative - (h.initial_margin as i128) < free_before_spike);
    let room = (h.equity_conservative - h.initial_margin as i128).max(0) as u64;
    assert_backstop_err(ex.withdraw(&a, room + USDC), E::InitialMarginViolated);
    // Nor can it be realized: settling marks the long at the smoothed price (the worse),
    // so the spike's profit stays unrealized and weighted.
    ex.settle(&a).unwrap();
    let settled = ex.account(&a).pnl;
    assert!(
        settled < 100 * USDC as i64,
        "only what the smoothed price confirms is realized: {settled}"
    );
    // Once the smoothed price has caught up (many reads over the window), 80% of the
    // profit counts toward initial margin; maintenance counts all of it.
    for _ in 0..40 {
        ex.advance(60);
        ex.set_price(0, 130.0);
        let t = ex.funded_user(10_000 * USDC);
        ex.trade(&t, &w, 0, BASE, 130.0).unwrap();
    }
    let stable = ex.market(0).stable_price;
    assert!(stable > ex.fixed(129.9), "smoothed {stable}");
    let h = ex.health(&a.margin).unwrap();
    let profit = 7_500 * USDC as i128;
    assert_eq!(h.equity, 15_000 * USDC as i128 - 25 * USDC as i128 + profit);
    let counted = h.equity_conservative - (15_000 * USDC as i128 - 25 * USDC as i128);
    // (The few USDC settled above count in full: within 20% of them, and an atom.)
    assert!(
        (counted - profit * 8 / 10).abs() <= 25 * USDC as i128,
        "IM counts 80% of the profit: {counted}"
    );
    assert!(counted < profit * 81 / 100);
}

/// The outside review of the degraded-price rule (attack on the first version): a holder
/// lets one market go stale until the haircut alone puts its equity at or below zero,
/// has a colluder liquidate its other market at the oracle price with the insurance fund
/// paying the colluder's fee, refreshes, and repeats. Who pays is decided at the
/// midpoint: the liquidatee pays the discount itself and the fund only gains its share.
#[test]
fn a_stale_haircut_never_makes_the_insurance_fund_pay_a_liquidator() {
    let mp = default_market_params();
    let mut ex = TestExchange::with_params(default_exchange_params(), &[mp, mp], &[100.0, 100.0]);
    let insurer = ex.user(1_000 * USDC);
    ex.contribute_insurance(&insurer, 1_000 * USDC).unwrap();
    let w = ex.funded_user(1_000_000 * USDC);
    let colluder = ex.funded_user(1_000_000 * USDC);
    let v = ex.funded_user(2_100 * USDC);
    ex.trade(&v, &w, 0, 100 * BASE, 100.0).unwrap();
    ex.trade(&v, &w, 1, 100 * BASE, 100.0).unwrap();
    // 19 started minutes past its age: market 1's haircut is 2% + 19% = 21% of 10,000,
    // more than V's 2,080 of equity; market 0 keeps publishing.
    ex.advance(60 + 19 * 60);
    ex.set_price(0, 100.0);
    let h = ex.health(&v.margin).unwrap();
    assert!(h.equity <= 0 && h.liquidatable, "{h:?}");
    let fund = ex.insurance_balance();
    let settled = |a: backstop::state::MarginAccount| a.capital as i128 + a.pnl as i128;
    let before = settled(ex.account(&v));
    ex.liquidate(&colluder, &v.margin, 0, u64::MAX).unwrap();
    assert!(
        ex.insurance_balance() >= fund,
        "the fund paid: {} -> {}",
        fund,
        ex.insurance_balance()
    );
    // V paid the discount itself: 1% of the 10,000 that moved, out of its real equity.
    let paid = before - settled(ex.account(&v));
    assert!(
        (100 * USDC as i128..=100 * USDC as i128 + 2).contains(&paid),
        "{paid}"
    );
    assert_eq!(ex.exchange().books.deficit, 0);
}
