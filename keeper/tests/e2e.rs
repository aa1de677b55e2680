//! The real `backstop-keeper` binary against the real localnet validator over JSON-RPC and
//! websocket. Each scenario is a test of its own; they share one validator (validators in
//! one process collide on gossip ports), each on its own exchange.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use backstop::state::EpochPhase;
use backstop_localnet::crash::{self, Crash, USDC};
use backstop_localnet::keeper_proc::KeeperProc;
use backstop_localnet::{
    check_conservation, free_rpc_port, start, token_balance, Localnet, LocalnetConfig,
};
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

/// The keeper binary this test was built with.
fn keeper_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_backstop-keeper"))
}

/// A loopback TCP proxy that can refuse a share of connections, cut every live
/// connection periodically, or go dark.
struct Proxy {
    port: u16,
    dark: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
}

impl Proxy {
    /// `drop_every`: refuse every n-th new connection (0: none); `cut_every`: close every
    /// live connection at this period.
    fn start(upstream: String, drop_every: u64, cut_every: Option<Duration>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dark = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let epoch = Arc::new(AtomicU64::new(0));
        if let Some(period) = cut_every {
            let epoch = epoch.clone();
            std::thread::spawn(move || loop {
                std::thread::sleep(period);
                epoch.fetch_add(1, Ordering::SeqCst);
            });
        }
        {
            let dark = dark.clone();
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let n = accepted.fetch_add(1, Ordering::SeqCst) + 1;
                    if dark.load(Ordering::SeqCst)
                        || (drop_every > 0 && n.is_multiple_of(drop_every))
                    {
                        drop(client);
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        continue;
                    };
                    let mine = epoch.load(Ordering::SeqCst);
                    for (mut from, mut to) in [
                        (client.try_clone().unwrap(), server.try_clone().unwrap()),
                        (server, client),
                    ] {
                        let dark = dark.clone();
                        let epoch = epoch.clone();
                        std::thread::spawn(move || {
                            let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
                            let mut buf = [0u8; 16 * 1024];
                            loop {
                                if dark.load(Ordering::SeqCst)
                                    || epoch.load(Ordering::SeqCst) != mine
                                {
                                    break;
                                }
                                match from.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(k) => {
                                        if to.write_all(&buf[..k]).is_err() {
                                            break;
                                        }
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) =>
                                    {
                                        continue
                                    }
                                    Err(_) => break,
                                }
                            }
                            let _ = from.shutdown(std::net::Shutdown::Both);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            });
        }
        Proxy {
            port,
            dark,
            accepted,
        }
    }
}

