//! `backstop admin …`: queue, apply and cancel the admin's bounded changes. Queueing and
//! cancelling need the admin keypair; applying is open to anyone once the delay has
//! passed (and no bad-debt epoch is open).

use anyhow::{anyhow, bail, Result};
use backstop::constants::{PAUSE_NEW_ACCOUNTS, PAUSE_TRADING};
use backstop::state::{ClawbackPolicy, ExchangeParams, MarketParams};
use backstop_client::ix;
use backstop_client::rpc::ExchangeSnapshot;
use backstop_client::view::parse_scaled;
use clap::Subcommand;
use serde_json::{json, Value};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signer::Signer;

use crate::Ctx;

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Queue new exchange parameters (unset flags keep today's value). They apply after
    /// the admin delay, with `apply-exchange-params`; each rate moves one step at most.
    QueueExchangeParams(ExchangeParamFlags),
    /// Apply the queued exchange parameters (anyone, once due and while no bad-debt epoch
    /// is open).
    ApplyExchangeParams,
    /// Cancel the queued exchange parameters (admin).
    CancelExchangeParams,
    /// Queue new parameters for one market (unset flags keep today's value).
    QueueMarketParams(MarketParamFlags),
    /// Apply a market's queued parameters (anyone, once due).
    ApplyMarketParams {
        /// Market name or index.
        #[arg(long)]
        market: String,
    },
    /// Cancel a market's queued parameters (admin).
    CancelMarketParams {
        #[arg(long)]
        market: String,
    },
    /// Pause the exchange (admin): `trading` freezes open interest, `new-accounts` stops
    /// account creation; `none` lifts every pause. Deposits, withdrawals and liquidations
    /// are never paused.
    Pause {
        /// Comma-separated: trading, new-accounts, or none.
        what: String,
    },
    /// Freeze one market's open interest, or lift it (admin).
    PauseMarket {
        #[arg(long)]
        market: String,
        /// `on` or `off`.
        state: String,
    },
    /// Queue a withdrawal from the insurance fund to a token account (admin); anyone pays
    /// it out with `apply-insurance-withdrawal` after the delay.
    WithdrawInsurance {
        /// Amount in collateral units.
        amount: String,
        /// Destination token account of the collateral mint.
        #[arg(long)]
        to: Pubkey,
    },
    /// Pay out the queued insurance withdrawal (anyone, once due).
    ApplyInsuranceWithdrawal,
    /// Cancel the queued insurance withdrawal (admin).
    CancelInsuranceWithdrawal,
    /// Propose the next admin (admin); it takes over when it runs `accept-admin`.
    ProposeAdmin { new_admin: Pubkey },
    /// Become the admin (run with the proposed admin's keypair).
    AcceptAdmin,
}

#[derive(clap::Args, Debug)]
pub struct ExchangeParamFlags {
    #[arg(long)]
    pnl_warmup_secs: Option<u32>,
    #[arg(long)]
    min_epoch_secs: Option<u32>,
    #[arg(long)]
    round_cooldown_secs: Option<u32>,
    #[arg(long)]
    clawback_rate_cap_bps: Option<u16>,
    /// profit-pro-rata or leverage-weighted.
    #[arg(long)]
    clawback_policy: Option<String>,
    #[arg(long)]
    liquidation_buffer_bps: Option<u16>,
    #[arg(long)]
    admin_delay_secs: Option<u32>,
    #[arg(long)]
    max_pause_secs: Option<u32>,
}

#[derive(clap::Args, Debug)]
pub struct MarketParamFlags {
    /// Market name or index.
    #[arg(long)]
    market: String,
    #[arg(long)]
    initial_margin_bps: Option<u16>,
    #[arg(long)]
    maintenance_margin_bps: Option<u16>,
    #[arg(long)]
    liquidation_fee_bps: Option<u16>,
    #[arg(long)]
    insurance_share_bps: Option<u16>,
    #[arg(long)]
    taker_fee_bps: Option<u16>,
    #[arg(long)]
    max_trade_deviation_bps: Option<u16>,
    #[arg(long)]
    oracle_max_age_secs: Option<u32>,
    #[arg(long)]
    oracle_max_conf_bps: Option<u16>,
    /// Open-interest cap in base atoms per side (0: none). A cap at or below the current
    /// open interest makes the market reduce-only.
    #[arg(long)]
    max_open_interest: Option<u64>,
    /// Size premium: margin rates grow as IMF·√|base atoms|/10⁶ bps past the base initial
    /// rate (0: fixed rates; at most 1,000,000; one change may move a 100,000-quote-unit position's premium by at most 5 points).
    #[arg(long)]
    imf_factor: Option<u32>,
    /// Share of unrealized profit initial margin counts, in bps (10,000: all).
    #[arg(long)]
    unrealized_weight_bps: Option<u16>,
    /// Time constant of the smoothed price initial margin also checks (0: none).
    #[arg(long)]
    stable_price_window_secs: Option<u32>,
}

