//! Allocation policies and the figures that compare them.

use anyhow::Result;
use backstop::math::clawback::{
    allocate, capital_weight, profit_weight, Basis, Policy as ProgramPolicy,
};
use serde::Serialize;

use crate::engine::Outcome;
use crate::{health, math, positive_pnl, total_pnl, Account, Market};

/// The policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Backstop `ProfitProRata`, rate cap in bps (10,000 = uncapped), rounds until paid.
    Backstop { rate_cap_bps: u16 },
    /// Backstop `LeverageWeighted`, uncapped.
    LeverageWeighted,
    /// Auto-deleveraging queue (BitMEX/Bybit): see `engine::Mode::Adl`.
    Adl,
    /// Open-interest socialization per base atom, both sides (Mango/Drift perp).
    OpenInterest,
    /// Deposit haircut pro rata on capital (Mango token bank).
    DepositHaircut,
    /// OKEx 2018: one rate on all positive profit, published rounded up to 0.01%, never
    /// principal.
    OkexClawback,
}

impl Policy {
    pub fn name(&self) -> String {
        match self {
            Policy::Backstop {
                rate_cap_bps: 10_000,
            } => "backstop".into(),
            Policy::Backstop { rate_cap_bps } => format!("backstop-cap-{}pct", rate_cap_bps / 100),
            Policy::LeverageWeighted => "backstop-leverage-weighted".into(),
            Policy::Adl => "adl-queue".into(),
            Policy::OpenInterest => "oi-socialization".into(),
            Policy::DepositHaircut => "deposit-haircut".into(),
            Policy::OkexClawback => "okex-clawback".into(),
        }
    }
    pub fn description(&self) -> &'static str {
        match self {
            Policy::Backstop { rate_cap_bps: 10_000 } => "ProfitProRata clawback, uncapped: positive PnL pro rata, principal only once no profit is left",
            Policy::Backstop { .. } => "ProfitProRata clawback with a per-round rate cap, rounds until the deficit is paid",
            Policy::LeverageWeighted => "LeverageWeighted clawback: profit weighted by 1 + leverage, charge capped at the profit",
            Policy::Adl => "ADL queue: bankrupt positions closed against the opposite side ranked by PnL% x leverage, at the bankruptcy price",
            Policy::OpenInterest => "open-interest socialization: the deficit per base lot, charged to longs and shorts alike",
            Policy::DepositHaircut => "deposit haircut: the deficit pro rata on every account's capital",
            Policy::OkexClawback => "OKEx 2018: one published rate (rounded up to 0.01%) on all positive profit, uncapped, never principal",
        }
    }
    /// The default line-up.
    pub fn all(rate_cap_bps: u16) -> Vec<Policy> {
        vec![
            Policy::Backstop {
                rate_cap_bps: 10_000,
            },
            Policy::Backstop { rate_cap_bps },
            Policy::LeverageWeighted,
            Policy::Adl,
            Policy::OpenInterest,
            Policy::DepositHaircut,
            Policy::OkexClawback,
        ]
    }
}

/// One policy's result. Amounts in collateral atoms.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub policy: String,
    pub description: String,
    /// The deficit left after insurance in the liquidation run (the minimal haircut).
    pub deficit: u64,
    /// Insurance paid out in this policy's run.
    pub insurance_paid: u64,
    /// Taken from accounts (for ADL: value lost closing at the bankruptcy price).
    pub collected: u64,
    /// collected − deficit when positive.
    pub overshoot: u64,
    /// Left unpaid: deficit − collected when positive; for the ADL queue, what its run
    /// could not deleverage (it pays bankruptcies from insurance while insurance lasts, so
    /// it may collect less than the deficit yet leave nothing unpaid).
    pub shortfall: u64,
    pub accounts_charged: u64,
    /// Taken from accounts with no positive PnL.
    pub charged_to_losers: u64,
    /// Taken beyond each account's positive PnL.
    pub charged_to_principal: u64,
    /// Largest charge ÷ that account's positive PnL, in bps (None: nobody in profit).
    pub max_charge_of_profit_bps: Option<u64>,
    /// Gini coefficient of charge ÷ positive PnL over accounts in profit, in bps
    /// (0 = everyone gives up the same share of profit).
    pub gini_bps: Option<u64>,
    /// Clawback rounds (Backstop policies), else 1.
    pub rounds: u32,
    /// Per account (by index).
    #[serde(skip)]
    pub charges: Vec<u64>,
}