fn upstream(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

fn keeper_wallet(net: &Localnet) -> Keypair {
    let k = Keypair::new();
    net.fund_sol(&k.pubkey(), 10_000_000_000).unwrap();
    k
}

/// The worked example's final state, to the atom, read over RPC.
fn assert_worked_example(net: &Localnet, c: &Crash, liquidators: &[&str]) {
    let rpc = net.rpc();
    let ex = crash::exchange(&rpc, c).unwrap();
    assert_eq!(ex.epoch.phase, EpochPhase::Normal);
    assert_eq!(ex.books.deficit, 0);
    assert_eq!(ex.epoch.epoch_id, 2, "exactly one bad-debt epoch");
    assert_eq!(
        ex.books.insurance_balance, 1,
        "the clawback's one atom of rounding excess"
    );
    let loser = crash::account(&rpc, c, "loser").unwrap();
    assert_eq!((loser.capital, loser.pnl), (0, 0));
    assert!(!loser.positions.iter().any(|p| p.active));
    assert_eq!(
        crash::account(&rpc, c, "winner-1")
            .unwrap()
            .clawback
            .lifetime_total,
        211_224_490
    );
    assert_eq!(
        crash::account(&rpc, c, "winner-2")
            .unwrap()
            .clawback
            .lifetime_total,
        140_816_327
    );
    // The liquidator earned the 68 USDC fee from the insurance fund and paid its share.
    let charged: Vec<u64> = liquidators
        .iter()
        .map(|n| crash::account(&rpc, c, n).unwrap().clawback.lifetime_total)
        .collect();
    assert_eq!(charged.iter().sum::<u64>(), 15_959_184, "{charged:?}");
    let by = crash::account(&rpc, c, "bystander").unwrap();
    assert_eq!((by.capital, by.clawback.lifetime_total), (500 * USDC, 0));
    // Tokens: the vault holds exactly the books; the wallets kept their 100 USDC spare.
    assert_eq!(
        token_balance(&rpc, &ex.vault).unwrap(),
        ex.books.vault_balance
    );
    for p in &c.people {
        assert_eq!(
            token_balance(&rpc, &p.token).unwrap(),
            100 * USDC,
            "{}",
            p.name
        );
    }
    check_conservation(&rpc, &c.exchange).unwrap();
}

/// The validator all scenarios share, started by the first test to run. The lock runs
/// the scenarios one at a time: each watches its keeper's timing and counters, which
/// another scenario's keeper on the same 2-core machine would disturb. A panicking
/// scenario does not poison the others.
fn localnet() -> std::sync::MutexGuard<'static, Localnet> {
    static NET: OnceLock<Mutex<Localnet>> = OnceLock::new();
    NET.get_or_init(|| {
        // One fixed ledger directory, reset at every start: repeated runs leave one behind.
        let ledger = std::env::temp_dir().join("backstop-keeper-e2e");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cfg = LocalnetConfig {
            rpc_port: free_rpc_port(),
            ledger,
            deploy_config: root.join("migrations/localnet.toml"),
            demo_wallets: 0,
            wallet_usdc: 0,
            program_so: None,
        };
        Mutex::new(start(&cfg).expect("localnet"))
    })
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Each scenario is its own test over the shared validator, on its own exchange.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod scenario {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::localnet());
                }
            )*
        }
    };
}

scenarios!(
    crash_to_normal_started_before_any_account,
    two_keepers_at_once,
    stale_oracle_then_fresh,
    keeper_margin_too_small,
    websocket_dropped_resync_still_catches_the_crash,
    rpc_errors_injected,
    trading_goes_on_during_the_round,
    round_batches_go_through_the_keepers_lookup_table,
);

fn crash_to_normal_started_before_any_account(net: &Localnet) {
    // The exchange exists but has no accounts when the keeper starts.
    let report = crash::deploy_exchange(net, 1, 120).unwrap();
    let kw = keeper_wallet(net);
    let k = KeeperProc::start(keeper_bin(), net, &report.exchange, &kw, "main", &[]);
    k.wait_ready();
    assert_eq!(k.metric("backstop_keeper_accounts"), 0);
    let c = crash::setup(net, 1, 120, kw, 10_000 * USDC).unwrap();
    // Nothing to do at $100.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(k.metric("backstop_keeper_liquidations_total"), 0);
    crash::set_price(net, &c, 85).unwrap();
    crash::wait_until_resolved(&net.rpc(), &c, 2, Duration::from_secs(90), |_| {})
        .unwrap_or_else(|e| panic!("{e:#}\n{}", k.logs()));
    assert_worked_example(net, &c, &["keeper"]);
    let ms = Instant::now();
    while k.metric("backstop_keeper_clawback_charges_total") < 3
        && ms.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(k.metric("backstop_keeper_liquidations_total"), 1);
    // The liquidation resolved the bankruptcy it created: no resolve_bankruptcy needed.
    assert_eq!(k.metric("backstop_keeper_bankruptcies_total"), 0);
    assert_eq!(k.metric("backstop_keeper_clawback_rounds_begun_total"), 1);
    assert_eq!(k.metric("backstop_keeper_clawback_charges_total"), 3);
    assert_eq!(
        k.metric("backstop_keeper_clawback_charged_atoms_total"),
        368_000_001
    );
    assert!(k.errors().is_empty(), "{:?}\n{}", k.errors(), k.logs());
    let (code, body) = k.get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("backstop_keeper_price_to_liquidation_seconds_count 1"),
        "{body}"
    );
    assert_eq!(k.get("/healthz").unwrap().0, 200);
    let logs = k.logs();
    assert!(
        logs.contains("liquidated") && logs.contains("clawback applied"),
        "{logs}"
    );
    // The native builtin is not metered: the liquidation requested the fallback limit.
    assert!(logs.contains("runs unmetered"), "{logs}");
    let liquidate_units = backstop_keeper::plan::Action::Liquidate {
        account: c.exchange,
        market_index: 0,
        max_base_qty: 0,
    }
    .fallback_units();
    assert!(
        logs.lines()
            .any(|l| l.contains("liquidated")
                && l.contains(&format!("compute_units={liquidate_units}"))),
        "{logs}"
    );
    assert_eq!(k.metric("backstop_keeper_in_flight_transactions"), 0);
    let st = k.terminate();
    assert!(st.success(), "SIGTERM exit: {st:?}");
}

