//! Clawback rounds against the attacks of the outside review (issue 13), each on the real
//! program: the price snapshot, touch first, oracle-only trades while a deficit is open,
//! bankruptcies resolved in the instruction that creates them, and rounds no oracle can
//! stall. Each test plays the attack and asserts the attacker pays the honest share (or
//! is refused) and the honest accounts' charges exactly. The harness checks I1–I4
//! against token balances after every transaction and I5 after every refusal.

use backstop::constants::MAX_TRADE_DEVIATION_BPS;
use backstop::error::BackstopError as E;
use backstop::state::{ClawbackBasis, ClawbackPolicy, EpochPhase, ExchangeParams, MarketParams};
use backstop_tests::*;
use solana_sdk::pubkey::Pubkey;

/// ⌈a / b⌉.
fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

const U: u128 = USDC as u128;

/// Charges every account that still owes one this round, in one batch each.
fn charge_all(ex: &mut TestExchange, accounts: &[Pubkey]) {
    for a in accounts {
        let due = ex
            .exchange()
            .epoch
            .due_for_clawback(&ex.account_at(a).clawback);
        if due {
            ex.clawback(&[*a]).unwrap();
        }
    }
}

/// Tallies every account not tallied yet this round.
fn tally_all(ex: &mut TestExchange) {
    let due: Vec<Pubkey> = ex
        .live_accounts()
        .into_iter()
        .filter(|k| {
            ex.exchange()
                .epoch
                .due_for_tally(&ex.account_at(k).clawback)
        })
        .collect();
    for chunk in due.chunks(20) {
        ex.tally(chunk).unwrap();
    }
}

/// A capital-basis epoch: the taker fee is zero, so the insurance fund is empty. L (1,100)
/// long 100 from W (10,000) at $100; at $85 W settles (banking its +1,500), K (2,000)
/// liquidates L at the oracle; L owes K's 68 fee, so the deficit is 400 + 68. A first
/// round takes K's fee back (the only profit), leaving 400 and no profit anywhere. A and H
/// hold 5,000 each: Σ capital = 11,500 + 2,000 + 5,000 + 5,000 = 23,500.
struct CapitalEpoch {
    ex: TestExchange,
    w: User,
    k: User,
    a: User,
    h: User,
}

fn capital_epoch() -> CapitalEpoch {
    let mut ex = TestExchange::fee_free();
    let l = ex.funded_user(1_100 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    let k = ex.funded_user(2_000 * USDC);
    let a = ex.funded_user(5_000 * USDC);
    let h = ex.funded_user(5_000 * USDC);
    ex.trade(&l, &w, 0, 100 * BASE, 100.0).unwrap();
    ex.set_price(0, 85.0);
    ex.settle(&w).unwrap();
    ex.liquidate(&k, &l.margin, 0, u64::MAX).unwrap();
    assert_eq!(ex.exchange().books.deficit, 468 * USDC);
    ex.run_round(20);
    assert_eq!(ex.account(&k).clawback.lifetime_total, 68 * USDC);
    let e = ex.exchange();
    assert_eq!(e.epoch.phase, EpochPhase::BadDebt);
    assert_eq!(e.books.deficit, 400 * USDC);
    assert_eq!(e.books.total_capital, 23_500 * U);
    assert_eq!(e.holdback_base, 23_500 * U);
    CapitalEpoch { ex, w, k, a, h }
}

/// Attack 1 (before: the attacker paid 13.06 of a fair 107.40 in the review's numbers).
/// During `Applying` the attacker cranks everyone else's charge first, so the deficit its
/// hold-back is computed on shrinks, then withdraws. Touch first: its withdrawal pays its
/// own charge, at the round's rate, before anything leaves.
#[test]
fn attack_1_withdrawing_during_applying_pays_the_capital_share_first() {
    let CapitalEpoch {
        mut ex, w, k, a, h, ..
    } = capital_epoch();
    ex.begin_clawback().unwrap();
    tally_all(&mut ex);
    ex.finalize_tally().unwrap();
    let e = ex.exchange().epoch;
    assert_eq!(e.basis, ClawbackBasis::Capital);
    assert_eq!((e.rate_num, e.rate_den), (400 * U, 23_500 * U));
    let fair = |capital: u128| ceil_div(capital * 400 * U, 23_500 * U) as u64;
    // Everyone else first.
    charge_all(&mut ex, &[w.margin, k.margin, h.margin]);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Applying);
    let wallet = ex.token_balance(&a.token);
    // The most the attacker can take is what is left after its own charge.
    assert_backstop_err(ex.withdraw(&a, 5_000 * USDC), E::InsufficientCapital);
    ex.withdraw(&a, 5_000 * USDC - fair(5_000 * U)).unwrap();
    assert_eq!(
        ex.token_balance(&a.token) - wallet,
        5_000 * USDC - fair(5_000 * U)
    );
    // Its charge was the round's rate on its whole capital, like the honest depositor's.
    assert_eq!(ex.account(&a).clawback.lifetime_total, fair(5_000 * U));
    assert_eq!(ex.account(&h).clawback.lifetime_total, fair(5_000 * U));
    assert_eq!(fair(5_000 * U), 85_106_383);
    assert_eq!(ex.account(&w).clawback.lifetime_total, fair(11_500 * U));
    assert_eq!(
        ex.account(&k).clawback.lifetime_total,
        68 * USDC + fair(2_000 * U)
    );
    // Its charge was the last one: the round ended and the epoch closed.
    let e = ex.exchange();
    assert_eq!((e.books.deficit, e.epoch.phase), (0, EpochPhase::Normal));
}

