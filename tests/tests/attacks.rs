//! The Sealevel attack catalogue (coral-xyz/sealevel-attacks), class by class, against
//! every instruction where the class applies.
//!
//! Each instruction is first built the legitimate way in a state where it succeeds (a
//! simulation proves it), then attacked; every attack must be refused, and the harness
//! asserts the refusal changed no tracked account by a single byte (I5) — exchange, vaults,
//! markets, feeds, margin accounts, token accounts, and the second exchange's accounts.

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_spl::token::spl_token;
use backstop_client::ix::{self, ExchangeKeys};
use backstop_client::pda;
use backstop_tests::*;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use solana_sdk::transaction::Transaction;

/// One legitimate instruction and who signs it.
struct Case {
    name: &'static str,
    ix: Instruction,
    signers: Vec<Keypair>,
}

fn case(name: &'static str, ix: Instruction, signers: &[&Keypair]) -> Case {
    Case {
        name,
        ix,
        signers: signers.iter().map(|k| k.insecure_clone()).collect(),
    }
}

/// Which of `signers` the message needs (the payer signs anyway).
fn required<'a>(h: &TestExchange, ixs: &[Instruction], signers: &'a [Keypair]) -> Vec<&'a Keypair> {
    signers
        .iter()
        .filter(|k| {
            k.pubkey() != h.payer.pubkey()
                && ixs
                    .iter()
                    .flat_map(|i| &i.accounts)
                    .any(|m| m.is_signer && m.pubkey == k.pubkey())
        })
        .collect()
}

/// The legitimate instruction would succeed here (simulated, nothing written).
fn assert_legit(h: &TestExchange, c: &Case) {
    let ixs = std::slice::from_ref(&c.ix);
    let mut all = vec![&h.payer];
    all.extend(required(h, ixs, &c.signers));
    let tx = Transaction::new_signed_with_payer(
        ixs,
        Some(&h.payer.pubkey()),
        &all,
        h.svm.latest_blockhash(),
    );
    let r = h.svm.simulate_transaction(tx);
    assert!(
        r.is_ok(),
        "{}: the unattacked instruction must succeed: {:?}",
        c.name,
        r.err().map(|e| e.meta.logs)
    );
}

/// Sends an attacked instruction: it must be refused; the harness's `send` asserts the
/// refusal changed no tracked account (I5).
#[track_caller]
fn refused(h: &mut TestExchange, what: &str, ixs: &[Instruction], signers: &[Keypair]) {
    let needed = required(h, ixs, signers);
    assert!(
        h.send(ixs, &needed).is_err(),
        "{what}: the attack succeeded"
    );
}

fn with_meta(ix: &Instruction, i: usize, key: Pubkey, signer: Option<bool>) -> Instruction {
    let mut ix = ix.clone();
    ix.accounts[i].pubkey = key;
    if let Some(s) = signer {
        ix.accounts[i].is_signer = s;
    }
    ix
}

/// Exchange B: another exchange on the same mint, with a market, a feed and an account.
struct Other {
    keys: ExchangeKeys,
    market: Pubkey,
    feed: Pubkey,
    margin: Pubkey,
}

/// The world the attacks run in: exchange A with two markets, traders with positions,
/// a liquidatable account, an insurance fund; exchange B beside it.
struct World {
    h: TestExchange,
    alice: User,
    bob: User,
    carol: User,
    keeper: User,
    eve: User,
    frank: Keypair,
    empty: User,
    other: Other,
    attacker: Keypair,
}