fn exchange_params(now: ExchangeParams, f: &ExchangeParamFlags) -> Result<ExchangeParams> {
    let policy = match f.clawback_policy.as_deref() {
        None => now.clawback_policy,
        Some("profit-pro-rata") => ClawbackPolicy::ProfitProRata,
        Some("leverage-weighted") => ClawbackPolicy::LeverageWeighted,
        Some(other) => {
            bail!("--clawback-policy {other:?}: use profit-pro-rata or leverage-weighted")
        }
    };
    Ok(ExchangeParams {
        pnl_warmup_secs: f.pnl_warmup_secs.unwrap_or(now.pnl_warmup_secs),
        min_epoch_secs: f.min_epoch_secs.unwrap_or(now.min_epoch_secs),
        round_cooldown_secs: f.round_cooldown_secs.unwrap_or(now.round_cooldown_secs),
        clawback_rate_cap_bps: f.clawback_rate_cap_bps.unwrap_or(now.clawback_rate_cap_bps),
        clawback_policy: policy,
        liquidation_buffer_bps: f
            .liquidation_buffer_bps
            .unwrap_or(now.liquidation_buffer_bps),
        admin_delay_secs: f.admin_delay_secs.unwrap_or(now.admin_delay_secs),
        max_pause_secs: f.max_pause_secs.unwrap_or(now.max_pause_secs),
    })
}

fn market_params(now: MarketParams, f: &MarketParamFlags) -> MarketParams {
    MarketParams {
        initial_margin_bps: f.initial_margin_bps.unwrap_or(now.initial_margin_bps),
        maintenance_margin_bps: f
            .maintenance_margin_bps
            .unwrap_or(now.maintenance_margin_bps),
        liquidation_fee_bps: f.liquidation_fee_bps.unwrap_or(now.liquidation_fee_bps),
        insurance_share_bps: f.insurance_share_bps.unwrap_or(now.insurance_share_bps),
        taker_fee_bps: f.taker_fee_bps.unwrap_or(now.taker_fee_bps),
        max_trade_deviation_bps: f
            .max_trade_deviation_bps
            .unwrap_or(now.max_trade_deviation_bps),
        oracle_max_age_secs: f.oracle_max_age_secs.unwrap_or(now.oracle_max_age_secs),
        oracle_max_conf_bps: f.oracle_max_conf_bps.unwrap_or(now.oracle_max_conf_bps),
        max_open_interest: f.max_open_interest.unwrap_or(now.max_open_interest),
        imf_factor: f.imf_factor.unwrap_or(now.imf_factor),
        unrealized_weight_bps: f.unrealized_weight_bps.unwrap_or(now.unrealized_weight_bps),
        stable_price_window_secs: f
            .stable_price_window_secs
            .unwrap_or(now.stable_price_window_secs),
    }
}

fn market(snap: &ExchangeSnapshot, name: &str) -> Result<(Pubkey, MarketParams)> {
    snap.find_market(name)
        .map(|m| (m.address, m.market.params))
        .ok_or_else(|| {
            anyhow!("no market {name:?} on this exchange; `backstop exchange show` lists them")
        })
}

/// When a change queued now would be applicable, in words.
fn when(snap: &ExchangeSnapshot) -> String {
    match snap.exchange.params.admin_delay_secs {
        0 => "at once (this exchange has a ZERO admin delay)".to_string(),
        d => format!("in {d} s, from unix time {}", snap.now + i64::from(d)),
    }
}