/// Attack 1, before the round: withdrawing in `BadDebt` keeps the share of the deficit
/// against Σ capital when the epoch opened — a colluder's large deposit made afterwards
/// does not dilute it.
#[test]
fn attack_1_a_colluders_deposit_does_not_shrink_the_bad_debt_hold_back() {
    let CapitalEpoch { mut ex, a, .. } = capital_epoch();
    let keep = ceil_div(5_000 * U * 400 * U, 23_500 * U) as u64;
    let colluder = ex.funded_user(1_000_000 * USDC);
    let _ = colluder;
    assert_backstop_err(
        ex.withdraw(&a, 5_000 * USDC - keep + 1),
        E::BadDebtWithdrawalLimit,
    );
    ex.withdraw(&a, 5_000 * USDC - keep).unwrap();
    assert_eq!(ex.exchange().holdback_base, 23_500 * U);
}

/// Attack 2 (before: the honest winner paid 499.63 instead of 250). Two accounts of one
/// attacker net frozen profit into a loser with band-edge trades while a deficit is open.
/// Only the oracle price fills then, whatever the band; a fill at the oracle moves no
/// value, so the honest winner pays exactly what it would have.
#[test]
fn attack_2_band_edge_netting_is_refused_and_oracle_trades_move_nothing() {
    let mp = MarketParams {
        max_trade_deviation_bps: MAX_TRADE_DEVIATION_BPS,
        ..default_market_params()
    };
    let run = |attack: bool| {
        let mut ex = TestExchange::with_params(default_exchange_params(), &[mp], &[100.0]);
        let l = ex.funded_user(1_100 * USDC);
        let hw = ex.funded_user(10_000 * USDC);
        let cw = ex.funded_user(10_000 * USDC);
        let cl = ex.funded_user(20_000 * USDC);
        let k = ex.funded_user(100_000 * USDC);
        ex.trade(&l, &hw, 0, 100 * BASE, 100.0).unwrap();
        ex.trade(&cl, &cw, 0, 100 * BASE, 100.0).unwrap();
        ex.set_price(0, 85.0);
        ex.liquidate(&k, &l.margin, 0, u64::MAX).unwrap();
        assert_eq!(ex.exchange().epoch.phase, EpochPhase::BadDebt);
        if attack {
            // The colluding winner buys its short back from the colluding loser at the
            // top of the band (then one atom above the oracle): refused.
            for px in [85.0 * 1.10, 85.000001] {
                assert_backstop_err(ex.trade(&cw, &cl, 0, 100 * BASE, px), E::PriceNotOracle);
            }
            // At the oracle it fills (the loser pays the taker fee).
            ex.trade(&cl, &cw, 0, -100 * BASE, 85.0).unwrap();
        }
        ex.run_round(20);
        assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
        let (h, c) = (ex.account(&hw).clawback, ex.account(&cw).clawback);
        (
            h.last_weight,
            h.lifetime_total,
            c.last_weight,
            c.lifetime_total,
        )
    };
    let honest = run(false);
    let attacked = run(true);
    assert_eq!(honest.0, 1_500 * U, "the honest winner's weight");
    assert_eq!(honest.2, 1_500 * U, "the colluding winner's weight");
    assert_eq!(
        attacked, honest,
        "weights and charges are unchanged by the attack"
    );
}