fn world() -> World {
    let mut h = TestExchange::with_params(
        default_exchange_params(),
        &[default_market_params(), default_market_params()],
        &[100.0, 100.0],
    );
    let alice = h.user(20_000 * USDC);
    h.deposit(&alice, 10_000 * USDC).unwrap();
    let bob = h.funded_user(10_000 * USDC);
    let carol = h.funded_user(1_100 * USDC);
    let dave = h.funded_user(10_000 * USDC);
    let keeper = h.funded_user(100_000 * USDC);
    let eve = h.user(5_000 * USDC);
    let empty = h.user(0);
    h.trade(&alice, &bob, 0, 10 * BASE, 100.0).unwrap();
    h.trade(&carol, &dave, 0, 100 * BASE, 100.0).unwrap();
    h.contribute_insurance(&eve, 1_000 * USDC).unwrap();
    // Carol: equity 1,100 − 700 − fees < MM 5% of 9,300: liquidatable, not bankrupt.
    h.set_price(0, 93.0);
    let frank = Keypair::new();
    h.svm.airdrop(&frank.pubkey(), 10_000_000_000).unwrap();
    let attacker = Keypair::new();
    h.svm.airdrop(&attacker.pubkey(), 10_000_000_000).unwrap();
    let other = second_exchange(&mut h);
    World {
        h,
        alice,
        bob,
        carol,
        keeper,
        eve,
        frank,
        empty,
        other,
        attacker,
    }
}

fn second_exchange(h: &mut TestExchange) -> Other {
    let admin = Keypair::new();
    h.svm.airdrop(&admin.pubkey(), 100_000_000_000).unwrap();
    let keys = ExchangeKeys::new(&admin.pubkey(), 7);
    let feed = pda::oracle_feed(&keys.exchange, 0);
    let args = feed_market_args(default_market_params());
    let mint = h.mint;
    h.send_raw(
        &[
            ix::initialize_exchange(&admin.pubkey(), 7, &mint, default_exchange_params()),
            ix::create_oracle_feed(
                &admin.pubkey(),
                &keys.exchange,
                0,
                &admin.pubkey(),
                ORACLE_EXPO,
                raw_price(93.0),
                0,
            ),
            ix::add_market(&admin.pubkey(), &keys.exchange, 0, &feed, args),
        ],
        &[&admin],
    )
    .expect("exchange B");
    let user = Keypair::new();
    h.svm.airdrop(&user.pubkey(), 10_000_000_000).unwrap();
    let token = h.create_token_account(&mint, &user.pubkey(), 1_000 * USDC);
    h.send_raw(
        &[
            ix::create_margin_account(&user.pubkey(), &keys.exchange),
            ix::deposit(&keys, &user.pubkey(), &token, 1_000 * USDC),
        ],
        &[&user],
    )
    .expect("account on B");
    let o = Other {
        keys,
        market: pda::market(&keys.exchange, 0),
        feed,
        margin: pda::margin_account(&keys.exchange, &user.pubkey()),
    };
    // B's accounts are tracked for I5 (they are not part of A's invariant sums).
    h.token_accounts.extend([
        o.keys.exchange,
        o.keys.vault,
        o.keys.insurance_vault,
        o.market,
        o.feed,
        o.margin,
        token,
    ]);
    o
}

