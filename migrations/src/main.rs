//! `backstop-migrate deploy --config migrations/localnet.toml --mint <MINT>` — initializes an
//! exchange, its oracle feeds and markets; idempotent.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use backstop_migrations::{deploy, Config};
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::rpc_client::RpcClient;
use solana_sdk::signature::read_keypair_file;

const USAGE: &str =
    "usage: backstop-migrate deploy --config FILE --mint MINT [--url URL] [--keypair PATH]

Initializes the exchange described by FILE (admin = the keypair) with collateral MINT,
then its oracle feeds and markets. Steps that already exist are left unchanged, so
re-running changes nothing and says so.

  --url      JSON-RPC endpoint, or localnet/devnet/mainnet-beta (default localnet)
  --keypair  admin keypair (default ~/.config/solana/id.json)";

fn url_for(moniker: &str) -> String {
    match moniker {
        "localnet" | "l" => "http://127.0.0.1:8899".into(),
        "devnet" | "d" => "https://api.devnet.solana.com".into(),
        "mainnet-beta" | "m" => "https://api.mainnet-beta.solana.com".into(),
        other => other.into(),
    }
}

fn expand(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest),
        None => PathBuf::from(path),
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    if cmd == "-h" || cmd == "--help" || cmd.is_empty() {
        println!("{USAGE}");
        return Ok(());
    }
    if cmd != "deploy" {
        bail!("unknown command {cmd:?}\n\n{USAGE}");
    }
    let (mut config, mut mint, mut url, mut keypair) = (
        None,
        None,
        "localnet".to_string(),
        "~/.config/solana/id.json".to_string(),
    );
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .with_context(|| format!("{a} needs a value\n\n{USAGE}"))
        };
        match a.as_str() {
            "--config" => config = Some(PathBuf::from(val()?)),
            "--mint" => mint = Some(val()?),
            "--url" | "-u" => url = val()?,
            "--keypair" | "-k" => keypair = val()?,
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let config = Config::load(&config.context("--config is required")?)?;
    let mint = mint
        .context("--mint is required")?
        .parse()
        .context("--mint is not a valid address")?;
    let admin = read_keypair_file(expand(&keypair)).map_err(|e| {
        anyhow::anyhow!("cannot read keypair {keypair}: {e} (create one with `solana-keygen new`)")
    })?;
    let rpc = RpcClient::new_with_commitment(url_for(&url), CommitmentConfig::confirmed());
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
