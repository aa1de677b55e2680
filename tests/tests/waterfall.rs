//! The default waterfall on the real SVM: liquidation, bankruptcy, the insurance fund,
//! bad-debt epochs and clawback rounds. Every number is derived in the test from the
//! parameters, and the harness checks I1–I4 against token balances after every step.

use anchor_lang::error::ErrorCode as AnchorError;
use anchor_lang::prelude::Pubkey;
use backstop::error::BackstopError as E;
use backstop::state::{ClawbackBasis, ClawbackPolicy, EpochPhase, ExchangeParams, MarketParams};
use backstop_client::ix;
use backstop_tests::*;
use solana_sdk::signer::Signer;

fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

/// The crash population: a levered long `loser` whose counterparties are two short
/// `winners`, a liquidator `keeper`, a flat `bystander` and a small insurance fund.
struct Crash {
    ex: TestExchange,
    loser: User,
    w1: User,
    w2: User,
    keeper: User,
    bystander: User,
}

fn crash_population(params: ExchangeParams) -> Crash {
    let mut ex = TestExchange::with_params(params, &[default_market_params()], &[100.0]);
    let donor = ex.user(100 * USDC);
    ex.contribute_insurance(&donor, 100 * USDC).unwrap();
    let loser = ex.funded_user(1_100 * USDC);
    let w1 = ex.funded_user(1_000 * USDC);
    let w2 = ex.funded_user(1_000 * USDC);
    let keeper = ex.funded_user(10_000 * USDC);
    let bystander = ex.funded_user(500 * USDC);
    // The loser buys 60 from w1 and 40 from w2 at $100 (taker fees 6 + 4 to insurance).
    ex.trade(&loser, &w1, 0, 60 * BASE, 100.0).unwrap();
    ex.trade(&loser, &w2, 0, 40 * BASE, 100.0).unwrap();
    Crash {
        ex,
        loser,
        w1,
        w2,
        keeper,
        bystander,
    }
}

#[test]
fn crash_insurance_then_clawback_from_winners_to_the_atom() {
    let Crash {
        mut ex,
        loser,
        w1,
        w2,
        keeper,
        bystander,
    } = crash_population(default_exchange_params());
    assert_eq!(ex.insurance_balance(), 110 * USDC);

    // $100 → $85 in one gap: loser equity 1_100 − 10 − 1_500 = −410 (< 0, below MM 425).
    ex.set_price(0, 85.0);
    let h = ex.health(&loser.margin).unwrap();
    assert_eq!(h.equity, -410 * USDC as i128);
    assert!(h.liquidatable);

    // Equity ≤ 0: the whole position moves at the oracle price and the insurance fund
    // pays the keeper's fee: 1% of 8_500 = 85, keeper share 80% = 68. The loser is left
    // flat at −410 and resolved in the same instruction: capital 1_100 absorbed, insurance
    // pays its last 42, 368 becomes deficit and the epoch opens.
    let meta = ex.liquidate(&keeper, &loser.margin, 0, u64::MAX).unwrap();
    let names: Vec<&str> = backstop_client::events::parse_logs(&meta.logs)
        .iter()
        .map(|e| e.name())
        .collect();
    assert_eq!(names, ["Liquidated", "EpochOpened", "BankruptcyResolved"]);
    let k = ex.account(&keeper);
    assert_eq!(k.positions[0].base_qty, 100 * BASE);
    assert_eq!(k.positions[0].quote_basis, 8_500 * USDC as i64);
    assert_eq!(k.pnl, 68 * USDC as i64);
    let l = ex.account(&loser);
    assert!(!l.positions.iter().any(|p| p.active));
    assert_eq!(ex.insurance_balance(), 0);
    let e = ex.exchange();
    assert_eq!(e.books.deficit, 368 * USDC);
    assert_eq!(e.epoch.phase, EpochPhase::BadDebt);
    assert_eq!(e.unresolved_bankruptcies, 0);
    let l = ex.account(&loser);
    assert_eq!((l.capital, l.pnl), (0, 0));

    // One round: weights are positive PnL at the tally price — w1 +900, w2 +600 (short
    // from 100 to 85), keeper +68 (its fee). Losers and the bystander weigh nothing.
    ex.run_round(10);
    let d: u128 = 368 * USDC as u128;
    let (a, b, c) = (900 * USDC as u128, 600 * USDC as u128, 68 * USDC as u128);
    let total = a + b + c;
    let want = [
        ceil_div(a * d, total),
        ceil_div(b * d, total),
        ceil_div(c * d, total),
    ];
    assert_eq!(want, [211_224_490, 140_816_327, 15_959_184]);
    let collected: u128 = want.iter().sum();
    assert_eq!(collected, d + 1, "one atom of rounding excess");
    for (u, w, charge) in [(&w1, a, want[0]), (&w2, b, want[1]), (&keeper, c, want[2])] {
        let acct = ex.account(u);
        assert_eq!(acct.clawback.last_amount as u128, charge);
        assert_eq!(acct.clawback.last_weight, w);
        assert_eq!(
            (acct.clawback.last_rate_num, acct.clawback.last_rate_den),
            (d, total)
        );
        assert_eq!(acct.clawback.lifetime_total as u128, charge);
        assert_eq!(acct.clawback.last_epoch, 1);
    }
    // Losers and principal untouched.
    assert_eq!(ex.account(&bystander).capital, 500 * USDC);
    assert_eq!(ex.account(&bystander).clawback.lifetime_total, 0);
    assert_eq!(ex.account(&w1).capital, 1_000 * USDC);
    let e = ex.exchange();
    assert_eq!(e.books.deficit, 0);
    assert_eq!(e.epoch.phase, EpochPhase::Normal);
    assert_eq!(e.epoch.epoch_id, 2);
    assert_eq!(
        ex.insurance_balance(),
        1,
        "the rounding excess went to the insurance fund"
    );

    // The winners settle and leave with exactly their profit minus their charge.
    for (u, profit, charge) in [(&w1, 900u128, want[0]), (&w2, 600, want[1])] {
        ex.settle(u).unwrap();
        let acct = ex.account(u);
        let expect = 1_000 * USDC as u128 + profit * USDC as u128 - charge;
        assert_eq!(acct.capital as u128, expect);
    }
}