/// Every instruction that succeeds in the Normal-phase world, built legitimately.
fn normal_cases(w: &World) -> Vec<Case> {
    let h = &w.h;
    let k = h.keys;
    let ex = k.exchange;
    let admin = h.admin.insecure_clone();
    let (m0, m1) = (h.markets[0], h.markets[1]);
    let alice_pairs = h.pairs_for(&w.alice.margin, None);
    let liq_pairs = h.union_pairs(&[&w.keeper.margin, &w.carol.margin], Some(0));
    let admin_token = w.eve.token;
    vec![
        case(
            "deposit",
            ix::deposit(&k, &w.alice.pubkey(), &w.alice.token, USDC),
            &[&w.alice.key],
        ),
        case(
            "withdraw",
            ix::withdraw(&k, &w.alice.pubkey(), &w.alice.token, USDC, &alice_pairs),
            &[&w.alice.key],
        ),
        case(
            "trade",
            ix::trade(
                &k,
                &w.alice.pubkey(),
                &w.bob.pubkey(),
                &m1.pubkey,
                &m1.oracle,
                BASE,
                h.fixed(100.0),
                &h.union_pairs(&[&w.alice.margin, &w.bob.margin], Some(1)),
            ),
            &[&w.alice.key, &w.bob.key],
        ),
        case(
            "settle_pnl",
            ix::settle_pnl(&k, &w.alice.pubkey(), &alice_pairs),
            &[&w.alice.key],
        ),
        case(
            "contribute_insurance",
            ix::contribute_insurance(&k, &w.eve.pubkey(), &w.eve.token, USDC),
            &[&w.eve.key],
        ),
        case(
            "withdraw_insurance",
            ix::withdraw_insurance(&k, &admin.pubkey(), &admin_token, USDC),
            &[&admin],
        ),
        case(
            "liquidate",
            ix::liquidate(
                &k,
                &w.keeper.pubkey(),
                &w.carol.margin,
                &m0.pubkey,
                &m0.oracle,
                u64::MAX,
                &liq_pairs,
            ),
            &[&w.keeper.key],
        ),
        case(
            "health",
            ix::health(&ex, &w.alice.margin, &alice_pairs),
            &[],
        ),
        case(
            "set_oracle_price",
            ix::set_oracle_price(&admin.pubkey(), &m1.oracle, raw_price(101.0), 0),
            &[&admin],
        ),
        case(
            "update_exchange_params",
            ix::update_exchange_params(&admin.pubkey(), &ex, default_exchange_params()),
            &[&admin],
        ),
        case(
            "set_paused",
            ix::set_paused(&admin.pubkey(), &ex, 0),
            &[&admin],
        ),
        case(
            "update_market_params",
            ix::update_market_params(&admin.pubkey(), &ex, &m1.pubkey, default_market_params()),
            &[&admin],
        ),
        case(
            "create_margin_account",
            ix::create_margin_account(&w.frank.pubkey(), &ex),
            &[&w.frank],
        ),
        case(
            "close_margin_account",
            ix::close_margin_account(&w.empty.pubkey(), &ex),
            &[&w.empty.key],
        ),
    ]
}

fn backstop_owned(h: &TestExchange, key: &Pubkey) -> bool {
    h.svm
        .get_account(key)
        .is_some_and(|a| a.owner == backstop::ID)
}

#[test]
fn signer_authorization() {
    let mut w = world();
    let cases = normal_cases(&w);
    let mut attacks = 0;
    for c in &cases {
        assert_legit(&w.h, c);
        for (i, m) in
            c.ix.accounts
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_signer)
        {
            // The signature dropped: the account is passed but not signed for.
            let unsigned = with_meta(&c.ix, i, m.pubkey, Some(false));
            let rest: Vec<Keypair> = c
                .signers
                .iter()
                .filter(|k| k.pubkey() != m.pubkey)
                .map(|k| k.insecure_clone())
                .collect();
            refused(
                &mut w.h,
                &format!("{}: {} not signing", c.name, m.pubkey),
                &[unsigned],
                &rest,
            );
            // Someone else signing in that place (admin, owner, oracle authority, keeper).
            let mut swapped = c.ix.clone();
            for meta in swapped.accounts.iter_mut().filter(|x| x.pubkey == m.pubkey) {
                meta.pubkey = w.attacker.pubkey();
            }
            let mut signers = rest;
            signers.push(w.attacker.insecure_clone());
            refused(
                &mut w.h,
                &format!("{}: attacker signing for {}", c.name, m.pubkey),
                &[swapped],
                &signers,
            );
            attacks += 2;
        }
    }
    assert!(attacks >= 2 * cases.len(), "every instruction has a signer");
}

#[test]
fn owner_checks() {
    let mut w = world();
    let cases = normal_cases(&w);
    for c in &cases {
        assert_legit(&w.h, c);
        for (i, m) in c.ix.accounts.iter().enumerate() {
            let Some(acc) = w.h.svm.get_account(&m.pubkey) else {
                continue;
            };
            if m.is_signer
                || acc.executable
                || acc.owner == solana_sdk_ids::system_program::ID
                || acc.owner == solana_sdk_ids::sysvar::ID
            {
                continue;
            }
            // A byte-for-byte copy owned by a program the attacker controls.
            let fake = w.h.put_account(&w.attacker.pubkey(), acc.data.clone());
            let ix = with_meta(&c.ix, i, fake, None);
            refused(
                &mut w.h,
                &format!("{}: {} owned by the attacker", c.name, m.pubkey),
                &[ix],
                &c.signers,
            );
        }
    }
}

