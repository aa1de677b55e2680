//! Views of accounts and of the exchange: typed structs built once from the chain,
//! serialized as they are for `--output json` and rendered as text tables by `text()`.

use std::fmt::Write;

use anchor_lang::prelude::Pubkey;
use backstop::math::health::{compute_health, PositionMark};
use backstop::state::{EpochPhase, MarginAccount};
use backstop_client::rpc::ExchangeSnapshot;
use backstop_client::view::{self, format_price, format_scaled};
use serde::Serialize;

/// An amount of collateral atoms as a decimal string.
pub fn amount(atoms: i128, decimals: u8) -> String {
    format_scaled(atoms, decimals as i32, decimals as u32)
}

fn price_places(quote_decimals: u8) -> u32 {
    quote_decimals.min(4) as u32
}

/// An optional value as text, "—" when absent.
fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "—".to_string(), ToString::to_string)
}

/// An optional amount of atoms as text, "—" when absent.
fn opt_amount<T: Into<i128> + Copy>(v: Option<T>, d: u8) -> String {
    v.map_or_else(|| "—".to_string(), |x| amount(x.into(), d))
}

#[derive(Debug, Serialize)]
pub struct AccountView {
    pub margin_account: String,
    pub owner: String,
    pub exchange: String,
    pub decimals: u8,
    pub capital: u64,
    pub pnl: i64,
    pub health: Option<HealthView>,
    pub price_problems: Vec<PriceProblemView>,
    pub positions: Vec<PositionView>,
    pub clawback: ClawbackView,
}

