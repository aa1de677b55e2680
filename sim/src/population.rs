//! Populations (generated from a seed, or read from CSV) and price paths (named
//! scenarios, or CSV).

use anyhow::{bail, Context, Result};
use backstop::math::trade::taker_quote;

use crate::{math, Account, BASE, ONE_USD, USDC};

/// SplitMix64: a small, portable, seedable generator — the same seed gives the same
/// population on every machine (no floating point, no platform RNG).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0), by rejection (no modulo bias).
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// `n` accounts trading one perp at `price`, from `seed`:
/// - capital: heavy-tailed — 100 USDC × 1000/(1+U) with U uniform in 0..1000, plus up
///   to 99 USDC (most accounts small, a few whales up to ~100,000 USDC);
/// - leverage: 1–3x for half the accounts, 3–7x for 35%, 7–9.5x for 15% (IM is 10%);
/// - side: long or short with equal odds; entry within ±3% of `price` (so accounts start
///   with small gains and losses);
/// - account 0 is a market maker holding the open-interest imbalance at ~2x (or at its
///   initial margin, if more), so longs and shorts balance exactly, as on an exchange;
/// - no position exceeds what `m`'s initial margin allows at entry: under dynamic margins
///   the largest traders open smaller positions for the same capital (the same draws,
///   so the static and dynamic populations are the same traders).
pub fn generate(n: usize, seed: u64, price: u64, m: &crate::Market) -> Result<Vec<Account>> {
    if n < 2 {
        bail!("a population needs at least 2 accounts (a market maker and a trader)");
    }
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    out.push(Account {
        id: 0,
        capital: 0,
        pnl: 0,
        base_qty: 0,
        quote_basis: 0,
    });
    let mut net: i128 = 0;
    for id in 1..n as u32 {
        let capital = (100 * 1_000 / (1 + rng.below(1_000)) + rng.below(100)) * USDC;
        let r = rng.below(100);
        let lev_tenths = if r < 50 {
            10 + rng.below(21)
        } else if r < 85 {
            30 + rng.below(41)
        } else {
            70 + rng.below(26)
        };
        let entry = (price as u128 * (9_700 + rng.below(601)) as u128 / 10_000) as u64;
        let long = rng.below(2) == 0;
        // base = capital · leverage / entry (atoms; rounded down).
        let base =
            (capital as u128 * lev_tenths as u128 * ONE_USD as u128 / (10 * entry as u128)) as i64;
        let base = within_initial_margin(base, entry, capital, m)?;
        let base = if long { base } else { -base };
        net += base as i128;
        out.push(Account {
            id,
            capital,
            pnl: 0,
            base_qty: base,
            quote_basis: taker_quote(base, entry).map_err(math)?,
        });
    }
    let mm_base = i64::try_from(-net).context("open interest too large")?;
    let mm_notional = (mm_base.unsigned_abs() as u128 * price as u128 / ONE_USD as u128) as u64;
    let (mm_im, _) = m.rates(mm_base).map_err(math)?;
    let mm_margin = (mm_notional as u128 * mm_im as u128).div_ceil(10_000) as u64;
    out[0].capital = (mm_notional / 2).max(mm_margin) + 10_000 * USDC;
    out[0].base_qty = mm_base;
    out[0].quote_basis = taker_quote(mm_base, price).map_err(math)?;
    Ok(out)
}

