//! `--crash-demo`: the crash scenario over JSON-RPC with the real keeper binary doing the
//! liquidation, the bankruptcy and the clawback round.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use anyhow::{bail, Context, Result};
use backstop::state::EpochPhase;
use backstop_localnet::crash::{self, usdc, USDC};
use backstop_localnet::Localnet;
use solana_sdk::signature::{write_keypair_file, Keypair};

/// Plays the demo; returns the running keeper and the demo exchange.
pub fn run(net: &Localnet, dir: &Path) -> Result<(Child, Pubkey)> {
    let keeper_bin = std::env::current_exe()?
        .parent()
        .map(|p| p.join("backstop-keeper"))
        .filter(|p| p.exists());
    let Some(keeper_bin) = keeper_bin else {
        bail!("backstop-keeper is not built next to backstop-localnet: run `cargo build -p backstop-keeper` (./scripts/demo.sh does)");
    };
    println!("\n== Crash demo: one PERP market at $100, IM 10%, MM 5%, liquidation fee 1%, clawback profit pro rata ==");
    println!("[1] Deploying the demo exchange, funding five accounts, seeding the insurance fund with 100 USDC,");
    println!("    and opening loser long 100 PERP at $100 (10x) against winner-1 short 60 and winner-2 short 40");
    let keeper = Keypair::new();
    let c = crash::setup(net, 1, 120, keeper.insecure_clone(), 10_000 * USDC)?;
    let rpc = net.rpc();
    let ex = crash::exchange(&rpc, &c)?;
    println!(
        "    exchange {}  insurance fund {} USDC (100 + taker fees)",
        c.exchange,
        usdc(ex.books.insurance_balance as i128)
    );
    let kp = dir.join("demo-keeper.json");
    write_keypair_file(&keeper, &kp).map_err(|e| anyhow::anyhow!("{e}"))?;
    let metrics =
        std::env::var("BACKSTOP_DEMO_METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9464".into());
    println!(
        "[2] Starting backstop-keeper (keypair {}, metrics http://{metrics}/metrics)",
        kp.display()
    );
    let child = Command::new(&keeper_bin)
        .args(["--url", &net.rpc_url(), "--ws-url", &net.ws_url()])
        .args(["--keypair", &kp.display().to_string()])
        .args(["--exchange", &c.exchange.to_string()])
        .args(["--metrics-addr", &metrics, "--resync-secs", "5"])
        .spawn()
        .with_context(|| format!("starting {}", keeper_bin.display()))?;
    std::thread::sleep(Duration::from_secs(2));
    println!("[3] The oracle gaps from $100 to $85: the loser's equity is −410 USDC");
    crash::set_price(net, &c, 85)?;
    let mut last = None;
    crash::wait_until_resolved(&rpc, &c, 2, Duration::from_secs(120), |e| {
        let now = (e.epoch.phase, e.books.deficit);
        if last != Some(now) {
            last = Some(now);
            let what = match e.epoch.phase {
                EpochPhase::Normal if e.books.deficit == 0 && e.epoch.epoch_id > 1 => {
                    "back to Normal: the deficit is fully clawed back"
                }
                EpochPhase::Normal => "waiting for the keeper",
                EpochPhase::BadDebt => {
                    "bankruptcy resolved: capital and insurance absorbed, a bad-debt epoch is open"
                }
                EpochPhase::Tallying => "clawback round: tallying positive PnL",
                EpochPhase::Applying => "clawback round: charging winners pro rata",
            };
            println!(
                "    [{:?}] deficit {} USDC, insurance {} USDC — {what}",
                e.epoch.phase,
                usdc(e.books.deficit as i128),
                usdc(e.books.insurance_balance as i128)
            );
        }
    })?;
    backstop_localnet::check_conservation(&rpc, &c.exchange)?;
    println!("\nSummary (USDC), read back over JSON-RPC:\n");
    print!("{}", crash::summary(&rpc, &c)?);
    println!("vault + deficit == Σ capital + Σ pnl − Σ basis, and the vaults' token balances equal the books: checked over RPC");
    Ok((child, c.exchange))
}

/// SIGTERM to the keeper, then wait.
pub fn stop((mut child, _): (Child, Pubkey)) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