#[test]
fn partial_liquidation_stops_at_the_buffer_and_pays_insurance_its_share() {
    let mut ex = TestExchange::new();
    let alice = ex.funded_user(1_100 * USDC);
    let bob = ex.funded_user(10_000 * USDC);
    let keeper = ex.funded_user(10_000 * USDC);
    ex.trade(&alice, &bob, 0, 100 * BASE, 100.0).unwrap();
    let ins_before = ex.insurance_balance();
    ex.set_price(0, 93.5); // equity 440 < MM 467.5, still positive
    let h = ex.health(&alice.margin).unwrap();
    assert!(h.liquidatable && h.equity > 0);
    ex.liquidate(&keeper, &alice.margin, 0, u64::MAX).unwrap();
    let q = ex.account(&keeper).positions[0].base_qty;
    assert!(q > 0 && q < 100 * BASE, "partial: {q}");
    let after = ex.health(&alice.margin).unwrap();
    let target = after.maintenance_margin as i128 * 11_000 / 10_000;
    assert!(after.equity >= target, "at or above MM·1.1");
    assert!(
        after.equity - target < USDC as i128,
        "and not far beyond: only as much as needed"
    );
    // The liquidator bought at 93.5 · 0.99; 20% of that discount went to insurance.
    let p = 93_500_000_000u128; // fixed-point 93.5
    let p_liq = p * 9_900 / 10_000;
    let discount = ceil_div(q as u128 * (p - p_liq), 1_000_000_000);
    let share = ceil_div(discount * 2_000, 10_000);
    assert_eq!((ex.insurance_balance() - ins_before) as u128, share);
    assert_eq!(ex.account(&keeper).pnl, -(share as i64));
    // The keeper still meets initial margin; a second liquidation is refused.
    assert_backstop_err(
        ex.liquidate(&keeper, &alice.margin, 0, u64::MAX),
        E::NotLiquidatable,
    );
}

#[test]
fn liquidation_refusals() {
    let mut ex = TestExchange::new();
    let alice = ex.funded_user(1_100 * USDC);
    let bob = ex.funded_user(10_000 * USDC);
    let keeper = ex.funded_user(10_000 * USDC);
    let broke = ex.funded_user(USDC);
    ex.trade(&alice, &bob, 0, 100 * BASE, 100.0).unwrap();
    // Healthy.
    assert_backstop_err(
        ex.liquidate(&keeper, &alice.margin, 0, u64::MAX),
        E::NotLiquidatable,
    );
    ex.set_price(0, 93.5);
    // Self-liquidation: Anchor's duplicate-mutable check refuses before the program does.
    assert_anchor_err(
        ex.liquidate(&alice, &alice.margin, 0, u64::MAX),
        AnchorError::ConstraintDuplicateMutableAccount,
    );
    // A liquidator without margin to carry the position.
    assert_backstop_err(
        ex.liquidate(&broke, &alice.margin, 0, u64::MAX),
        E::LiquidatorBelowInitialMargin,
    );
    // A market the liquidatee holds nothing in.
    ex.add_feed_market(1, default_market_params(), 10.0);
    assert_backstop_err(
        ex.liquidate(&keeper, &alice.margin, 1, u64::MAX),
        E::NoPositionInMarket,
    );
    assert_backstop_err(ex.liquidate(&keeper, &alice.margin, 0, 0), E::ZeroAmount);
    // Stale price: no liquidation on a stale oracle.
    ex.advance(61);
    assert_backstop_err(
        ex.liquidate(&keeper, &alice.margin, 0, u64::MAX),
        E::OracleStale,
    );
    ex.refresh_prices();
    // The keeper's own limit caps the size.
    ex.liquidate(&keeper, &alice.margin, 0, BASE as u64)
        .unwrap();
    assert_eq!(ex.account(&keeper).positions[0].base_qty, BASE);
    // Not bankrupt: open positions.
    assert_backstop_err(ex.resolve_bankruptcy(&alice.margin), E::NotBankrupt);
    // Not bankrupt: flat and solvent.
    assert_backstop_err(ex.resolve_bankruptcy(&broke.margin), E::NotBankrupt);
}