fn two_keepers_at_once(net: &Localnet) {
    let kw = keeper_wallet(net);
    let other = keeper_wallet(net);
    let c = crash::setup(net, 2, 120, kw, 10_000 * USDC).unwrap();
    // The second keeper has a margin account of its own on this exchange.
    let rpc = net.rpc();
    let token = net.fund_usdc(&other.pubkey(), 10_000 * USDC).unwrap();
    let keys = backstop_client::ix::ExchangeKeys::of(c.exchange);
    backstop_migrations::send(
        &rpc,
        &other,
        &[],
        &[
            backstop_client::ix::create_margin_account(&other.pubkey(), &c.exchange),
            backstop_client::ix::deposit(&keys, &other.pubkey(), &token, 10_000 * USDC),
        ],
    )
    .unwrap();
    let a = KeeperProc::start(keeper_bin(), net, &c.exchange, c.keeper(), "two-a", &[]);
    let b = KeeperProc::start(keeper_bin(), net, &c.exchange, &other, "two-b", &[]);
    a.wait_ready();
    b.wait_ready();
    crash::set_price(net, &c, 85).unwrap();
    crash::wait_until_resolved(&rpc, &c, 2, Duration::from_secs(90), |_| {})
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", a.logs(), b.logs()));
    std::thread::sleep(Duration::from_secs(1));
    let liqs = a.metric("backstop_keeper_liquidations_total")
        + b.metric("backstop_keeper_liquidations_total");
    let bks = a.metric("backstop_keeper_bankruptcies_total")
        + b.metric("backstop_keeper_bankruptcies_total");
    assert_eq!(
        (liqs, bks),
        (1, 0),
        "the account liquidated once, its bankruptcy resolved by that liquidation"
    );
    assert!(
        a.errors().is_empty() && b.errors().is_empty(),
        "{:?} {:?}\n{}\n{}",
        a.errors(),
        b.errors(),
        a.logs(),
        b.logs()
    );
    // Whoever liquidated carries the fee's weight; the totals are the worked example's.
    let other_charged = crash::account(&rpc, &c, "keeper")
        .unwrap()
        .clawback
        .lifetime_total
        + backstop_client::decode::margin_account(
            &rpc.get_account_data(&backstop_client::pda::margin_account(
                &c.exchange,
                &other.pubkey(),
            ))
            .unwrap(),
        )
        .unwrap()
        .clawback
        .lifetime_total;
    assert_eq!(other_charged, 15_959_184);
    check_conservation(&rpc, &c.exchange).unwrap();
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

fn stale_oracle_then_fresh(net: &Localnet) {
    let kw = keeper_wallet(net);
    // Prices older than 6 s are stale on this exchange.
    let c = crash::setup(net, 3, 6, kw, 10_000 * USDC).unwrap();
    crash::set_price(net, &c, 85).unwrap();
    std::thread::sleep(Duration::from_secs(9));
    let k = KeeperProc::start(keeper_bin(), net, &c.exchange, c.keeper(), "stale", &[]);
    k.wait_ready();
    std::thread::sleep(Duration::from_secs(3));
    let rpc = net.rpc();
    assert_eq!(
        k.metric("backstop_keeper_liquidations_total"),
        0,
        "{}",
        k.logs()
    );
    assert!(
        k.errors().is_empty(),
        "no attempt on a stale price: {:?}",
        k.errors()
    );
    assert!(crash::account(&rpc, &c, "loser")
        .unwrap()
        .positions
        .iter()
        .any(|p| p.active));
    // A fresh price at the same level: now the keeper acts.
    crash::set_price(net, &c, 85).unwrap();
    crash::wait_until_resolved(&rpc, &c, 2, Duration::from_secs(60), |_| {})
        .unwrap_or_else(|e| panic!("{e:#}\n{}", k.logs()));
    assert_eq!(k.metric("backstop_keeper_liquidations_total"), 1);
    assert!(k.terminate().success());
}

fn keeper_margin_too_small(net: &Localnet) {
    let kw = keeper_wallet(net);
    // A margin account with no capital: no room above initial margin for any position.
    let c = crash::setup(net, 4, 120, kw, 0).unwrap();
    let k = KeeperProc::start(keeper_bin(), net, &c.exchange, c.keeper(), "small", &[]);
    k.wait_ready();
    crash::set_price(net, &c, 85).unwrap();
    let start = Instant::now();
    while k.metric("backstop_keeper_skipped_keeper_margin_total") == 0
        && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        k.metric("backstop_keeper_skipped_keeper_margin_total") >= 1,
        "{}",
        k.logs()
    );
    assert_eq!(k.metric("backstop_keeper_liquidations_total"), 0);
    assert!(
        k.errors().is_empty(),
        "skips are not errors: {:?}",
        k.errors()
    );
    assert!(
        k.logs().contains("deposit more into the keeper's account"),
        "{}",
        k.logs()
    );
    assert_eq!(k.get("/healthz").unwrap().0, 200, "still alive and healthy");
    assert!(k.terminate().success(), "no panic");
}

