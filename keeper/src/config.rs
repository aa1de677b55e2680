//! Configuration: one struct, [`Config`], read from command-line flags, each with an
//! environment fallback, over an optional TOML file, over the defaults shown in `--help`.
//! The TOML file's values become the flags' defaults (validated by the same value parsers),
//! so precedence is flag > environment > file > built-in default, with nothing listed twice.
//! [`Settings::resolve`] derives the effective values (URLs, durations, the exchange).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use anyhow::{bail, Result};
use backstop_client::rpc::Cluster;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "backstop-keeper",
    version,
    about = "Keeps a Backstop exchange solvent: liquidates accounts below maintenance margin \
(worst first), resolves bankruptcies and drives every bad-debt epoch's clawback rounds to completion.",
    after_help = "Every flag has an environment fallback (shown) and may also be set in the TOML file given \
with --config, under the same name with underscores (priority_fee = \"auto\", no_lookup_tables = true). \
Flags win over the environment, which wins over the file, which wins over the defaults shown. The RPC URL, \
websocket URL and keypair fall back to the Solana CLI's config file (~/.config/solana/cli/config.yml) when \
it exists."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub config: Config,
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

/// A priority fee setting: micro-lamports per compute unit, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeSetting {
    Fixed(u64),
    Auto,
}

fn parse_fee(v: &str) -> Result<FeeSetting, String> {
    if v.eq_ignore_ascii_case("auto") {
        return Ok(FeeSetting::Auto);
    }
    v.parse::<u64>()
        .map(FeeSetting::Fixed)
        .map_err(|_| "use a number of micro-lamports per compute unit, or `auto`".to_string())
}

/// Every keeper setting. Flags, `BACKSTOP_KEEPER_*` variables and the TOML file all fill
/// this one struct.
#[derive(Args, Debug, Clone)]
pub struct Config {
    /// TOML file with any of the settings below.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// JSON-RPC URL or moniker (localnet, devnet, testnet, mainnet-beta, or l/d/t/m).
    /// Default: the Solana CLI config's json_rpc_url, else localnet.
    #[arg(short = 'u', long, global = true, env = "BACKSTOP_KEEPER_URL")]
    pub url: Option<String>,
    /// Websocket URL. Default: derived from the RPC URL (ws/wss, port + 1), as the Solana
    /// CLI does.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_WS_URL")]
    pub ws_url: Option<String>,
    /// Keeper keypair (fee payer and liquidator). Default: the Solana CLI config's
    /// keypair_path, else ~/.config/solana/id.json.
    #[arg(short = 'k', long, global = true, env = "BACKSTOP_KEEPER_KEYPAIR")]
    pub keypair: Option<String>,
    /// Backstop program id (must be the one this keeper was built for).
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_PROGRAM_ID")]
    pub program_id: Option<Pubkey>,
    /// Exchange address. Default: the localnet's, from test-ledger/backstop/localnet.json.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_EXCHANGE")]
    pub exchange: Option<Pubkey>,
    /// Decide and log, send nothing (`--dry-run=false` overrides a file's `true`).
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_DRY_RUN", num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub dry_run: bool,
    /// Priority fee in micro-lamports per compute unit, or `auto` (median of
    /// getRecentPrioritizationFees for the written accounts, capped by --max-priority-fee).
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_PRIORITY_FEE", default_value = "0", value_parser = parse_fee)]
    pub priority_fee: FeeSetting,
    /// Cap for `auto` priority fees (micro-lamports per compute unit).
    #[arg(
        long,
        global = true,
        env = "BACKSTOP_KEEPER_MAX_PRIORITY_FEE",
        default_value_t = 100_000
    )]
    pub max_priority_fee: u64,
    /// Most compute units any transaction may request. Each transaction requests what its
    /// simulation consumed plus 20% and 1,000 (the per-action fallback instead when the
    /// program is not metered, as a native builtin is), never more than this.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_COMPUTE_UNIT_LIMIT", default_value_t = 1_400_000,
          value_parser = clap::value_parser!(u32).range(1_000..=1_400_000))]
    pub compute_unit_limit: u32,
    /// Most base atoms of any one market the keeper's account may hold after taking over
    /// liquidated positions. Default: no limit beyond initial margin.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_MAX_POSITION")]
    pub max_position: Option<u64>,
    /// Address for /metrics and /healthz.
    #[arg(
        long,
        global = true,
        env = "BACKSTOP_KEEPER_METRICS_ADDR",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_addr: SocketAddr,
    /// Full getProgramAccounts resync period in seconds.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_RESYNC_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub resync_secs: u64,
    /// /healthz fails when no data arrived for this many seconds. Default: 3 × resync.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_STALE_SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stale_secs: Option<u64>,
    /// Seconds to wait for a transaction's confirmation before re-sending it.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_CONFIRM_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub confirm_timeout_secs: u64,
    /// Seconds of oracle age kept in reserve: a price is used only while it will still be
    /// fresh this many seconds from now (the transaction lands in a later slot).
    #[arg(
        long,
        global = true,
        env = "BACKSTOP_KEEPER_ORACLE_MARGIN_SECS",
        default_value_t = 1
    )]
    pub oracle_margin_secs: u32,
    /// Threads that simulate, sign and send (they never wait for confirmations).
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_WORKERS", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,
    /// Most transactions sent and not yet confirmed; decisions wait beyond this.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_MAX_IN_FLIGHT", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=4_096))]
    pub max_in_flight: u64,
    /// Logs as JSON lines.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_JSON_LOGS", num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub json_logs: bool,
    /// Do not create or extend address lookup tables: round batches stay legacy-sized
    /// (29 accounts per tally instead of 60). By default the keeper keeps its own tables
    /// of the exchange's margin accounts (rent ≈ 0.0019 SOL per table of 256 plus
    /// 0.00022 SOL per 32 addresses, paid from the keeper's key) and reuses them after a
    /// restart.
    #[arg(long, global = true, env = "BACKSTOP_KEEPER_NO_LOOKUP_TABLES", num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub no_lookup_tables: bool,
}

