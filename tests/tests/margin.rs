//! Margin-engine integrity against the outside review's attacks (issue 14), on the real
//! program: a liquidation never creates bad debt, an underwater account is always worth
//! liquidating, and below initial margin a trade only reduces risk at the oracle price or
//! better, never lowering equity below zero. The harness checks I1–I4 against token
//! balances after every transaction and I5 after every refusal.

use backstop::error::BackstopError as E;
use backstop::state::EpochPhase;
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