/// Positive PnL per account at the final price, before any allocation: the baseline every
/// policy's figures are measured against (computed once per run).
pub fn profits(o: &Outcome, m: &Market) -> Result<Vec<u64>> {
    o.accounts
        .iter()
        .map(|a| positive_pnl(a, o.final_price, m))
        .collect()
}

/// Allocates `base.deficit` (from the liquidation run) under `policy`. `adl` is the ADL
/// run's outcome (needed for `Policy::Adl`); `profit` is [`profits`] of `base`.
pub fn apply(
    policy: Policy,
    base: &Outcome,
    adl: &Outcome,
    profit: &[u64],
    m: &Market,
) -> Result<PolicyReport> {
    let price = base.final_price;
    let d = base.deficit;
    // ADL leaves unpaid only what its own run could not deleverage.
    let unpaid_override = matches!(policy, Policy::Adl).then_some(adl.deficit);
    let (charges, rounds, insurance_paid) = match policy {
        Policy::Backstop { rate_cap_bps } => {
            let (c, r) = clawback(
                &base.accounts,
                d,
                price,
                m,
                ProgramPolicy::ProfitProRata,
                rate_cap_bps,
            )?;
            (c, r, base.insurance_paid)
        }
        Policy::LeverageWeighted => {
            let (c, r) = clawback(
                &base.accounts,
                d,
                price,
                m,
                ProgramPolicy::LeverageWeighted,
                10_000,
            )?;
            (c, r, base.insurance_paid)
        }
        Policy::Adl => (adl.adl_charges.clone(), 1, adl.insurance_paid),
        Policy::OpenInterest => {
            let w: Vec<u128> = base
                .accounts
                .iter()
                .map(|a| a.base_qty.unsigned_abs() as u128)
                .collect();
            let room: Vec<u64> = base
                .accounts
                .iter()
                .map(|a| equity(a, price, m))
                .collect::<Result<_>>()?;
            (pro_rata(d, &w, &room), 1, base.insurance_paid)
        }
        Policy::DepositHaircut => {
            let w: Vec<u128> = base.accounts.iter().map(|a| a.capital as u128).collect();
            let room: Vec<u64> = base.accounts.iter().map(|a| a.capital).collect();
            (pro_rata(d, &w, &room), 1, base.insurance_paid)
        }
        Policy::OkexClawback => {
            let total: u128 = profit.iter().map(|p| *p as u128).sum();
            // The published rate, rounded up to a basis point, at most 100%.
            let rate_bps = if total == 0 {
                0
            } else {
                ((d as u128 * 10_000).div_ceil(total)).min(10_000)
            };
            let c = profit
                .iter()
                .map(|p| ((*p as u128 * rate_bps).div_ceil(10_000)).min(*p as u128) as u64)
                .collect();
            (c, 1, base.insurance_paid)
        }
    };
    let mut r = summarize(policy, d, insurance_paid, charges, profit, rounds);
    if let Some(unpaid) = unpaid_override {
        r.shortfall = unpaid;
    }
    Ok(r)
}

