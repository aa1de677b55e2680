//! End to end over JSON-RPC: the real agave test validator running Backstop, deployed by
//! the migration, driven through the client: deposit → trade → price move → settle →
//! withdraw, with token balances read back over RPC and I1 recomputed from a
//! `getProgramAccounts` scan.

use std::path::PathBuf;

use anchor_lang::prelude::Pubkey;
use backstop_client::{decode, ix, pda};
use backstop_localnet::{
    check_conservation, free_rpc_port, start, token_balance, Localnet, LocalnetConfig,
};
use backstop_migrations::{deploy, send, Config};
use solana_rpc_client::rpc_client::RpcClient;
use solana_sdk::signer::Signer;

const USDC: u64 = 1_000_000;
const SOL: i64 = 1_000_000_000;

fn config(name: &str) -> LocalnetConfig {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    LocalnetConfig {
        rpc_port: free_rpc_port(),
        ledger: std::env::temp_dir().join(format!("backstop-{name}-{}", std::process::id())),
        deploy_config: root.join("migrations/localnet.toml"),
        demo_wallets: 2,
        wallet_usdc: 10_000 * USDC,
        program_so: None,
    }
}

/// I1 and I3 over RPC (the localnet's check, over a getProgramAccounts scan).
fn assert_conservation(rpc: &RpcClient, exchange: &Pubkey) {
    check_conservation(rpc, exchange).unwrap();
}

/// One validator for both scenarios: validators started in parallel in one process race
/// for the same gossip ports.
#[test]
fn localnet_end_to_end() {
    let cfg = config("e2e");
    let net = start(&cfg).expect("localnet");
    program_errors_come_back_decoded_and_change_nothing(&net);
    deposit_trade_price_move_settle_withdraw_over_json_rpc(&net, &cfg);
    airdrops_and_transaction_history_work(&net);
    drop(net);
    let _ = std::fs::remove_dir_all(&cfg.ledger);
}