pub fn run(ctx: &Ctx, cmd: AdminCmd) -> Result<Value> {
    let snap = ctx.snapshot()?;
    let exk = ctx.exchange;
    let keys = ix::ExchangeKeys::of(exk);
    let me = ctx.signer()?;
    let (what, ixs, done) = match &cmd {
        AdminCmd::QueueExchangeParams(f) => {
            let p = exchange_params(snap.exchange.params, f)?;
            (
                "queueing exchange parameters",
                vec![ix::update_exchange_params(&me.pubkey(), &exk, p)],
                format!(
                    "Queued {p:?}; anyone can apply it {} with `backstop admin apply-exchange-params`",
                    when(&snap)
                ),
            )
        }
        AdminCmd::ApplyExchangeParams => (
            "applying exchange parameters",
            vec![ix::apply_exchange_params(&exk)],
            "Applied the queued exchange parameters".to_string(),
        ),
        AdminCmd::CancelExchangeParams => (
            "cancelling exchange parameters",
            vec![ix::cancel_exchange_params(&me.pubkey(), &exk)],
            "Cancelled the queued exchange parameters".to_string(),
        ),
        AdminCmd::QueueMarketParams(f) => {
            let (m, now) = market(&snap, &f.market)?;
            let p = market_params(now, f);
            (
                "queueing market parameters",
                vec![ix::update_market_params(&me.pubkey(), &exk, &m, p)],
                format!(
                    "Queued {p:?} for {}; anyone can apply it {} with `backstop admin apply-market-params --market {}`",
                    f.market,
                    when(&snap),
                    f.market
                ),
            )
        }
        AdminCmd::ApplyMarketParams { market: name } => {
            let (m, _) = market(&snap, name)?;
            (
                "applying market parameters",
                vec![ix::apply_market_params(&exk, &m)],
                format!("Applied the queued parameters of {name}"),
            )
        }
        AdminCmd::CancelMarketParams { market: name } => {
            let (m, _) = market(&snap, name)?;
            (
                "cancelling market parameters",
                vec![ix::cancel_market_params(&me.pubkey(), &exk, &m)],
                format!("Cancelled the queued parameters of {name}"),
            )
        }
        AdminCmd::Pause { what } => {
            let mut flags = 0u8;
            for w in what.split(',').map(str::trim) {
                flags |= match w {
                    "trading" => PAUSE_TRADING,
                    "new-accounts" => PAUSE_NEW_ACCOUNTS,
                    "none" => 0,
                    other => bail!("pause {other:?}: use trading, new-accounts or none"),
                };
            }
            (
                "setting the pause",
                vec![ix::set_paused(&me.pubkey(), &exk, flags)],
                format!("Pause flags set to {flags:#04x}"),
            )
        }
        AdminCmd::PauseMarket {
            market: name,
            state,
        } => {
            let (m, _) = market(&snap, name)?;
            let on = match state.as_str() {
                "on" => true,
                "off" => false,
                other => bail!("pause-market state {other:?}: use on or off"),
            };
            (
                "pausing the market",
                vec![ix::set_market_paused(&me.pubkey(), &exk, &m, on)],
                format!(
                    "{name} is {}",
                    if on {
                        "paused (open interest frozen)"
                    } else {
                        "open"
                    }
                ),
            )
        }
        AdminCmd::WithdrawInsurance { amount, to } => {
            let atoms = parse_scaled(amount, u32::from(snap.exchange.collateral_decimals))
                .map_err(|e| anyhow!("amount {e}"))?;
            (
                "queueing an insurance withdrawal",
                vec![ix::withdraw_insurance(&keys, &me.pubkey(), to, atoms)],
                format!(
                    "Queued {amount} from the insurance fund to {to}; anyone can pay it out {} with `backstop admin apply-insurance-withdrawal`",
                    when(&snap)
                ),
            )
        }
        AdminCmd::ApplyInsuranceWithdrawal => {
            let q = snap.exchange.queued_withdrawal;
            if !q.active {
                bail!("no insurance withdrawal is queued");
            }
            (
                "paying out the insurance withdrawal",
                vec![ix::apply_insurance_withdrawal(&keys, &q.destination)],
                format!("Paid {} atoms to {}", q.amount, q.destination),
            )
        }
        AdminCmd::CancelInsuranceWithdrawal => (
            "cancelling the insurance withdrawal",
            vec![ix::cancel_insurance_withdrawal(&me.pubkey(), &exk)],
            "Cancelled the queued insurance withdrawal".to_string(),
        ),
        AdminCmd::ProposeAdmin { new_admin } => (
            "proposing the next admin",
            vec![ix::propose_admin(&me.pubkey(), &exk, new_admin)],
            format!(
                "Proposed {new_admin}; it becomes admin when it runs `backstop admin accept-admin`"
            ),
        ),
        AdminCmd::AcceptAdmin => (
            "accepting the admin role",
            vec![ix::accept_admin(&me.pubkey(), &exk)],
            format!("{} is now the admin", me.pubkey()),
        ),
    };
    let sig = ctx.send(what, &me, &[], &ixs)?;
    ctx.say(format!("{done}   (signature {sig})"));
    Ok(json!({ "done": done, "signature": sig }))
}
