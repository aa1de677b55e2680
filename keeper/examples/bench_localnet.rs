//! The keeper against the real localnet validator, measured (a benchmark, not a test):
//!
//! - `latency [N]` — oracle update → confirmed liquidation, N times (default 20): slots
//!   between the oracle transaction and the liquidation transaction, the keeper's own
//!   price-seen → confirmed milliseconds, and the wall time the benchmark observed.
//! - `clawback N` — one bad-debt epoch with N winners: the time from `begin_clawback` to
//!   `Normal`, and the transactions the keeper sent for the round.
//! - `memory N` — N margin accounts (written into genesis) cached by the keeper: resident
//!   and peak memory, the snapshot time, and the keeper's own health-pass time.
//!
//! Each part starts its own validator (one per process). `scripts/bench.sh` builds and
//! runs them all; alone:
//! `cargo build -p backstop-keeper --bins --examples && target/debug/examples/bench_localnet latency`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use anchor_lang::{AnchorSerialize, Discriminator, Space};
use anyhow::{bail, Context, Result};
use backstop::state::{EpochPhase, MarginAccount, Position};
use backstop_client::{decode, ix, pda};
use backstop_localnet::crash::{self, Crash, BASE, USDC};
use backstop_localnet::keeper_proc::KeeperProc;
use backstop_localnet::{free_rpc_port, start_with, Localnet, LocalnetConfig};
use backstop_migrations::send;
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::rpc_client::RpcClient;
use solana_sdk::account::{Account, AccountSharedData};
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |default: usize| -> Result<usize> {
        args.get(1)
            .map(|s| s.parse().context("the count must be a number"))
            .unwrap_or(Ok(default))
    };
    match args.first().map(String::as_str) {
        Some("latency") => latency(n(20)?),
        Some("clawback") => clawback(n(100)?, !args.iter().any(|a| a == "--no-lookup-tables")),
        Some("memory") => memory(n(100_000)?),
        Some("crash") => crash_throughput(n(1_000)?),
        Some("round") => round_at_scale(
            n(100_000)?,
            args.get(2)
                .map(|s| s.parse().context("the holder count must be a number"))
                .unwrap_or(Ok(10_000))?,
            !args.iter().any(|a| a == "--no-lookup-tables"),
        ),
        _ => bail!(
            "usage: bench_localnet latency [N] | clawback [N] [--no-lookup-tables] | memory [N] | crash [N] | round [N] [HOLDERS] [--no-lookup-tables]"
        ),
    }
}

fn keeper_bin() -> Result<PathBuf> {
    // target/<profile>/examples/bench_localnet → target/<profile>/backstop-keeper
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("backstop-keeper"))
        .filter(|p| p.exists());
    bin.context("backstop-keeper is not built next to this example: run `cargo build -p backstop-keeper --bins --examples` with the same profile")
}

fn localnet(
    name: &str,
    admin: Keypair,
    genesis: Vec<(Pubkey, AccountSharedData)>,
) -> Result<Localnet> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = LocalnetConfig {
        rpc_port: free_rpc_port(),
        ledger: std::env::temp_dir().join(format!("backstop-bench-{name}-{}", std::process::id())),
        deploy_config: root.join("migrations/localnet.toml"),
        demo_wallets: 0,
        wallet_usdc: 0,
        program_so: None,
    };
    start_with(&cfg, admin, genesis)
}

/// Sets the oracle to `dollars` and returns the slot the update landed in.
fn set_price_slot(net: &Localnet, c: &Crash, dollars: u64) -> Result<u64> {
    let sig = crash::set_price(net, c, dollars)?;
    let st = net.rpc().get_signature_statuses(&[sig])?.value[0]
        .clone()
        .context("status of the oracle update")?;
    Ok(st.slot)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<44} p50 {:>8.1}  p90 {:>8.1}  min {:>8.1}  max {:>8.1}",
        percentile(&v, 0.5),
        percentile(&v, 0.9),
        v[0],
        v[v.len() - 1]
    );
}

/// The keeper's "liquidated" log line for `account`: (slot, latency_ms, latency_slots).
fn liquidated_line(k: &KeeperProc, account: &Pubkey) -> Option<(u64, u64, u64)> {
    let want = account.to_string();
    k.logs().lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        let f = v.get("fields")?;
        if f.get("message")?.as_str()? != "liquidated" || f.get("account")?.as_str()? != want {
            return None;
        }
        Some((
            f.get("slot")?.as_u64()?,
            f.get("latency_ms")?.as_u64()?,
            f.get("latency_slots")?.as_u64()?,
        ))
    })
}