#[test]
fn type_cosplay() {
    let mut w = world();
    let h = &w.h;
    // One account of each Backstop type.
    let kinds = [
        h.keys.exchange,
        h.markets[0].pubkey,
        h.markets[0].oracle,
        w.bob.margin,
    ];
    let cases = normal_cases(&w);
    let mut attacks = 0;
    for c in &cases {
        assert_legit(&w.h, c);
        for (i, m) in c.ix.accounts.iter().enumerate() {
            if !backstop_owned(&w.h, &m.pubkey) {
                continue;
            }
            let disc =
                |h: &TestExchange, k: &Pubkey| h.svm.get_account(k).map(|a| a.data[..8].to_vec());
            let others: Vec<Pubkey> = kinds
                .iter()
                .filter(|o| disc(&w.h, o) != disc(&w.h, &m.pubkey))
                .copied()
                .collect();
            for other in &others {
                let ix = with_meta(&c.ix, i, *other, None);
                refused(
                    &mut w.h,
                    &format!("{}: {} passed as {}", c.name, other, m.pubkey),
                    &[ix],
                    &c.signers,
                );
                attacks += 1;
            }
        }
    }
    // The example by name: a PerpMarket where an OracleFeed is expected.
    let m = w.h.markets[0];
    let ix = ix::set_oracle_price(&w.h.admin.pubkey(), &m.pubkey, raw_price(1.0), 0);
    let admin = w.h.admin.insecure_clone();
    refused(&mut w.h, "a PerpMarket as the OracleFeed", &[ix], &[admin]);
    assert!(attacks > 30, "{attacks}");
}

#[test]
fn account_data_matching_other_exchange() {
    let mut w = world();
    let h = &w.h;
    let o = &w.other;
    // Each of A's accounts mapped to its counterpart on exchange B.
    let map = [
        (h.keys.exchange, o.keys.exchange),
        (h.keys.vault, o.keys.vault),
        (h.keys.insurance_vault, o.keys.insurance_vault),
        (h.markets[0].pubkey, o.market),
        (h.markets[1].pubkey, o.market),
        (h.markets[0].oracle, o.feed),
        (h.markets[1].oracle, o.feed),
        (w.alice.margin, o.margin),
        (w.bob.margin, o.margin),
        (w.carol.margin, o.margin),
        (w.keeper.margin, o.margin),
        (w.empty.margin, o.margin),
    ];
    let cases = normal_cases(&w);
    let mut attacks = 0;
    for c in &cases {
        assert_legit(&w.h, c);
        for (i, m) in c.ix.accounts.iter().enumerate() {
            if let Some((_, b)) = map.iter().find(|(a, _)| *a == m.pubkey) {
                let ix = with_meta(&c.ix, i, *b, None);
                refused(
                    &mut w.h,
                    &format!("{}: exchange B's {b} for {}", c.name, m.pubkey),
                    &[ix],
                    &c.signers,
                );
                attacks += 1;
            }
        }
    }
    assert!(attacks > 25, "{attacks}");
}

#[test]
fn arbitrary_cpi_token_program() {
    let mut w = world();
    let cases = normal_cases(&w);
    let fake_programs = [
        solana_sdk_ids::system_program::ID,
        Pubkey::new_from_array(*b"TokenzQdBNbLqP5VEhdkAS6EPFLC1PHn"),
        backstop::ID,
    ];
    let mut attacks = 0;
    for c in &cases {
        for (i, _) in
            c.ix.accounts
                .iter()
                .enumerate()
                .filter(|(_, m)| m.pubkey == spl_token::ID)
        {
            assert_legit(&w.h, c);
            for p in fake_programs {
                let ix = with_meta(&c.ix, i, p, None);
                refused(
                    &mut w.h,
                    &format!("{}: token program replaced by {p}", c.name),
                    &[ix],
                    &c.signers,
                );
                attacks += 1;
            }
        }
    }
    assert!(
        attacks >= 15,
        "every token-moving instruction attacked: {attacks}"
    );
}

