//! The admin key, tried as an attacker would (docs/DESIGN.md §11): every parameter change
//! and insurance withdrawal waits for the admin delay and moves each rate by one step at
//! most; pauses only stop new risk; the admin changes in two steps. The harness checks
//! I1–I4 after every accepted transaction and I5 (nothing changed) after every refusal.

use backstop::constants::*;
use backstop::error::BackstopError as E;
use backstop::state::{EpochPhase, ExchangeParams, MarketParams};
use backstop_client::ix;
use backstop_tests::*;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

const DAY: u32 = 24 * 3600;

fn delayed(delay: u32) -> TestExchange {
    let params = ExchangeParams {
        admin_delay_secs: delay,
        ..default_exchange_params()
    };
    TestExchange::with_params(params, &[default_market_params()], &[100.0])
}

fn queue_market(ex: &mut TestExchange, p: MarketParams) -> TxResult {
    let admin = ex.admin.insecure_clone();
    let (exk, m) = (ex.exchange_key(), ex.markets[0].pubkey);
    ex.send(
        &[ix::update_market_params(&admin.pubkey(), &exk, &m, p)],
        &[&admin],
    )
}

fn apply_market(ex: &mut TestExchange) -> TxResult {
    let (exk, m) = (ex.exchange_key(), ex.markets[0].pubkey);
    ex.send(&[ix::apply_market_params(&exk, &m)], &[])
}

fn queue_exchange(ex: &mut TestExchange, p: ExchangeParams) -> TxResult {
    let admin = ex.admin.insecure_clone();
    let exk = ex.exchange_key();
    ex.send(
        &[ix::update_exchange_params(&admin.pubkey(), &exk, p)],
        &[&admin],
    )
}

fn apply_exchange(ex: &mut TestExchange) -> TxResult {
    let exk = ex.exchange_key();
    ex.send(&[ix::apply_exchange_params(&exk)], &[])
}

fn pause(ex: &mut TestExchange, flags: u8) {
    let admin = ex.admin.insecure_clone();
    let exk = ex.exchange_key();
    ex.send(&[ix::set_paused(&admin.pubkey(), &exk, flags)], &[&admin])
        .unwrap();
}

/// The attack of the outside review: IM 30% / MM 25% / liquidation fee 20% / insurance
/// share 0, liquidate a 5x long from the admin's own account, restore — in one
/// transaction. Now the fee is capped, every rate moves one step per change, and a change
/// waits a day, which the victim uses to leave.
#[test]
fn one_transaction_confiscation_fails_and_the_victim_leaves_first() {
    let mut ex = delayed(DAY);
    let victim = ex.funded_user(1_000 * USDC);
    let maker = ex.funded_user(100_000 * USDC);
    let admin_trader = ex.funded_user(100_000 * USDC);
    ex.trade(&victim, &maker, 0, 50 * BASE, 100.0).unwrap(); // 5,000 notional: 5x
    let d = default_market_params();
    let confiscating = MarketParams {
        initial_margin_bps: 3_000,
        maintenance_margin_bps: 2_500,
        liquidation_fee_bps: 2_000,
        insurance_share_bps: 0,
        ..d
    };
    assert_backstop_err(queue_market(&mut ex, confiscating), E::InvalidParameter);
    // Within the caps but one jump: refused by the step limits.
    let jump = MarketParams {
        liquidation_fee_bps: 500,
        ..confiscating
    };
    assert_backstop_err(queue_market(&mut ex, jump), E::StepTooLarge);
    // The most one change may do: IM and MM up 5 points, the fee up 1 point.
    let step = MarketParams {
        initial_margin_bps: d.initial_margin_bps + MAX_MARGIN_STEP_BPS,
        maintenance_margin_bps: d.maintenance_margin_bps + MAX_MARGIN_STEP_BPS,
        liquidation_fee_bps: d.liquidation_fee_bps + MAX_FEE_STEP_BPS,
        ..d
    };
    queue_market(&mut ex, step).unwrap();
    assert!(ex.market(0).queued_params.active);
    // Nobody can apply it before the delay, in the same transaction or later.
    assert_backstop_err(apply_market(&mut ex), E::TimelockPending);
    ex.advance(i64::from(DAY) - 1);
    ex.set_price(0, 100.0);
    assert_backstop_err(apply_market(&mut ex), E::TimelockPending);
    // The victim sees the queued change and leaves: closes the position, withdraws.
    let before = ex.health(&victim.margin).unwrap().equity;
    ex.trade(&victim, &maker, 0, -50 * BASE, 100.0).unwrap();
    ex.settle(&victim).unwrap();
    let left = ex.account(&victim).capital;
    ex.withdraw(&victim, left).unwrap();
    assert!(
        ex.token_balance(&victim.token) as i128 >= before - 10 * USDC as i128,
        "the victim left with its equity (less the taker fee)"
    );
    ex.advance(1);
    apply_market(&mut ex).unwrap();
    assert_eq!(ex.market(0).params, step);
    // Nothing left for the admin's account to take.
    let exk = ex.keys;
    let m = ex.markets[0];
    let r = ex.send(
        &[ix::liquidate(
            &exk,
            &admin_trader.pubkey(),
            &victim.margin,
            &m.pubkey,
            &m.oracle,
            u64::MAX,
            &[],
        )],
        &[&admin_trader.key],
    );
    assert_backstop_err(r, E::NoPositionInMarket);
    // Applying twice, or with nothing queued, is refused.
    assert_backstop_err(apply_market(&mut ex), E::NothingQueued);
}

