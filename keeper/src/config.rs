//! Configuration: command-line flags, each with an environment fallback, over an optional
//! TOML file, over defaults. `Settings::resolve` gives the effective values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

#[derive(Parser, Debug)]
#[command(
    name = "backstop-keeper",
    version,
    about = "Keeps a Backstop exchange solvent: liquidates accounts below maintenance margin \
(worst first), resolves bankruptcies and drives every bad-debt epoch's clawback rounds to completion.",
    after_help = "Every flag has an environment fallback (shown) and may also be set in the TOML file given \
with --config (same names with underscores, e.g. priority_fee = \"auto\"). Flags win over the environment, \
which wins over the file."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub opts: Opts,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Watch and act (the default).
    Run,
    /// Print the riskiest accounts and the epoch state once, then exit.
    Status {
        /// How many accounts to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
}

#[derive(Args, Debug, Default)]
pub struct Opts {
    /// TOML file with any of the settings below.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// JSON-RPC URL or moniker (localnet, devnet, testnet, mainnet-beta). Default localnet.
    #[arg(short = 'u', long, global = true, env = "BACKSTOP_KEEPER_URL")]
    pub url: Option<String>,
    /// Websocket URL. Default: the RPC URL with ws:// and the port + 1.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_WS_URL")]
    pub ws_url: Option<String>,
    /// Keeper keypair (fee payer and liquidator). Default ~/.config/solana/id.json.
    #[arg(short = 'k', long, global = true, env = "BACKSTOP_KEEPER_KEYPAIR")]
    pub keypair: Option<String>,
    /// Backstop program id (must be the one this keeper was built for).
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_PROGRAM_ID")]
    pub program_id: Option<Pubkey>,
    /// Exchange address. Default: the localnet's, from test-ledger/backstop/localnet.json.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_EXCHANGE")]
    pub exchange: Option<Pubkey>,
    /// Decide and log, send nothing.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_DRY_RUN")]
    pub dry_run: bool,
    /// Priority fee in micro-lamports per compute unit, or `auto` (median of
    /// getRecentPrioritizationFees for the written accounts, capped). Default 0.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_PRIORITY_FEE")]
    pub priority_fee: Option<String>,
    /// Cap for `auto` priority fees (micro-lamports per CU). Default 100000.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_MAX_PRIORITY_FEE")]
    pub max_priority_fee: Option<u64>,
    /// Compute-unit limit per transaction. Default 1400000.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_COMPUTE_UNIT_LIMIT")]
    pub compute_unit_limit: Option<u32>,
    /// Most base atoms of any one market the keeper's account may hold after taking over
    /// liquidated positions. Default: no limit beyond initial margin.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_MAX_POSITION")]
    pub max_position: Option<u64>,
    /// Address for /metrics and /healthz. Default 127.0.0.1:9464.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Full getProgramAccounts resync period in seconds. Default 30.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_RESYNC_SECS")]
    pub resync_secs: Option<u64>,
    /// /healthz fails when no data arrived for this many seconds. Default 3 × resync.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_STALE_SECS")]
    pub stale_secs: Option<u64>,
    /// Seconds to wait for a confirmation before retrying. Default 30.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_CONFIRM_TIMEOUT_SECS")]
    pub confirm_timeout_secs: Option<u64>,
    /// Seconds of oracle age kept in reserve: a price is used only while it will still be
    /// fresh this many seconds from now (the transaction lands in a later slot). Default 1.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_ORACLE_MARGIN_SECS")]
    pub oracle_margin_secs: Option<u32>,
    /// Parallel sending threads. Default 4.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_WORKERS")]
    pub workers: Option<usize>,
    /// Logs as JSON lines.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_JSON_LOGS")]
    pub json_logs: bool,
    /// Do not create or extend address lookup tables: round batches stay legacy-sized
    /// (29 accounts per tally instead of 60). By default the keeper keeps its own tables
    /// of the exchange's margin accounts (rent ≈ 0.0019 SOL per table of 256 plus
    /// 0.00022 SOL per 32 addresses, paid from the keeper's key) and reuses them after a
    /// restart.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_NO_LOOKUP_TABLES")]
    pub no_lookup_tables: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    url: Option<String>,
    ws_url: Option<String>,
    keypair: Option<String>,
    program_id: Option<String>,
    exchange: Option<String>,
    dry_run: Option<bool>,
    priority_fee: Option<toml::Value>,
    max_priority_fee: Option<u64>,
    compute_unit_limit: Option<u32>,
    max_position: Option<u64>,
    metrics_addr: Option<String>,
    resync_secs: Option<u64>,
    stale_secs: Option<u64>,
    confirm_timeout_secs: Option<u64>,
    oracle_margin_secs: Option<u32>,
    workers: Option<usize>,
    json_logs: Option<bool>,
    lookup_tables: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorityFee {
    Fixed(u64),
    Auto { cap: u64 },
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub ws_url: String,
    pub keypair: PathBuf,
    pub exchange: Pubkey,
    pub dry_run: bool,
    pub priority_fee: PriorityFee,
    pub compute_unit_limit: u32,
    pub max_position: u64,
    pub metrics_addr: SocketAddr,
    pub resync: Duration,
    pub stale_after: Duration,
    pub confirm_timeout: Duration,
    pub oracle_margin_secs: i64,
    pub workers: usize,
    pub json_logs: bool,
    /// Keep address lookup tables for v0 round batches.
    pub lookup_tables: bool,
}

pub use backstop_client::rpc::{expand_tilde, resolve_url};

/// The websocket URL the Solana CLI would use: ws(s):// and, when a port is given, port + 1.
pub fn default_ws_url(http: &str) -> String {
    let (scheme, rest) = match http.split_once("://") {
        Some(("https", r)) => ("wss", r),
        Some((_, r)) => ("ws", r),
        None => ("ws", http),
    };
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, String::new()),
    };
    match host
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
    {
        Some((h, port)) => format!("{scheme}://{h}:{}{path}", port + 1),
        None => format!("{scheme}://{host}{path}"),
    }
}