#[test]
fn duplicate_mutable_accounts() {
    let mut w = world();
    let k = w.h.keys;
    let m0 = w.h.markets[0];
    // The same margin account as liquidator and liquidatee.
    let pairs = w.h.union_pairs(&[&w.carol.margin], Some(0));
    let ix = ix::liquidate(
        &k,
        &w.carol.pubkey(),
        &w.carol.margin,
        &m0.pubkey,
        &m0.oracle,
        u64::MAX,
        &pairs,
    );
    let carol = w.carol.key.insecure_clone();
    refused(&mut w.h, "self-liquidation", &[ix], &[carol]);
    // The same account as taker and maker.
    let pairs = w.h.union_pairs(&[&w.alice.margin], Some(0));
    let ix = ix::trade(
        &k,
        &w.alice.pubkey(),
        &w.alice.pubkey(),
        &m0.pubkey,
        &m0.oracle,
        BASE,
        w.h.fixed(93.0),
        &pairs,
    );
    let alice = w.alice.key.insecure_clone();
    refused(&mut w.h, "self-trade in one account", &[ix], &[alice]);
    // The vault passed as its own insurance vault (and the reverse) when moving tokens.
    let dup = ix::contribute_insurance(
        &ExchangeKeys {
            insurance_vault: k.vault,
            ..k
        },
        &w.eve.pubkey(),
        &w.eve.token,
        USDC,
    );
    let eve = w.eve.key.insecure_clone();
    refused(&mut w.h, "vault as insurance vault", &[dup], &[eve]);
    // The same account twice in one tally / clawback batch: see `epoch_instructions`.
}

#[test]
fn initialization_is_once() {
    let mut w = world();
    let admin = w.h.admin.insecure_clone();
    let ex = w.h.keys.exchange;
    let mint = w.h.mint;
    refused(
        &mut w.h,
        "initialize_exchange again",
        &[ix::initialize_exchange(
            &admin.pubkey(),
            0,
            &mint,
            default_exchange_params(),
        )],
        &[admin.insecure_clone()],
    );
    let alice = w.alice.key.insecure_clone();
    refused(
        &mut w.h,
        "create_margin_account again",
        &[ix::create_margin_account(&alice.pubkey(), &ex)],
        &[alice],
    );
    let feed = w.h.markets[0].oracle;
    let args = feed_market_args(default_market_params());
    refused(
        &mut w.h,
        "add_market over market 0",
        &[ix::add_market(&admin.pubkey(), &ex, 0, &feed, args)],
        &[admin.insecure_clone()],
    );
    refused(
        &mut w.h,
        "create_oracle_feed over feed 0",
        &[ix::create_oracle_feed(
            &admin.pubkey(),
            &ex,
            0,
            &admin.pubkey(),
            ORACLE_EXPO,
            raw_price(1.0),
            0,
        )],
        &[admin.insecure_clone()],
    );
    // A pre-funded address does not let anyone skip initialization: lamports sent to a
    // future margin account's address, then create still works and starts empty.
    let frank = w.frank.insecure_clone();
    let addr = pda::margin_account(&ex, &frank.pubkey());
    w.h.send_raw(
        &[solana_system_interface::instruction::transfer(
            &w.h.payer.pubkey(),
            &addr,
            1_000_000,
        )],
        &[],
    )
    .unwrap();
    w.h.accounts.push(addr);
    w.h.send(
        &[ix::create_margin_account(&frank.pubkey(), &ex)],
        &[&frank],
    )
    .expect("create over a pre-funded address");
    let a = w.h.account_at(&addr);
    assert_eq!((a.owner, a.capital, a.pnl), (frank.pubkey(), 0, 0));
}