#[test]
fn each_rate_moves_one_step_within_its_cap() {
    let mut ex = TestExchange::new();
    let d = default_market_params();
    let over = [
        MarketParams {
            initial_margin_bps: d.initial_margin_bps + MAX_MARGIN_STEP_BPS + 1,
            ..d
        },
        MarketParams {
            maintenance_margin_bps: d.maintenance_margin_bps - 1,
            initial_margin_bps: d.initial_margin_bps,
            liquidation_fee_bps: 0,
            ..d
        },
        MarketParams {
            liquidation_fee_bps: d.liquidation_fee_bps + MAX_FEE_STEP_BPS + 1,
            ..d
        },
        MarketParams {
            insurance_share_bps: d.insurance_share_bps + MAX_SHARE_STEP_BPS + 1,
            ..d
        },
        MarketParams {
            max_trade_deviation_bps: d.max_trade_deviation_bps + MAX_BAND_STEP_BPS + 1,
            ..d
        },
        MarketParams {
            oracle_max_conf_bps: d.oracle_max_conf_bps + MAX_BAND_STEP_BPS + 1,
            ..d
        },
        MarketParams {
            oracle_max_age_secs: d.oracle_max_age_secs + MAX_ORACLE_AGE_STEP_SECS + 1,
            ..d
        },
    ];
    // The second entry is a legal one-step change (fee 1 point down); the rest are not.
    for (i, p) in over.iter().enumerate() {
        let r = queue_market(&mut ex, *p);
        if i == 1 {
            r.unwrap();
            let admin = ex.admin.insecure_clone();
            let (exk, m) = (ex.exchange_key(), ex.markets[0].pubkey);
            ex.send(
                &[ix::cancel_market_params(&admin.pubkey(), &exk, &m)],
                &[&admin],
            )
            .unwrap();
        } else {
            assert_backstop_err(r, E::StepTooLarge);
        }
    }
    // Absolute caps, each refused whatever the step.
    for p in [
        MarketParams {
            liquidation_fee_bps: MAX_LIQUIDATION_FEE_BPS + 1,
            maintenance_margin_bps: 900,
            initial_margin_bps: 1_000,
            ..d
        },
        MarketParams {
            taker_fee_bps: MAX_TAKER_FEE_BPS + 1,
            ..d
        },
        MarketParams {
            max_trade_deviation_bps: MAX_TRADE_DEVIATION_BPS + 1,
            ..d
        },
    ] {
        assert_backstop_err(queue_market(&mut ex, p), E::InvalidParameter);
    }
    // Exchange rates: the clawback rate cap and the liquidation buffer.
    let e = default_exchange_params();
    for p in [
        ExchangeParams {
            clawback_rate_cap_bps: e.clawback_rate_cap_bps - MAX_RATE_CAP_STEP_BPS - 1,
            ..e
        },
        ExchangeParams {
            liquidation_buffer_bps: e.liquidation_buffer_bps + MAX_BUFFER_STEP_BPS + 1,
            ..e
        },
    ] {
        assert_backstop_err(queue_exchange(&mut ex, p), E::StepTooLarge);
    }
    for p in [
        ExchangeParams {
            admin_delay_secs: MAX_ADMIN_DELAY_SECS + 1,
            ..e
        },
        ExchangeParams {
            max_pause_secs: MAX_PAUSE_SECS + 1,
            ..e
        },
    ] {
        assert_backstop_err(queue_exchange(&mut ex, p), E::InvalidParameter);
    }
}