/// Backstop rounds with the program's own weights and `allocate`, until the deficit is
/// paid or nothing is left to charge. Returns per-account charges and the round count.
fn clawback(
    accounts: &[Account],
    deficit: u64,
    price: u64,
    m: &Market,
    policy: ProgramPolicy,
    rate_cap_bps: u16,
) -> Result<(Vec<u64>, u32)> {
    let mut accts = accounts.to_vec();
    // Positions do not move during a round, so their marks are computed once; charges
    // then lower pnl (profit basis) or capital (capital basis), and equity with them.
    let marks = accts
        .iter()
        .map(|a| health(a, price, m).map_err(math))
        .collect::<Result<Vec<_>>>()?;
    let mut charges = vec![0u64; accts.len()];
    let mut left = deficit;
    let mut rounds = 0;
    while left > 0 && rounds < 100_000 {
        let weights = accts
            .iter()
            .zip(&marks)
            .zip(&charges)
            .map(|((a, h), c)| {
                let equity = h.equity - *c as i128;
                let p =
                    profit_weight(policy, a.pnl, h.unrealized, h.notional, equity).map_err(math)?;
                Ok((p, capital_weight(a.capital)))
            })
            .collect::<Result<Vec<_>>>()?;
        let alloc = allocate(left, &weights, rate_cap_bps).map_err(math)?;
        if alloc.collected == 0 {
            break;
        }
        for (i, c) in alloc.charges.iter().enumerate() {
            match alloc.basis {
                Basis::Profit => accts[i].pnl -= *c as i64,
                Basis::Capital => accts[i].capital -= *c,
            }
            charges[i] += *c;
        }
        left = alloc.remaining_deficit;
        rounds += 1;
    }
    Ok((charges, rounds))
}

/// ⌈deficit · wᵢ / Σw⌉, each at most `room[i]` (an account cannot pay more than it has).
fn pro_rata(deficit: u64, w: &[u128], room: &[u64]) -> Vec<u64> {
    let total: u128 = w.iter().sum();
    w.iter()
        .zip(room)
        .map(|(wi, r)| {
            if total == 0 {
                0
            } else {
                ((deficit as u128 * wi).div_ceil(total)).min(*r as u128) as u64
            }
        })
        .collect()
}

fn equity(a: &Account, price: u64, m: &Market) -> Result<u64> {
    let h = health(a, price, m).map_err(math)?;
    Ok(h.equity.max(0) as u64)
}

fn summarize(
    policy: Policy,
    deficit: u64,
    insurance_paid: u64,
    charges: Vec<u64>,
    profit: &[u64],
    rounds: u32,
) -> PolicyReport {
    let collected: u64 = charges.iter().sum();
    let mut ratios = vec![];
    let mut max_bps: Option<u64> = None;
    let (mut losers, mut principal, mut charged) = (0u64, 0u64, 0u64);
    for (c, p) in charges.iter().zip(profit) {
        if *c > 0 {
            charged += 1;
        }
        if *p == 0 {
            losers += c;
        }
        principal += c.saturating_sub(*p);
        if *p > 0 {
            let bps = (*c as u128 * 10_000).div_ceil(*p as u128) as u64;
            max_bps = Some(max_bps.map_or(bps, |m| m.max(bps)));
            ratios.push(*c as f64 / *p as f64);
        }
    }
    PolicyReport {
        policy: policy.name(),
        description: policy.description().into(),
        deficit,
        insurance_paid,
        collected,
        overshoot: collected.saturating_sub(deficit),
        shortfall: deficit.saturating_sub(collected),
        accounts_charged: charged,
        charged_to_losers: losers,
        charged_to_principal: principal,
        max_charge_of_profit_bps: max_bps,
        gini_bps: gini(&mut ratios).map(|g| (g * 10_000.0).round() as u64),
        rounds,
        charges,
    }
}

/// Gini coefficient of non-negative values (None for none, 0 when all are zero).
pub fn gini(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len() as f64;
    let sum: f64 = v.iter().sum();
    if sum == 0.0 {
        return Some(0.0);
    }
    let weighted: f64 = v
        .iter()
        .enumerate()
        .map(|(i, x)| (i as f64 + 1.0) * x)
        .sum();
    Some(((2.0 * weighted) / (n * sum) - (n + 1.0) / n).max(0.0))
}

/// Signed PnL per account at the final price (for charts and CSV).
pub fn pnl_of(o: &Outcome, m: &Market) -> Result<Vec<i128>> {
    o.accounts
        .iter()
        .map(|a| total_pnl(a, o.final_price, m))
        .collect()
}