fn parse_fee(v: &str, cap: u64) -> Result<PriorityFee> {
    if v.eq_ignore_ascii_case("auto") {
        return Ok(PriorityFee::Auto { cap });
    }
    v.parse::<u64>()
        .map(PriorityFee::Fixed)
        .map_err(|_| anyhow!("priority fee {v:?}: use a number of micro-lamports per CU or `auto`"))
}

impl Settings {
    pub fn resolve(o: &Opts) -> Result<Settings> {
        let file: FileConfig = match &o.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading the config file {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let url = resolve_url(o.url.clone().or(file.url).as_deref().unwrap_or("localnet"));
        let ws_url = o
            .ws_url
            .clone()
            .or(file.ws_url)
            .unwrap_or_else(|| default_ws_url(&url));
        let keypair = expand_tilde(
            &o.keypair
                .clone()
                .or(file.keypair)
                .unwrap_or_else(|| "~/.config/solana/id.json".into()),
        );
        let program_id = match (&o.program_id, &file.program_id) {
            (Some(p), _) => Some(*p),
            (None, Some(s)) => Some(
                s.parse()
                    .map_err(|_| anyhow!("program_id {s:?} is not a pubkey"))?,
            ),
            _ => None,
        };
        if let Some(p) = program_id {
            if p != backstop::ID {
                bail!(
                    "this keeper is built for the Backstop program {}, not {p}; rebuild it for that deployment",
                    backstop::ID
                );
            }
        }
        let exchange = match (&o.exchange, &file.exchange) {
            (Some(e), _) => *e,
            (None, Some(s)) => s
                .parse()
                .map_err(|_| anyhow!("exchange {s:?} is not a pubkey"))?,
            _ => backstop_client::rpc::localnet_exchange(
                "pass --exchange ADDRESS or set BACKSTOP_KEEPER_EXCHANGE",
            )?,
        };
        let cap = o
            .max_priority_fee
            .or(file.max_priority_fee)
            .unwrap_or(100_000);
        let priority_fee = match (&o.priority_fee, &file.priority_fee) {
            (Some(v), _) => parse_fee(v, cap)?,
            (None, Some(toml::Value::String(s))) => parse_fee(s, cap)?,
            (None, Some(toml::Value::Integer(i))) if *i >= 0 => PriorityFee::Fixed(*i as u64),
            (None, Some(v)) => bail!("priority_fee = {v}: use a number or \"auto\""),
            (None, None) => PriorityFee::Fixed(0),
        };
        let metrics_addr = match (&o.metrics_addr, &file.metrics_addr) {
            (Some(a), _) => *a,
            (None, Some(s)) => s
                .parse()
                .map_err(|_| anyhow!("metrics_addr {s:?} is not host:port"))?,
            _ => "127.0.0.1:9464".parse().expect("literal"),
        };
        let resync = o.resync_secs.or(file.resync_secs).unwrap_or(30).max(1);
        let workers = o.workers.or(file.workers).unwrap_or(4);
        if workers == 0 {
            bail!("workers must be at least 1");
        }
        Ok(Settings {
            url,
            ws_url,
            keypair,
            exchange,
            dry_run: o.dry_run || file.dry_run.unwrap_or(false),
            priority_fee,
            compute_unit_limit: o
                .compute_unit_limit
                .or(file.compute_unit_limit)
                .unwrap_or(1_400_000),
            max_position: o.max_position.or(file.max_position).unwrap_or(u64::MAX),
            metrics_addr,
            resync: Duration::from_secs(resync),
            stale_after: Duration::from_secs(
                o.stale_secs.or(file.stale_secs).unwrap_or(3 * resync),
            ),
            confirm_timeout: Duration::from_secs(
                o.confirm_timeout_secs
                    .or(file.confirm_timeout_secs)
                    .unwrap_or(30),
            ),
            oracle_margin_secs: o
                .oracle_margin_secs
                .or(file.oracle_margin_secs)
                .unwrap_or(1)
                .into(),
            workers,
            json_logs: o.json_logs || file.json_logs.unwrap_or(false),
            lookup_tables: !o.no_lookup_tables && file.lookup_tables.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_follows_the_solana_cli_convention() {
        assert_eq!(
            default_ws_url("http://127.0.0.1:8899"),
            "ws://127.0.0.1:8900"
        );
        assert_eq!(
            default_ws_url("https://api.devnet.solana.com"),
            "wss://api.devnet.solana.com"
        );
        assert_eq!(default_ws_url("http://h:1000/path"), "ws://h:1001/path");
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("keeper-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k.toml");
        let ex = Pubkey::new_unique();
        std::fs::write(
            &file,
            format!("exchange = \"{ex}\"\nurl = \"devnet\"\npriority_fee = \"auto\"\nmax_priority_fee = 7\nresync_secs = 5\nkeypair = \"~/k.json\"\n"),
        )
        .unwrap();
        let opts = Opts {
            config: Some(file.clone()),
            url: Some("http://127.0.0.1:1234".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&opts).unwrap();
        assert_eq!(s.exchange, ex);
        assert_eq!(s.url, "http://127.0.0.1:1234");
        assert_eq!(s.ws_url, "ws://127.0.0.1:1235");
        assert_eq!(s.priority_fee, PriorityFee::Auto { cap: 7 });
        assert_eq!(s.resync, Duration::from_secs(5));
        assert_eq!(s.stale_after, Duration::from_secs(15));
        assert!(!s.keypair.to_string_lossy().starts_with('~'));
        std::fs::write(&file, "bogus = 1\n").unwrap();
        let err = Settings::resolve(&opts).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        let bad = Opts {
            exchange: Some(ex),
            priority_fee: Some("fast".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(&bad)
            .unwrap_err()
            .to_string()
            .contains("auto"));
        let wrong_program = Opts {
            exchange: Some(ex),
            program_id: Some(Pubkey::new_unique()),
            ..Default::default()
        };
        assert!(Settings::resolve(&wrong_program)
            .unwrap_err()
            .to_string()
            .contains("built for"));
    }
}