#[test]
fn bump_seed_canonicalization() {
    // Backstop takes no bump from callers: every PDA is created by `init` with the
    // canonical bump (find_program_address) and stored. A margin account at another valid
    // bump of the same seeds cannot be created…
    let mut w = world();
    let ex = w.h.keys.exchange;
    let frank = w.frank.insecure_clone();
    let owner = frank.pubkey();
    let seeds: [&[u8]; 3] = [
        backstop::constants::MARGIN_SEED,
        ex.as_ref(),
        owner.as_ref(),
    ];
    let (canonical, bump) = Pubkey::find_program_address(&seeds, &backstop::ID);
    let forged = (0..bump)
        .rev()
        .find_map(|b| {
            Pubkey::create_program_address(&[seeds[0], seeds[1], seeds[2], &[b]], &backstop::ID)
                .ok()
        })
        .expect("a non-canonical bump exists");
    let ix = swap_account(
        ix::create_margin_account(&frank.pubkey(), &ex),
        &canonical,
        &forged,
    );
    refused(
        &mut w.h,
        "create_margin_account at a non-canonical bump",
        &[ix],
        &[frank.insecure_clone()],
    );
    assert!(w.h.svm.get_account(&forged).is_none());
    // …and what `init` stores is the canonical bump, for every PDA kind.
    w.h.accounts.push(canonical);
    w.h.send(
        &[ix::create_margin_account(&frank.pubkey(), &ex)],
        &[&frank],
    )
    .unwrap();
    assert_eq!(w.h.account_at(&canonical).bump, bump);
    let exchange = w.h.exchange();
    let (_, ex_bump) = Pubkey::find_program_address(
        &[
            backstop::constants::EXCHANGE_SEED,
            w.h.admin.pubkey().as_ref(),
            &0u16.to_le_bytes(),
        ],
        &backstop::ID,
    );
    assert_eq!(exchange.bump, ex_bump);
    // Since only the program writes Backstop-owned MarginAccount data and only `init` at
    // the canonical address, an account at a non-canonical address can only come from
    // outside: a copy owned by anyone else is refused (`owner_checks`), another Backstop
    // type is refused (`type_cosplay`), and another owner's account fails `has_one`
    // (`signer_authorization`).
}

#[test]
fn pda_sharing_vaults_are_not_interchangeable() {
    let mut w = world();
    let k = w.h.keys;
    let o = w.other.keys;
    let alice = w.alice.key.insecure_clone();
    let admin = w.h.admin.insecure_clone();
    let pairs = w.h.pairs_for(&w.alice.margin, None);
    let swaps = [
        (k.vault, k.insurance_vault),
        (k.insurance_vault, k.vault),
        (k.vault, o.vault),
        (k.insurance_vault, o.insurance_vault),
    ];
    let legit = [
        (
            ix::withdraw(&k, &alice.pubkey(), &w.alice.token, USDC, &pairs),
            vec![alice.insecure_clone()],
        ),
        (
            ix::deposit(&k, &alice.pubkey(), &w.alice.token, USDC),
            vec![alice.insecure_clone()],
        ),
        (
            ix::withdraw_insurance(&k, &admin.pubkey(), &w.eve.token, USDC),
            vec![admin.insecure_clone()],
        ),
    ];
    for (ix, signers) in &legit {
        for (from, to) in swaps {
            if ix.accounts.iter().any(|m| m.pubkey == from) {
                let mut bad = ix.clone();
                for m in bad.accounts.iter_mut().filter(|m| m.pubkey == from) {
                    m.pubkey = to;
                }
                refused(
                    &mut w.h,
                    &format!("{from} replaced by {to}"),
                    &[bad],
                    signers,
                );
            }
        }
    }
    // Exchange B's vault authority cannot be made to pay A's withdrawal: withdrawing from
    // A with B's vault fails above; and B's vault balance is untouched (I5 tracked).
}