fn deposit_trade_price_move_settle_withdraw_over_json_rpc(net: &Localnet, cfg: &LocalnetConfig) {
    let rpc = net.rpc();
    let ex = net.report.exchange;
    let keys = backstop_client::ix::ExchangeKeys::of(ex);
    let (sol_market, sol_oracle) = (net.report.markets[0].1, net.report.markets[0].2);
    let (a, b) = (&net.wallets[0], &net.wallets[1]);
    let (ta, tb) = (net.wallet_tokens[0], net.wallet_tokens[1]);

    send(&rpc, b, &[], &[ix::create_margin_account(&b.pubkey(), &ex)]).expect("create b");
    for (w, t) in [(a, ta), (b, tb)] {
        send(
            &rpc,
            w,
            &[],
            &[ix::deposit(&keys, &w.pubkey(), &t, 1_000 * USDC)],
        )
        .expect("deposit");
        assert_eq!(token_balance(&rpc, &t).unwrap(), 9_000 * USDC);
    }
    assert_eq!(token_balance(&rpc, &keys.vault).unwrap(), 2_000 * USDC);
    assert_conservation(&rpc, &ex);

    // a buys 2 SOL from b at $150 (SOL has 9 decimals: 0.15 quote atoms per lamport).
    let px = 150_000_000u64;
    send(
        &rpc,
        a,
        &[b],
        &[ix::trade(
            &keys,
            &a.pubkey(),
            &b.pubkey(),
            &sol_market,
            &sol_oracle,
            2 * SOL,
            px,
            &[],
        )],
    )
    .expect("trade");
    let fee = 300 * USDC / 1_000; // 10 bps of 300
    assert_eq!(token_balance(&rpc, &keys.insurance_vault).unwrap(), fee);
    assert_conservation(&rpc, &ex);

    // The price moves to $165: a is up 30 USDC.
    send(
        &rpc,
        &net.admin,
        &[],
        &[ix::set_oracle_price(
            &net.admin.pubkey(),
            &sol_oracle,
            165_000_000,
            0,
        )],
    )
    .expect("price");
    let pairs = [(sol_market, sol_oracle)];
    send(&rpc, a, &[], &[ix::settle_pnl(&keys, &a.pubkey(), &pairs)]).expect("settle a");
    send(&rpc, b, &[], &[ix::settle_pnl(&keys, &b.pubkey(), &pairs)]).expect("settle b");
    let ma = decode::margin_account(
        &rpc.get_account_data(&pda::margin_account(&ex, &a.pubkey()))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        ma.capital,
        1_000 * USDC + 30 * USDC - fee,
        "profit settled into capital (no warmup on localnet)"
    );
    let mb = decode::margin_account(
        &rpc.get_account_data(&pda::margin_account(&ex, &b.pubkey()))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(mb.capital, 1_000 * USDC - 30 * USDC);
    assert_conservation(&rpc, &ex);

    // Both close out at $165 (b is the taker this time and pays the fee), then withdraw all.
    send(
        &rpc,
        b,
        &[a],
        &[ix::trade(
            &keys,
            &b.pubkey(),
            &a.pubkey(),
            &sol_market,
            &sol_oracle,
            2 * SOL,
            165_000_000,
            &[],
        )],
    )
    .expect("close");
    let fee2 = 330 * USDC / 1_000;
    for (w, t) in [(a, ta), (b, tb)] {
        send(&rpc, w, &[], &[ix::settle_pnl(&keys, &w.pubkey(), &[])]).expect("settle");
        let m = decode::margin_account(
            &rpc.get_account_data(&pda::margin_account(&ex, &w.pubkey()))
                .unwrap(),
        )
        .unwrap();
        send(
            &rpc,
            w,
            &[],
            &[ix::withdraw(&keys, &w.pubkey(), &t, m.capital, &[])],
        )
        .expect("withdraw");
    }
    assert_eq!(
        token_balance(&rpc, &ta).unwrap(),
        10_000 * USDC + 30 * USDC - fee
    );
    assert_eq!(
        token_balance(&rpc, &tb).unwrap(),
        10_000 * USDC - 30 * USDC - fee2
    );
    assert_eq!(token_balance(&rpc, &keys.vault).unwrap(), 0);
    assert_eq!(
        token_balance(&rpc, &keys.insurance_vault).unwrap(),
        fee + fee2
    );
    assert_conservation(&rpc, &ex);

    // The migration is idempotent: a second deploy changes nothing and says so.
    let again = deploy(
        &rpc,
        &net.admin,
        &net.mint,
        &Config::load(&cfg.deploy_config).unwrap(),
    )
    .unwrap();
    assert!(!again.changed);
    assert!(
        again.steps.iter().all(|s| s.contains("unchanged")),
        "{:?}",
        again.steps
    );

    // A changed config goes through the admin timelock like any change: with the
    // localnet's zero delay it is queued and applied in one transaction; a change beyond
    // one step is refused by name.
    let mut changed = Config::load(&cfg.deploy_config).unwrap();
    changed.exchange.params.pnl_warmup_secs = 60;
    changed.markets[0].params.taker_fee_bps += 1;
    let report = deploy(&rpc, &net.admin, &net.mint, &changed).unwrap();
    assert!(report.changed, "{:?}", report.steps);
    let x = backstop_client::decode::exchange(&rpc.get_account_data(&ex).unwrap()).unwrap();
    assert_eq!(x.params.pnl_warmup_secs, 60);
    assert!(!x.queued_params.active);
    let m =
        backstop_client::decode::market(&rpc.get_account_data(&net.report.markets[0].1).unwrap())
            .unwrap();
    assert_eq!(m.params, changed.markets[0].params.to_params());
    changed.markets[0].params.initial_margin_bps += 5_000;
    let err = deploy(&rpc, &net.admin, &net.mint, &changed).unwrap_err();
    assert!(format!("{err:#}").contains("StepTooLarge"), "{err:#}");
}

fn program_errors_come_back_decoded_and_change_nothing(net: &Localnet) {
    let rpc = net.rpc();
    let ex = net.report.exchange;
    let keys = backstop_client::ix::ExchangeKeys::of(ex);
    let a = &net.wallets[0];
    send(&rpc, a, &[], &[ix::create_margin_account(&a.pubkey(), &ex)]).unwrap();
    let before = rpc
        .get_account_data(&pda::margin_account(&ex, &a.pubkey()))
        .unwrap();
    let err = send(
        &rpc,
        a,
        &[],
        &[ix::withdraw(
            &keys,
            &a.pubkey(),
            &net.wallet_tokens[0],
            5,
            &[],
        )],
    )
    .unwrap_err();
    assert_eq!(err.error_name(), Some("InsufficientCapital"), "{err}");
    assert!(
        err.to_string()
            .starts_with("InsufficientCapital (error 6020): "),
        "{err}"
    );
    assert_eq!(
        rpc.get_account_data(&pda::margin_account(&ex, &a.pubkey()))
            .unwrap(),
        before
    );
    assert_eq!(
        token_balance(&rpc, &net.wallet_tokens[0]).unwrap(),
        10_000 * USDC
    );
}

/// What a client expects of a localnet: `requestAirdrop` through the faucet, and landed
/// transactions readable with `getTransaction` (logs included).
fn airdrops_and_transaction_history_work(net: &Localnet) {
    use solana_rpc_client_api::request::RpcRequest;
    let rpc = net.rpc();
    let who = solana_sdk::signature::Keypair::new();
    let sig = rpc
        .request_airdrop(&who.pubkey(), 2 * SOL as u64)
        .expect("requestAirdrop");
    let t = std::time::Instant::now();
    while !rpc.confirm_transaction(&sig).unwrap_or(false) {
        assert!(t.elapsed().as_secs() < 30, "the airdrop did not confirm");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(rpc.get_balance(&who.pubkey()).unwrap(), 2 * SOL as u64);
    // A Backstop transaction read back from history, with the program's logs.
    let ex = net.report.exchange;
    let sig = send(
        &rpc,
        &who,
        &[],
        &[ix::create_margin_account(&who.pubkey(), &ex)],
    )
    .expect("create");
    // This validator answers getTransaction once the slot is rooted (~32 slots, 15–60 s
    // on a loaded 2-core machine; see the README): poll.
    let t = std::time::Instant::now();
    let tx = loop {
        let tx: serde_json::Value = rpc
            .send(
                RpcRequest::GetTransaction,
                serde_json::json!([sig.to_string(), {"encoding": "json", "commitment": "confirmed", "maxSupportedTransactionVersion": 0}]),
            )
            .expect("getTransaction");
        if !tx.is_null() || t.elapsed().as_secs() > 120 {
            break tx;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let logs: Vec<&str> = tx["meta"]["logMessages"]
        .as_array()
        .unwrap_or_else(|| panic!("no logMessages in {tx}"))
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.starts_with(&format!("Program {} invoke", backstop::ID))),
        "{logs:?}"
    );
    assert!(tx["meta"]["err"].is_null(), "{tx}");
}
