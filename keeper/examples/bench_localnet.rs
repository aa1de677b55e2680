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
        _ => bail!(
            "usage: bench_localnet latency [N] | clawback [N] [--no-lookup-tables] | memory [N] | crash [N]"
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
    let mut seen: Vec<(EpochPhase, Duration)> = vec![];
    loop {
        if let Ok(d) = processed.get_account_data(&c.exchange) {
            let e = decode::exchange(&d)?;
            if seen.last().map(|s| s.0) != Some(e.epoch.phase) {
                seen.push((e.epoch.phase, t0.elapsed()));
            }
            if e.epoch.phase == EpochPhase::Normal && e.epoch.epoch_id >= 2 && e.books.deficit == 0
            {
                break;
            }
        }
        if t0.elapsed() > Duration::from_secs(600) {
            bail!(
                "the round did not finish in 10 minutes: {seen:?}\n{}",
                k.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
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

fn memory(n: usize) -> Result<()> {
    let admin = Keypair::new();
    let exchange = pda::exchange(&admin.pubkey(), 1);
    let space = 8 + MarginAccount::INIT_SPACE;
    let lamports = solana_sdk::rent::Rent::default().minimum_balance(space);
    let t = Instant::now();
    let genesis: Vec<(Pubkey, AccountSharedData)> = (0..n)
        .map(|i| {
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
            let base = (1 + i as i64 % 50) * BASE;
            positions[0] = Position {
                market_index: 0,
                active: true,
                base_qty: if i % 2 == 0 { base } else { -base },
                quote_basis: if i % 2 == 0 { base * 100 } else { -base * 100 },
            };
            let a = MarginAccount {
                exchange,
                owner,
                bump,
                capital: 100_000 * USDC,
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
            let mut data = MarginAccount::DISCRIMINATOR.to_vec();
            a.serialize(&mut data).expect("serialize");
            data.resize(space, 0);
            let acct = Account {
                lamports,
                data,
                owner: backstop::ID,
                executable: false,
                rent_epoch: u64::MAX,
            };
            (address, AccountSharedData::from(acct))
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