#[test]
fn queue_apply_cancel_and_who_may_do_what() {
    let mut ex = delayed(3_600);
    let mallory = ex.funded_user(USDC);
    let exk = ex.exchange_key();
    let e = ExchangeParams {
        pnl_warmup_secs: 600,
        ..ex.exchange().params
    };
    // Only the admin queues and cancels.
    let r = ex.send(
        &[ix::update_exchange_params(&mallory.pubkey(), &exk, e)],
        &[&mallory.key],
    );
    assert_backstop_err(r, E::NotAdmin);
    queue_exchange(&mut ex, e).unwrap();
    let q = ex.exchange().queued_params;
    assert!(q.active && q.params == e && q.ready_at == q.queued_at + 3_600);
    assert_backstop_err(queue_exchange(&mut ex, e), E::ChangeAlreadyQueued);
    let r = ex.send(
        &[ix::cancel_exchange_params(&mallory.pubkey(), &exk)],
        &[&mallory.key],
    );
    assert_backstop_err(r, E::NotAdmin);
    assert_backstop_err(apply_exchange(&mut ex), E::TimelockPending);
    // Cancelled: nothing to apply, ever.
    let admin = ex.admin.insecure_clone();
    ex.send(
        &[ix::cancel_exchange_params(&admin.pubkey(), &exk)],
        &[&admin],
    )
    .unwrap();
    ex.advance(3_600);
    assert_backstop_err(apply_exchange(&mut ex), E::NothingQueued);
    let r = ex.send(
        &[ix::cancel_exchange_params(&admin.pubkey(), &exk)],
        &[&admin],
    );
    assert_backstop_err(r, E::NothingQueued);
    // Queued again: anyone applies it once due, once.
    queue_exchange(&mut ex, e).unwrap();
    ex.advance(3_600);
    ex.send(&[ix::apply_exchange_params(&exk)], &[]).unwrap();
    assert_eq!(ex.exchange().params, e);
    assert_backstop_err(apply_exchange(&mut ex), E::NothingQueued);
    // Shortening the delay itself waits for the current delay.
    let shorter = ExchangeParams {
        admin_delay_secs: 1_800,
        ..e
    };
    queue_exchange(&mut ex, shorter).unwrap();
    assert_backstop_err(apply_exchange(&mut ex), E::TimelockPending);
}

#[test]
fn no_change_reaches_into_an_open_bad_debt_epoch() {
    let mut ex = TestExchange::new();
    ex.open_bad_debt();
    // Shortening warmup, changing the policy or the rate cap, raising margins: all wait
    // for the epoch to close.
    let e = ExchangeParams {
        pnl_warmup_secs: 0,
        clawback_rate_cap_bps: 7_500,
        ..ex.exchange().params
    };
    queue_exchange(&mut ex, e).unwrap();
    assert_backstop_err(apply_exchange(&mut ex), E::WaitsForNormal);
    let d = default_market_params();
    let m = MarketParams {
        maintenance_margin_bps: d.maintenance_margin_bps + 100,
        ..d
    };
    queue_market(&mut ex, m).unwrap();
    assert_backstop_err(apply_market(&mut ex), E::WaitsForNormal);
    ex.run_round(27);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    apply_exchange(&mut ex).unwrap();
    apply_market(&mut ex).unwrap();
    assert_eq!(ex.exchange().params, e);
    assert_eq!(ex.market(0).params, m);
}