/// Attack 3 (before: two offsetting accounts tallied at two prices both weighed 0 and the
/// honest winner paid 500 instead of 250). Tallies value accounts at the round's snapshot,
/// so the oracle at tally time changes nothing.
#[test]
fn attack_3_tallies_at_chosen_prices_change_no_weight() {
    let run = |attack: bool| {
        let mut ex = TestExchange::new();
        let t1 = ex.funded_user(5_000 * USDC);
        let t2 = ex.funded_user(5_000 * USDC);
        ex.trade(&t1, &t2, 0, 100 * BASE, 100.0).unwrap();
        let b = ex.open_bad_debt();
        ex.begin_clawback().unwrap();
        assert_eq!(ex.exchange().round_prices[0], ex.fixed(85.0));
        if attack {
            // The short is tallied where it weighs nothing, the long too.
            ex.set_price(0, 100.0);
            ex.tally(&[t2.margin]).unwrap();
            ex.set_price(0, 70.0);
            ex.tally(&[t1.margin]).unwrap();
        }
        ex.run_round_from_tallying(20);
        let (w, s) = (ex.account(&b.winner).clawback, ex.account(&t2).clawback);
        (
            w.last_weight,
            w.lifetime_total,
            s.profit_weight,
            s.lifetime_total,
        )
    };
    let honest = run(false);
    assert_eq!(honest.2, 1_500 * U, "the short weighs its profit at $85");
    assert_eq!(run(true), honest);
}

/// Attack 4 (before: one account holding 1 base atom in a market whose feed stopped made
/// the round impossible to finalize and halted all trading). The snapshot takes a stale
/// feed's last price; tallies read no oracle; trading goes on during the round.
#[test]
fn attack_4_a_stale_oracle_neither_stalls_the_round_nor_halts_trading() {
    let mp = default_market_params();
    let mut ex = TestExchange::with_params(default_exchange_params(), &[mp, mp], &[100.0, 50.0]);
    let s = ex.funded_user(1_000 * USDC);
    let m = ex.funded_user(1_000 * USDC);
    ex.trade(&s, &m, 1, 1, 50.0).unwrap();
    let t1 = ex.funded_user(5_000 * USDC);
    let t2 = ex.funded_user(5_000 * USDC);
    let b = ex.open_bad_debt();
    // Market 1's feed stops: only market 0 publishes from now on.
    ex.advance(600);
    ex.set_price(0, 85.0);
    assert_backstop_err(ex.trade(&s, &m, 1, 1, 50.0), E::OracleStale);
    ex.begin_clawback().unwrap();
    assert_eq!(ex.exchange().round_prices[1], ex.fixed(50.0));
    // Trading in the live market goes on in every phase of the round.
    ex.trade(&t1, &t2, 0, 10 * BASE, 85.0).unwrap();
    tally_all(&mut ex);
    ex.trade(&t2, &t1, 0, 5 * BASE, 85.0).unwrap();
    ex.finalize_tally().unwrap();
    ex.trade(&t1, &t2, 0, 3 * BASE, 85.0).unwrap();
    let due: Vec<Pubkey> = ex.live_accounts();
    charge_all(&mut ex, &due);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    assert!(ex.account(&b.winner).clawback.lifetime_total > 0);
}

/// Attack 5 (before: a winner that settled between the liquidation and
/// `resolve_bankruptcy` converted its profit and paid 290.24 instead of 900). The
/// liquidation resolves the bankruptcy itself: the epoch is open when it returns, and
/// profit stays frozen.
#[test]
fn attack_5_no_conversion_between_a_liquidation_and_its_bankruptcy() {
    let mut ex = TestExchange::new();
    let b = ex.open_bad_debt();
    let d = ex.exchange().books.deficit;
    assert!(d > 0);
    assert_eq!(ex.exchange().unresolved_bankruptcies, 0);
    ex.settle(&b.winner).unwrap();
    let w = ex.account(&b.winner);
    assert_eq!(w.capital, 10_000 * USDC, "nothing converted");
    assert_eq!(w.pnl, 1_500 * USDC as i64);
    ex.run_round(20);
    let e = ex.exchange();
    assert_eq!(e.epoch.phase, EpochPhase::Normal);
    // The winner and the keeper (its fee) share the deficit pro rata.
    let k = ex.account(&b.keeper).clawback;
    let total = 1_500 * U + k.last_weight;
    assert_eq!(
        ex.account(&b.winner).clawback.lifetime_total as u128,
        ceil_div(1_500 * U * d as u128, total)
    );
}