impl Cli {
    /// Parses the process's arguments (exits with clap's message on an error).
    pub fn load() -> Cli {
        Self::load_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` with the TOML file named by `--config` (or its variable) as defaults.
    pub fn load_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut cmd = Cli::command();
        // A lenient first pass finds only --config; the real parse comes after.
        let file = Cli::command()
            .ignore_errors(true)
            .try_get_matches_from(&args)
            .ok()
            .and_then(|m| m.get_one::<PathBuf>("config").cloned());
        if let Some(path) = file {
            for (key, value) in read_file(&mut cmd, &path)? {
                cmd = cmd.mut_arg(key, |a| a.default_value(value));
            }
        }
        let m = cmd.try_get_matches_from_mut(&args)?;
        Cli::from_arg_matches(&m).map_err(|e| e.format(&mut cmd))
    }
}

/// The file's settings as (flag id, value text), each checked with the flag's own parser.
fn read_file(cmd: &mut clap::Command, path: &Path) -> Result<Vec<(String, String)>, clap::Error> {
    use clap::error::ErrorKind;
    let fail = |cmd: &mut clap::Command, kind, msg: String| cmd.error(kind, msg);
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            cmd,
            ErrorKind::Io,
            format!("cannot read the config file {}: {e}", path.display()),
        )
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        fail(
            cmd,
            ErrorKind::InvalidValue,
            format!("{} is not valid TOML: {e}", path.display()),
        )
    })?;
    let known: Vec<String> = Config::augment_args(clap::Command::new("keeper"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| id != "config")
        .collect();
    let mut out = vec![];
    for (key, value) in table {
        if key == "lookup_tables" {
            return Err(fail(
                cmd,
                ErrorKind::UnknownArgument,
                format!(
                    "{}: `lookup_tables` is now `no_lookup_tables` (the flag's name): write `no_lookup_tables = {}`",
                    path.display(),
                    !matches!(value, toml::Value::Boolean(true))
                ),
            ));
        }
        if !known.contains(&key) {
            return Err(fail(
                cmd,
                ErrorKind::UnknownArgument,
                format!(
                    "{}: unknown setting `{key}`; the settings are {}",
                    path.display(),
                    known.join(", ")
                ),
            ));
        }
        let text = match &value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(fail(
                    cmd,
                    ErrorKind::InvalidValue,
                    format!(
                        "{}: `{key} = {other}`: use a string, an integer or true/false",
                        path.display()
                    ),
                ))
            }
        };
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == key.as_str())
            .expect("known setting")
            .clone();
        // Every setting goes through its flag's own parser (booleans take true/false).
        let checked = if arg.get_action().takes_values() {
            let long = format!(
                "--{}",
                arg.get_long().expect("every setting is a long flag")
            );
            clap::Command::new("file")
                .no_binary_name(true)
                .arg(arg.clone().env(None::<&str>).global(false))
                .try_get_matches_from([format!("{long}={text}")])
                .map(|_| ())
                .map_err(|e| {
                    let e = e.to_string();
                    e.lines().next().unwrap_or_default().to_string()
                })
        } else if matches!(value, toml::Value::Boolean(_)) {
            Ok(())
        } else {
            Err("use true or false".to_string())
        };
        if let Err(e) = checked {
            let e = e.trim().trim_start_matches("error: ").to_string();
            return Err(fail(
                cmd,
                ErrorKind::InvalidValue,
                format!("{}: `{key} = {value}`: {e}", path.display()),
            ));
        }
        out.push((key, text));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorityFee {
    Fixed(u64),
    Auto { cap: u64 },
}

/// The effective settings, derived from [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    /// The Solana CLI config file the URL came from, if it did.
    pub url_from: Option<String>,
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
    pub max_in_flight: usize,
    pub json_logs: bool,
    /// Keep address lookup tables for v0 round batches.
    pub lookup_tables: bool,
}

impl Settings {
    pub fn resolve(c: &Config) -> Result<Settings> {
        let cluster =
            Cluster::resolve(c.url.as_deref(), c.ws_url.as_deref(), c.keypair.as_deref())?;
        if let Some(p) = c.program_id {
            if p != backstop::ID {
                bail!(
                    "this keeper is built for the Backstop program {}, not {p}; rebuild it for that deployment",
                    backstop::ID
                );
            }
        }
        let exchange = match c.exchange {
            Some(e) => e,
            None => backstop_client::rpc::localnet_exchange(
                "pass --exchange ADDRESS or set BACKSTOP_KEEPER_EXCHANGE",
            )?,
        };
        Ok(Settings {
            url_from: cluster.url_from,
            url: cluster.url,
            ws_url: cluster.ws_url,
            keypair: cluster.keypair,
            exchange,
            dry_run: c.dry_run,
            priority_fee: match c.priority_fee {
                FeeSetting::Fixed(f) => PriorityFee::Fixed(f),
                FeeSetting::Auto => PriorityFee::Auto {
                    cap: c.max_priority_fee,
                },
            },
            compute_unit_limit: c.compute_unit_limit,
            max_position: c.max_position.unwrap_or(u64::MAX),
            metrics_addr: c.metrics_addr,
            resync: Duration::from_secs(c.resync_secs),
            stale_after: Duration::from_secs(c.stale_secs.unwrap_or(3 * c.resync_secs)),
            confirm_timeout: Duration::from_secs(c.confirm_timeout_secs),
            oracle_margin_secs: c.oracle_margin_secs.into(),
            workers: c.workers as usize,
            max_in_flight: c.max_in_flight as usize,
            json_logs: c.json_logs,
            lookup_tables: !c.no_lookup_tables,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::load_from(std::iter::once("backstop-keeper").chain(args.iter().copied()))
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("keeper-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k.toml");
        let f = file.to_str().unwrap();
        let ex = Pubkey::new_unique();
        std::fs::write(
            &file,
            format!("exchange = \"{ex}\"\nurl = \"devnet\"\npriority_fee = \"auto\"\nmax_priority_fee = 7\nresync_secs = 5\nkeypair = \"~/k.json\"\nno_lookup_tables = true\n"),
        )
        .unwrap();
        let cli = load(&["--config", f, "--url", "http://127.0.0.1:1234"]).unwrap();
        let s = Settings::resolve(&cli.config).unwrap();
        assert_eq!(s.exchange, ex);
        assert_eq!(s.url, "http://127.0.0.1:1234");
        assert_eq!(s.ws_url, "ws://127.0.0.1:1235/");
        assert_eq!(s.priority_fee, PriorityFee::Auto { cap: 7 });
        assert_eq!(s.resync, Duration::from_secs(5));
        assert_eq!(s.stale_after, Duration::from_secs(15));
        assert!(!s.lookup_tables);
        assert!(!s.keypair.to_string_lossy().starts_with('~'));
        // Untouched settings keep the defaults --help shows.
        assert_eq!(s.compute_unit_limit, 1_400_000);
        assert_eq!(s.workers, 4);
        assert_eq!(s.metrics_addr, "127.0.0.1:9464".parse().unwrap());
        // A file's `true` is overridden by `--flag=false`; a bare flag means true, and a
        // subcommand after it stays a subcommand.
        std::fs::write(&file, format!("exchange = \"{ex}\"\ndry_run = true\n")).unwrap();
        let cli = load(&["--config", f]).unwrap();
        assert!(Settings::resolve(&cli.config).unwrap().dry_run);
        let cli = load(&["--config", f, "--dry-run=false"]).unwrap();
        assert!(!Settings::resolve(&cli.config).unwrap().dry_run);
        let cli = load(&["--json-logs", "status"]).unwrap();
        assert!(cli.config.json_logs && matches!(cli.cmd, Some(Cmd::Status { .. })));
        std::fs::write(
            &file,
            format!("exchange = \"{ex}\"\nurl = \"devnet\"\nresync_secs = 5\n"),
        )
        .unwrap();
        // The flag wins over the file, after the subcommand too.
        let cli = load(&["status", "--config", f, "--resync-secs", "9"]).unwrap();
        assert!(matches!(cli.cmd, Some(Cmd::Status { top: 10 })));
        assert_eq!(
            Settings::resolve(&cli.config).unwrap().resync,
            Duration::from_secs(9)
        );

        // Bad files and values are refused with the file, the key and the reason.
        for (text, says) in [
            ("bogus = 1\n", "unknown setting `bogus`"),
            ("workers = 0\n", "workers = 0"),
            ("resync_secs = \"soon\"\n", "resync_secs"),
            ("priority_fee = \"fast\"\n", "auto"),
            ("dry_run = 1\n", "dry_run"),
            ("lookup_tables = false\n", "no_lookup_tables = true"),
            ("metrics_addr = \"nowhere\"\n", "metrics_addr"),
            ("exchange = \"not-a-key\"\n", "exchange"),
            ("url = [1]\n", "use a string"),
            ("= broken", "not valid TOML"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = load(&["--config", f]).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(
                text.starts_with('=') || err.contains("k.toml"),
                "{text:?}: {err}"
            );
        }
        let err = load(&["--config", "/nonexistent/k.toml"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the config file"), "{err}");
    }

    #[test]
    fn bad_flags_are_refused_with_a_clear_message() {
        for (args, says) in [
            (&["--priority-fee", "fast"][..], "auto"),
            (&["--workers", "0"][..], "--workers"),
            (
                &["--compute-unit-limit", "2000000"][..],
                "--compute-unit-limit",
            ),
            (&["--metrics-addr", "9464"][..], "--metrics-addr"),
            (&["--resync-secs", "abc"][..], "--resync-secs"),
        ] {
            let err = load(args).unwrap_err().to_string();
            assert!(err.contains(says), "{args:?}: {err}");
        }
        let ex = Pubkey::new_unique().to_string();
        let cli = load(&[
            "--exchange",
            &ex,
            "--program-id",
            &Pubkey::new_unique().to_string(),
        ])
        .unwrap();
        assert!(Settings::resolve(&cli.config)
            .unwrap_err()
            .to_string()
            .contains("built for"));
    }

    #[test]
    fn help_shows_every_default_and_its_variable() {
        let help = Cli::command().render_long_help().to_string();
        for s in [
            "[default: 1400000]",
            "[default: 127.0.0.1:9464]",
            "[default: 30]",
            "[default: 256]",
            "[env: BACKSTOP_KEEPER_PRIORITY_FEE=]",
            "no_lookup_tables",
        ] {
            assert!(help.contains(s), "--help lacks {s}:\n{help}");
        }
    }
}