#[test]
fn closing_accounts_cannot_be_revived() {
    let mut w = world();
    let ex = w.h.keys.exchange;
    let k = w.h.keys;
    let empty = w.empty.key.insecure_clone();
    // Close and, in the same transaction, pay the rent back and use the account.
    let revive = solana_system_interface::instruction::transfer(
        &w.h.payer.pubkey(),
        &w.empty.margin,
        10_000_000,
    );
    refused(
        &mut w.h,
        "close, refund, deposit in one transaction",
        &[
            ix::close_margin_account(&empty.pubkey(), &ex),
            revive.clone(),
            ix::deposit(&k, &empty.pubkey(), &w.empty.token, 0),
        ],
        &[empty.insecure_clone()],
    );
    // Closed for real, then lamports sent to the address: it is not a margin account again.
    w.h.close_account(&w.empty).expect("close");
    w.h.send_raw(&[revive], &[]).unwrap();
    let ix = ix::health(&ex, &w.empty.margin, &[]);
    refused(
        &mut w.h,
        "a revived (system-owned) address used as a margin account",
        &[ix],
        &[],
    );
    let alice = w.alice.key.insecure_clone();
    let m0 = w.h.markets[0];
    let ix = swap_account(
        ix::trade(
            &k,
            &alice.pubkey(),
            &empty.pubkey(),
            &m0.pubkey,
            &m0.oracle,
            BASE,
            w.h.fixed(93.0),
            &w.h.union_pairs(&[&w.alice.margin], Some(0)),
        ),
        &pda::margin_account(&ex, &empty.pubkey()),
        &w.empty.margin,
    );
    refused(
        &mut w.h,
        "trading against a closed account",
        &[ix],
        &[alice, empty.insecure_clone()],
    );
    // Re-creating starts from zero (no stale data survives a close).
    w.h.send(
        &[ix::create_margin_account(&empty.pubkey(), &ex)],
        &[&empty],
    )
    .expect("re-create");
    let a = w.h.account_at(&w.empty.margin);
    assert_eq!((a.capital, a.pnl, a.clawback.lifetime_total), (0, 0, 0));
}

#[test]
fn sysvar_address_checking() {
    // The program reads the clock through the syscall only: no instruction takes a sysvar
    // account (the IDL lists none), so there is no sysvar address to forge.
    let idl: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../idl/backstop.json"))
            .unwrap(),
    )
    .unwrap();
    for i in idl["instructions"].as_array().unwrap() {
        for a in i["accounts"].as_array().unwrap() {
            let addr = a["address"].as_str().unwrap_or("");
            assert!(
                !addr.starts_with("Sysvar"),
                "{} takes sysvar {addr}",
                i["name"]
            );
        }
    }
    // A forged "clock" claiming an earlier time, appended where extra accounts are read,
    // does not make a stale price fresh: the health report is the same with it as
    // without, at the stale prices' conservative values.
    let mut w = world();
    let fresh_ix = ix::health(
        &w.h.keys.exchange,
        &w.alice.margin,
        &w.h.pairs_for(&w.alice.margin, None),
    );
    let fresh =
        w.h.send(std::slice::from_ref(&fresh_ix), &[])
            .unwrap()
            .return_data
            .data;
    w.h.advance(3_600); // every price is now stale
    let mut clock: solana_sdk::clock::Clock = w.h.svm.get_sysvar();
    clock.unix_timestamp -= 3_600;
    let fake = w.h.put_account(
        &solana_sdk_ids::sysvar::ID,
        bincode::serialize(&clock).unwrap(),
    );
    let stale =
        w.h.send(std::slice::from_ref(&fresh_ix), &[])
            .unwrap()
            .return_data
            .data;
    let mut ix = fresh_ix;
    ix.accounts
        .push(anchor_lang::solana_program::instruction::AccountMeta::new_readonly(fake, false));
    assert_ne!(stale, fresh, "stale prices are valued with a haircut");
    // Refused (it is not a (market, oracle) pair), or — were it read — the same report.
    if let Ok(meta) = w.h.send(&[ix], &[]) {
        assert_eq!(
            meta.return_data.data, stale,
            "the forged clock changed the valuation"
        );
    }
}