fn websocket_dropped_resync_still_catches_the_crash(net: &Localnet) {
    let kw = keeper_wallet(net);
    let c = crash::setup(net, 5, 120, kw, 10_000 * USDC).unwrap();
    let ws = Proxy::start(upstream(&net.ws_url()), 0, None);
    let ws_url = format!("ws://127.0.0.1:{}", ws.port);
    let k = KeeperProc::start(
        keeper_bin(),
        net,
        &c.exchange,
        c.keeper(),
        "ws-drop",
        &["--ws-url", &ws_url, "--stale-secs", "30"],
    );
    k.wait_ready();
    let start = Instant::now();
    while ws.accepted.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // The websocket goes dark for good: only the periodic resync can see the crash.
    ws.dark.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(1));
    crash::set_price(net, &c, 85).unwrap();
    crash::wait_until_resolved(&net.rpc(), &c, 2, Duration::from_secs(90), |_| {})
        .unwrap_or_else(|e| panic!("{e:#}\n{}", k.logs()));
    assert_worked_example(net, &c, &["keeper"]);
    assert!(
        k.metric("backstop_keeper_ws_reconnects_total") >= 1,
        "{}",
        k.logs()
    );
    assert!(k.terminate().success());
}

fn rpc_errors_injected(net: &Localnet) {
    let kw = keeper_wallet(net);
    let c = crash::setup(net, 6, 120, kw, 10_000 * USDC).unwrap();
    // Every 3rd connection refused and every live connection cut each 700 ms.
    let rpc_proxy = Proxy::start(
        upstream(&net.rpc_url()),
        3,
        Some(Duration::from_millis(700)),
    );
    let url = format!("http://127.0.0.1:{}", rpc_proxy.port);
    let k = KeeperProc::start(
        keeper_bin(),
        net,
        &c.exchange,
        c.keeper(),
        "rpc-faults",
        &["--url", &url, "--stale-secs", "60"],
    );
    k.wait_ready();
    crash::set_price(net, &c, 85).unwrap();
    crash::wait_until_resolved(&net.rpc(), &c, 2, Duration::from_secs(120), |_| {})
        .unwrap_or_else(|e| panic!("{e:#}\n{}", k.logs()));
    assert_worked_example(net, &c, &["keeper"]);
    assert!(rpc_proxy.accepted.load(Ordering::SeqCst) > 3);
    let faults_seen = k.metric("backstop_keeper_rpc_retries_total") > 0
        || k.errors().iter().any(|e| e.contains("kind=\"rpc\""));
    assert!(
        faults_seen,
        "the proxy's faults reached the keeper: {:?}\n{}",
        k.errors(),
        k.logs()
    );
    assert!(k.terminate().success());
}

