//! `backstop-keeper` — run it with `--help` for every setting.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use backstop_keeper::config::{Cli, Cmd, Settings};
use backstop_keeper::exec::Sender;
use backstop_keeper::metrics::{self, Metrics};
use backstop_keeper::runner::{self, Keeper};
use solana_sdk::signature::read_keypair_file;
use solana_sdk::signer::Signer;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    let cli = Cli::load();
    let settings = match Settings::resolve(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("backstop-keeper: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BACKSTOP_KEEPER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if settings.json_logs {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        // Colours only on a terminal: piped logs (the demo, files) stay plain text.
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let payer = match read_keypair_file(&settings.keypair) {
        Ok(k) => k,
        Err(e) => {
            eprintln!(
                "backstop-keeper: cannot read keypair {}: {e}; pass --keypair FILE (create one with `solana-keygen new`)",
                settings.keypair.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let sender = Arc::new(Sender::new(
        &settings.url,
        payer,
        settings.compute_unit_limit,
        settings.priority_fee,
        settings.dry_run,
        settings.confirm_timeout,
    ));
    match cli.cmd.unwrap_or(Cmd::Run) {
        Cmd::Status { top } => match runner::snapshot(&sender.rpc, &settings.exchange) {
            Ok((book, now)) => {
                print!("{}", runner::status_text(&book, now, top));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "backstop-keeper: cannot read exchange {} at {}: {e:#}",
                    settings.exchange, settings.url
                );
                ExitCode::FAILURE
            }
        },
        Cmd::Run => {
            let m = Metrics::new(settings.stale_after);
            match metrics::serve(settings.metrics_addr, m.clone()) {
                Ok(addr) => info!(%addr, "serving /metrics and /healthz"),
                Err(e) => {
                    error!(addr = %settings.metrics_addr, error = %e, "cannot serve metrics; pass another --metrics-addr");
                    return ExitCode::FAILURE;
                }
            }
            let stop = Arc::new(AtomicBool::new(false));
            {
                let stop = stop.clone();
                if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
                    error!(error = %e, "cannot install the SIGTERM/Ctrl-C handler");
                    return ExitCode::FAILURE;
                }
            }
            if let Some(file) = &settings.url_from {
                warn!(url = %settings.url, %file, "the RPC URL comes from the Solana CLI config; pass --url to choose another cluster");
            }
            info!(
                url = %settings.url,
                ws_url = %settings.ws_url,
                keeper = %sender.payer.pubkey(),
                exchange = %settings.exchange,
                "backstop-keeper starting"
            );
            let keeper = Keeper::new(settings, m, sender);
            match keeper.run(stop) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!(error = %format!("{e:#}"), "keeper stopped on an error");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
