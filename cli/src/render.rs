//! Views of accounts and of the exchange: built once as JSON (what `--output json`
//! prints) and rendered as text tables from that same JSON.

use std::fmt::Write;

use anchor_lang::prelude::Pubkey;
use backstop::math::health::{compute_health, PositionMark};
use backstop::state::{EpochPhase, MarginAccount};
use backstop_client::rpc::ExchangeSnapshot;
use backstop_client::view::{self, format_price, format_scaled};
use serde_json::{json, Value};

/// An amount of collateral atoms as a decimal string.
pub fn amount(atoms: i128, decimals: u8) -> String {
    format_scaled(atoms, decimals as i32, decimals as u32)
}

fn price_places(quote_decimals: u8) -> u32 {
    quote_decimals.min(4) as u32
}

pub fn account_view(snap: &ExchangeSnapshot, addr: &Pubkey, a: &MarginAccount) -> Value {
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
        positions.push(json!({
            "market": m.name(),
            "market_index": p.market_index,
            "side": if p.base_qty > 0 { "long" } else if p.base_qty < 0 { "short" } else { "flat" },
            "base_qty": p.base_qty,
            "size": format_scaled(p.base_qty.unsigned_abs() as i128, bd as i32, bd as u32),
            "quote_basis": p.quote_basis,
            "entry_price": entry.map(|e| format_price(e, d, bd, pp)),
            "mark_price": mark.map(|mp| format_price(mp.price.price, d, bd, pp)),
            "unrealized": unrealized.map(|u| u as i64),
            "liquidation_price": liq.map(|l| format_price(l, d, bd, pp)),
        }));
    }
    let c = &a.clawback;
    let last = (c.last_round > 0).then(|| {
        json!({
            "epoch": c.last_epoch,
            "round": c.last_round,
            "basis": if c.last_basis_is_capital { "capital" } else { "profit" },
            "weight": c.last_weight.to_string(),
            "rate_num": c.last_rate_num.to_string(),
            "rate_den": c.last_rate_den.to_string(),
            "charged": c.last_amount,
        })
    });
    let health_json = health.map(|h| {
        let status = if h.is_bankrupt() {
            "bankrupt"
        } else if h.is_liquidatable().unwrap_or(false) {
            "liquidatable"
        } else if !h.meets_initial_margin().unwrap_or(true) {
            "below initial margin (reduce-only)"
        } else {
            "healthy"
        };
        json!({
            "equity": h.equity as i64,
            "unrealized": h.unrealized as i64,
            "initial_margin": h.initial_margin as u64,
            "maintenance_margin": h.maintenance_margin as u64,
            "initial_health": h.initial_health().unwrap_or_default() as i64,
            "maintenance_health": h.maintenance_health().unwrap_or_default() as i64,
            "status": status,
        })
    });
    let problems: Vec<Value> = problems
        .iter()
        .filter(|(i, _)| a.position(*i).is_some_and(|p| p.active))
        .map(|(i, e)| json!({"market_index": i, "problem": e.to_string()}))
        .collect();
    json!({
        "margin_account": addr.to_string(),
        "owner": a.owner.to_string(),
        "exchange": a.exchange.to_string(),
        "decimals": d,
        "capital": a.capital,
        "pnl": a.pnl,
        "health": health_json,
        "price_problems": problems,
        "positions": positions,
        "clawback": {"last": last, "lifetime_charged": c.lifetime_total},
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn amt(v: &Value, d: u8) -> String {
    match v.as_i64() {
        Some(x) => amount(x as i128, d),
        None => match v.as_u64() {
            Some(x) => amount(x as i128, d),
            None => "—".into(),
        },
    }
}

pub fn account_text(snap: &ExchangeSnapshot, v: &Value) -> String {
    let d = snap.exchange.collateral_decimals;
    let mut o = String::new();
    let _ = writeln!(o, "Margin account {}", s(&v["margin_account"]));
    let _ = writeln!(o, "  owner              {}", s(&v["owner"]));
    let _ = writeln!(o, "  exchange           {}", s(&v["exchange"]));
    let _ = writeln!(o, "  capital            {:>20}", amt(&v["capital"], d));
    let _ = writeln!(o, "  unsettled pnl      {:>20}", amt(&v["pnl"], d));
    let h = &v["health"];
    if h.is_null() {
        let _ = writeln!(
            o,
            "  health             unknown: a market it holds has no usable price"
        );
        for p in v["price_problems"].as_array().into_iter().flatten() {
            let _ = writeln!(
                o,
                "                     market {}: {}",
                p["market_index"],
                s(&p["problem"])
            );
        }
    } else {
        let _ = writeln!(o, "  unrealized pnl     {:>20}", amt(&h["unrealized"], d));
        let _ = writeln!(o, "  equity             {:>20}", amt(&h["equity"], d));
        let _ = writeln!(
            o,
            "  initial margin     {:>20}   (free {})",
            amt(&h["initial_margin"], d),
            amt(&h["initial_health"], d)
        );
        let _ = writeln!(
            o,
            "  maintenance margin {:>20}   (buffer {})",
            amt(&h["maintenance_margin"], d),
            amt(&h["maintenance_health"], d)
        );
        let _ = writeln!(o, "  status             {}", s(&h["status"]));
    }
    let positions = v["positions"].as_array().cloned().unwrap_or_default();
    if positions.is_empty() {
        let _ = writeln!(o, "\nNo open positions.");
    } else {
        let _ = writeln!(
            o,
            "\n  {:<10} {:<5} {:>18} {:>14} {:>14} {:>16} {:>14}",
            "MARKET", "SIDE", "SIZE", "ENTRY", "MARK", "UNREALIZED", "LIQ. PRICE"
        );
        for p in positions {
            let _ = writeln!(
                o,
                "  {:<10} {:<5} {:>18} {:>14} {:>14} {:>16} {:>14}",
                s(&p["market"]),
                s(&p["side"]),
                s(&p["size"]),
                s(&p["entry_price"]),
                s(&p["mark_price"]),
                amt(&p["unrealized"], d),
                s(&p["liquidation_price"]),
            );
        }
    }
    let c = &v["clawback"];
    if c["last"].is_null() {
        let _ = writeln!(o, "\nClawback receipts: none (never charged)");
    } else {
        let l = &c["last"];
        let _ = writeln!(o, "\nClawback receipts");
        let _ = writeln!(
            o,
            "  {:>5} {:>5} {:<8} {:>22} {:>32} {:>16}",
            "EPOCH", "ROUND", "BASIS", "WEIGHT", "RATE", "CHARGED"
        );
        let _ = writeln!(
            o,
            "  {:>5} {:>5} {:<8} {:>22} {:>32} {:>16}",
            s(&l["epoch"]),
            s(&l["round"]),
            s(&l["basis"]),
            s(&l["weight"]),
            format!("{}/{}", s(&l["rate_num"]), s(&l["rate_den"])),
            amt(&l["charged"], d),
        );
        let _ = writeln!(o, "  lifetime charged: {}", amt(&c["lifetime_charged"], d));
    }
    o
}

pub fn exchange_view(snap: &ExchangeSnapshot) -> Value {
    let ex = &snap.exchange;
    let d = ex.collateral_decimals;
    let e = &ex.epoch;
    let phase = match e.phase {
        EpochPhase::Normal => "Normal",
        EpochPhase::BadDebt => "BadDebt",
        EpochPhase::Tallying => "Tallying",
        EpochPhase::Applying => "Applying",
    };
    let markets: Vec<Value> = snap
        .markets
        .iter()
        .map(|m| {
            let bd = m.market.base_decimals;
            let price = m.price(d, snap.now);
            let raw = m.oracle.as_ref().ok();
            json!({
                "name": m.name(),
                "index": m.market.index,
                "address": m.address.to_string(),
                "oracle": m.market.oracle.to_string(),
                "oracle_price": price.as_ref().ok().map(|p| format_price(p.price, d, bd, price_places(d))),
                "oracle_conf": price.as_ref().ok().map(|p| format_price(p.conf, d, bd, price_places(d))),
                "oracle_age_secs": raw.map(|r| snap.now - r.publish_time),
                "oracle_problem": price.as_ref().err().map(|e| e.to_string()),
                "paused": m.market.paused,
                "base_decimals": bd,
                "long_open_interest": format_scaled(m.market.long_open_interest as i128, bd as i32, bd as u32),
                "short_open_interest": format_scaled(m.market.short_open_interest as i128, bd as i32, bd as u32),
                "initial_margin_bps": m.market.params.initial_margin_bps,
                "maintenance_margin_bps": m.market.params.maintenance_margin_bps,
                "taker_fee_bps": m.market.params.taker_fee_bps,
            })
        })
        .collect();
    let mut queued: Vec<Value> = vec![];
    if ex.queued_params.active {
        let q = &ex.queued_params;
        queued.push(json!({
            "what": "exchange parameters",
            "from": format!("{:?}", ex.params),
            "to": format!("{:?}", q.params),
            "ready_at": q.ready_at,
        }));
    }
    if ex.queued_withdrawal.active {
        let q = &ex.queued_withdrawal;
        queued.push(json!({
            "what": "insurance withdrawal",
            "amount": q.amount,
            "to": q.destination.to_string(),
            "ready_at": q.ready_at,
        }));
    }
    for m in &snap.markets {
        let q = &m.market.queued_params;
        if q.active {
            queued.push(json!({
                "what": format!("{} parameters", m.name()),
                "from": format!("{:?}", m.market.params),
                "to": format!("{:?}", q.params),
                "ready_at": q.ready_at,
            }));
        }
    }
    json!({
        "exchange": snap.address.to_string(),
        "admin": ex.admin.to_string(),
        "pending_admin": (ex.pending_admin != Pubkey::default()).then(|| ex.pending_admin.to_string()),
        "admin_delay_secs": ex.params.admin_delay_secs,
        "max_pause_secs": ex.params.max_pause_secs,
        "queued_changes": queued,
        "unresolved_bankruptcies": ex.unresolved_bankruptcies,
        "collateral_mint": ex.collateral_mint.to_string(),
        "decimals": d,
        "paused": ex.paused,
        "accounts": ex.num_accounts,
        "vault": ex.books.vault_balance,
        "insurance_fund": ex.books.insurance_balance,
        "deficit": ex.books.deficit,
        "epoch": {
            "phase": phase,
            "epoch_id": e.epoch_id,
            "rounds_in_epoch": e.rounds_in_epoch,
            "round_seq": e.round_seq,
            "tallied": e.tallied,
            "untallied": e.untallied,
            "profit_pending": e.profit_pending,
            "capital_pending": e.capital_pending,
            "applied": e.applied,
            "to_apply": e.to_apply,
            "epoch_deficit_opened": e.epoch_deficit_opened,
            "epoch_charged": e.epoch_charged,
            "epoch_covered": e.epoch_covered,
            "last_closed": (e.last_closed.epoch_id > 0).then(|| json!({
                "epoch_id": e.last_closed.epoch_id,
                "rounds": e.last_closed.rounds,
                "deficit_opened": e.last_closed.deficit_opened,
                "clawed_back": e.last_closed.clawed_back,
                "covered": e.last_closed.covered,
            })),
        },
        "params": {
            "pnl_warmup_secs": ex.params.pnl_warmup_secs,
            "min_epoch_secs": ex.params.min_epoch_secs,
            "round_cooldown_secs": ex.params.round_cooldown_secs,
            "clawback_rate_cap_bps": ex.params.clawback_rate_cap_bps,
            "clawback_policy": format!("{:?}", ex.params.clawback_policy),
            "liquidation_buffer_bps": ex.params.liquidation_buffer_bps,
        },
        "markets": markets,
        "cluster_time": snap.now,
    })
}

pub fn exchange_text(v: &Value) -> String {
    let d = v["decimals"].as_u64().unwrap_or(6) as u8;
    let mut o = String::new();
    let e = &v["epoch"];
    let _ = writeln!(o, "Exchange {}", s(&v["exchange"]));
    let _ = writeln!(o, "  collateral mint    {}", s(&v["collateral_mint"]));
    let _ = writeln!(o, "  margin accounts    {}", s(&v["accounts"]));
    let _ = writeln!(o, "  vault              {:>20}", amt(&v["vault"], d));
    let _ = writeln!(
        o,
        "  insurance fund     {:>20}",
        amt(&v["insurance_fund"], d)
    );
    let _ = writeln!(o, "  deficit            {:>20}", amt(&v["deficit"], d));
    let _ = writeln!(
        o,
        "  epoch              {} (epoch {}, {} round(s) so far; this epoch: opened with {}, clawed back {}, covered {})",
        s(&e["phase"]),
        s(&e["epoch_id"]),
        s(&e["rounds_in_epoch"]),
        amt(&e["epoch_deficit_opened"], d),
        amt(&e["epoch_charged"], d),
        amt(&e["epoch_covered"], d),
    );
    let last = &e["last_closed"];
    if !last.is_null() {
        let _ = writeln!(
            o,
            "  last closed epoch  {}: opened with {}, clawed back {}, covered {}, {} round(s)",
            s(&last["epoch_id"]),
            amt(&last["deficit_opened"], d),
            amt(&last["clawed_back"], d),
            amt(&last["covered"], d),
            s(&last["rounds"]),
        );
    }
    if matches!(e["phase"].as_str(), Some("Tallying") | Some("Applying")) {
        let _ = writeln!(
            o,
            "  round progress     tallied {} (still needed: {} that can carry profit, {} with capital), applied {}/{}",
            s(&e["tallied"]),
            s(&e["profit_pending"]),
            s(&e["capital_pending"]),
            s(&e["applied"]),
            s(&e["to_apply"])
        );
    }
    let p = &v["params"];
    let _ = writeln!(
        o,
        "  clawback           {} , rate cap {} bps, min epoch {} s, cooldown {} s, warmup {} s",
        s(&p["clawback_policy"]),
        s(&p["clawback_rate_cap_bps"]),
        s(&p["min_epoch_secs"]),
        s(&p["round_cooldown_secs"]),
        s(&p["pnl_warmup_secs"]),
    );
    let delay = v["admin_delay_secs"].as_u64().unwrap_or(0);
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
    if let Some(p) = v["pending_admin"].as_str() {
        let _ = writeln!(o, "  proposed admin     {p} (takes over when it accepts)");
    }
    for q in v["queued_changes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  QUEUED             {}: {} → {} (applicable from unix {})",
            s(&q["what"]),
            if q["from"].is_null() {
                amt(&q["amount"], d)
            } else {
                s(&q["from"])
            },
            s(&q["to"]),
            s(&q["ready_at"])
        );
    }
    if v["unresolved_bankruptcies"].as_u64().unwrap_or(0) != 0 {
        let _ = writeln!(
            o,
            "  unresolved bankruptcies {}",
            s(&v["unresolved_bankruptcies"])
        );
    }
    if v["paused"].as_u64().unwrap_or(0) != 0 {
        let _ = writeln!(
            o,
            "  PAUSED             flags {:#04x} (1: open interest frozen, 2: no new accounts)",
            v["paused"].as_u64().unwrap_or(0)
        );
    }
    let _ = writeln!(
        o,
        "\n  {:<3} {:<10} {:>14} {:>10} {:>8} {:>20} {:>20}  STATUS",
        "#", "MARKET", "ORACLE PRICE", "CONF", "AGE (s)", "LONG OI", "SHORT OI"
    );
    for m in v["markets"].as_array().into_iter().flatten() {
        let status = if m["paused"].as_bool() == Some(true) {
            "paused (open interest frozen)".to_string()
        } else if let Some(p) = m["oracle_problem"].as_str() {
            p.to_string()
        } else {
            "ok".to_string()
        };
        let _ = writeln!(
            o,
            "  {:<3} {:<10} {:>14} {:>10} {:>8} {:>20} {:>20}  {}",
            s(&m["index"]),
            s(&m["name"]),
            s(&m["oracle_price"]),
            s(&m["oracle_conf"]),
            s(&m["oracle_age_secs"]),
            s(&m["long_open_interest"]),
            s(&m["short_open_interest"]),
            status
        );
    }
    o
}