/// A bankrupt account resolved: deficit open, exchange in `BadDebt`. Returns the crash
/// population after `resolve_bankruptcy` (368 USDC deficit, insurance empty).
fn open_epoch(params: ExchangeParams) -> Crash {
    let mut c = crash_population(params);
    c.ex.set_price(0, 85.0);
    let (keeper, loser) = (&c.keeper, &c.loser);
    c.ex.liquidate(keeper, &loser.margin, 0, u64::MAX).unwrap();
    assert_eq!(c.ex.exchange().books.deficit, 368 * USDC);
    c
}

#[test]
fn epoch_phase_rules() {
    let params = ExchangeParams {
        min_epoch_secs: 3_600,
        ..default_exchange_params()
    };
    let Crash {
        mut ex,
        w1,
        w2,
        keeper,
        bystander,
        ..
    } = open_epoch(params);
    let donor = ex.user(10 * USDC);
    // BadDebt: positive pnl frozen — settle marks but converts nothing to capital.
    ex.settle(&w1).unwrap();
    let a = ex.account(&w1);
    assert_eq!(a.capital, 1_000 * USDC);
    assert_eq!(a.pnl, 900 * USDC as i64);
    // Capital withdrawals limited to capital − ⌈capital·deficit/Σcapital⌉.
    let e = ex.exchange();
    let cap = ex.account(&bystander).capital as u128;
    let keep = ceil_div(cap * e.books.deficit as u128, e.books.total_capital);
    assert_backstop_err(
        ex.withdraw(&bystander, (cap - keep) as u64 + 1),
        E::BadDebtWithdrawalLimit,
    );
    ex.withdraw(&bystander, (cap - keep) as u64).unwrap();
    // Insurance withdrawals blocked.
    let k = ex.keys;
    let admin = ex.admin.insecure_clone();
    let r = ex.send(
        &[
            ix::withdraw_insurance(&k, &admin.pubkey(), &w1.token, 1),
            ix::apply_insurance_withdrawal(&k, &w1.token),
        ],
        &[&admin],
    );
    assert_backstop_err(r, E::InsuranceLocked);
    // Too early for a round.
    assert_backstop_err(ex.begin_clawback(), E::EpochNotReady);
    ex.advance(3_600);
    ex.refresh_prices();
    // Out-of-phase calls.
    assert_backstop_err(ex.tally(&[w1.margin]), E::WrongEpochPhase);
    assert_backstop_err(ex.finalize_tally(), E::WrongEpochPhase);
    assert_backstop_err(ex.clawback(&[w1.margin]), E::WrongEpochPhase);
    ex.begin_clawback().unwrap();
    assert_backstop_err(ex.begin_clawback(), E::WrongEpochPhase);
    // Tallying: nothing is paused. A trade (at the oracle: a deficit is open) tallies both
    // sides first, as they stood when the round began.
    let round = ex.exchange().epoch.round_seq;
    ex.trade(&w1, &w2, 0, BASE, 85.0).unwrap();
    assert_eq!(ex.account(&w1).clawback.tally_round, round);
    assert_eq!(ex.account(&w2).clawback.tally_round, round);
    // Double tally, duplicates in one batch, finalize before all are tallied.
    assert_backstop_err(ex.tally(&[w1.margin]), E::AlreadyTallied);
    assert_backstop_err(
        ex.tally(&[keeper.margin, keeper.margin]),
        E::DuplicateAccount,
    );
    assert_backstop_err(ex.finalize_tally(), E::TallyIncomplete);
    assert_backstop_err(ex.clawback(&[w1.margin]), E::WrongEpochPhase);
    let rest: Vec<Pubkey> = ex
        .live_accounts()
        .into_iter()
        .filter(|k| {
            ex.exchange()
                .epoch
                .due_for_tally(&ex.account_at(k).clawback)
        })
        .collect();
    ex.tally(&rest).unwrap();
    ex.finalize_tally().unwrap();
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Applying);
    // Applying: cover_deficit refused, accounts without weight refused, double clawback.
    assert_backstop_err(ex.cover_deficit(&donor, USDC), E::CoverDuringApplying);
    assert_backstop_err(ex.clawback(&[bystander.margin]), E::NothingToClawBack);
    ex.clawback(&[w1.margin]).unwrap();
    assert_backstop_err(ex.clawback(&[w1.margin]), E::AlreadyClawedBack);
    ex.clawback(&[w2.margin, keeper.margin]).unwrap();
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    // Back to normal: trading resumes.
    ex.trade(&w1, &w2, 0, BASE, 85.0).unwrap();
}

