//! One simulation end to end, and its table.

use anyhow::Result;
use serde::Serialize;

use crate::engine::{self, Mode};
use crate::policy::{self, Policy, PolicyReport};
use crate::{usd, Account, Market};

/// Everything a run produced; serializes to the `--output json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: Option<u64>,
    pub accounts: usize,
    /// Prices along the path (USDC per base unit, decimal strings).
    pub prices: Vec<String>,
    pub market: Market,
    pub insurance_start: u64,
    pub liquidations: u32,
    pub bankruptcies: u32,
    /// Losses beyond capital, before insurance.
    pub bankrupt_loss: u64,
    /// Left after insurance: what every policy must allocate.
    pub deficit: u64,
    /// Σ positive PnL at the final price, before allocation.
    pub total_positive_pnl: u64,
    pub accounts_in_profit: u64,
    pub policies: Vec<PolicyReport>,
    /// Per account signed PnL at the final price (for charts), atoms.
    #[serde(skip)]
    pub pnl: Vec<i128>,
}

/// What to simulate.
pub struct Inputs {
    pub scenario: String,
    pub seed: Option<u64>,
    pub population: Vec<Account>,
    pub prices: Vec<u64>,
    pub market: Market,
    /// Insurance fund at the start, atoms.
    pub insurance: u64,
    pub rate_cap_bps: u16,
}

pub fn simulate(i: &Inputs) -> Result<Report> {
    let base = engine::run(
        &i.population,
        &i.prices,
        &i.market,
        i.insurance,
        Mode::Liquidate,
    )?;
    let adl = engine::run(&i.population, &i.prices, &i.market, i.insurance, Mode::Adl)?;
    let profit = policy::profits(&base, &i.market)?;
    let policies = Policy::all(i.rate_cap_bps)
        .into_iter()
        .map(|p| policy::apply(p, &base, &adl, &profit, &i.market))
        .collect::<Result<Vec<_>>>()?;
    Ok(Report {
        scenario: i.scenario.clone(),
        seed: i.seed,
        accounts: i.population.len(),
        prices: i
            .prices
            .iter()
            .map(|p| backstop_client::view::format_price(*p, 6, 6, 2))
            .collect(),
        market: i.market,
        insurance_start: i.insurance,
        liquidations: base.liquidations,
        bankruptcies: base.bankruptcies,
        bankrupt_loss: base.bankrupt_loss,
        deficit: base.deficit,
        total_positive_pnl: profit.iter().sum(),
        accounts_in_profit: profit.iter().filter(|p| **p > 0).count() as u64,
        pnl: policy::pnl_of(&base, &i.market)?,
        policies,
    })
}

fn pct(bps: Option<u64>) -> String {
    bps.map_or("-".into(), |b| format!("{}.{:02}%", b / 100, b % 100))
}

/// The terminal table.
pub fn table(r: &Report) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "scenario {} ({} accounts{}), prices {}",
        r.scenario,
        r.accounts,
        r.seed.map_or(String::new(), |s| format!(", seed {s}")),
        r.prices.join(" → ")
    );
    let _ = writeln!(
        o,
        "liquidations {}, bankruptcies {}; loss beyond capital {} USDC, insurance fund {} USDC → deficit {} USDC",
        r.liquidations,
        r.bankruptcies,
        usd(r.bankrupt_loss as i128),
        usd(r.insurance_start as i128),
        usd(r.deficit as i128)
    );
    let _ = writeln!(
        o,
        "positive PnL before allocation: {} USDC over {} accounts\n",
        usd(r.total_positive_pnl as i128),
        r.accounts_in_profit
    );
    let _ = writeln!(
        o,
        "{:<27} {:>16} {:>14} {:>14} {:>9} {:>14} {:>14} {:>11} {:>7} {:>6}",
        "policy",
        "collected",
        "overshoot",
        "shortfall",
        "charged",
        "to losers",
        "to principal",
        "max/profit",
        "Gini",
        "rounds"
    );
    for p in &r.policies {
        let _ = writeln!(
            o,
            "{:<27} {:>16} {:>14} {:>14} {:>9} {:>14} {:>14} {:>11} {:>7} {:>6}",
            p.policy,
            usd(p.collected as i128),
            usd(p.overshoot as i128),
            usd(p.shortfall as i128),
            p.accounts_charged,
            usd(p.charged_to_losers as i128),
            usd(p.charged_to_principal as i128),
            pct(p.max_charge_of_profit_bps),
            p.gini_bps
                .map_or("-".into(), |g| format!("{}.{:04}", g / 10_000, g % 10_000)),
            p.rounds
        );
    }
    let _ = writeln!(
        o,
        "\nUSDC. overshoot: taken beyond the deficit (for the ADL queue: value lost closing at the bankruptcy price instead of the mark, beyond the deficit). \
max/profit: the largest charge as a share of that account's positive PnL. Gini: of charge ÷ positive PnL over accounts in profit (0 = all pay the same share)."
    );
    o
}