#[derive(Debug, Serialize)]
pub struct HealthView {
    pub equity: i64,
    pub unrealized: i64,
    pub initial_margin: u64,
    pub maintenance_margin: u64,
    pub initial_health: i64,
    pub maintenance_health: i64,
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
pub struct PriceProblemView {
    pub market_index: u16,
    pub problem: String,
}

#[derive(Debug, Serialize)]
pub struct PositionView {
    pub market: String,
    pub market_index: u16,
    pub side: &'static str,
    pub base_qty: i64,
    pub size: String,
    pub quote_basis: i64,
    pub entry_price: Option<String>,
    pub mark_price: Option<String>,
    pub unrealized: Option<i64>,
    pub liquidation_price: Option<String>,
    /// The margin rates in force for this position's size (`size_scaled_rates`), bps.
    pub initial_margin_bps: u16,
    pub maintenance_margin_bps: u16,
    /// Share of its unrealized profit initial margin counts, bps.
    pub unrealized_weight_bps: u16,
    /// The market's smoothed price (initial margin uses the worse of it and the oracle).
    pub smoothed_price: Option<String>,
    /// The market's price failed a guard and is valued conservatively (docs/DESIGN.md §8.2).
    pub degraded_price: bool,
}

#[derive(Debug, Serialize)]
pub struct ClawbackView {
    pub last: Option<ReceiptView>,
    pub lifetime_charged: u64,
}

#[derive(Debug, Serialize)]
pub struct ReceiptView {
    pub epoch: u64,
    pub round: u64,
    pub basis: &'static str,
    /// u128 values as strings: JSON numbers lose precision past 2⁵³.
    pub weight: String,
    pub rate_num: String,
    pub rate_den: String,
    pub charged: u64,
}

/// Basis points as a percentage with two decimals.
fn pct(bps: u16) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

pub fn account_view(snap: &ExchangeSnapshot, addr: &Pubkey, a: &MarginAccount) -> AccountView {
    let d = snap.exchange.collateral_decimals;
    let (cache, problems) = view::price_cache(&snap.markets, d, snap.now);
    let health = view::health(&cache, a);
    let mut positions = vec![];
    for p in a.positions.iter().filter(|p| p.active) {
        let Some(m) = snap.market(p.market_index) else {
            continue;
        };
        let bd = m.market.base_decimals;
        let mark = cache.get(p.market_index);
        let unrealized = mark.and_then(|mp| {
            compute_health(
                0,
                0,
                &[PositionMark {
                    base_qty: p.base_qty,
                    quote_basis: p.quote_basis,
                    price: mp.price.price,
                    conf: 0,
                    initial_margin_bps: 0,
                    maintenance_margin_bps: 0,
                    stable_price: 0,
                    unrealized_weight_bps: 10_000,
                    degraded: false,
                    stale: false,
                }],
            )
            .ok()
            .map(|h| h.unrealized)
        });
        // Entry price: |basis| / |base| in fixed point (display only, rounded down).
        let entry = if p.base_qty != 0 {
            Some(
                (p.quote_basis.unsigned_abs() as u128
                    * backstop::constants::PRICE_PRECISION as u128
                    / p.base_qty.unsigned_abs() as u128) as u64,
            )
        } else {
            None
        };
        let liq = cache.liquidation_price(a, p.market_index);
        let pp = price_places(d);
        let params = &m.market.params;
        let (im_bps, mm_bps) = params
            .margin_rates(p.base_qty)
            .unwrap_or((params.initial_margin_bps, params.maintenance_margin_bps));
        positions.push(PositionView {
            market: m.name(),
            market_index: p.market_index,
            side: match p.base_qty.signum() {
                1 => "long",
                -1 => "short",
                _ => "flat",
            },
            base_qty: p.base_qty,
            size: format_scaled(p.base_qty.unsigned_abs() as i128, bd as i32, bd as u32),
            quote_basis: p.quote_basis,
            entry_price: entry.map(|e| format_price(e, d, bd, pp)),
            mark_price: mark.map(|mp| format_price(mp.price.price, d, bd, pp)),
            unrealized: unrealized.map(|u| u as i64),
            liquidation_price: liq.map(|l| format_price(l, d, bd, pp)),
            initial_margin_bps: im_bps,
            maintenance_margin_bps: mm_bps,
            unrealized_weight_bps: params.unrealized_weight_bps,
            smoothed_price: Some(m.market.smoothed_price())
                .filter(|p| *p > 0)
                .map(|p| format_price(p, d, bd, pp)),
            degraded_price: mark.is_some_and(|mp| mp.degraded),
        });
    }
    let c = &a.clawback;
    let last = (c.last_round > 0).then(|| ReceiptView {
        epoch: c.last_epoch,
        round: c.last_round,
        basis: if c.last_basis_is_capital {
            "capital"
        } else {
            "profit"
        },
        weight: c.last_weight.to_string(),
        rate_num: c.last_rate_num.to_string(),
        rate_den: c.last_rate_den.to_string(),
        charged: c.last_amount,
    });
    let health = health.map(|h| {
        let status = if h.is_bankrupt() {
            "bankrupt"
        } else if h.is_liquidatable().unwrap_or(false) {
            "liquidatable"
        } else if !h.meets_initial_margin().unwrap_or(true) {
            "below initial margin (reduce-only)"
        } else {
            "healthy"
        };
        HealthView {
            equity: h.equity as i64,
            unrealized: h.unrealized as i64,
            initial_margin: h.initial_margin as u64,
            maintenance_margin: h.maintenance_margin as u64,
            initial_health: h.initial_health().unwrap_or_default() as i64,
            maintenance_health: h.maintenance_health().unwrap_or_default() as i64,
            status,
        }
    });
    let price_problems = problems
        .iter()
        .filter(|(i, _)| a.position(*i).is_some_and(|p| p.active))
        .map(|(i, e)| PriceProblemView {
            market_index: *i,
            problem: e.to_string(),
        })
        .collect();
    AccountView {
        margin_account: addr.to_string(),
        owner: a.owner.to_string(),
        exchange: a.exchange.to_string(),
        decimals: d,
        capital: a.capital,
        pnl: a.pnl,
        health,
        price_problems,
        positions,
        clawback: ClawbackView {
            last,
            lifetime_charged: c.lifetime_total,
        },
    }
}

impl AccountView {
    /// The table `account show` prints.
    pub fn text(&self) -> String {
        let d = self.decimals;
        let mut o = String::new();
        let _ = writeln!(o, "Margin account {}", self.margin_account);
        let _ = writeln!(o, "  owner              {}", self.owner);
        let _ = writeln!(o, "  exchange           {}", self.exchange);
        let _ = writeln!(
            o,
            "  capital            {:>20}",
            amount(self.capital.into(), d)
        );
        let _ = writeln!(o, "  unsettled pnl      {:>20}", amount(self.pnl.into(), d));
        match &self.health {
            None => {
                let _ = writeln!(
                    o,
                    "  health             unknown: a market it holds has no usable price"
                );
                for p in &self.price_problems {
                    let _ = writeln!(
                        o,
                        "                     market {}: {}",
                        p.market_index, p.problem
                    );
                }
            }
            Some(h) => {
                let _ = writeln!(
                    o,
                    "  unrealized pnl     {:>20}",
                    amount(h.unrealized.into(), d)
                );
                let _ = writeln!(o, "  equity             {:>20}", amount(h.equity.into(), d));
                let _ = writeln!(
                    o,
                    "  initial margin     {:>20}   (free {})",
                    amount(h.initial_margin.into(), d),
                    amount(h.initial_health.into(), d)
                );
                let _ = writeln!(
                    o,
                    "  maintenance margin {:>20}   (buffer {})",
                    amount(h.maintenance_margin.into(), d),
                    amount(h.maintenance_health.into(), d)
                );
                let _ = writeln!(o, "  status             {}", h.status);
                for p in &self.price_problems {
                    let _ = writeln!(
                        o,
                        "                     market {}: {} — valued conservatively (its position counts at the edge of its price interval) until the oracle publishes",
                        p.market_index, p.problem
                    );
                }
            }
        }
        if self.positions.is_empty() {
            let _ = writeln!(o, "\nNo open positions.");
        } else {
            let _ = writeln!(
                o,
                "\n  {:<10} {:<5} {:>18} {:>14} {:>14} {:>16} {:>14}",
                "MARKET", "SIDE", "SIZE", "ENTRY", "MARK", "UNREALIZED", "LIQ. PRICE"
            );
            for p in &self.positions {
                let _ = writeln!(
                    o,
                    "  {:<10} {:<5} {:>18} {:>14} {:>14} {:>16} {:>14}",
                    p.market,
                    p.side,
                    p.size,
                    opt(&p.entry_price),
                    opt(&p.mark_price),
                    opt_amount(p.unrealized, d),
                    opt(&p.liquidation_price),
                );
            }
            let _ = writeln!(
                o,
                "\n  {:<10} {:>8} {:>8} {:>18} {:>14}",
                "MARKET", "IM", "MM", "PROFIT WEIGHT IM", "SMOOTHED"
            );
            for p in &self.positions {
                let _ = writeln!(
                    o,
                    "  {:<10} {:>8} {:>8} {:>18} {:>14}{}",
                    p.market,
                    pct(p.initial_margin_bps),
                    pct(p.maintenance_margin_bps),
                    pct(p.unrealized_weight_bps),
                    opt(&p.smoothed_price),
                    if p.degraded_price {
                        "  (price degraded: valued conservatively)"
                    } else {
                        ""
                    },
                );
            }
        }
        match &self.clawback.last {
            None => {
                let _ = writeln!(o, "\nClawback receipts: none (never charged)");
            }
            Some(l) => {
                let _ = writeln!(o, "\nClawback receipts");
                let _ = writeln!(
                    o,
                    "  {:>5} {:>5} {:<8} {:>22} {:>32} {:>16}",
                    "EPOCH", "ROUND", "BASIS", "WEIGHT", "RATE", "CHARGED"
                );
                let _ = writeln!(
                    o,
                    "  {:>5} {:>5} {:<8} {:>22} {:>32} {:>16}",
                    l.epoch,
                    l.round,
                    l.basis,
                    l.weight,
                    format!("{}/{}", l.rate_num, l.rate_den),
                    amount(l.charged.into(), d),
                );
                let _ = writeln!(
                    o,
                    "  lifetime charged: {}",
                    amount(self.clawback.lifetime_charged.into(), d)
                );
            }
        }
        o
    }
}

#[derive(Debug, Serialize)]
pub struct ExchangeView {
    pub exchange: String,
    pub admin: String,
    pub pending_admin: Option<String>,
    pub admin_delay_secs: u32,
    pub max_pause_secs: u32,
    pub queued_changes: Vec<QueuedView>,
    pub unresolved_bankruptcies: u32,
    pub collateral_mint: String,
    pub decimals: u8,
    pub paused: u8,
    pub accounts: u32,
    pub vault: u64,
    pub insurance_fund: u64,
    pub deficit: u64,
    pub epoch: EpochView,
    pub params: ParamsView,
    pub markets: Vec<MarketView>,
    pub cluster_time: i64,
}

#[derive(Debug, Serialize)]
pub struct QueuedView {
    pub what: String,
    /// The current value (parameter changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Atoms (insurance withdrawals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    pub to: String,
    pub ready_at: i64,
}

#[derive(Debug, Serialize)]
pub struct EpochView {
    pub phase: &'static str,
    pub epoch_id: u64,
    pub rounds_in_epoch: u32,
    pub round_seq: u64,
    pub tallied: u32,
    pub untallied: u32,
    pub profit_pending: u32,
    pub capital_pending: u32,
    pub applied: u32,
    pub to_apply: u32,
    pub epoch_deficit_opened: u64,
    pub epoch_charged: u64,
    pub epoch_covered: u64,
    pub last_closed: Option<ClosedEpochView>,
}

#[derive(Debug, Serialize)]
pub struct ClosedEpochView {
    pub epoch_id: u64,
    pub rounds: u32,
    pub deficit_opened: u64,
    pub clawed_back: u64,
    pub covered: u64,
}

#[derive(Debug, Serialize)]
pub struct ParamsView {
    pub pnl_warmup_secs: u32,
    pub min_epoch_secs: u32,
    pub round_cooldown_secs: u32,
    pub clawback_rate_cap_bps: u16,
    pub clawback_policy: String,
    pub liquidation_buffer_bps: u16,
}

#[derive(Debug, Serialize)]
pub struct MarketView {
    pub name: String,
    pub index: u16,
    pub address: String,
    pub oracle: String,
    pub oracle_price: Option<String>,
    pub oracle_conf: Option<String>,
    pub oracle_age_secs: Option<i64>,
    pub oracle_problem: Option<String>,
    pub paused: bool,
    pub base_decimals: u8,
    pub long_open_interest: String,
    pub short_open_interest: String,
    /// The open-interest cap per side, in base units (`None`: no cap).
    pub max_open_interest: Option<String>,
    pub initial_margin_bps: u16,
    pub maintenance_margin_bps: u16,
    pub taker_fee_bps: u16,
}

pub fn exchange_view(snap: &ExchangeSnapshot) -> ExchangeView {
    let ex = &snap.exchange;
    let d = ex.collateral_decimals;
    let e = &ex.epoch;
    let phase = match e.phase {
        EpochPhase::Normal => "Normal",
        EpochPhase::BadDebt => "BadDebt",
        EpochPhase::Tallying => "Tallying",
        EpochPhase::Applying => "Applying",
    };
    let markets = snap
        .markets
        .iter()
        .map(|m| {
            let bd = m.market.base_decimals;
            let price = m.price(d, snap.now);
            let raw = m.oracle.as_ref().ok();
            let oi = |atoms: u64| format_scaled(atoms as i128, bd as i32, bd as u32);
            MarketView {
                name: m.name(),
                index: m.market.index,
                address: m.address.to_string(),
                oracle: m.market.oracle.to_string(),
                oracle_price: price
                    .as_ref()
                    .ok()
                    .map(|p| format_price(p.price, d, bd, price_places(d))),
                oracle_conf: price
                    .as_ref()
                    .ok()
                    .map(|p| format_price(p.conf, d, bd, price_places(d))),
                oracle_age_secs: raw.map(|r| snap.now - r.publish_time),
                oracle_problem: price.as_ref().err().map(|e| e.to_string()),
                paused: m.market.paused,
                base_decimals: bd,
                long_open_interest: oi(m.market.long_open_interest),
                short_open_interest: oi(m.market.short_open_interest),
                max_open_interest: (m.market.params.max_open_interest != 0)
                    .then(|| oi(m.market.params.max_open_interest)),
                initial_margin_bps: m.market.params.initial_margin_bps,
                maintenance_margin_bps: m.market.params.maintenance_margin_bps,
                taker_fee_bps: m.market.params.taker_fee_bps,
            }
        })
        .collect();
    let mut queued_changes = vec![];
    if ex.queued_params.active {
        let q = &ex.queued_params;
        queued_changes.push(QueuedView {
            what: "exchange parameters".into(),
            from: Some(format!("{:?}", ex.params)),
            amount: None,
            to: format!("{:?}", q.params),
            ready_at: q.ready_at,
        });
    }
    if ex.queued_withdrawal.active {
        let q = &ex.queued_withdrawal;
        queued_changes.push(QueuedView {
            what: "insurance withdrawal".into(),
            from: None,
            amount: Some(q.amount),
            to: q.destination.to_string(),
            ready_at: q.ready_at,
        });
    }
    for m in &snap.markets {
        let q = &m.market.queued_params;
        if q.active {
            queued_changes.push(QueuedView {
                what: format!("{} parameters", m.name()),
                from: Some(format!("{:?}", m.market.params)),
                amount: None,
                to: format!("{:?}", q.params),
                ready_at: q.ready_at,
            });
        }
    }
    let l = &e.last_closed;
    ExchangeView {
        exchange: snap.address.to_string(),
        admin: ex.admin.to_string(),
        pending_admin: (ex.pending_admin != Pubkey::default())
            .then(|| ex.pending_admin.to_string()),
        admin_delay_secs: ex.params.admin_delay_secs,
        max_pause_secs: ex.params.max_pause_secs,
        queued_changes,
        unresolved_bankruptcies: ex.unresolved_bankruptcies,
        collateral_mint: ex.collateral_mint.to_string(),
        decimals: d,
        paused: ex.paused,
        accounts: ex.num_accounts,
        vault: ex.books.vault_balance,
        insurance_fund: ex.books.insurance_balance,
        deficit: ex.books.deficit,
        epoch: EpochView {
            phase,
            epoch_id: e.epoch_id,
            rounds_in_epoch: e.rounds_in_epoch,
            round_seq: e.round_seq,
            tallied: e.tallied,
            untallied: e.untallied,
            profit_pending: e.profit_pending,
            capital_pending: e.capital_pending,
            applied: e.applied,
            to_apply: e.to_apply,
            epoch_deficit_opened: e.epoch_deficit_opened,
            epoch_charged: e.epoch_charged,
            epoch_covered: e.epoch_covered,
            last_closed: (l.epoch_id > 0).then_some(ClosedEpochView {
                epoch_id: l.epoch_id,
                rounds: l.rounds,
                deficit_opened: l.deficit_opened,
                clawed_back: l.clawed_back,
                covered: l.covered,
            }),
        },
        params: ParamsView {
            pnl_warmup_secs: ex.params.pnl_warmup_secs,
            min_epoch_secs: ex.params.min_epoch_secs,
            round_cooldown_secs: ex.params.round_cooldown_secs,
            clawback_rate_cap_bps: ex.params.clawback_rate_cap_bps,
            clawback_policy: format!("{:?}", ex.params.clawback_policy),
            liquidation_buffer_bps: ex.params.liquidation_buffer_bps,
        },
        markets,
        cluster_time: snap.now,
    }
}

impl ExchangeView {
    /// The table `exchange show` prints.
    pub fn text(&self) -> String {
        let d = self.decimals;
        let amt = |x: u64| amount(x.into(), d);
        let mut o = String::new();
        let e = &self.epoch;
        let _ = writeln!(o, "Exchange {}", self.exchange);
        let _ = writeln!(o, "  collateral mint    {}", self.collateral_mint);
        let _ = writeln!(o, "  margin accounts    {}", self.accounts);
        let _ = writeln!(o, "  vault              {:>20}", amt(self.vault));
        let _ = writeln!(o, "  insurance fund     {:>20}", amt(self.insurance_fund));
        let _ = writeln!(o, "  deficit            {:>20}", amt(self.deficit));
        let _ = writeln!(
            o,
            "  epoch              {} (epoch {}, {} round(s) so far; this epoch: opened with {}, clawed back {}, covered {})",
            e.phase,
            e.epoch_id,
            e.rounds_in_epoch,
            amt(e.epoch_deficit_opened),
            amt(e.epoch_charged),
            amt(e.epoch_covered),
        );
        if let Some(last) = &e.last_closed {
            let _ = writeln!(
                o,
                "  last closed epoch  {}: opened with {}, clawed back {}, covered {}, {} round(s)",
                last.epoch_id,
                amt(last.deficit_opened),
                amt(last.clawed_back),
                amt(last.covered),
                last.rounds,
            );
        }
        if matches!(e.phase, "Tallying" | "Applying") {
            let _ = writeln!(
                o,
                "  round progress     tallied {} (still needed: {} that can carry profit, {} with capital), applied {}/{}",
                e.tallied, e.profit_pending, e.capital_pending, e.applied, e.to_apply
            );
        }
        let p = &self.params;
        let _ = writeln!(
            o,
            "  clawback           {} , rate cap {} bps, min epoch {} s, cooldown {} s, warmup {} s",
            p.clawback_policy,
            p.clawback_rate_cap_bps,
            p.min_epoch_secs,
            p.round_cooldown_secs,
            p.pnl_warmup_secs,
        );
        let delay = self.admin_delay_secs;
        if delay == 0 {
            let _ = writeln!(
                o,
                "  admin delay        0 s — ZERO: parameter changes and insurance withdrawals apply at once (fine on a localnet, never on a real cluster)"
            );
        } else {
            let _ = writeln!(
                o,
                "  admin delay        {delay} s (changes wait this long after they are queued)"
            );
        }
        if let Some(p) = &self.pending_admin {
            let _ = writeln!(o, "  proposed admin     {p} (takes over when it accepts)");
        }
        for q in &self.queued_changes {
            let _ = writeln!(
                o,
                "  QUEUED             {}: {} → {} (applicable from unix {})",
                q.what,
                match (&q.from, q.amount) {
                    (Some(from), _) => from.clone(),
                    (None, a) => opt_amount(a, d),
                },
                q.to,
                q.ready_at
            );
        }
        if self.unresolved_bankruptcies != 0 {
            let _ = writeln!(
                o,
                "  unresolved bankruptcies {}",
                self.unresolved_bankruptcies
            );
        }
        if self.paused != 0 {
            let _ = writeln!(
                o,
                "  PAUSED             flags {:#04x} (1: open interest frozen, 2: no new accounts)",
                self.paused
            );
        }
        let _ = writeln!(
            o,
            "\n  {:<3} {:<10} {:>14} {:>10} {:>8} {:>20} {:>20} {:>20}  STATUS",
            "#", "MARKET", "ORACLE PRICE", "CONF", "AGE (s)", "LONG OI", "SHORT OI", "OI CAP"
        );
        for m in &self.markets {
            let status = if m.paused {
                "paused (open interest frozen)".to_string()
            } else if let Some(p) = &m.oracle_problem {
                p.clone()
            } else {
                "ok".to_string()
            };
            let _ = writeln!(
                o,
                "  {:<3} {:<10} {:>14} {:>10} {:>8} {:>20} {:>20} {:>20}  {}",
                m.index,
                m.name,
                opt(&m.oracle_price),
                opt(&m.oracle_conf),
                opt(&m.oracle_age_secs),
                m.long_open_interest,
                m.short_open_interest,
                m.max_open_interest.as_deref().unwrap_or("none"),
                status
            );
        }
        o
    }
}
