//! Deploying an exchange from a TOML file, idempotently: every step first reads the chain
//! and only sends what is missing. Re-running a deploy changes nothing and reports so.

use std::path::Path;

use anchor_lang::prelude::Pubkey;
use anyhow::{bail, Context, Result};
use backstop::instructions::AddMarketArgs;
use backstop::state::{ClawbackPolicy, ExchangeParams, MarketParams, OracleKind};
use backstop_client::{decode, ix, pda};
use serde::Deserialize;
use solana_rpc_client::rpc_client::RpcClient;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

/// Oracle price exponent of feeds the migration creates (prices in micro-units).
pub const FEED_EXPO: i32 = -6;

#[derive(Debug, Deserialize)]
pub struct Config {
    pub exchange: ExchangeConfig,
    #[serde(default)]
    pub markets: Vec<MarketConfig>,
}

#[derive(Debug, Deserialize)]
pub struct ExchangeConfig {
    pub id: u16,
    pub params: ExchangeParamsConfig,
}

#[derive(Debug, Deserialize)]
pub struct ExchangeParamsConfig {
    pub pnl_warmup_secs: u32,
    pub min_epoch_secs: u32,
    pub round_cooldown_secs: u32,
    pub clawback_rate_cap_bps: u16,
    pub clawback_policy: String,
    pub liquidation_buffer_bps: u16,
    /// Required, so a config always states it: 0 makes every admin change immediate.
    pub admin_delay_secs: u32,
    pub max_pause_secs: u32,
}