#[test]
fn accounts_come_and_go_during_a_round_and_owe_it_nothing() {
    let Crash { mut ex, .. } = open_epoch(default_exchange_params());
    let idle = ex.user(0);
    ex.begin_clawback().unwrap();
    // Created during Tallying: born tallied with no weight.
    let fresh = ex.funded_user(500 * USDC);
    let round = ex.exchange().epoch.round_seq;
    assert_eq!(ex.account(&fresh).clawback.tally_round, round);
    assert_backstop_err(ex.tally(&[fresh.margin]), E::AlreadyTallied);
    // An empty account closes during Tallying (tallied first, weighing nothing).
    ex.close_account(&idle).unwrap();
    ex.run_round_from_tallying(10);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    assert_eq!(ex.account(&fresh).clawback.lifetime_total, 0);
    assert_eq!(ex.account(&fresh).capital, 500 * USDC);
}

#[test]
fn cover_deficit_closes_the_epoch_before_any_clawback() {
    let Crash { mut ex, w1, .. } = open_epoch(default_exchange_params());
    let donor = ex.user(1_000 * USDC);
    ex.cover_deficit(&donor, 100 * USDC).unwrap();
    assert_eq!(ex.exchange().books.deficit, 268 * USDC);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::BadDebt);
    // Paying more than the deficit takes only the deficit.
    ex.cover_deficit(&donor, 1_000 * USDC).unwrap();
    assert_eq!(ex.token_balance(&donor.token), 1_000 * USDC - 368 * USDC);
    let e = ex.exchange();
    assert_eq!(
        (e.books.deficit, e.epoch.phase, e.epoch.epoch_id),
        (0, EpochPhase::Normal, 2)
    );
    assert_eq!(ex.account(&w1).clawback.lifetime_total, 0);
    assert_backstop_err(ex.cover_deficit(&donor, USDC), E::NoDeficit);
}

#[test]
fn cover_during_tallying_cancels_the_round() {
    let Crash { mut ex, w1, .. } = open_epoch(default_exchange_params());
    let donor = ex.user(1_000 * USDC);
    ex.begin_clawback().unwrap();
    ex.tally(&[w1.margin]).unwrap();
    ex.cover_deficit(&donor, 368 * USDC).unwrap();
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    assert_backstop_err(ex.finalize_tally(), E::WrongEpochPhase);
}

#[test]
fn rate_cap_forces_a_second_round() {
    let params = ExchangeParams {
        clawback_rate_cap_bps: 1_500, // at most 15% of each weight per round
        round_cooldown_secs: 600,
        ..default_exchange_params()
    };
    let Crash { mut ex, w1, .. } = open_epoch(params);
    ex.run_round(10);
    // Σw = 1_568 → 15% is at most 235.2 of 368; the rest waits.
    let e = ex.exchange();
    assert_eq!(e.epoch.phase, EpochPhase::BadDebt);
    let first = ex.account(&w1).clawback.last_amount;
    assert_eq!(first as u128, ceil_div(900 * USDC as u128 * 1_500, 10_000));
    let left = e.books.deficit;
    assert_eq!(
        left as u128,
        368 * USDC as u128
            - (ceil_div(900 * USDC as u128 * 15, 100)
                + ceil_div(600 * USDC as u128 * 15, 100)
                + ceil_div(68 * USDC as u128 * 15, 100))
    );
    assert_backstop_err(ex.begin_clawback(), E::EpochNotReady);
    ex.advance(600);
    ex.refresh_prices();
    ex.run_round(10);
    let e = ex.exchange();
    assert_eq!((e.books.deficit, e.epoch.phase), (0, EpochPhase::Normal));
    let a = ex.account(&w1);
    assert_eq!(a.clawback.last_round, 2);
    assert!(a.clawback.lifetime_total > first);
}