/// Attack 5, the other way in: an account a clawback charge left bankrupt is unresolved
/// until someone resolves it; meanwhile no profit converts (its loss may open an epoch).
#[test]
fn attack_5_an_unresolved_bankruptcy_freezes_conversions() {
    let mut ex = TestExchange::new();
    let v = ex.bankrupt_by_clawback();
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    // A winner with a profit to bank.
    let x = ex.funded_user(5_000 * USDC);
    let y = ex.funded_user(5_000 * USDC);
    let p = ex.price(0);
    ex.trade(&x, &y, 0, 10 * BASE, p).unwrap();
    ex.set_price(0, p + 5.0);
    ex.settle(&x).unwrap();
    assert!(ex.account(&x).pnl > 0, "frozen while V is unresolved");
    assert_eq!(ex.account(&x).capital, 5_000 * USDC);
    // The fund covers V's shortfall; conversions resume.
    let donor = ex.user(10_000 * USDC);
    ex.contribute_insurance(&donor, 10_000 * USDC).unwrap();
    ex.resolve_bankruptcy(&v.margin).unwrap();
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    ex.settle(&x).unwrap();
    assert_eq!(ex.account(&x).pnl, 0);
    assert!(ex.account(&x).capital > 5_000 * USDC);
}

/// When attack 6's large deposit lands.
#[derive(Clone, Copy)]
enum Deposit {
    None,
    BeforeTheRound,
    BeforeOwnTally,
}

/// A LeverageWeighted epoch: W (10,000, with 190,000 more in its wallet) short 100 from
/// L at $100; at $85 K liquidates L. W may deposit its 190,000 at `when`. Returns W's
/// recorded weight and its charge.
fn leverage_weighted_round(when: Deposit) -> (u128, u64) {
    let params = ExchangeParams {
        clawback_policy: ClawbackPolicy::LeverageWeighted,
        ..default_exchange_params()
    };
    let mut ex = TestExchange::with_params(params, &[default_market_params()], &[100.0]);
    let l = ex.funded_user(1_100 * USDC);
    let w = ex.user(200_000 * USDC);
    ex.deposit(&w, 10_000 * USDC).unwrap();
    let k = ex.funded_user(100_000 * USDC);
    ex.trade(&l, &w, 0, 100 * BASE, 100.0).unwrap();
    ex.set_price(0, 85.0);
    ex.liquidate(&k, &l.margin, 0, u64::MAX).unwrap();
    if let Deposit::BeforeTheRound = when {
        ex.deposit(&w, 190_000 * USDC).unwrap();
    }
    ex.begin_clawback().unwrap();
    if let Deposit::BeforeOwnTally = when {
        ex.deposit(&w, 190_000 * USDC).unwrap();
    }
    ex.run_round_from_tallying(20);
    let c = ex.account(&w).clawback;
    (c.last_weight, c.lifetime_total)
}

/// Attack 6 (before: a large deposit during `Tallying`, before one's own tally, cut a
/// LeverageWeighted weight: 183.51 paid instead of 250). The deposit tallies the account
/// first, as it stood at the snapshot.
#[test]
fn attack_6_a_deposit_before_ones_tally_does_not_cut_the_weight() {
    let honest = leverage_weighted_round(Deposit::None);
    // p + p · notional / equity = 1,500 + 1,500 · 8,500 / 11,500 (rounded down).
    assert_eq!(honest.0, 1_500 * U + 1_500 * U * 8_500 * U / (11_500 * U));
    assert_eq!(leverage_weighted_round(Deposit::BeforeOwnTally), honest);
}

/// Attack 6 before the round (found by review): a large deposit in `BadDebt`, before
/// `begin_clawback`, would cut a LeverageWeighted weight by diluting the leverage. Capital
/// deposited during the epoch is left out of the equity leverage is measured on.
#[test]
fn attack_6_a_deposit_before_the_round_does_not_cut_the_weight() {
    assert_eq!(
        leverage_weighted_round(Deposit::BeforeTheRound),
        leverage_weighted_round(Deposit::None)
    );
}

/// Accounts that cannot carry profit weight (no position, no positive pnl) do not
/// lengthen a profit-basis round: the round finalizes once the ones that can are tallied,
/// however many idle accounts exist.
#[test]
fn idle_accounts_do_not_lengthen_a_profit_round() {
    let mut ex = TestExchange::new();
    for _ in 0..40 {
        ex.funded_user(100 * USDC);
    }
    let b = ex.open_bad_debt();
    ex.begin_clawback().unwrap();
    let e = ex.exchange().epoch;
    assert_eq!(e.profit_pending, 2, "the winner and the keeper");
    ex.tally(&[b.winner.margin, b.keeper.margin]).unwrap();
    ex.finalize_tally().unwrap();
    assert_eq!(ex.exchange().epoch.basis, ClawbackBasis::Profit);
    ex.clawback(&[b.winner.margin, b.keeper.margin]).unwrap();
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
}