/// The largest size up to `base` (atoms, ≥ 0) whose initial margin at `entry` under `m`'s
/// size-scaled rate fits `capital`: a bisection (the requirement grows with size).
fn within_initial_margin(base: i64, entry: u64, capital: u64, m: &crate::Market) -> Result<i64> {
    let fits = |b: i64| -> Result<bool> {
        let (im, _) = m.rates(b).map_err(math)?;
        let notional = (b as u128 * entry as u128).div_ceil(ONE_USD as u128);
        Ok(notional * im as u128 <= capital as u128 * 10_000)
    };
    if fits(base)? {
        return Ok(base);
    }
    let (mut lo, mut hi) = (0i64, base); // fits(lo), !fits(hi)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// Reads accounts from CSV with a header `capital,base,entry_price` (decimal USDC, signed
/// decimal base units, decimal USDC per base unit), one account per line.
pub fn from_csv(text: &str) -> Result<Vec<Account>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = lines.next().map(|(_, l)| l.trim().to_ascii_lowercase());
    if header.as_deref() != Some("capital,base,entry_price") {
        bail!("the population CSV must start with the header `capital,base,entry_price`");
    }
    let mut out = vec![];
    for (i, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let [capital, base, entry] = f[..] else {
            bail!("line {}: expected 3 fields, found {}", i + 1, f.len());
        };
        let at = |what: &str, e: String| anyhow::anyhow!("line {}: {what}: {e}", i + 1);
        let capital =
            backstop_client::view::parse_scaled(capital, 6).map_err(|e| at("capital", e))?;
        let (neg, b) = match base.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, base),
        };
        let b = backstop_client::view::parse_scaled(b, 6).map_err(|e| at("base", e))?;
        let b = i64::try_from(b).map_err(|_| at("base", "too large".into()))?;
        let base = if neg { -b } else { b };
        let entry =
            backstop_client::view::parse_scaled(entry, 9).map_err(|e| at("entry_price", e))?;
        if entry == 0 && base != 0 {
            bail!("line {}: entry_price must be positive", i + 1);
        }
        out.push(Account {
            id: out.len() as u32,
            capital,
            pnl: 0,
            base_qty: base,
            quote_basis: taker_quote(base, entry).map_err(math)?,
        });
    }
    if out.is_empty() {
        bail!("the population CSV has no accounts");
    }
    let net: i128 = out.iter().map(|a| a.base_qty as i128).sum();
    if net != 0 {
        bail!(
            "longs and shorts must balance (every position has a counterparty); the base column sums to {}",
            backstop_client::view::format_scaled(net, 6, 6)
        );
    }
    Ok(out)
}

/// Named price paths, in whole USDC per base unit, starting at 100.
pub const SCENARIOS: &[(&str, &str, &[u64])] = &[
    (
        "gap-20",
        "a 20% gap down in one print (most bad debt)",
        &[100, 80],
    ),
    (
        "crash-30",
        "a 30% slide over five prints",
        &[100, 95, 88, 80, 75, 70],
    ),
    (
        "squeeze-25",
        "a 25% short squeeze over three prints",
        &[100, 110, 118, 125],
    ),
    ("whipsaw", "a 20% gap down, then back to 95", &[100, 80, 95]),
];

/// A named scenario's prices (fixed point).
pub fn scenario(name: &str) -> Result<Vec<u64>> {
    let (_, _, p) = SCENARIOS
        .iter()
        .find(|(n, _, _)| *n == name)
        .with_context(|| {
            format!(
                "unknown scenario {name:?}; choose one of: {}",
                SCENARIOS.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
            )
        })?;
    Ok(p.iter().map(|usd| usd * ONE_USD).collect())
}

/// A price path from CSV: one decimal price (USDC per base unit) per line; an optional
/// `price` header.
pub fn prices_from_csv(text: &str) -> Result<Vec<u64>> {
    let mut out = vec![];
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || (i == 0 && l.eq_ignore_ascii_case("price")) {
            continue;
        }
        let p = backstop_client::view::parse_scaled(l, 9)
            .map_err(|e| anyhow::anyhow!("price line {}: {e}", i + 1))?;
        if p == 0 {
            bail!("price line {}: prices must be positive", i + 1);
        }
        out.push(p);
    }
    if out.len() < 2 {
        bail!("a price path needs a starting price and at least one move");
    }
    Ok(out)
}

/// Base units as atoms (for tests and fixtures).
pub fn base(units: i64) -> i64 {
    units * BASE
}