/// Loser L buys 95 from W at $100; at $80 W settles its +1_900 into capital (Normal, no
/// warmup) and keeper K takes L's long over at the oracle price; L goes bankrupt.
struct Gap {
    ex: TestExchange,
    w: User,
    k: User,
    saver: User,
}

fn gap_population(taker_fee_bps: u16) -> Gap {
    let mp = MarketParams {
        taker_fee_bps,
        ..default_market_params()
    };
    let mut ex = TestExchange::with_params(default_exchange_params(), &[mp], &[100.0]);
    let l = ex.funded_user(1_000 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    let k = ex.funded_user(100_000 * USDC);
    let saver = ex.funded_user(3_000 * USDC);
    ex.trade(&l, &w, 0, 95 * BASE, 100.0).unwrap();
    ex.set_price(0, 80.0);
    ex.settle(&w).unwrap();
    assert_eq!(ex.account(&w).capital, 11_900 * USDC);
    ex.liquidate(&k, &l.margin, 0, u64::MAX).unwrap();
    Gap { ex, w, k, saver }
}

#[test]
fn deficit_larger_than_all_profit_takes_all_profit_then_principal_pro_rata() {
    let Gap {
        mut ex,
        w,
        k,
        saver,
    } = gap_population(10);
    // L lost 1_900 + 9.5 fee on 1_000 capital. The keeper's fee (1% of 7_600, its 80%:
    // 60.8) came from the insurance fund's 9.5 (the taker fee) and, for the 51.3 the fund
    // did not have, from L's shortfall: deficit 909.5 + 51.3 = 960.8.
    assert_eq!(ex.exchange().books.deficit, 960_800_000);
    assert_eq!(ex.account(&k).pnl, 60_800_000);
    // At $85 the keeper's long is +475 and its fee +60.8: all the positive PnL there is,
    // 535.8 < 960.8. W's short is −475 (its profit is principal now), the saver is flat.
    ex.set_price(0, 85.0);
    ex.run_round(10);
    let kk = ex.account(&k);
    assert_eq!(
        kk.clawback.last_amount, 535_800_000,
        "all of the keeper's profit, not more"
    );
    assert!(!kk.clawback.last_basis_is_capital);
    assert_eq!(
        ex.account(&saver).capital,
        3_000 * USDC,
        "principal untouched while profit exists"
    );
    assert_eq!(
        ex.account(&w).clawback.lifetime_total,
        0,
        "a loser is not charged"
    );
    let e = ex.exchange();
    assert_eq!(
        (e.books.deficit, e.epoch.phase),
        (425 * USDC, EpochPhase::BadDebt)
    );
    // Round 2: no positive PnL left, so principal pays pro rata, never below zero.
    let caps: Vec<(u64, u64)> = [&k, &w, &saver]
        .iter()
        .map(|u| (ex.account(u).capital, 0))
        .collect();
    let total_cap = e.books.total_capital;
    ex.run_round(10);
    let e = ex.exchange();
    assert_eq!((e.books.deficit, e.epoch.phase), (0, EpochPhase::Normal));
    let mut collected = 0u128;
    for (u, (cap, _)) in [&k, &w, &saver].iter().zip(caps) {
        let a = ex.account(u);
        let want = ceil_div(cap as u128 * 425 * USDC as u128, total_cap);
        assert!(a.clawback.last_basis_is_capital);
        assert_eq!(a.clawback.last_amount as u128, want);
        assert_eq!(a.capital as u128, cap as u128 - want);
        collected += want;
    }
    assert!(collected >= 425 * USDC as u128 && collected < 425 * USDC as u128 + 3);
    assert_eq!(
        ex.insurance_balance() as u128,
        collected - 425 * USDC as u128
    );
}

#[test]
fn zero_winners_charge_principal_in_the_same_round() {
    // No taker fee → empty insurance → the keeper's 60.8 fee is owed by L (its shortfall,
    // 960.8, becomes the deficit). A first round takes that fee back (the only profit:
    // W's profit is capital, the keeper's long is flat at $80); then nobody has positive
    // PnL and the next round charges principal.
    let Gap {
        mut ex,
        w,
        k,
        saver,
    } = gap_population(0);
    assert_eq!(ex.exchange().books.deficit, 960_800_000);
    ex.run_round(10);
    assert_eq!(ex.account(&k).clawback.last_amount, 60_800_000);
    let e = ex.exchange();
    assert_eq!(e.books.deficit, 900 * USDC);
    let total_cap = e.books.total_capital;
    let caps: Vec<u64> = [&k, &w, &saver]
        .iter()
        .map(|u| ex.account(u).capital)
        .collect();
    ex.run_round(10);
    let e = ex.exchange();
    assert_eq!(
        (e.books.deficit, e.epoch.phase, e.epoch.rounds_in_epoch),
        (0, EpochPhase::Normal, 0)
    );
    assert_eq!(e.epoch.basis, ClawbackBasis::Capital);
    for (u, cap) in [&k, &w, &saver].iter().zip(caps) {
        let want = ceil_div(cap as u128 * 900 * USDC as u128, total_cap);
        assert_eq!(ex.account(u).clawback.last_amount as u128, want);
    }
}

#[test]
fn one_winner_pays_exactly_the_deficit() {
    let mut ex = TestExchange::new();
    let l = ex.funded_user(1_000 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    ex.trade(&l, &w, 0, 95 * BASE, 100.0).unwrap();
    ex.set_price(0, 85.0);
    // The winner liquidates the loser itself (its short nets against the long: flat).
    ex.liquidate(&w, &l.margin, 0, u64::MAX).unwrap();
    let d = ex.exchange().books.deficit;
    assert!(d > 0);
    ex.run_round(10);
    assert_eq!(
        ex.account(&w).clawback.last_amount,
        d,
        "r = D/w: exactly D, no excess"
    );
    assert_eq!(ex.insurance_balance(), 0);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
}

/// Final state of every account after running the crash round with a given crank order.
fn crank(order: impl Fn(Vec<Pubkey>) -> Vec<Vec<Pubkey>>) -> Vec<(u64, i64, u64)> {
    let Crash { mut ex, .. } = open_epoch(default_exchange_params());
    ex.begin_clawback().unwrap();
    let all = ex.live_accounts();
    for batch in order(all.clone()) {
        ex.tally(&batch).unwrap();
    }
    ex.finalize_tally().unwrap();
    let weighted: Vec<Pubkey> = all
        .iter()
        .copied()
        .filter(|k| ex.account_at(k).clawback.profit_weight > 0)
        .collect();
    for batch in order(weighted) {
        ex.clawback(&batch).unwrap();
    }
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    all.iter()
        .map(|k| {
            let a = ex.account_at(k);
            (a.capital, a.pnl, a.clawback.last_amount)
        })
        .collect()
}

#[test]
fn charges_do_not_depend_on_crank_order_or_batching() {
    let one_batch = crank(|v| vec![v]);
    let reversed_singles = crank(|mut v| {
        v.reverse();
        v.into_iter().map(|k| vec![k]).collect()
    });
    let pairs = crank(|v| v.chunks(2).rev().map(|c| c.to_vec()).collect());
    assert_eq!(one_batch, reversed_singles);
    assert_eq!(one_batch, pairs);
}

#[test]
fn leverage_weighted_policy_charges_levered_winners_more() {
    let params = ExchangeParams {
        clawback_policy: ClawbackPolicy::LeverageWeighted,
        ..default_exchange_params()
    };
    let Crash { mut ex, w1, w2, .. } = open_epoch(params);
    ex.run_round(10);
    let (a, b) = (ex.account(&w1), ex.account(&w2));
    // Same capital (1_000), w1 holds 60 short and w2 40: w1 is more levered.
    assert!(a.clawback.last_weight > 900 * USDC as u128);
    let per_profit_a = a.clawback.last_amount as f64 / 900.0;
    let per_profit_b = b.clawback.last_amount as f64 / 600.0;
    assert!(
        per_profit_a > per_profit_b,
        "{per_profit_a} vs {per_profit_b}"
    );
    assert!(
        a.clawback.last_amount <= 900 * USDC,
        "capped at positive PnL"
    );
    assert_eq!(ex.exchange().books.deficit, 0);
}

#[test]
fn a_full_batch_fits_one_legacy_transaction() {
    // 25 margin accounts + one (market, oracle) pair: tally and clawback each in one
    // transaction of at most 1_232 bytes.
    let Crash { mut ex, w1, .. } = open_epoch(default_exchange_params());
    let mut extra = vec![];
    for _ in 0..20 {
        extra.push(ex.funded_user(10 * USDC));
    }
    let _ = extra;
    let _ = w1;
    let all = ex.live_accounts();
    assert!(all.len() >= 25);
    let batch: Vec<Pubkey> = all[..25].to_vec();
    let exk = ex.exchange_key();
    let m = ex.markets[0];
    let _ = m;
    let i = ix::tally(&exk, &batch);
    let tx = solana_sdk::transaction::Transaction::new_with_payer(&[i], Some(&ex.payer.pubkey()));
    let size = bincode_size(&tx);
    assert!(size <= 1_232, "tally of 25 is {size} bytes");
    ex.begin_clawback().unwrap();
    ex.tally(&batch).unwrap();
    ex.tally(&all[25..]).unwrap();
    ex.finalize_tally().unwrap();
    let k = ex.keys;
    let cl = ix::clawback(&k, &batch);
    let tx = solana_sdk::transaction::Transaction::new_with_payer(&[cl], Some(&ex.payer.pubkey()));
    assert!(bincode_size(&tx) <= 1_232);
}

fn bincode_size(tx: &solana_sdk::transaction::Transaction) -> usize {
    // signatures (1 + 64 each) + message
    let sigs = tx.message.header.num_required_signatures as usize;
    1 + 64 * sigs + tx.message.serialize().len()
}

#[test]
fn documented_batch_limits_are_the_measured_ones() {
    use backstop_client::batch::{legacy_tx_size, max_batch};
    let payer = Pubkey::new_unique();
    let ex_keys = backstop_client::ix::ExchangeKeys::new(&Pubkey::new_unique(), 0);
    let accounts: Vec<Pubkey> = (0..64).map(|_| Pubkey::new_unique()).collect();
    let tally = max_batch(&payer, 64, |n| ix::tally(&ex_keys.exchange, &accounts[..n]));
    let claw = max_batch(&payer, 64, |n| ix::clawback(&ex_keys, &accounts[..n]));
    println!("legacy batch limits with compute budget: tally {tally}, clawback {claw}");
    // The numbers stated in tally.rs / clawback.rs doc comments (a tally needs no market
    // or oracle account: it reads the round's snapshot from the exchange).
    assert_eq!((tally, claw), (29, 26));
    // A round's price snapshot needs every market in one begin_clawback: MAX_MARKETS is
    // what fits a legacy transaction with the keeper's compute-budget instructions.
    let pairs: Vec<(Pubkey, Pubkey)> = (0..64)
        .map(|_| (Pubkey::new_unique(), Pubkey::new_unique()))
        .collect();
    let begin = max_batch(&payer, 64, |n| {
        ix::begin_clawback(&ex_keys.exchange, &pairs[..n])
    });
    println!("begin_clawback fits {begin} markets");
    assert_eq!(begin, usize::from(backstop::constants::MAX_MARKETS));
    // Our size model agrees with the real serializer.
    let i = ix::tally(&ex_keys.exchange, &accounts[..10]);
    let tx = solana_sdk::transaction::Transaction::new_with_payer(
        std::slice::from_ref(&i),
        Some(&payer),
    );
    assert_eq!(legacy_tx_size(&payer, &[i]), bincode_size(&tx));
}

#[test]
fn every_step_emits_its_event_and_charges_match_receipts() {
    use backstop_client::events::{parse_logs, Event};
    let Crash {
        mut ex,
        w1,
        w2,
        keeper,
        loser,
        ..
    } = crash_population(default_exchange_params());
    ex.set_price(0, 85.0);
    let meta = ex.liquidate(&keeper, &loser.margin, 0, u64::MAX).unwrap();
    let evs = parse_logs(&meta.logs);
    let names: Vec<&str> = evs.iter().map(|e| e.name()).collect();
    assert_eq!(names, ["Liquidated", "EpochOpened", "BankruptcyResolved"]);
    assert!(
        matches!(&evs[0], Event::Liquidated(l) if l.insurance_paid == 68 * USDC && l.base_qty == 100 * BASE as u64)
    );
    let Event::BankruptcyResolved(b) = &evs[2] else {
        unreachable!()
    };
    assert_eq!(
        (
            b.shortfall,
            b.capital_consumed,
            b.insurance_paid,
            b.deficit_added
        ),
        (410 * USDC, 1_100 * USDC, 42 * USDC, 368 * USDC)
    );
    ex.begin_clawback().unwrap();
    let all = ex.live_accounts();
    let meta = ex.tally(&all).unwrap();
    assert_eq!(
        parse_logs(&meta.logs).len(),
        all.len(),
        "one TallyRecorded per account"
    );
    let meta = ex.finalize_tally().unwrap();
    let [Event::TallyFinalized(f)] = &parse_logs(&meta.logs)[..] else {
        panic!("TallyFinalized")
    };
    assert_eq!(
        (f.rate_num, f.rate_den, f.total_weight),
        (
            368 * USDC as u128,
            1_568 * USDC as u128,
            1_568 * USDC as u128
        )
    );
    let meta = ex.clawback(&[w1.margin, w2.margin, keeper.margin]).unwrap();
    let evs = parse_logs(&meta.logs);
    let mut charged = 0;
    for e in &evs {
        if let Event::ClawbackApplied(c) = e {
            // Anyone can recompute their own charge from the event: ⌈w·num/den⌉.
            assert_eq!(
                c.amount as u128,
                (c.weight * c.rate_num).div_ceil(c.rate_den)
            );
            let receipt = ex.account_at(&c.account).clawback;
            assert_eq!(
                (receipt.last_amount, receipt.last_weight),
                (c.amount, c.weight)
            );
            charged += c.amount;
        }
    }
    assert_eq!(charged, 368 * USDC + 1);
    let names: Vec<&str> = evs.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "ClawbackApplied",
            "ClawbackApplied",
            "ClawbackApplied",
            "RoundEnded",
            "EpochClosed"
        ]
    );
}