/// While the keeper drives a round, another process trades continuously (at the oracle
/// price, as a deficit requires): no trade is refused, some land while the round is being
/// tallied or applied, and the round's charges are the worked example's.
fn trading_goes_on_during_the_round(net: &Localnet) {
    use backstop_client::ix;
    use backstop_migrations::send;
    let kw = keeper_wallet(net);
    let c = crash::setup(net, 7, 120, kw, 10_000 * USDC).unwrap();
    let keys = ix::ExchangeKeys::of(c.exchange);
    let traders: Vec<Keypair> = (0..2).map(|_| Keypair::new()).collect();
    let rpc = net.rpc();
    for t in &traders {
        net.fund_sol(&t.pubkey(), 10_000_000_000).unwrap();
        let token = net.fund_usdc(&t.pubkey(), 5_000 * USDC).unwrap();
        send(
            &rpc,
            t,
            &[],
            &[
                ix::create_margin_account(&t.pubkey(), &c.exchange),
                ix::deposit(&keys, &t.pubkey(), &token, 5_000 * USDC),
            ],
        )
        .unwrap();
    }
    let k = KeeperProc::start(keeper_bin(), net, &c.exchange, c.keeper(), "trading", &[]);
    k.wait_ready();
    crash::set_price(net, &c, 85).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let trader = {
        let stop = stop.clone();
        let url = net.rpc_url();
        let (market, oracle, exchange) = (c.market, c.oracle, c.exchange);
        std::thread::spawn(move || {
            let rpc = solana_rpc_client::rpc_client::RpcClient::new_with_commitment(
                url,
                solana_commitment_config::CommitmentConfig::confirmed(),
            );
            let (mut sent, mut in_round, mut refused) = (0u32, 0u32, vec![]);
            while !stop.load(Ordering::SeqCst) {
                let (t, m) = if sent % 2 == 0 {
                    (&traders[0], &traders[1])
                } else {
                    (&traders[1], &traders[0])
                };
                let trade = ix::trade(
                    &keys,
                    &t.pubkey(),
                    &m.pubkey(),
                    &market,
                    &oracle,
                    BASE_ATOMS,
                    85_000_000_000, // the oracle price, $85
                    &[],
                );
                match send(&rpc, t, &[m], &[trade]) {
                    Ok(_) => {
                        sent += 1;
                        let data = rpc.get_account_data(&exchange).unwrap();
                        let ex = backstop_client::decode::exchange(&data).unwrap();
                        if ex.epoch.in_round() {
                            in_round += 1;
                        }
                    }
                    Err(e) => refused.push(format!("{e:#}")),
                }
            }
            (sent, in_round, refused)
        })
    };
    crash::wait_until_resolved(&net.rpc(), &c, 2, Duration::from_secs(120), |_| {})
        .unwrap_or_else(|e| panic!("{e:#}\n{}", k.logs()));
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let (sent, in_round, refused) = trader.join().unwrap();
    assert!(
        refused.is_empty(),
        "refused trades: {refused:?}\n{}",
        k.logs()
    );
    assert!(sent >= 4, "{sent} trades");
    assert!(
        in_round >= 1,
        "{sent} trades, none while the round ran\n{}",
        k.logs()
    );
    let ex = crash::exchange(&rpc, &c).unwrap();
    assert_eq!(ex.epoch.phase, EpochPhase::Normal);
    // I1 and I3 against the vaults' token balances, over a getProgramAccounts scan.
    backstop_localnet::check_conservation(&rpc, &c.exchange).unwrap();
    // The worked example's charges (211.224490 and 140.816327), unless a trade's taker fee
    // reached the insurance fund before the bankruptcy was written up — each one lowers
    // the deficit by 0.085 and the charges with it. Either way each winner pays
    // ⌈weight · rate⌉, their weights are 60 : 40, and the epoch collected its deficit.
    let closed = ex.epoch.last_closed;
    let mut weights = vec![];
    for (name, worked_example) in [("winner-1", 211_224_490), ("winner-2", 140_816_327)] {
        let r = crash::account(&rpc, &c, name).unwrap().clawback;
        let exact = (r.last_weight * r.last_rate_num).div_ceil(r.last_rate_den) as u64;
        assert_eq!(r.lifetime_total, exact, "{name}: ⌈w·r⌉");
        assert!(
            r.lifetime_total <= worked_example && r.lifetime_total + 200_000 > worked_example,
            "{name}: {} against the worked example's {worked_example}",
            r.lifetime_total
        );
        weights.push(r.last_weight);
    }
    assert_eq!(weights[0] * 2, weights[1] * 3, "60 : 40");
    assert!(
        closed.clawed_back + closed.covered >= closed.deficit_opened,
        "{closed:?}"
    );
    println!("trading during the round: {sent} trades, {in_round} landed mid-round, 0 refused");
    assert!(k.terminate().success());
}

