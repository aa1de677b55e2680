//! `backstop-localnet` — a real agave test validator on 127.0.0.1:8899 running Backstop,
//! with an initialized exchange and funded demo wallets. Ctrl-C stops it.

use std::path::PathBuf;
use std::process::ExitCode;

use backstop_localnet::{start, LocalnetConfig};

mod demo;

/// Starts a real agave test validator (JSON-RPC on 127.0.0.1:PORT, websocket on PORT+1)
/// with the Backstop program (target/deploy/backstop.so when present, else the native build
/// as a builtin), creates a collateral mint, deploys the exchange from the config and funds
/// demo wallets. The addresses the keeper and CLI need are written to
/// LEDGER/backstop/localnet.json.
#[derive(clap::Parser, Debug)]
#[command(name = "backstop-localnet", version)]
struct Args {
    /// JSON-RPC port (the websocket listens on PORT+1).
    #[arg(long, env = "BACKSTOP_LOCALNET_PORT", default_value_t = 8899)]
    port: u16,
    /// Ledger directory (created if missing).
    #[arg(long, env = "BACKSTOP_LOCALNET_LEDGER", default_value = "test-ledger")]
    ledger: PathBuf,
    /// The deploy config of the exchange.
    #[arg(
        long,
        env = "BACKSTOP_LOCALNET_CONFIG",
        default_value = "migrations/localnet.toml"
    )]
    config: PathBuf,
    /// Funded demo wallets to create.
    #[arg(long, env = "BACKSTOP_LOCALNET_WALLETS", default_value_t = 4)]
    wallets: usize,
    /// Also deploy a demo exchange, start the backstop-keeper binary (built next to this
    /// one) against it, and play a price crash over JSON-RPC: liquidation → bankruptcy →
    /// insurance → clawback, ending with a summary table.
    #[arg(long)]
    crash_demo: bool,
    /// Stop after the demo instead of waiting for Ctrl-C.
    #[arg(long, requires = "crash_demo")]
    exit_after_demo: bool,
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    let cfg = LocalnetConfig {
        rpc_port: args.port,
        ledger: args.ledger,
        deploy_config: args.config,
        demo_wallets: args.wallets,
        wallet_usdc: 100_000_000_000,
        program_so: Some(PathBuf::from("target/deploy/backstop.so")),
    };
    let (demo, exit_after) = (args.crash_demo, args.exit_after_demo);
    let net = match start(&cfg) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("backstop-localnet: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    for s in &net.report.steps {
        println!("deploy: {s}");
    }
    let info = match net.write_addresses(&cfg.ledger.join("backstop")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("backstop-localnet: writing addresses failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "backstop-localnet: JSON-RPC {}  websocket {}",
        net.rpc_url(),
        net.ws_url()
    );
    println!(
        "backstop-localnet: program {} ({})",
        backstop::ID,
        net.program
    );
    println!(
        "backstop-localnet: exchange {}  addresses in {}",
        net.report.exchange,
        info.display()
    );
    println!(
        "backstop-localnet: ledger {} — Ctrl-C stops the validator",
        cfg.ledger.display()
    );
    // Until Ctrl-C or SIGTERM; then the validator shuts down (its ledger stays).
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = tx.send(());
    }) {
        eprintln!("backstop-localnet: cannot install the Ctrl-C handler: {e}");
        return ExitCode::FAILURE;
    }
    let mut keeper = None;
    if demo {
        match demo::run(&net, &cfg.ledger.join("backstop")) {
            Ok(k) => keeper = Some(k),
            Err(e) => {
                eprintln!("backstop-localnet: the crash demo failed: {e:#}");
                return ExitCode::FAILURE;
            }
        }
        if exit_after {
            if let Some(k) = keeper.take() {
                demo::stop(k);
            }
            drop(net);
            return ExitCode::SUCCESS;
        }
        println!("\nThe validator and the keeper keep running — try `backstop --exchange {} exchange show`. Ctrl-C stops both.", keeper.as_ref().map(|k| k.1.to_string()).unwrap_or_default());
    }
    let _ = rx.recv();
    if let Some(k) = keeper.take() {
        demo::stop(k);
    }
    println!("backstop-localnet: stopping the validator");
    drop(net);
    ExitCode::SUCCESS
}
