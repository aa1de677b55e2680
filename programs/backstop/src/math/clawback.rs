//! Clawback allocation (docs/DESIGN.md §6): weights, the round's rate and each account's charge.
//!
//! The rate is kept as an exact rational `num/den` — never a rounded decimal — so each
//! charge is `min(⌈w · num / den⌉, cap)`, which depends only on the account's own weight
//! and the round's rate: the result cannot depend on the order accounts are cranked.
//! Rounding each charge up makes Σ charges ≥ min(deficit, r·Σw) by less than one atom per
//! account; the program moves that excess to the insurance fund, explicitly.

use super::safe::{cast, MathError, MathResult, SafeMath};
use crate::constants::BPS_DENOMINATOR;

/// How weights are computed in the profit basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// wᵢ = max(0, pnl + unrealized).
    ProfitProRata,
    /// wᵢ = max(0, pnl + unrealized) · (1 + leverage), charge still capped at positive PnL.
    LeverageWeighted,
}

/// What a round charges: positive PnL, or — only when no account has any — principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Profit,
    Capital,
}

/// One account's standing in a round: its weight and the most it can be charged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Weight {
    pub weight: u128,
    pub cap: u64,
}

/// Exact rate `num/den` ≤ 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub num: u128,
    pub den: u128,
}

impl Rate {
    pub const ZERO: Rate = Rate { num: 0, den: 1 };
}

/// Positive PnL of an account: max(0, pnl + unrealized), as u64.
pub fn positive_pnl(pnl: i64, unrealized: i128) -> MathResult<u64> {
    let total = (pnl as i128).safe_add(unrealized)?;
    if total <= 0 {
        Ok(0)
    } else {
        cast(total)
    }
}

/// Profit-basis weight of an account under `policy`.
///
/// LeverageWeighted: w = p + ⌊p · notional / equity⌋ with p the positive PnL. Weights only
/// split the deficit between accounts (the rate normalizes them), so rounding a weight
/// down shifts at most one atom-share between accounts and never changes the total.
pub fn profit_weight(
    policy: Policy,
    pnl: i64,
    unrealized: i128,
    notional: u128,
    equity: i128,
) -> MathResult<Weight> {
    let p = positive_pnl(pnl, unrealized)?;
    let weight = match policy {
        Policy::ProfitProRata => p as u128,
        Policy::LeverageWeighted => {
            if p == 0 || equity <= 0 {
                p as u128
            } else {
                let eq: u128 = cast(equity)?;
                (p as u128).safe_add((p as u128).safe_mul(notional)?.safe_div(eq)?)?
            }
        }
    };
    Ok(Weight { weight, cap: p })
}

/// Capital-basis weight: the account's principal.
pub fn capital_weight(capital: u64) -> Weight {
    Weight {
        weight: capital as u128,
        cap: capital,
    }
}

/// The round's rate r = min(rate_cap, deficit / Σw). Zero when Σw = 0 or deficit = 0.
pub fn round_rate(deficit: u64, total_weight: u128, rate_cap_bps: u16) -> MathResult<Rate> {
    if total_weight == 0 || deficit == 0 {
        return Ok(Rate::ZERO);
    }
    if rate_cap_bps as u64 > BPS_DENOMINATOR {
        return Err(MathError::InvalidInput);
    }
    // deficit/Σw ≤ cap/10⁴  ⇔  deficit · 10⁴ ≤ cap · Σw
    let uncapped = (deficit as u128).safe_mul(BPS_DENOMINATOR as u128)?
        <= (rate_cap_bps as u128).safe_mul(total_weight)?;
    if uncapped {
        Ok(Rate {
            num: deficit as u128,
            den: total_weight,
        })
    } else {
        Ok(Rate {
            num: rate_cap_bps as u128,
            den: BPS_DENOMINATOR as u128,
        })
    }
}

/// One account's charge: cᵢ = min(⌈wᵢ · r⌉, capᵢ) — rounded up, in the pool's favour.
pub fn charge(w: Weight, rate: Rate) -> MathResult<u64> {
    if rate.den == 0 {
        return Err(MathError::DivisionByZero);
    }
    let c = w.weight.safe_mul(rate.num)?.div_ceil(rate.den);
    Ok(c.min(w.cap as u128) as u64)
}

/// Result of allocating a deficit across a population in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub basis: Basis,
    pub rate: Rate,
    pub total_weight: u128,
    pub charges: Vec<u64>,
    /// Σ charges.
    pub collected: u64,
    /// Part of `collected` that reduces the deficit: min(collected, deficit).
    pub to_deficit: u64,
    /// Rounding excess moved to the insurance fund: collected − to_deficit.
    pub to_insurance: u64,
    /// Deficit left for another round (rate cap, or too little weight).
    pub remaining_deficit: u64,
}

/// Allocates `deficit` over accounts given as (profit weight, capital weight) pairs, the
/// way one on-chain round does: profit basis when Σ profit weight > 0, else capital basis.
pub fn allocate(
    deficit: u64,
    accounts: &[(Weight, Weight)],
    rate_cap_bps: u16,
) -> MathResult<Allocation> {
    let profit_total = accounts
        .iter()
        .try_fold(0u128, |acc, (p, _)| acc.safe_add(p.weight))?;
    let basis = if profit_total > 0 {
        Basis::Profit
    } else {
        Basis::Capital
    };
    let pick = |a: &(Weight, Weight)| match basis {
        Basis::Profit => a.0,
        Basis::Capital => a.1,
    };
    let total_weight = accounts
        .iter()
        .try_fold(0u128, |acc, a| acc.safe_add(pick(a).weight))?;
    let rate = round_rate(deficit, total_weight, rate_cap_bps)?;
    let charges = accounts
        .iter()
        .map(|a| charge(pick(a), rate))
        .collect::<MathResult<Vec<u64>>>()?;
    let collected = charges.iter().try_fold(0u64, |acc, c| acc.safe_add(*c))?;
    let to_deficit = collected.min(deficit);
    Ok(Allocation {
        basis,
        rate,
        total_weight,
        charges,
        collected,
        to_deficit,
        to_insurance: collected.safe_sub(to_deficit)?,
        remaining_deficit: deficit.safe_sub(to_deficit)?,
    })
}

#[cfg(test)]
mod tests;