#[test]
fn insurance_withdrawals_wait_for_unresolved_bankruptcies() {
    // A clawback charge can leave an account bankrupt; until someone resolves it, the
    // fund that must cover it cannot be withdrawn.
    let mut ex = TestExchange::new();
    let v = ex.bankrupt_by_clawback();
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    let donor = ex.user(1_000 * USDC);
    ex.contribute_insurance(&donor, 1_000 * USDC).unwrap();
    let k = ex.keys;
    let admin = ex.admin.insecure_clone();
    let dest = ex.create_token_account(&ex.mint.clone(), &admin.pubkey(), 0);
    ex.send(
        &[ix::withdraw_insurance(
            &k,
            &admin.pubkey(),
            &dest,
            100 * USDC,
        )],
        &[&admin],
    )
    .unwrap();
    assert_backstop_err(
        ex.send(&[ix::apply_insurance_withdrawal(&k, &dest)], &[]),
        E::BankruptcyPending,
    );
    let fund = ex.insurance_balance();
    ex.resolve_bankruptcy(&v.margin).unwrap();
    assert_eq!(ex.exchange().unresolved_bankruptcies, 0);
    let paid = fund - ex.insurance_balance();
    assert!(paid > 0, "the fund paid V's shortfall");
    ex.send(&[ix::apply_insurance_withdrawal(&k, &dest)], &[])
        .unwrap();
    assert_eq!(ex.token_balance(&dest), 100 * USDC);
}

#[test]
fn insurance_withdrawals_wait_for_the_delay_and_for_bankruptcies() {
    let mut ex = delayed(3_600);
    let donor = ex.user(10_000 * USDC);
    ex.contribute_insurance(&donor, 10_000 * USDC).unwrap();
    let k = ex.keys;
    let admin = ex.admin.insecure_clone();
    let dest = ex.create_token_account(&ex.mint.clone(), &admin.pubkey(), 0);
    let elsewhere = ex.create_token_account(&ex.mint.clone(), &admin.pubkey(), 0);
    ex.send(
        &[ix::withdraw_insurance(
            &k,
            &admin.pubkey(),
            &dest,
            5_000 * USDC,
        )],
        &[&admin],
    )
    .unwrap();
    let r = ex.send(
        &[ix::withdraw_insurance(&k, &admin.pubkey(), &dest, USDC)],
        &[&admin],
    );
    assert_backstop_err(r, E::ChangeAlreadyQueued);
    assert_backstop_err(
        ex.send(&[ix::apply_insurance_withdrawal(&k, &dest)], &[]),
        E::TimelockPending,
    );
    // Meanwhile an account goes underwater and a liquidation leaves it flat and negative:
    // the liquidation resolves it in the same instruction (the fund covers it, not the
    // users), so no bankruptcy is left pending.
    let l = ex.funded_user(1_100 * USDC);
    let w = ex.funded_user(10_000 * USDC);
    let kp = ex.funded_user(100_000 * USDC);
    ex.trade(&l, &w, 0, 100 * BASE, 100.0).unwrap();
    ex.set_price(0, 85.0);
    let fund = ex.insurance_balance();
    ex.liquidate(&kp, &l.margin, 0, u64::MAX).unwrap();
    assert_eq!(ex.exchange().unresolved_bankruptcies, 0);
    assert_eq!(ex.exchange().epoch.phase, EpochPhase::Normal);
    let paid = fund - ex.insurance_balance();
    assert!(paid > 0, "the fund paid the loss and the keeper's fee");
    ex.advance(3_600);
    ex.set_price(0, 85.0);
    assert_backstop_err(
        ex.send(&[ix::apply_insurance_withdrawal(&k, &elsewhere)], &[]),
        E::WrongDestination,
    );
    ex.send(&[ix::apply_insurance_withdrawal(&k, &dest)], &[])
        .unwrap();
    assert_eq!(ex.token_balance(&dest), 5_000 * USDC);
    assert_eq!(ex.insurance_balance(), fund - paid - 5_000 * USDC);
}