#[derive(Debug, Deserialize)]
pub struct MarketConfig {
    pub name: String,
    pub base_decimals: u8,
    pub oracle: OracleConfig,
    pub params: MarketParamsConfig,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OracleConfig {
    /// A Backstop `OracleFeed` created by the migration, starting at `price`.
    Feed { price: f64 },
    /// An existing Pyth `PriceUpdateV2` account and the feed id it must carry (hex).
    Pyth { account: String, feed_id: String },
}

#[derive(Debug, Deserialize)]
pub struct MarketParamsConfig {
    pub initial_margin_bps: u16,
    pub maintenance_margin_bps: u16,
    pub liquidation_fee_bps: u16,
    pub insurance_share_bps: u16,
    pub taker_fee_bps: u16,
    pub max_trade_deviation_bps: u16,
    pub oracle_max_age_secs: u32,
    pub oracle_max_conf_bps: u16,
    /// Open-interest cap in base atoms per side; 0 (the default): none.
    #[serde(default)]
    pub max_open_interest: u64,
    /// Size premium (docs/DESIGN.md §4.2); 0 (the default): fixed rates.
    #[serde(default)]
    pub imf_factor: u32,
    /// Share of unrealized profit initial margin counts; default 10,000 (all).
    #[serde(default = "full_weight")]
    pub unrealized_weight_bps: u16,
    /// Smoothed-price time constant; 0 (the default): none.
    #[serde(default)]
    pub stable_price_window_secs: u32,
}

fn full_weight() -> u16 {
    10_000
}

impl ExchangeParamsConfig {
    pub fn to_params(&self) -> Result<ExchangeParams> {
        let clawback_policy = match self.clawback_policy.as_str() {
            "profit_pro_rata" => ClawbackPolicy::ProfitProRata,
            "leverage_weighted" => ClawbackPolicy::LeverageWeighted,
            other => bail!("unknown clawback_policy {other:?}: use \"profit_pro_rata\" or \"leverage_weighted\""),
        };
        Ok(ExchangeParams {
            pnl_warmup_secs: self.pnl_warmup_secs,
            min_epoch_secs: self.min_epoch_secs,
            round_cooldown_secs: self.round_cooldown_secs,
            clawback_rate_cap_bps: self.clawback_rate_cap_bps,
            clawback_policy,
            liquidation_buffer_bps: self.liquidation_buffer_bps,
            admin_delay_secs: self.admin_delay_secs,
            max_pause_secs: self.max_pause_secs,
        })
    }
}

impl MarketParamsConfig {
    pub fn to_params(&self) -> MarketParams {
        MarketParams {
            initial_margin_bps: self.initial_margin_bps,
            maintenance_margin_bps: self.maintenance_margin_bps,
            liquidation_fee_bps: self.liquidation_fee_bps,
            insurance_share_bps: self.insurance_share_bps,
            taker_fee_bps: self.taker_fee_bps,
            max_trade_deviation_bps: self.max_trade_deviation_bps,
            oracle_max_age_secs: self.oracle_max_age_secs,
            oracle_max_conf_bps: self.oracle_max_conf_bps,
            max_open_interest: self.max_open_interest,
            imf_factor: self.imf_factor,
            unrealized_weight_bps: self.unrealized_weight_bps,
            stable_price_window_secs: self.stable_price_window_secs,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading deploy config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing deploy config {}", path.display()))
    }
}

/// Converts a price in whole quote units to the feed's integer (expo −6).
pub fn feed_price(price: f64) -> Result<i64> {
    if !(price.is_finite() && price > 0.0 && price < 9.0e12) {
        bail!("oracle price {price} must be a positive number of quote units");
    }
    Ok((price * 1e6).round() as i64)
}

/// Sends and confirms; failures come back with the program error decoded.
pub use backstop_client::rpc::send;

/// What a deploy did, step by step.
#[derive(Debug, Default)]
pub struct Report {
    pub exchange: Pubkey,
    pub markets: Vec<(String, Pubkey, Pubkey)>,
    pub steps: Vec<String>,
    pub changed: bool,
}

/// Initializes the exchange (admin = `admin`, collateral `mint`), its oracle feeds and its
/// markets as described by `cfg`, skipping whatever already exists.
pub fn deploy(rpc: &RpcClient, admin: &Keypair, mint: &Pubkey, cfg: &Config) -> Result<Report> {
    let admin_key = admin.pubkey();
    let exchange = pda::exchange(&admin_key, cfg.exchange.id);
    let mut report = Report {
        exchange,
        ..Report::default()
    };
    let params = cfg.exchange.params.to_params()?;
    match rpc.get_account(&exchange) {
        Ok(acc) => {
            let ex =
                decode::exchange(&acc.data).context("the exchange address holds something else")?;
            if ex.collateral_mint != *mint {
                bail!(
                    "exchange {exchange} exists with collateral mint {}, not {mint}",
                    ex.collateral_mint
                );
            }
            if ex.params != params {
                let q = ex.queued_params;
                through_timelock(
                    rpc,
                    admin,
                    &mut report,
                    TimelockedChange {
                        what: format!("exchange {exchange}"),
                        queued: q.active.then_some((q.params == params, q.ready_at)),
                        queue: ix::update_exchange_params(&admin_key, &exchange, params),
                        apply: ix::apply_exchange_params(&exchange),
                        delay_secs: ex.params.admin_delay_secs,
                        cli_suffix: "exchange-params".into(),
                    },
                )?;
            } else {
                report
                    .steps
                    .push(format!("exchange {exchange}: exists, unchanged"));
            }
        }
        Err(_) => {
            send(
                rpc,
                admin,
                &[],
                &[ix::initialize_exchange(
                    &admin_key,
                    cfg.exchange.id,
                    mint,
                    params,
                )],
            )
            .context("initialize_exchange")?;
            report
                .steps
                .push(format!("exchange {exchange}: initialized"));
            report.changed = true;
        }
    }
    for (i, m) in cfg.markets.iter().enumerate() {
        let index = i as u16;
        let market = pda::market(&exchange, index);
        let (oracle, kind, feed_id) = match &m.oracle {
            OracleConfig::Feed { price } => {
                let feed = pda::oracle_feed(&exchange, index);
                if rpc.get_account(&feed).is_err() {
                    let ex = decode::exchange(&rpc.get_account(&exchange)?.data)?;
                    if ex.num_oracle_feeds != index {
                        bail!("oracle feed {index} cannot be created: the exchange has {} feeds; markets with feeds must come first and in order", ex.num_oracle_feeds);
                    }
                    send(
                        rpc,
                        admin,
                        &[],
                        &[ix::create_oracle_feed(
                            &admin_key,
                            &exchange,
                            index,
                            &admin_key,
                            FEED_EXPO,
                            feed_price(*price)?,
                            0,
                        )],
                    )
                    .with_context(|| format!("create_oracle_feed for {}", m.name))?;
                    report.steps.push(format!(
                        "oracle feed {feed} for {}: created at {price}",
                        m.name
                    ));
                    report.changed = true;
                } else {
                    report.steps.push(format!(
                        "oracle feed {feed} for {}: exists, unchanged",
                        m.name
                    ));
                }
                (feed, OracleKind::Feed, [0u8; 32])
            }
            OracleConfig::Pyth { account, feed_id } => {
                let key: Pubkey = account
                    .parse()
                    .with_context(|| format!("pyth account {account:?}"))?;
                let bytes = hex_32(feed_id).with_context(|| format!("pyth feed_id {feed_id:?}"))?;
                (key, OracleKind::PythPull, bytes)
            }
        };
        if let Ok(acc) = rpc.get_account(&market) {
            let current = decode::market(&acc.data)
                .with_context(|| format!("market {index} holds something else"))?;
            let want = m.params.to_params();
            if current.params == want {
                report.steps.push(format!(
                    "market {index} {} ({market}): exists, unchanged",
                    m.name
                ));
            } else {
                let ex = decode::exchange(&rpc.get_account(&exchange)?.data)?;
                let q = current.queued_params;
                through_timelock(
                    rpc,
                    admin,
                    &mut report,
                    TimelockedChange {
                        what: format!("market {index} {}", m.name),
                        queued: q.active.then_some((q.params == want, q.ready_at)),
                        queue: ix::update_market_params(&admin_key, &exchange, &market, want),
                        apply: ix::apply_market_params(&exchange, &market),
                        delay_secs: ex.params.admin_delay_secs,
                        cli_suffix: format!("market-params --market {}", m.name),
                    },
                )?;
            }
        } else {
            let mut name = [0u8; 16];
            let b = m.name.as_bytes();
            if b.len() > 16 {
                bail!("market name {:?} is longer than 16 bytes", m.name);
            }
            name[..b.len()].copy_from_slice(b);
            let args = AddMarketArgs {
                name,
                oracle_kind: kind,
                pyth_feed_id: feed_id,
                base_decimals: m.base_decimals,
                params: m.params.to_params(),
            };
            send(
                rpc,
                admin,
                &[],
                &[ix::add_market(&admin_key, &exchange, index, &oracle, args)],
            )
            .with_context(|| format!("add_market {}", m.name))?;
            report
                .steps
                .push(format!("market {index} {} ({market}): added", m.name));
            report.changed = true;
        }
        report.markets.push((m.name.clone(), market, oracle));
    }
    Ok(report)
}

/// A parameter change the config asks for: it goes through the same admin timelock as
/// any change (queue, then apply once due).
struct TimelockedChange {
    /// "exchange ADDRESS" or "market INDEX NAME", for the report.
    what: String,
    /// A change already queued: whether it is this one, and when it is ready.
    queued: Option<(bool, i64)>,
    queue: anchor_lang::solana_program::instruction::Instruction,
    apply: anchor_lang::solana_program::instruction::Instruction,
    /// The exchange's admin delay: with 0, queue and apply go in one transaction.
    delay_secs: u32,
    /// `backstop admin {cancel,apply}-…` for the hints.
    cli_suffix: String,
}

/// Queues the change (and applies it at once when the delay is 0), or applies the same
/// change queued by an earlier run; a different queued change must be cancelled first.
fn through_timelock(
    rpc: &RpcClient,
    admin: &Keypair,
    report: &mut Report,
    c: TimelockedChange,
) -> Result<()> {
    let what = &c.what;
    let ixs = match c.queued {
        Some((false, _)) => bail!(
            "{what}: a different parameter change is queued; cancel it first (`backstop admin cancel-{}`)",
            c.cli_suffix
        ),
        Some((true, _)) => vec![c.apply],
        None if c.delay_secs == 0 => vec![c.queue, c.apply],
        None => vec![c.queue],
    };
    let applies = ixs.len() == 2 || c.queued.is_some();
    match send(rpc, admin, &[], &ixs) {
        Ok(_) if applies => report
            .steps
            .push(format!("{what}: parameters updated from the config")),
        Ok(_) => report.steps.push(format!(
            "{what}: parameter change queued; it applies after {} s (re-run deploy, or `backstop admin apply-{}`)",
            c.delay_secs, c.cli_suffix
        )),
        Err(e) => match c.queued {
            Some((_, ready_at)) => report.steps.push(format!(
                "{what}: parameter change queued, not applicable yet (ready at unix {ready_at}): {e}"
            )),
            None => bail!("{what}: queueing the parameter change: {e}"),
        },
    }
    report.changed = true;
    Ok(())
}

fn hex_32(s: &str) -> Result<[u8; 32]> {
    let s = s.trim_start_matches("0x");
    if s.len() != 64 {
        bail!("expected 64 hex digits");
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)?;
    }
    Ok(out)
}