fn latency(n: usize) -> Result<()> {
    let net = localnet("latency", Keypair::new(), vec![])?;
    let c = crash::empty_exchange(&net, 1, 60)?;
    let rpc = net.rpc();
    let keys = ix::ExchangeKeys::of(c.exchange);
    let mut price = 1_000u64;
    crash::set_price(&net, &c, price)?;
    // The keeper (1M USDC), a market maker (1M USDC) and n losers of 110 USDC each.
    let mut deposits = vec![1_000_000 * USDC, 1_000_000 * USDC];
    deposits.extend(std::iter::repeat_n(110 * USDC, n));
    let wallets = crash::open_accounts(&net, &c, &deposits, |_, _| vec![], None)?;
    let (keeper, maker, losers) = (&wallets[0], &wallets[1], &wallets[2..]);
    let k = KeeperProc::start(
        &keeper_bin()?,
        &net,
        &c.exchange,
        keeper,
        "latency",
        &["--json-logs", "", "--resync-secs", "30"],
    );
    k.wait_ready();
    let (mut slots, mut keeper_ms, mut keeper_slots, mut wall_ms) =
        (vec![], vec![], vec![], vec![]);
    // `loser` takes `qty` from the maker at `dollars` (the oracle price: inside the band).
    let trade = |loser: &Keypair, qty: i64, dollars: u64| {
        send(
            &rpc,
            loser,
            &[maker],
            &[ix::trade(
                &keys,
                &loser.pubkey(),
                &maker.pubkey(),
                &c.market,
                &c.oracle,
                qty,
                dollars * 1_000_000_000,
                &[],
            )],
        )
    };
    for loser in losers {
        // 10x long at the current price, then a 7% drop: equity 3% < maintenance 5%.
        let qty = (1_000 * BASE) / price as i64;
        trade(loser, qty, price).context("opening the loser's 10x long")?;
        std::thread::sleep(Duration::from_millis(1_500));
        price = price * 93 / 100;
        let t0 = Instant::now();
        let oracle_slot = set_price_slot(&net, &c, price)?;
        let account = pda::margin_account(&c.exchange, &loser.pubkey());
        let observed = loop {
            let a = decode::margin_account(&rpc.get_account_data(&account)?)?;
            if a.positions[0].base_qty < qty {
                break t0.elapsed();
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("no liquidation within 60 s:\n{}", k.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let (slot, ms, kslots) = loop {
            if let Some(l) = liquidated_line(&k, &account) {
                break l;
            }
            if Instant::now() > deadline {
                bail!("the keeper did not log the liquidation of {account}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        slots.push(slot.saturating_sub(oracle_slot) as f64);
        keeper_ms.push(ms as f64);
        keeper_slots.push(kslots as f64);
        wall_ms.push(observed.as_secs_f64() * 1e3);
        // The loser closes what is left, so later drops do not make it bankrupt (a bad-debt
        // epoch would stop trading) and each tick measures one fresh liquidation.
        std::thread::sleep(Duration::from_millis(500));
        let left = decode::margin_account(&rpc.get_account_data(&account)?)?.positions[0];
        if left.active && left.base_qty != 0 {
            trade(loser, -left.base_qty, price)
                .context("closing the loser's remaining position")?;
        }
    }
    println!("oracle update → confirmed liquidation, {n} liquidations, localnet validator (400 ms slots):");
    summary("slots, oracle tx → liquidation tx", slots);
    summary("slots, keeper saw price → liquidation tx", keeper_slots);
    summary("ms, keeper saw price → confirmed", keeper_ms);
    summary("ms, bench sent update → saw position cut", wall_ms);
    println!("keeper errors: {:?}", k.errors());
    k.terminate();
    Ok(())
}

fn clawback(n: usize, lookup_tables: bool) -> Result<()> {
    let net = localnet("clawback", Keypair::new(), vec![])?;
    let rpc = net.rpc();
    let per = 100 * BASE / n as i64;
    let deposit = (10_000 / n as u64).max(10) * USDC;
    let t = Instant::now();
    let (c, keeper) = crash::many_winners(&net, 1, n, deposit)?;
    let keeper = &keeper;
    println!(
        "set-up: {n} winners short {} PERP each against one 10x long, in {:.1} s",
        per as f64 / BASE as f64,
        t.elapsed().as_secs_f64()
    );
    let mut flags = vec!["--resync-secs", "30"];
    if !lookup_tables {
        flags.extend(["--no-lookup-tables", ""]);
    }
    let k = KeeperProc::start(
        &keeper_bin()?,
        &net,
        &c.exchange,
        keeper,
        "clawback",
        &flags,
    );
    k.wait_ready();
    if lookup_tables {
        // The keeper fills its tables in the background; an address is usable once its
        // extension is rooted. Measure the round with the tables complete.
        let t = Instant::now();
        while k.metric("backstop_keeper_lookup_table_addresses") < (n + 2) as u64 {
            if t.elapsed() > Duration::from_secs(600) {
                bail!(
                    "the keeper's lookup tables never held every account\n{}",
                    k.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        println!(
            "lookup tables: {} addresses usable {:.1} s after the keeper started",
            n + 2,
            t.elapsed().as_secs_f64()
        );
    }
    let processed = RpcClient::new_with_commitment(net.rpc_url(), CommitmentConfig::processed());
    let t0 = Instant::now();
    crash::set_price(&net, &c, 85)?;
    let seen = watch_round(&processed, &c.exchange, t0, Duration::from_secs(600), &k)?;
    let at = |p: EpochPhase| seen.iter().find(|s| s.0 == p).map(|s| s.1);
    let (begin, end) = (
        at(EpochPhase::Tallying).context("never saw Tallying")?,
        seen.last().unwrap().1,
    );
    std::thread::sleep(Duration::from_secs(1));
    let total = k.metric("backstop_keeper_transactions_total");
    let liq = k.metric("backstop_keeper_liquidations_total");
    let bk = k.metric("backstop_keeper_bankruptcies_total");
    let tallies = k.metric("backstop_keeper_tallies_total");
    let begun = k.metric("backstop_keeper_clawback_rounds_begun_total");
    let charges = k.metric("backstop_keeper_clawback_charges_total");
    let round_txs = total - liq - bk;
    let accounts = k.metric("backstop_keeper_accounts");
    println!("clawback round over {accounts} margin accounts ({n} winners):");
    println!("  phases seen (since the crash): {seen:?}");
    println!(
        "  begin_clawback → Normal: {:.2} s; crash → Normal: {:.2} s",
        (end - begin).as_secs_f64(),
        end.as_secs_f64()
    );
    let tallied = k.metric("backstop_keeper_tallied_accounts_total");
    println!(
        "  round transactions: {round_txs} (begin {begun}, tally {tallies} carrying {tallied} accounts, finalize + clawback {}), accounts charged: {charges}, lookup tables {}",
        round_txs - tallies - begun,
        if lookup_tables { "on" } else { "off" }
    );
    println!("  keeper errors: {:?}", k.errors());
    backstop_localnet::check_conservation(&rpc, &c.exchange)?;
    k.terminate();
    Ok(())
}

/// The epoch phases seen on `exchange` (with the time since `t0`) until the round that
/// closes the first epoch ends in `Normal` with no deficit; fails after `limit`.
fn watch_round(
    processed: &RpcClient,
    exchange: &Pubkey,
    t0: Instant,
    limit: Duration,
    k: &KeeperProc,
) -> Result<Vec<(EpochPhase, Duration)>> {
    let mut seen: Vec<(EpochPhase, Duration)> = vec![];
    loop {
        if let Ok(d) = processed.get_account_data(exchange) {
            let e = decode::exchange(&d)?;
            if seen.last().map(|s| s.0) != Some(e.epoch.phase) {
                seen.push((e.epoch.phase, t0.elapsed()));
            }
            if e.epoch.phase == EpochPhase::Normal && e.epoch.epoch_id >= 2 && e.books.deficit == 0
            {
                return Ok(seen);
            }
        }
        if t0.elapsed() > limit {
            bail!(
                "the round did not finish in {} s: {seen:?}\n{}",
                limit.as_secs(),
                k.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Crash throughput: one oracle update makes `n` accounts liquidatable at once; slots and
/// seconds from the update's slot until the keeper's last liquidation is confirmed, and
/// liquidations per slot.
fn crash_throughput(n: usize) -> Result<()> {
    let net = localnet("crash", Keypair::new(), vec![])?;
    let t = Instant::now();
    let (c, longs, keeper) = crash::many_liquidatable(&net, 1, n)?;
    println!(
        "set-up: {n} longs of 1 PERP with 15 USDC each against one short, in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let k = KeeperProc::start(
        &keeper_bin()?,
        &net,
        &c.exchange,
        &keeper,
        "crash",
        &[
            "--json-logs",
            "",
            "--resync-secs",
            "30",
            "--confirm-timeout-secs",
            "20",
        ],
    );
    k.wait_ready();
    std::thread::sleep(Duration::from_secs(2));
    if k.metric("backstop_keeper_liquidations_total") != 0 {
        bail!("liquidations before the crash\n{}", k.logs());
    }
    let t0 = Instant::now();
    let update_slot = set_price_slot(&net, &c, 88)?;
    let mut done_at = None;
    while t0.elapsed() < Duration::from_secs(600) {
        if k.metric("backstop_keeper_liquidations_total") >= n as u64 {
            done_at = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let secs = done_at
        .with_context(|| {
            format!(
                "only {} of {n} liquidated in 10 minutes\n{}",
                k.metric("backstop_keeper_liquidations_total"),
                k.logs()
            )
        })?
        .as_secs_f64();
    let mut per_slot: std::collections::BTreeMap<u64, usize> = Default::default();
    for w in &longs {
        let account = pda::margin_account(&c.exchange, &w.pubkey());
        let (slot, _, _) = liquidated_line(&k, &account)
            .with_context(|| format!("no liquidation logged for {account}"))?;
        *per_slot.entry(slot).or_default() += 1;
    }
    let first = *per_slot.keys().next().context("no liquidations")?;
    let last = *per_slot.keys().last().context("no liquidations")?;
    let slots = last.saturating_sub(update_slot);
    let busiest = per_slot.values().max().copied().unwrap_or(0);
    println!("crash throughput: one price update makes {n} accounts liquidatable");
    println!(
        "  update in slot {update_slot}; first liquidation in slot {first} (+{}), last in slot {last} (+{slots})",
        first.saturating_sub(update_slot)
    );
    println!(
        "  {n} liquidations in {slots} slots and {secs:.2} s (update sent → last confirmed seen): {:.1} per slot over the slots that had any ({} slots), at most {busiest} in one slot",
        n as f64 / per_slot.len() as f64,
        per_slot.len()
    );
    // What bounds it: when the keeper sent versus when the liquidations landed.
    let sent = log_seconds(&k, "sending", Some("liquidate"));
    let landed = log_seconds(&k, "liquidated", None);
    if let (Some(s0), Some(s1), Some(l1)) = (sent.first(), sent.last(), landed.last()) {
        println!(
            "  the keeper sent {} liquidation transactions over {:.2} s; the last was confirmed {:.2} s after the first was sent",
            sent.len(),
            s1 - s0,
            l1 - s0
        );
    }
    println!(
        "  keeper transactions {}, benign races {}, retries {}, errors {:?}",
        k.metric("backstop_keeper_transactions_total"),
        k.metric("backstop_keeper_benign_races_total"),
        k.metric("backstop_keeper_rpc_retries_total"),
        k.errors()
    );
    backstop_localnet::check_conservation(&net.rpc(), &c.exchange)?;
    k.terminate();
    Ok(())
}

/// Seconds since midnight (UTC) of the keeper's JSON log lines with `message` (and
/// `action`, when given), in order.
fn log_seconds(k: &KeeperProc, message: &str, action: Option<&str>) -> Vec<f64> {
    k.logs()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let f = v.get("fields")?;
            if f.get("message")?.as_str()? != message {
                return None;
            }
            if let Some(a) = action {
                if f.get("action")?.as_str()? != a {
                    return None;
                }
            }
            // "2026-12-01T10:02:24.123456Z" → seconds since midnight.
            let time = v.get("timestamp")?.as_str()?.split('T').nth(1)?;
            let mut parts = time.trim_end_matches('Z').split(':');
            let h: f64 = parts.next()?.parse().ok()?;
            let m: f64 = parts.next()?.parse().ok()?;
            let s: f64 = parts.next()?.parse().ok()?;
            Some(h * 3600.0 + m * 60.0 + s)
        })
        .collect()
}

/// A margin account of a new owner on `exchange`, as genesis holds it: `capital`, and
/// optionally one position in market 0 of (base atoms, quote basis). Its address is the
/// program's PDA, its data padded to the account's size, rent-exempt.
fn seeded_margin_account(
    exchange: &Pubkey,
    capital: u64,
    position: Option<(i64, i64)>,
) -> (Pubkey, AccountSharedData) {
    let owner = Pubkey::new_unique();
    let (address, bump) = Pubkey::find_program_address(
        &[
            backstop::constants::MARGIN_SEED,
            exchange.as_ref(),
            owner.as_ref(),
        ],
        &backstop::ID,
    );
    let mut positions = [Position::default(); backstop::constants::MAX_POSITIONS];
    if let Some((base_qty, quote_basis)) = position {
        positions[0] = Position {
            market_index: 0,
            active: true,
            base_qty,
            quote_basis,
        };
    }
    let a = MarginAccount {
        exchange: *exchange,
        owner,
        bump,
        capital,
        pnl: 0,
        positions,
        warmup: Default::default(),
        clawback: Default::default(),
        created_at: 0,
        epoch_withdrawn: 0,
        withdrawn_epoch: 0,
        epoch_deposited: 0,
        deposited_epoch: 0,
    };
    let data = margin_account_data(&a);
    let account = Account {
        lamports: solana_sdk::rent::Rent::default().minimum_balance(data.len()),
        data,
        owner: backstop::ID,
        executable: false,
        rent_epoch: u64::MAX,
    };
    (address, AccountSharedData::from(account))
}

/// A margin account's bytes as the program stores them (discriminator, Borsh, padding).
fn margin_account_data(a: &MarginAccount) -> Vec<u8> {
    let mut data = MarginAccount::DISCRIMINATOR.to_vec();
    a.serialize(&mut data).expect("serialize");
    data.resize(8 + MarginAccount::INIT_SPACE, 0);
    data
}

fn memory(n: usize) -> Result<()> {
    let admin = Keypair::new();
    let exchange = pda::exchange(&admin.pubkey(), 1);
    let space = 8 + MarginAccount::INIT_SPACE;
    let t = Instant::now();
    let genesis: Vec<(Pubkey, AccountSharedData)> = (0..n)
        .map(|i| {
            let base = (1 + i as i64 % 50) * BASE;
            let position = if i % 2 == 0 {
                (base, base * 100)
            } else {
                (-base, -base * 100)
            };
            seeded_margin_account(&exchange, 100_000 * USDC, Some(position))
        })
        .collect();
    println!(
        "built {n} margin accounts ({space} bytes each) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let net = localnet("memory", admin, genesis)?;
    println!(
        "validator with them in genesis up in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let c = crash::empty_exchange(&net, 1, 600)?;
    assert_eq!(c.exchange, exchange);
    crash::set_price(&net, &c, 100)?;
    let keeper = Keypair::new();
    net.fund_sol(&keeper.pubkey(), 1_000_000_000)?;
    let t = Instant::now();
    let k = KeeperProc::start(
        &keeper_bin()?,
        &net,
        &c.exchange,
        &keeper,
        "memory",
        &["--resync-secs", "20"],
    );
    k.wait_ready_within(Duration::from_secs(600));
    let ready = t.elapsed();
    // Two more full resyncs: steady state includes re-fetching everything periodically.
    std::thread::sleep(Duration::from_secs(45));
    let cached = k.metric("backstop_keeper_accounts");
    let health_us = k.metric("backstop_keeper_health_recompute_microseconds");
    let resyncs = k.metric("backstop_keeper_resyncs_total");
    let (rss, peak) = k.memory_kib().context("reading /proc for the keeper")?;
    println!("keeper with {cached} cached margin accounts ({resyncs} full snapshots):");
    println!("  first snapshot ready in {:.1} s", ready.as_secs_f64());
    println!(
        "  resident {:.1} MB, peak resident {:.1} MB",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!(
        "  keeper's own health pass over them: {:.1} ms (this build's profile)",
        health_us as f64 / 1e3
    );
    if cached != n as u64 {
        bail!("the keeper cached {cached} accounts, expected {n}");
    }
    k.terminate();
    Ok(())
}

/// The round at Drift's scale: `n` margin accounts written into genesis with a consistent
/// exchange (its counters, open interest and vault balance include them), `holders` of
/// them holding positions — `holders − 1` shorts of 1 PERP against one 10x long whale —
/// and the rest idle with capital. One price update ($100 → $85) makes the whale
/// bankrupt: the keeper liquidates it, the epoch opens and the keeper runs the round,
/// while a trader sends trades between two accounts throughout. Reports refused trades,
/// `begin_clawback` → `Normal` wall time and transactions, the accounts each batch named
/// and the log bytes of the largest.
///
/// The exchange itself is built by the real instructions on a first, small validator
/// (exchange, market, oracle, insurance, the keeper's, whale's and traders' accounts); its
/// accounts are read back, the seeded accounts added to its books, and a second
/// validator starts with all of it in genesis. With lookup tables, the keeper's tables of
/// every margin account are seeded too (as a keeper that has run before would own them).
fn round_at_scale(n: usize, holders: usize, lookup_tables: bool) -> Result<()> {
    use solana_rpc_client::rpc_client::GetConfirmedSignaturesForAddress2Config;
    use solana_rpc_client_api::config::RpcTransactionConfig;
    use solana_sdk::account::ReadableAccount;
    use solana_transaction_status_client_types::{
        option_serializer::OptionSerializer, UiTransactionEncoding,
    };

    if holders < 2 || n < holders + 3 {
        bail!("need at least 2 holders and n ≥ holders + 3 (the keeper and two traders)");
    }
    const EXCHANGE_ID: u16 = 7;
    const SHORT_CAPITAL: u64 = 50 * USDC;
    const IDLE_CAPITAL: u64 = 10 * USDC;
    let admin = Keypair::new();
    let shorts = holders - 1;

    // 1. The exchange and its real participants, by instruction, on a small validator.
    let t = Instant::now();
    let (c, keeper, whale, traders, mut genesis) = {
        let net = localnet("round-setup", admin.insecure_clone(), vec![])?;
        let c = crash::empty_exchange(&net, EXCHANGE_ID, 600)?;
        crash::set_price(&net, &c, 100)?;
        let mut w = crash::open_accounts(
            &net,
            &c,
            // The keeper; the whale, 10x long at $100 (so $85 leaves it 50% under water);
            // the trader's two accounts.
            &[
                10_000_000 * USDC,
                shorts as u64 * 10 * USDC,
                100_000 * USDC,
                100_000 * USDC,
            ],
            |_, _| vec![],
            None,
        )?;
        let t2 = w.pop().context("trader")?;
        let t1 = w.pop().context("trader")?;
        let whale = w.pop().context("whale")?;
        let keeper = w.pop().context("keeper")?;
        crash::fund_insurance(&net, &c, 100 * USDC)?;
        let rpc = net.rpc();
        let ex = decode::exchange(&rpc.get_account_data(&c.exchange)?)?;
        let mut keys_to_copy = vec![
            c.exchange,
            c.market,
            c.oracle,
            ex.vault,
            ex.insurance_vault,
            ex.collateral_mint,
        ];
        for w in [&keeper, &whale, &t1, &t2] {
            keys_to_copy.push(pda::margin_account(&c.exchange, &w.pubkey()));
        }
        let mut copied = vec![];
        for k in keys_to_copy {
            copied.push((k, AccountSharedData::from(rpc.get_account(&k)?)));
        }
        (c, keeper, whale, [t1, t2], copied)
    };
    println!(
        "set-up: exchange {} built by instruction on a first validator in {:.1} s",
        c.exchange,
        t.elapsed().as_secs_f64()
    );

    // 2. The seeded accounts, and the books that include them.
    let t = Instant::now();
    let per_short = BASE;
    let short_basis = -100 * USDC as i64; // 1 PERP sold at $100
    let whale_qty = shorts as i64 * per_short;
    let seeded = n - 4;
    let mut seeded_capital: u64 = 0;
    let mut all_margin: Vec<Pubkey> = vec![];
    let mut profit_first: Vec<Pubkey> = vec![];
    for i in 0..seeded {
        let short = i < shorts;
        let capital = if short { SHORT_CAPITAL } else { IDLE_CAPITAL };
        seeded_capital += capital;
        let position = short.then_some((-per_short, short_basis));
        let (address, account) = seeded_margin_account(&c.exchange, capital, position);
        genesis.push((address, account));
        if short {
            profit_first.push(address);
        } else {
            all_margin.push(address);
        }
    }
    let whale_account = pda::margin_account(&c.exchange, &whale.pubkey());
    let mut real = vec![whale_account];
    real.extend(
        [&keeper, &traders[0], &traders[1]].map(|w| pda::margin_account(&c.exchange, &w.pubkey())),
    );
    profit_first.splice(0..0, real);
    profit_first.extend(all_margin);
    let all_margin = profit_first;

    let patch = |genesis: &mut Vec<(Pubkey, AccountSharedData)>,
                 key: &Pubkey,
                 f: &mut dyn FnMut(&mut Vec<u8>)|
     -> Result<()> {
        let (_, acct) = genesis
            .iter_mut()
            .find(|(k, _)| k == key)
            .context("copied account")?;
        let mut data = acct.data().to_vec();
        f(&mut data);
        acct.set_data_from_slice(&data);
        Ok(())
    };
    let reserialize = |data: &mut Vec<u8>, bytes: Vec<u8>| {
        let len = data.len();
        data[..bytes.len()].copy_from_slice(&bytes);
        data.truncate(len);
    };
    // The whale: 10x long of every short's PERP at $100.
    patch(&mut genesis, &whale_account, &mut |d| {
        let mut a = decode::margin_account(d).expect("whale");
        a.positions[0] = Position {
            market_index: 0,
            active: true,
            base_qty: whale_qty,
            quote_basis: -short_basis * shorts as i64,
        };
        reserialize(d, margin_account_data(&a));
    })?;
    let ex_key = c.exchange;
    patch(&mut genesis, &ex_key, &mut |d| {
        let mut e = decode::exchange(d).expect("exchange");
        e.num_accounts += seeded as u32;
        e.books.total_capital += u128::from(seeded_capital);
        e.books.vault_balance += seeded_capital;
        // Σ basis: the whale's +shorts·$100 and the shorts' −$100 each cancel.
        e.profit_capable_accounts += shorts as u32 + 1; // the shorts and the whale
        e.capital_accounts += seeded as u32;
        let mut bytes = backstop::state::Exchange::DISCRIMINATOR.to_vec();
        e.serialize(&mut bytes).expect("serialize");
        reserialize(d, bytes);
    })?;
    patch(&mut genesis, &c.market, &mut |d| {
        let mut m = decode::market(d).expect("market");
        m.long_open_interest += whale_qty as u64;
        m.short_open_interest += whale_qty as u64;
        let mut bytes = backstop::state::PerpMarket::DISCRIMINATOR.to_vec();
        m.serialize(&mut bytes).expect("serialize");
        reserialize(d, bytes);
    })?;
    let ex = decode::exchange(
        genesis
            .iter()
            .find(|(k, _)| *k == ex_key)
            .context("the copied exchange")?
            .1
            .data(),
    )?;
    // SPL token layouts: an account's amount at bytes 64..72, a mint's supply at 36..44.
    let add_u64 = |d: &mut Vec<u8>, at: usize, v: u64| {
        let old = u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
        d[at..at + 8].copy_from_slice(&(old + v).to_le_bytes());
    };
    patch(&mut genesis, &ex.vault, &mut |d| {
        add_u64(d, 64, seeded_capital)
    })?;
    patch(&mut genesis, &ex.collateral_mint, &mut |d| {
        add_u64(d, 36, seeded_capital)
    })?;

    // The keeper's lookup tables, as its maintenance thread would have left them.
    if lookup_tables {
        use solana_address_lookup_table_interface::state::LOOKUP_TABLE_MAX_ADDRESSES;
        for chunk in all_margin.chunks(LOOKUP_TABLE_MAX_ADDRESSES) {
            // LookupTableMeta (bincode): state tag 1, deactivation slot (none), last
            // extended slot 0 (every address active from slot 1), start index 0, the
            // authority, 2 bytes of padding; then the addresses.
            let mut data = 1u32.to_le_bytes().to_vec();
            data.extend(u64::MAX.to_le_bytes());
            data.extend(0u64.to_le_bytes());
            data.push(0);
            data.push(1);
            data.extend(keeper.pubkey().to_bytes());
            data.extend([0, 0]);
            for k in chunk {
                data.extend(k.to_bytes());
            }
            genesis.push((
                Pubkey::new_unique(),
                AccountSharedData::from(Account {
                    lamports: solana_sdk::rent::Rent::default().minimum_balance(data.len()),
                    data,
                    owner: solana_address_lookup_table_interface::program::id(),
                    executable: false,
                    rent_epoch: u64::MAX,
                }),
            ));
        }
    }
    println!(
        "seeded {seeded} margin accounts ({shorts} shorts of 1 PERP with {} USDC, {} idle with {} USDC) in {:.1} s",
        SHORT_CAPITAL / USDC,
        seeded - shorts,
        IDLE_CAPITAL / USDC,
        t.elapsed().as_secs_f64()
    );

    // 3. The validator with all of it in genesis, the keeper and the trader.
    let t = Instant::now();
    let net = localnet("round", admin, genesis)?;
    println!(
        "validator with {n} margin accounts in genesis up in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rpc = net.rpc();
    for w in [&keeper, &traders[0], &traders[1]] {
        net.fund_sol(&w.pubkey(), 10_000_000_000)?;
    }
    crash::set_price(&net, &c, 100)?;
    backstop_localnet::check_conservation(&rpc, &c.exchange)
        .context("the seeded exchange is not consistent")?;
    let t = Instant::now();
    let mut flags = vec!["--resync-secs", "120", "--confirm-timeout-secs", "20"];
    if !lookup_tables {
        flags.extend(["--no-lookup-tables", ""]);
    }
    let k = KeeperProc::start(&keeper_bin()?, &net, &c.exchange, &keeper, "round", &flags);
    k.wait_ready_within(Duration::from_secs(900));
    println!(
        "keeper ready with {} accounts in {:.1} s",
        k.metric("backstop_keeper_accounts"),
        t.elapsed().as_secs_f64()
    );
    if lookup_tables {
        let t = Instant::now();
        while k.metric("backstop_keeper_lookup_table_addresses") < n as u64 {
            if t.elapsed() > Duration::from_secs(120) {
                bail!(
                    "the keeper did not load its seeded lookup tables\n{}",
                    k.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // 4. The crash, then the round to its end.
    let processed = RpcClient::new_with_commitment(net.rpc_url(), CommitmentConfig::processed());
    let t0 = Instant::now();
    let crash_slot = set_price_slot(&net, &c, 85)?;
    println!("crash: the oracle at $85 in slot {crash_slot}; the trader starts");
    // The trader: one trade at a time between its two accounts, 1 PERP back and forth at
    // the oracle price (the only price allowed while a deficit is open), until told.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let keys = ix::ExchangeKeys::of(c.exchange);
    let trader = {
        let stop = stop.clone();
        let url = net.rpc_url();
        let [t1, t2] = [traders[0].insecure_clone(), traders[1].insecure_clone()];
        let (market, oracle) = (c.market, c.oracle);
        std::thread::spawn(move || {
            let rpc = RpcClient::new_with_commitment(url, CommitmentConfig::confirmed());
            let (mut ok, mut refused, mut transport) = (0u64, vec![], 0u64);
            let mut side = BASE;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ix = ix::trade(
                    &keys,
                    &t1.pubkey(),
                    &t2.pubkey(),
                    &market,
                    &oracle,
                    side,
                    85_000_000_000,
                    &[],
                );
                match send(&rpc, &t1, &[&t2], &[ix]) {
                    Ok(_) => {
                        ok += 1;
                        side = -side;
                    }
                    Err(e) => {
                        // Pace retries: a refusal is reported, not hammered.
                        std::thread::sleep(Duration::from_millis(100));
                        let text = format!("{e:#}");
                        if text.contains("custom program error") || text.contains("Error Code") {
                            refused.push(text);
                        } else {
                            transport += 1;
                        }
                    }
                }
            }
            (ok, refused, transport)
        })
    };

    let seen = watch_round(&processed, &c.exchange, t0, Duration::from_secs(900), &k)?;
    // The trader goes on a little past the end; the keeper's confirmations catch up.
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (trades_ok, refused, transport) = trader.join().expect("trader thread");
    let at = |p: EpochPhase| seen.iter().find(|s| s.0 == p).map(|s| s.1);
    let (begin, end) = (
        at(EpochPhase::Tallying).context("never saw Tallying")?,
        seen.last().unwrap().1,
    );
    // 5. Every transaction since the crash: accounts named and log bytes per batch.
    let mut sigs = vec![];
    let mut before = None;
    loop {
        let page = rpc.get_signatures_for_address_with_config(
            &c.exchange,
            GetConfirmedSignaturesForAddress2Config {
                before,
                limit: Some(1_000),
                commitment: Some(CommitmentConfig::confirmed()),
                ..Default::default()
            },
        )?;
        let Some(last) = page.last() else { break };
        before = Some(last.signature.parse()?);
        let done = last.slot < crash_slot;
        sigs.extend(
            page.into_iter()
                .filter(|s| s.slot >= crash_slot && s.err.is_none()),
        );
        if done {
            break;
        }
    }
    let tally_d = backstop::instruction::Tally::DISCRIMINATOR;
    let clawback_d = backstop::instruction::Clawback::DISCRIMINATOR;
    let begin_d = backstop::instruction::BeginClawback::DISCRIMINATOR;
    let finalize_d = backstop::instruction::FinalizeTally::DISCRIMINATOR;
    let (mut tally_stats, mut clawback_stats) = (vec![], vec![]);
    let (mut begun, mut finalized) = (0, 0);
    for s in &sigs {
        let tx = rpc.get_transaction_with_config(
            &s.signature.parse()?,
            RpcTransactionConfig {
                encoding: Some(UiTransactionEncoding::Base64),
                commitment: Some(CommitmentConfig::confirmed()),
                max_supported_transaction_version: Some(0),
            },
        )?;
        let Some(vt) = tx.transaction.transaction.decode() else {
            continue;
        };
        let keys = vt.message.static_account_keys();
        let Some(ixn) = vt
            .message
            .instructions()
            .iter()
            .find(|i| keys.get(i.program_id_index as usize) == Some(&backstop::ID))
        else {
            continue;
        };
        if ixn.data.starts_with(begin_d) {
            begun += 1;
            continue;
        }
        if ixn.data.starts_with(finalize_d) {
            finalized += 1;
            continue;
        }
        let kind = if ixn.data.starts_with(tally_d) {
            &mut tally_stats
        } else if ixn.data.starts_with(clawback_d) {
            &mut clawback_stats
        } else {
            continue;
        };
        let logs = match tx.transaction.meta.map(|m| m.log_messages) {
            Some(OptionSerializer::Some(l)) => l,
            _ => vec![],
        };
        if logs.iter().any(|l| l.contains("Log truncated")) {
            bail!("a batch's log was truncated: {}", s.signature);
        }
        let log_bytes: usize = logs.iter().map(String::len).sum();
        let from_tables: usize = vt
            .message
            .address_table_lookups()
            .map(|ls| {
                ls.iter()
                    .map(|l| l.writable_indexes.len() + l.readonly_indexes.len())
                    .sum()
            })
            .unwrap_or(0);
        // Margin accounts the batch carries: the instruction's accounts past its fixed ones
        // (tally: the exchange; clawback: exchange, vault, insurance vault, token program).
        let fixed = if ixn.data.starts_with(tally_d) { 1 } else { 4 };
        kind.push((
            ixn.accounts.len().saturating_sub(fixed),
            log_bytes,
            from_tables > 0,
        ));
    }
    let describe = |name: &str, v: &[(usize, usize, bool)]| {
        let most = v.iter().map(|s| s.0).max().unwrap_or(0);
        let logs = v.iter().map(|s| s.1).max().unwrap_or(0);
        let v0 = v.iter().filter(|s| s.2).count();
        println!(
            "  {name}: {} transactions ({v0} v0 with lookup tables), {:.1} margin accounts per batch on average, at most {most}; largest log {logs} bytes (budget 10,000)",
            v.len(),
            v.iter().map(|s| s.0).sum::<usize>() as f64 / v.len().max(1) as f64
        );
    };

    println!(
        "round at scale: {n} margin accounts, {holders} holding positions, lookup tables {}",
        if lookup_tables { "on (seeded)" } else { "off" }
    );
    println!("  phases seen (since the crash): {seen:?}");
    println!(
        "  begin_clawback → Normal: {:.2} s; crash → Normal: {:.2} s",
        (end - begin).as_secs_f64(),
        end.as_secs_f64()
    );
    let round_txs = begun + tally_stats.len() + finalized + clawback_stats.len();
    let limit = |batch: usize| 2 * holders.div_ceil(batch) + 3;
    println!(
        "  round transactions (landed, read back from the chain): {round_txs} — begin {begun}, tally {}, finalize {finalized}, clawback {}; target 2·⌈{holders}/batch⌉ + 3 = {} at the clawback batch (34), {} at the tally batch (60)",
        tally_stats.len(),
        clawback_stats.len(),
        limit(usize::from(backstop::constants::MAX_CLAWBACK_BATCH)),
        limit(usize::from(backstop::constants::MAX_TALLY_BATCH)),
    );
    println!(
        "  keeper: {} tallied accounts, {} clawback charges, {} transactions sent in all",
        k.metric("backstop_keeper_tallied_accounts_total"),
        k.metric("backstop_keeper_clawback_charges_total"),
        k.metric("backstop_keeper_transactions_total"),
    );
    describe("tally", &tally_stats);
    describe("clawback", &clawback_stats);
    println!(
        "  trader: {trades_ok} trades landed, {} refused, {transport} transport errors",
        refused.len()
    );
    for r in refused.iter().take(5) {
        println!("    refused: {r}");
    }
    println!("  keeper errors: {:?}", k.errors());
    backstop_localnet::check_conservation(&rpc, &c.exchange)?;
    k.terminate();
    if !refused.is_empty() {
        bail!("{} trades were refused during the round", refused.len());
    }
    Ok(())
}