#[test]
fn pauses_stop_new_risk_only() {
    let params = ExchangeParams {
        max_pause_secs: 600,
        ..default_exchange_params()
    };
    let mut ex = TestExchange::with_params(params, &[default_market_params()], &[100.0]);
    let alice = ex.user(1_010 * USDC);
    ex.deposit(&alice, 1_000 * USDC).unwrap();
    let bob = ex.funded_user(1_000 * USDC);
    let keeper = ex.funded_user(100_000 * USDC);
    let carol = ex.funded_user(1_000 * USDC);
    ex.trade(&alice, &bob, 0, 80 * BASE, 100.0).unwrap();
    pause(&mut ex, PAUSE_ALL);
    // New risk: refused. New accounts: refused.
    assert_backstop_err(ex.trade(&alice, &bob, 0, BASE, 100.0), E::Paused);
    let newcomer = ex.wallet_user(USDC);
    assert_backstop_err(ex.create_account(&newcomer), E::Paused);
    // Everything that cannot add risk stays open.
    ex.deposit(&alice, 10 * USDC).unwrap();
    ex.trade(&alice, &bob, 0, -10 * BASE, 100.0).unwrap();
    // A position can be handed to a flat counterparty (open interest unchanged): no pause
    // traps a user whose only way out is someone willing to take the position over.
    ex.trade(&alice, &carol, 0, -5 * BASE, 100.0).unwrap();
    assert_eq!(ex.account(&carol).positions[0].base_qty, 5 * BASE);
    ex.withdraw(&bob, 100 * USDC).unwrap();
    ex.set_price(0, 89.0);
    ex.liquidate(&keeper, &alice.margin, 0, u64::MAX).unwrap();
    // Setting it again does not extend it; it lapses after max_pause_secs.
    ex.advance(300);
    pause(&mut ex, PAUSE_ALL);
    ex.advance(300);
    ex.set_price(0, 89.0);
    ex.trade(&bob, &keeper, 0, -5 * BASE, 89.0).unwrap();
    ex.create_account(&newcomer).unwrap();
    // Nor can it be renewed back to back: a new pause waits max_pause_secs unpaused.
    let admin = ex.admin.insecure_clone();
    let exk = ex.exchange_key();
    let r = ex.send(
        &[ix::set_paused(&admin.pubkey(), &exk, PAUSE_TRADING)],
        &[&admin],
    );
    assert_backstop_err(r, E::PauseCooldown);
    ex.send(&[ix::set_paused(&admin.pubkey(), &exk, 0)], &[&admin])
        .unwrap();
    let r = ex.send(
        &[ix::set_paused(&admin.pubkey(), &exk, PAUSE_TRADING)],
        &[&admin],
    );
    assert_backstop_err(r, E::PauseCooldown);
    // A paused market freezes its open interest too, whoever trades.
    let m = ex.markets[0].pubkey;
    ex.send(
        &[ix::set_market_paused(&admin.pubkey(), &exk, &m, true)],
        &[&admin],
    )
    .unwrap();
    assert_backstop_err(ex.trade(&bob, &keeper, 0, -5 * BASE, 89.0), E::MarketPaused);
    let bob_base = ex
        .account(&bob)
        .positions
        .iter()
        .map(|p| p.base_qty)
        .sum::<i64>();
    assert!(bob_base < 0, "bob holds a short");
    ex.trade(&bob, &keeper, 0, BASE, 89.0).unwrap();
    // Bits beyond the two pauses are refused.
    let r = ex.send(&[ix::set_paused(&admin.pubkey(), &exk, 0x80)], &[&admin]);
    assert_backstop_err(r, E::InvalidParameter);
}

#[test]
fn the_admin_changes_in_two_steps_and_the_vaults_stay_reachable() {
    let mut ex = TestExchange::new();
    let alice = ex.funded_user(1_000 * USDC);
    let exk = ex.exchange_key();
    let admin = ex.admin.insecure_clone();
    let next = Keypair::new();
    ex.svm.airdrop(&next.pubkey(), 1_000_000_000).unwrap();
    let r = ex.send(
        &[ix::propose_admin(&alice.pubkey(), &exk, &next.pubkey())],
        &[&alice.key],
    );
    assert_backstop_err(r, E::NotAdmin);
    ex.send(
        &[ix::propose_admin(&admin.pubkey(), &exk, &next.pubkey())],
        &[&admin],
    )
    .unwrap();
    // Only the proposed key can accept.
    let r = ex.send(&[ix::accept_admin(&alice.pubkey(), &exk)], &[&alice.key]);
    assert_backstop_err(r, E::NotPendingAdmin);
    ex.send(&[ix::accept_admin(&next.pubkey(), &exk)], &[&next])
        .unwrap();
    let x = ex.exchange();
    assert_eq!(
        (x.admin, x.pending_admin),
        (next.pubkey(), Default::default())
    );
    // The old key has no power left; the new one does.
    let r = ex.send(&[ix::set_paused(&admin.pubkey(), &exk, 0)], &[&admin]);
    assert_backstop_err(r, E::NotAdmin);
    ex.send(&[ix::set_paused(&next.pubkey(), &exk, 0)], &[&next])
        .unwrap();
    // The exchange PDA still signs for its vaults (its seed is the creator, not the admin).
    ex.withdraw(&alice, 500 * USDC).unwrap();
    assert_eq!(ex.token_balance(&alice.token), 500 * USDC);
}