#[test]
fn epoch_instructions() {
    // A clawback charge leaves V bankrupt (resolved by `resolve_bankruptcy`), then a gap
    // leaves Carol bankrupt (resolved by her liquidation): every epoch instruction is
    // attacked in the phase where its legitimate form succeeds, then run for real to reach
    // the next phase.
    let mut w = world();
    let v = w.h.bankrupt_by_clawback();
    let k = w.h.keys;
    let ex = k.exchange;
    let other = w.other.keys.exchange;
    let other_margin = w.other.margin;
    let attacker = w.attacker.insecure_clone();
    let attack = |w: &mut World, c: Case| {
        assert_legit(&w.h, &c);
        for (i, m) in c.ix.accounts.iter().enumerate() {
            let swap = if m.pubkey == ex {
                Some(other)
            } else if w.h.accounts.contains(&m.pubkey) {
                Some(other_margin)
            } else if m.pubkey == k.vault {
                Some(k.insurance_vault)
            } else if m.pubkey == k.insurance_vault {
                Some(k.vault)
            } else {
                None
            };
            if let Some(s) = swap {
                refused(
                    &mut w.h,
                    &format!("{}: {s} for {}", c.name, m.pubkey),
                    &[with_meta(&c.ix, i, s, None)],
                    &c.signers,
                );
            }
            if let Some(acc) = w.h.svm.get_account(&m.pubkey) {
                if acc.owner == backstop::ID {
                    let fake = w.h.put_account(&attacker.pubkey(), acc.data.clone());
                    refused(
                        &mut w.h,
                        &format!("{}: attacker-owned copy of {}", c.name, m.pubkey),
                        &[with_meta(&c.ix, i, fake, None)],
                        &c.signers,
                    );
                }
            }
        }
        let signers: Vec<&Keypair> = c.signers.iter().collect();
        w.h.send(std::slice::from_ref(&c.ix), &signers)
            .unwrap_or_else(|e| panic!("{}: {:?}", c.name, e.logs));
    };
    let c = case(
        "resolve_bankruptcy",
        ix::resolve_bankruptcy(&k, &v.margin),
        &[],
    );
    attack(&mut w, c);
    // $70: Carol's loss (3,000 on 1,100 of capital) exceeds the insurance fund.
    w.h.set_price(0, 70.0);
    w.h.refresh_prices();
    w.h.liquidate(&w.keeper, &w.carol.margin, 0, u64::MAX)
        .expect("liquidate to flat");
    assert!(
        w.h.exchange().books.deficit > 0,
        "the scenario must leave a deficit"
    );
    let all_pairs = w.h.all_pairs();
    attack(
        &mut w,
        case("begin_clawback", ix::begin_clawback(&ex, &all_pairs), &[]),
    );
    let live = w.h.live_accounts();
    // Duplicates in one batch are refused (an account counted twice would double its weight).
    refused(
        &mut w.h,
        "tally with a duplicate",
        &[ix::tally(&ex, &[live[0], live[0]])],
        &[],
    );
    for chunk in live.chunks(4) {
        attack(&mut w, case("tally", ix::tally(&ex, chunk), &[]));
    }
    attack(&mut w, case("finalize_tally", ix::finalize_tally(&ex), &[]));
    let weighted: Vec<Pubkey> = live
        .iter()
        .copied()
        .filter(|a| w.h.account_at(a).clawback.profit_weight > 0)
        .collect();
    assert!(weighted.len() >= 2, "winners to charge");
    refused(
        &mut w.h,
        "clawback with a duplicate",
        &[ix::clawback(&k, &[weighted[0], weighted[0]])],
        &[],
    );
    for chunk in weighted.chunks(4) {
        attack(&mut w, case("clawback", ix::clawback(&k, chunk), &[]));
    }
}
