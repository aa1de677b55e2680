//! `backstop-localnet` — a real agave test validator on 127.0.0.1:8899 running Backstop,
//! with an initialized exchange and funded demo wallets. Ctrl-C stops it.

use std::path::PathBuf;
use std::process::ExitCode;

use backstop_localnet::{start, LocalnetConfig};

mod demo;

const USAGE: &str = "usage: backstop-localnet [--port 8899] [--ledger DIR] [--config migrations/localnet.toml] [--wallets 4] [--crash-demo [--exit-after-demo]]

Starts a real agave test validator (JSON-RPC on 127.0.0.1:PORT, websocket on PORT+1) with
the Backstop program (target/deploy/backstop.so when present, else the native build as a
builtin), creates a collateral mint, deploys the exchange from the config and funds demo
wallets. The addresses the keeper and CLI need are written to DIR/localnet.json.

--crash-demo  also deploys a demo exchange, starts the backstop-keeper binary (built next
              to this one) against it, and plays a price crash over JSON-RPC: liquidation
              → bankruptcy → insurance → clawback, ending with a summary table.
--exit-after-demo  stop after the demo instead of waiting for Ctrl-C.";

fn main() -> ExitCode {
    let mut cfg = LocalnetConfig {
        rpc_port: 8899,
        ledger: PathBuf::from("test-ledger"),
        deploy_config: PathBuf::from("migrations/localnet.toml"),
        demo_wallets: 4,
        wallet_usdc: 100_000_000_000,
        program_so: Some(PathBuf::from("target/deploy/backstop.so")),
    };
    let (mut demo, mut exit_after) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--port" => cfg.rpc_port = val().parse().unwrap_or(8899),
            "--ledger" => cfg.ledger = PathBuf::from(val()),
            "--config" => cfg.deploy_config = PathBuf::from(val()),
            "--wallets" => cfg.demo_wallets = val().parse().unwrap_or(4),
            "--crash-demo" => demo = true,
            "--exit-after-demo" => exit_after = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("backstop-localnet: unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
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