/// A pause cannot hold users in place while a change they would escape comes due: queued
/// changes wait until a full delay has passed with no pause in force.
#[test]
fn a_pause_stops_the_clock_of_queued_changes() {
    let mut ex = delayed(3_600);
    let d = default_market_params();
    let step = MarketParams {
        maintenance_margin_bps: d.maintenance_margin_bps + 100,
        ..d
    };
    queue_market(&mut ex, step).unwrap();
    let admin = ex.admin.insecure_clone();
    let (exk, m) = (ex.exchange_key(), ex.markets[0].pubkey);
    ex.send(
        &[ix::set_market_paused(&admin.pubkey(), &exk, &m, true)],
        &[&admin],
    )
    .unwrap();
    ex.advance(3_600);
    assert_backstop_err(apply_market(&mut ex), E::PauseHoldsChanges);
    ex.send(
        &[ix::set_market_paused(&admin.pubkey(), &exk, &m, false)],
        &[&admin],
    )
    .unwrap();
    // Lifted just now: users get the whole delay unpaused first.
    assert_backstop_err(apply_market(&mut ex), E::PauseHoldsChanges);
    ex.advance(3_600);
    apply_market(&mut ex).unwrap();
    assert_eq!(ex.market(0).params, step);
}

/// A due change is no standing option: it expires a day after it is ready.
#[test]
fn due_changes_expire() {
    let mut ex = delayed(3_600);
    let e = ExchangeParams {
        pnl_warmup_secs: 600,
        ..ex.exchange().params
    };
    queue_exchange(&mut ex, e).unwrap();
    ex.advance(3_600 + CHANGE_APPLY_WINDOW_SECS + 1);
    assert_backstop_err(apply_exchange(&mut ex), E::ChangeExpired);
    let k = ex.keys;
    let admin = ex.admin.insecure_clone();
    let donor = ex.user(100 * USDC);
    ex.contribute_insurance(&donor, 100 * USDC).unwrap();
    let dest = ex.create_token_account(&ex.mint.clone(), &admin.pubkey(), 0);
    ex.send(
        &[ix::withdraw_insurance(&k, &admin.pubkey(), &dest, USDC)],
        &[&admin],
    )
    .unwrap();
    ex.advance(3_600 + CHANGE_APPLY_WINDOW_SECS + 1);
    assert_backstop_err(
        ex.send(&[ix::apply_insurance_withdrawal(&k, &dest)], &[]),
        E::ChangeExpired,
    );
}

/// The durations that protect users at most halve per change: the delay cannot be cut to
/// zero in one step, nor warmup or the epoch timing; a bounded pause stays bounded.
#[test]
fn protective_durations_at_most_halve() {
    let params = ExchangeParams {
        admin_delay_secs: DAY,
        pnl_warmup_secs: 3_600,
        max_pause_secs: 600,
        ..default_exchange_params()
    };
    let mut ex = TestExchange::with_params(params, &[default_market_params()], &[100.0]);
    for p in [
        ExchangeParams {
            admin_delay_secs: 0,
            ..params
        },
        ExchangeParams {
            admin_delay_secs: DAY / 2 - 1,
            ..params
        },
        ExchangeParams {
            pnl_warmup_secs: 0,
            ..params
        },
        ExchangeParams {
            max_pause_secs: 0,
            ..params
        },
        ExchangeParams {
            max_pause_secs: 1_201,
            ..params
        },
    ] {
        assert_backstop_err(queue_exchange(&mut ex, p), E::StepTooLarge);
    }
    queue_exchange(
        &mut ex,
        ExchangeParams {
            admin_delay_secs: DAY / 2,
            pnl_warmup_secs: 1_800,
            ..params
        },
    )
    .unwrap();
    // The lowest maintenance margin is 1%.
    let d = default_market_params();
    let low = MarketParams {
        maintenance_margin_bps: MIN_MAINTENANCE_MARGIN_BPS - 1,
        ..d
    };
    assert_backstop_err(queue_market(&mut ex, low), E::InvalidParameter);
}
