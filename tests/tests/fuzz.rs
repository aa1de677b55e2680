//! Fuzzing (proptest, bounded for CI; `PROPTEST_CASES=N` runs more): instruction data
//! decoding through the real program in LiteSVM and account decoding (the math on the
//! whole input range is in `fuzz_math.rs`, a process without the syscall stubs). Nothing may panic; a program call with garbage data either fails and
//! changes nothing (I5) or succeeds with I1–I4 intact (the harness checks both).

use anchor_lang::solana_program::instruction::Instruction;
use backstop_client::{decode, ix};
use backstop_tests::*;
use proptest::prelude::*;
use solana_sdk::signer::Signer;

fn cases(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: env_u32("PROPTEST_CASES", default),
        ..ProptestConfig::default()
    }
}

/// An exchange with two traders holding positions, and one legitimate instruction of
/// each kind a user or keeper sends, whose data the fuzzer then replaces.
fn setup() -> World {
    let mut ex = TestExchange::new();
    let a = ex.user(2_000 * USDC);
    ex.deposit(&a, 1_000 * USDC).unwrap();
    let b = ex.funded_user(1_000 * USDC);
    ex.trade(&a, &b, 0, 5 * BASE, 100.0).unwrap();
    let k = ex.keys;
    let m = ex.markets[0];
    let pairs = ex.all_pairs();
    let admin = ex.admin.insecure_clone();
    let c = |kps: &[&solana_sdk::signature::Keypair]| {
        kps.iter().map(|k| k.insecure_clone()).collect::<Vec<_>>()
    };
    let ixs = vec![
        (ix::deposit(&k, &a.pubkey(), &a.token, 1), c(&[&a.key])),
        (
            ix::withdraw(&k, &a.pubkey(), &a.token, 1, &pairs),
            c(&[&a.key]),
        ),
        (
            ix::trade(
                &k,
                &a.pubkey(),
                &b.pubkey(),
                &m.pubkey,
                &m.oracle,
                1,
                ex.fixed(100.0),
                &[],
            ),
            c(&[&a.key, &b.key]),
        ),
        (ix::settle_pnl(&k, &a.pubkey(), &pairs), c(&[&a.key])),
        (
            ix::liquidate(&k, &b.pubkey(), &a.margin, &m.pubkey, &m.oracle, 1, &[]),
            c(&[&b.key]),
        ),
        (
            ix::set_oracle_price(&admin.pubkey(), &m.oracle, 1, 0),
            c(&[&admin]),
        ),
        (
            ix::update_exchange_params(&admin.pubkey(), &k.exchange, default_exchange_params()),
            c(&[&admin]),
        ),
        (
            ix::update_market_params(
                &admin.pubkey(),
                &k.exchange,
                &m.pubkey,
                default_market_params(),
            ),
            c(&[&admin]),
        ),
        (ix::tally(&k.exchange, &[a.margin, b.margin]), vec![]),
        (ix::clawback(&k, &[a.margin]), vec![]),
        (
            ix::cover_deficit(&k, &a.pubkey(), &a.token, 1),
            c(&[&a.key]),
        ),
        (ix::health(&k.exchange, &a.margin, &pairs), vec![]),
    ];
    (ex, ixs)
}

type World = (
    TestExchange,
    Vec<(Instruction, Vec<solana_sdk::signature::Keypair>)>,
);

thread_local! {
    static WORLD: std::cell::RefCell<Option<World>> = const { std::cell::RefCell::new(None) };
}

proptest! {
    #![proptest_config(cases(2_000))]

    /// Each instruction's own discriminator followed by arbitrary bytes, or arbitrary
    /// bytes altogether, with that instruction's legitimate accounts.
    #[test]
    fn instruction_data(which in 0usize..12, keep_discriminator in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..160)) {
        // One exchange for all cases (a fresh LiteSVM per case costs ~0.25 s).
        WORLD.with(|w| {
            let mut w = w.borrow_mut();
            let (ex, ixs) = w.get_or_insert_with(setup);
            let (ix, signers) = &ixs[which];
            let mut ix = ix.clone();
            let mut data = if keep_discriminator { ix.data[..8].to_vec() } else { vec![] };
            data.extend_from_slice(&tail);
            ix.data = data;
            let refs: Vec<&solana_sdk::signature::Keypair> = signers.iter().collect();
            let _ = ex.send(&[ix], &refs);
        });
    }

    /// Account decoders on arbitrary bytes return errors, never panic.
    #[test]
    fn account_decoding(bytes in proptest::collection::vec(any::<u8>(), 0..1_200)) {
        let _ = decode::margin_account(&bytes);
        let _ = decode::exchange(&bytes);
        let _ = decode::market(&bytes);
        let _ = decode::oracle_feed(&bytes);
    }
}