/// One PERP (6 decimals).
const BASE_ATOMS: i64 = 1_000_000;

/// With 70 winners to tally, the keeper's own lookup table lets one v0 `tally` carry up
/// to 60 accounts (a legacy transaction fits 29): the round takes two tallies, not three.
fn round_batches_go_through_the_keepers_lookup_table(net: &Localnet) {
    let n = 70usize;
    let (c, keeper) = crash::many_winners(net, 8, n, 200 * USDC).unwrap();
    let k = KeeperProc::start(keeper_bin(), net, &c.exchange, &keeper, "lut", &[]);
    k.wait_ready();
    // The keeper extends its table in the background; the round waits for it here only
    // so that the batch sizes below are deterministic.
    let t = Instant::now();
    while k.metric("backstop_keeper_lookup_table_addresses") < (n + 2) as u64 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the lookup table never held every account\n{}",
            k.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    crash::set_price(net, &c, 85).unwrap();
    crash::wait_until_resolved(&net.rpc(), &c, 2, Duration::from_secs(120), |_| {})
        .unwrap_or_else(|e| panic!("{e:#}\n{}", k.logs()));
    std::thread::sleep(Duration::from_secs(1));
    let tallies = k.metric("backstop_keeper_tallies_total");
    let tallied = k.metric("backstop_keeper_tallied_accounts_total");
    assert!(
        tallied >= n as u64,
        "{tallied} accounts tallied\n{}",
        k.logs()
    );
    assert!(
        tallies <= 2,
        "{tallies} tally transactions for {tallied} accounts: batches did not use the table\n{}",
        k.logs()
    );
    let logs = k.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("sending") && l.contains("tally") && l.contains("lookup_tables=1")),
        "no tally was sent through a lookup table\n{logs}"
    );
    assert!(k.errors().is_empty(), "{:?}\n{logs}", k.errors());
    backstop_localnet::check_conservation(&net.rpc(), &c.exchange).unwrap();
    println!("lookup table: {tallied} accounts in {tallies} tally transactions");
    assert!(k.terminate().success());
}
