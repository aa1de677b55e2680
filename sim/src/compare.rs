//! Static versus dynamic margins over every named scenario: the same traders (same seed,
//! same capital and intended leverage) open positions within each regime's initial
//! margin, then the crash runs with the program's liquidation math. The figures a risk
//! manager compares: liquidations, bankruptcies, the deficit left after insurance, and the
//! largest one-print cascade.

use std::fmt::Write;

use anyhow::Result;
use serde::Serialize;

use crate::engine::{self, Mode};
use crate::population::{self, SCENARIOS};
use crate::{usd, Market};

/// One scenario under one margin regime.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub dynamic: bool,
    /// Σ |notional| opened at the start (USDC atoms).
    pub open_notional: u128,
    pub liquidations: u32,
    pub bankruptcies: u32,
    pub deficit: u64,
    pub insurance_paid: u64,
    pub max_print_liquidations: u32,
}

/// Every named scenario, static then dynamic, over `n` accounts from `seed` with an
/// insurance fund of `insurance_bps` of the capital.
pub fn run(n: usize, seed: u64, insurance_bps: u64) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for (name, _, _) in SCENARIOS {
        let prices = population::scenario(name)?;
        for (dynamic, market) in [(false, Market::default()), (true, Market::dynamic())] {
            let accounts = population::generate(n, seed, prices[0], &market)?;
            let capital: u128 = accounts.iter().map(|a| a.capital as u128).sum();
            let insurance = u64::try_from(capital * insurance_bps as u128 / 10_000)?;
            let open_notional = accounts
                .iter()
                .map(|a| {
                    a.base_qty.unsigned_abs() as u128 * prices[0] as u128 / crate::ONE_USD as u128
                })
                .sum();
            let o = engine::run(&accounts, &prices, &market, insurance, Mode::Liquidate)?;
            rows.push(Row {
                scenario: name.to_string(),
                dynamic,
                open_notional,
                liquidations: o.liquidations,
                bankruptcies: o.bankruptcies,
                deficit: o.deficit,
                insurance_paid: o.insurance_paid,
                max_print_liquidations: o.max_print_liquidations,
            });
        }
    }
    Ok(rows)
}

/// The comparison as a Markdown table (what the README shows).
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| scenario | margins | open notional (USDC) | liquidations | largest one-print cascade | bankruptcies | insurance paid (USDC) | deficit (USDC) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            if r.dynamic { "dynamic" } else { "static" },
            usd(r.open_notional.min(i128::MAX as u128) as i128),
            r.liquidations,
            r.max_print_liquidations,
            r.bankruptcies,
            usd(r.insurance_paid as i128),
            usd(r.deficit as i128),
        );
    }
    s
}

/// A grouped bar chart: per scenario, the deficit and the largest one-print cascade under
/// static and dynamic margins (each panel on its own scale).
pub fn chart(rows: &[Row]) -> String {
    let scenarios: Vec<&str> = SCENARIOS.iter().map(|s| s.0).collect();
    let (pw, ph) = (440.0, 260.0);
    let (w, h) = (pw * 2.0 + 40.0, ph + 90.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="20" y="22" font-size="15">Static (grey) vs dynamic (green) margins, same traders</text>"##
    );
    type Panel = (&'static str, fn(&Row) -> f64);
    let panels: [Panel; 2] = [
        ("deficit after insurance (USDC)", |r| r.deficit as f64 / 1e6),
        ("largest one-print cascade (accounts)", |r| {
            f64::from(r.max_print_liquidations)
        }),
    ];
    for (p, (title, value)) in panels.iter().enumerate() {
        let x0 = 20.0 + p as f64 * (pw + 20.0);
        let (top, bottom) = (60.0, 40.0 + ph);
        let max = rows.iter().map(value).fold(1.0_f64, f64::max);
        let _ = write!(
            s,
            r##"<text x="{x0}" y="48">{title}</text><line x1="{x0}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333"/>"##,
            x0 + pw
        );
        let group = pw / scenarios.len() as f64;
        for (g, name) in scenarios.iter().enumerate() {
            for (k, dynamic) in [false, true].into_iter().enumerate() {
                let Some(r) = rows
                    .iter()
                    .find(|r| r.scenario == *name && r.dynamic == dynamic)
                else {
                    continue;
                };
                let v = value(r);
                let bh = (bottom - top) * v / max;
                let x = x0 + g as f64 * group + 10.0 + k as f64 * (group - 20.0) / 2.0;
                let bw = (group - 20.0) / 2.0 - 4.0;
                let color = if dynamic { "#1b9e77" } else { "#999999" };
                let label = if v >= 1e3 {
                    format!("{:.0}k", v / 1e3)
                } else {
                    format!("{v:.0}")
                };
                let _ = write!(
                    s,
                    r##"<rect x="{x:.1}" y="{:.1}" width="{bw:.1}" height="{bh:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{label}</text>"##,
                    bottom - bh,
                    x + bw / 2.0,
                    bottom - bh - 3.0
                );
            }
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{name}</text>"##,
                x0 + g as f64 * group + group / 2.0,
                bottom + 16.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
