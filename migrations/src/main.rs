//! `backstop-migrate deploy --config migrations/localnet.toml --mint <MINT>` — initializes an
//! exchange, its oracle feeds and markets; idempotent.

use std::path::PathBuf;
use std::process::ExitCode;

use anchor_lang::prelude::Pubkey;
use anyhow::Result;
use backstop_client::rpc::Cluster;
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
        #[arg(long, env = "BACKSTOP_DEPLOY_CONFIG")]
        config: PathBuf,
        /// The collateral mint.
        #[arg(long, env = "BACKSTOP_MINT")]
        mint: Pubkey,
        /// JSON-RPC endpoint, or localnet/devnet/testnet/mainnet-beta (l/d/t/m). Default:
        /// the Solana CLI config's json_rpc_url, else localnet.
        #[arg(long, short = 'u', env = "BACKSTOP_URL")]
        url: Option<String>,
        /// The admin keypair. Default: the Solana CLI config's keypair_path, else
        /// ~/.config/solana/id.json.
        #[arg(long, short = 'k', env = "BACKSTOP_KEYPAIR")]
        keypair: Option<String>,
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
    let cluster = Cluster::resolve(url.as_deref(), None, keypair.as_deref())?;
    if let Some(file) = &cluster.url_from {
        eprintln!(
            "backstop-migrate: using {} from the Solana CLI config {file}",
            cluster.url
        );
    }
    let admin = read_keypair_file(&cluster.keypair).map_err(|e| {
        anyhow::anyhow!(
            "cannot read keypair {}: {e} (create one with `solana-keygen new`)",
            cluster.keypair.display()
        )
    })?;
    let rpc = RpcClient::new_with_commitment(cluster.url, CommitmentConfig::confirmed());
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
