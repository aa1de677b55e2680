//! `backstop-migrate deploy --config migrations/localnet.toml --mint <MINT>` — initializes an
//! exchange, its oracle feeds and markets; idempotent.

use std::path::PathBuf;
use std::process::ExitCode;

use anchor_lang::prelude::Pubkey;
use anyhow::Result;
use backstop_client::rpc::{expand_tilde, resolve_url};
use backstop_migrations::{deploy, Config};
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::rpc_client::RpcClient;
use solana_sdk::signature::read_keypair_file;

/// Deploys Backstop exchanges from TOML configs, idempotently.
#[derive(clap::Parser, Debug)]
#[command(name = "backstop-migrate", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Initializes the exchange described by the config (admin = the keypair) with the
    /// collateral mint, then its oracle feeds and markets. Steps that already exist are
    /// left unchanged, so re-running changes nothing and says so; changed parameters go
    /// through the admin timelock (queued, applied once due).
    Deploy {
        /// The deploy config (see migrations/localnet.toml).
        #[arg(long)]
        config: PathBuf,
        /// The collateral mint.
        #[arg(long)]
        mint: Pubkey,
        /// JSON-RPC endpoint, or localnet/devnet/testnet/mainnet-beta (l/d/t/m).
        #[arg(long, short = 'u', env = "BACKSTOP_URL", default_value = "localnet")]
        url: String,
        /// The admin keypair.
        #[arg(long, short = 'k', default_value = "~/.config/solana/id.json")]
        keypair: String,
    },
}

fn run() -> Result<()> {
    let Cmd::Deploy {
        config,
        mint,
        url,
        keypair,
    } = <Cli as clap::Parser>::parse().cmd;
    let config = Config::load(&config)?;
    let admin = read_keypair_file(expand_tilde(&keypair)).map_err(|e| {
        anyhow::anyhow!("cannot read keypair {keypair}: {e} (create one with `solana-keygen new`)")
    })?;
    let rpc = RpcClient::new_with_commitment(resolve_url(&url), CommitmentConfig::confirmed());
    let report = deploy(&rpc, &admin, &mint, &config)?;
    for s in &report.steps {
        println!("{s}");
    }
    println!(
        "{}",
        if report.changed {
            "deploy: done"
        } else {
            "deploy: nothing to do, everything exists"
        }
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backstop-migrate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