/// Bytes of a transaction's log as the runtime counts them against its 10,000-byte
/// limit: the sum of its messages' lengths.
fn log_bytes(logs: &[String]) -> usize {
    logs.iter().map(String::len).sum()
}

#[test]
fn largest_batches_log_within_the_budget() {
    use backstop::constants::{LOG_BYTES_LIMIT, MAX_CLAWBACK_BATCH, MAX_TALLY_BATCH};
    // A capital-basis round (W banks its profit first) in which exactly MAX_CLAWBACK_BATCH
    // accounts hold capital, so one clawback batch of the largest size charges everyone,
    // ends the round and closes the epoch: the most a clawback ever logs. Idle accounts
    // bring the population to MAX_TALLY_BATCH for the largest tally.
    // (LiteSVM does not enforce the 1,232-byte packet limit; on a cluster these batches
    // travel in v0 transactions with a lookup table, with the same log.)
    let mut ex = TestExchange::new();
    let l = ex.funded_user(1_100 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    let k = ex.funded_user(100_000 * USDC);
    let mut with_capital = vec![w.margin, k.margin];
    while with_capital.len() < usize::from(MAX_CLAWBACK_BATCH) {
        with_capital.push(ex.funded_user(1_000 * USDC).margin);
    }
    while ex.live_accounts().len() < usize::from(MAX_TALLY_BATCH) + 1 {
        ex.user(0);
    }
    ex.trade(&l, &w, 0, 100 * BASE, 100.0).unwrap();
    ex.set_price(0, 85.0);
    ex.settle(&w).unwrap();
    // The keeper takes the position over at the oracle price; its 68 USDC fee (10 from
    // the insurance fund — the trade's taker fee — and 58 owed by L) is its only profit,
    // which a first round takes whole. The next round has no profit anywhere and charges
    // capital.
    ex.liquidate(&k, &l.margin, 0, u64::MAX).unwrap();
    assert_eq!(ex.account(&k).pnl, 68 * USDC as i64);
    ex.run_round(usize::from(MAX_TALLY_BATCH));
    assert_eq!(ex.account(&k).pnl, 0);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::BadDebt);
    ex.begin_clawback().unwrap();
    let all = ex.live_accounts();
    // A tally batch above its cap is refused, with nothing changed.
    assert_backstop_err(
        ex.tally(&all[..=usize::from(MAX_TALLY_BATCH)]),
        E::BatchTooLarge,
    );
    let (first, rest) = all.split_at(usize::from(MAX_TALLY_BATCH));
    let tally = ex.tally(first).unwrap();
    let tally_bytes = log_bytes(&tally.logs);
    ex.tally(rest).unwrap();
    ex.finalize_tally().unwrap();
    assert_eq!(ex.exchange().epoch.basis, ClawbackBasis::Capital);
    let due: Vec<Pubkey> = all
        .iter()
        .copied()
        .filter(|a| {
            ex.exchange()
                .epoch
                .due_for_clawback(&ex.account_at(a).clawback)
        })
        .collect();
    assert_eq!(due.len(), usize::from(MAX_CLAWBACK_BATCH));
    // One more than the cap is refused, with nothing changed.
    let mut over = due.clone();
    over.push(l.margin);
    assert_backstop_err(ex.clawback(&over), E::BatchTooLarge);
    let claw = ex.clawback(&due).unwrap();
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    let claw_bytes = log_bytes(&claw.logs);
    println!(
        "log bytes: tally of {MAX_TALLY_BATCH} accounts {tally_bytes}, \
         clawback of {MAX_CLAWBACK_BATCH} accounts {claw_bytes} (limit {LOG_BYTES_LIMIT})"
    );
    for (what, logs, bytes) in [
        ("tally", &tally.logs, tally_bytes),
        ("clawback", &claw.logs, claw_bytes),
    ] {
        assert!(bytes < LOG_BYTES_LIMIT, "{what} logged {bytes} bytes");
        assert!(
            !logs.iter().any(|l| l.contains("Log truncated")),
            "{what} log truncated"
        );
    }
    // Every charged account's event is in the log.
    let applied = backstop_client::events::parse_logs(&claw.logs)
        .iter()
        .filter(|e| e.name() == "ClawbackApplied")
        .count();
    assert_eq!(applied, usize::from(MAX_CLAWBACK_BATCH));
}
