//! Off-chain views of an exchange computed with the program's own code: oracle accounts
//! are decoded by `backstop::oracle`, prices guarded and converted by
//! `backstop::math::oracle_price`, health by `backstop::math::health` through the
//! program's `PriceCache`. The CLI and the keeper show and act on exactly what the
//! program would compute at the same prices.

use anchor_lang::prelude::Pubkey;
use backstop::math::health::Health;
use backstop::math::oracle_price::{self, FixedPrice, RawPrice, Rejection, ValuedPrice};
use backstop::oracle::PriceCache;
use backstop::state::{MarginAccount, OracleKind, PerpMarket};

/// Decodes a market's oracle account (owner + data as read over RPC) exactly as the
/// program does: owner, type, exchange (feeds) and feed id (Pyth). No freshness checks.
pub fn decode_oracle(
    market: &PerpMarket,
    oracle_owner: &Pubkey,
    oracle_data: &[u8],
) -> Result<RawPrice, String> {
    decode_oracle_kind(
        market.oracle_kind,
        &market.exchange,
        &market.pyth_feed_id,
        oracle_owner,
        oracle_data,
    )
}

/// [`decode_oracle`] for a market that does not exist yet.
pub fn decode_oracle_kind(
    kind: OracleKind,
    exchange: &Pubkey,
    pyth_feed_id: &[u8; 32],
    oracle_owner: &Pubkey,
    oracle_data: &[u8],
) -> Result<RawPrice, String> {
    backstop::oracle::decode_oracle_data(oracle_owner, oracle_data, kind, exchange, pyth_feed_id)
        .map_err(|e| e.to_string())
}

/// A market and the last oracle reading seen for it.
#[derive(Debug, Clone)]
pub struct MarketState {
    pub address: Pubkey,
    pub market: PerpMarket,
    /// The decoded oracle, or why it could not be decoded.
    pub oracle: Result<RawPrice, String>,
}

impl MarketState {
    /// The market's name without padding.
    pub fn name(&self) -> String {
        market_name(&self.market)
    }

    /// The oracle price guarded as the program guards it at `now` (sign, age,
    /// confidence) and converted to fixed point.
    pub fn price(&self, quote_decimals: u8, now: i64) -> Result<FixedPrice, PriceProblem> {
        let raw = self
            .oracle
            .as_ref()
            .map_err(|e| PriceProblem::Undecodable(e.clone()))?;
        let p = &self.market.params;
        oracle_price::check(raw, now, p.oracle_max_age_secs, p.oracle_max_conf_bps)
            .map_err(PriceProblem::Rejected)?;
        oracle_price::to_fixed(raw, quote_decimals, self.market.base_decimals)
            .map_err(|_| PriceProblem::Rejected(Rejection::Unrepresentable))
    }

    /// The price the program values positions at `now`: the guarded price, or its
    /// conservative stand-in when a guard fails (`degraded`).
    pub fn valued_price(&self, quote_decimals: u8, now: i64) -> Result<ValuedPrice, PriceProblem> {
        let raw = self
            .oracle
            .as_ref()
            .map_err(|e| PriceProblem::Undecodable(e.clone()))?;
        let p = &self.market.params;
        oracle_price::valued(
            raw,
            now,
            p.oracle_max_age_secs,
            p.oracle_max_conf_bps,
            quote_decimals,
            self.market.base_decimals,
            self.market.last_price,
        )
        .map_err(PriceProblem::Rejected)
    }
}

/// (market, oracle) pairs for every market `account` holds a position in: the remaining
/// accounts the program expects.
pub fn pairs_for(markets: &[MarketState], account: &MarginAccount) -> Vec<(Pubkey, Pubkey)> {
    account
        .positions
        .iter()
        .filter(|p| p.active)
        .filter_map(|p| markets.iter().find(|m| m.market.index == p.market_index))
        .map(|m| (m.address, m.market.oracle))
        .collect()
}

pub fn market_name(m: &PerpMarket) -> String {
    let end = m.name.iter().position(|b| *b == 0).unwrap_or(m.name.len());
    String::from_utf8_lossy(&m.name[..end]).into_owned()
}

/// Why a market has no usable price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceProblem {
    Undecodable(String),
    Rejected(Rejection),
}

impl std::fmt::Display for PriceProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriceProblem::Undecodable(e) => write!(f, "oracle account unreadable: {e}"),
            PriceProblem::Rejected(Rejection::NonPositive) => write!(f, "oracle price ≤ 0"),
            PriceProblem::Rejected(Rejection::Stale) => write!(f, "oracle price stale"),
            PriceProblem::Rejected(Rejection::ConfidenceTooWide) => {
                write!(f, "oracle confidence too wide")
            }
            PriceProblem::Rejected(Rejection::Unrepresentable) => {
                write!(f, "oracle price unrepresentable")
            }
        }
    }
}

/// The program's price cache at `now`: every market whose price passes the guards, and —
/// valued conservatively, as the program values them (`oracle_price::valued`) — those
/// whose price is stale, too uncertain or unusable but has a stand-in; plus every market
/// with a price problem and the reason (degraded ones included).
pub fn price_cache(
    markets: &[MarketState],
    quote_decimals: u8,
    now: i64,
) -> (PriceCache, Vec<(u16, PriceProblem)>) {
    let mut cache = PriceCache::default();
    let mut problems = vec![];
    for m in markets {
        if let Err(e) = m.price(quote_decimals, now) {
            problems.push((m.market.index, e));
        }
        if let Ok(v) = m.valued_price(quote_decimals, now) {
            cache.insert_valued(&m.market, v);
        }
    }
    (cache, problems)
}

/// Health of `account` at the cached prices; `None` when a market it holds has no
/// usable price (the program would refuse to act on it too).
pub fn health(cache: &PriceCache, account: &MarginAccount) -> Option<Health> {
    cache.health(account).ok()
}

/// Converts a fixed-point price (quote atoms per base atom · 10⁹) to quote units per
/// whole base unit, as a decimal string with up to `places` decimals (rounded down).
pub fn format_price(fixed: u64, quote_decimals: u8, base_decimals: u8, places: u32) -> String {
    let scale =
        quote_decimals as i32 + backstop::constants::PRICE_DECIMALS as i32 - base_decimals as i32;
    format_scaled(fixed as i128, scale, places)
}

/// `value / 10^scale` as a decimal string with at most `places` decimals (rounded toward
/// zero) and trailing zeros kept to `places` (e.g. amounts `1.500000`).
pub fn format_scaled(value: i128, scale: i32, places: u32) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    if scale <= 0 {
        let whole = v * 10u128.pow((-scale) as u32);
        return if places == 0 {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{}", "0".repeat(places as usize))
        };
    }
    let denom = 10u128.pow(scale as u32);
    let whole = v / denom;
    let frac = v % denom;
    if places == 0 {
        return format!("{sign}{whole}");
    }
    let frac_str = format!("{frac:0width$}", width = scale as usize);
    let mut f: String = frac_str.chars().take(places as usize).collect();
    while f.len() < places as usize {
        f.push('0');
    }
    format!("{sign}{whole}.{f}")
}

/// Parses a non-negative decimal ("12", "0.5", "1_000.25") into an integer scaled by
/// `10^scale`, exactly: more decimals than `scale` is an error, not a rounding.
pub fn parse_scaled(s: &str, scale: u32) -> Result<u64, String> {
    let t: String = s.trim().chars().filter(|c| *c != '_').collect();
    if t.is_empty() || t.starts_with('-') || t.starts_with('+') {
        return Err(format!("{s:?} is not a non-negative decimal number"));
    }
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t.as_str(), ""),
    };
    if !whole
        .chars()
        .chain(frac.chars())
        .all(|c| c.is_ascii_digit())
        || (whole.is_empty() && frac.is_empty())
    {
        return Err(format!("{s:?} is not a non-negative decimal number"));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize {
        return Err(format!(
            "{s:?} has more than {scale} decimal places; the smallest unit is 10^-{scale}"
        ));
    }
    let too_big = || format!("{s:?} is too large");
    let w: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let f: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u128>().map_err(|_| too_big())? * 10u128.pow(scale - frac.len() as u32)
    };
    let v = w
        .checked_mul(10u128.pow(scale))
        .and_then(|x| x.checked_add(f))
        .ok_or_else(too_big)?;
    u64::try_from(v).map_err(|_| too_big())
}

/// Parses a price in quote units per whole base unit ("150.25") into the program's fixed
/// point, exactly.
pub fn parse_price(s: &str, quote_decimals: u8, base_decimals: u8) -> Result<u64, String> {
    let scale =
        quote_decimals as i32 + backstop::constants::PRICE_DECIMALS as i32 - base_decimals as i32;
    if scale < 0 {
        return Err("this market's decimals cannot be priced in fixed point".into());
    }
    parse_scaled(s, scale as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backstop::oracle::MarketPrice;
    use backstop::state::{MarketParams, Position};

    fn params() -> MarketParams {
        MarketParams::EXAMPLE
    }

    fn account(capital: u64, base: i64, basis: i64) -> MarginAccount {
        let mut a = MarginAccount {
            exchange: Pubkey::default(),
            owner: Pubkey::default(),
            bump: 0,
            capital,
            pnl: 0,
            positions: Default::default(),
            warmup: Default::default(),
            clawback: Default::default(),
            created_at: 0,
            epoch_withdrawn: 0,
            withdrawn_epoch: 0,
            epoch_deposited: 0,
            deposited_epoch: 0,
        };
        a.positions[0] = Position {
            market_index: 0,
            active: true,
            base_qty: base,
            quote_basis: basis,
        };
        a
    }

    fn cache(price: u64) -> PriceCache {
        PriceCache {
            prices: vec![MarketPrice {
                index: 0,
                price: FixedPrice { price, conf: 0 },
                params: params(),
                stable_price: 0,
                degraded: false,
                stale: false,
            }],
        }
    }

    const P: u64 = 1_000_000_000; // 1 quote atom per base atom

    #[test]
    fn long_liquidation_price_is_the_first_price_below_maintenance() {
        // 10⁸ base bought for 10¹⁰ at 100/atom with 10⁹ capital (10x). Equity at p:
        // 10⁹ + 10⁸p − 10¹⁰, MM = 5·10⁶ p: liquidatable iff 95 p < 9_000 ⇔ p < 94.7368…
        // (the program's rounding moves the exact threshold by less than 10⁻⁶ here).
        let a = account(1_000_000_000, 100_000_000, 10_000_000_000);
        let lp = cache(100 * P).liquidation_price(&a, 0).unwrap();
        let c = cache(lp);
        assert!(c.health(&a).unwrap().maintenance_health().unwrap() < 0);
        let c = cache(lp + 1);
        assert!(c.health(&a).unwrap().maintenance_health().unwrap() >= 0);
        assert_eq!(lp / 1_000_000, 94_736); // 94.7368… quote atoms per atom
    }

    #[test]
    fn short_liquidation_price_is_above_and_unlevered_long_has_none() {
        let a = account(1_000, -100, -10_000);
        let lp = cache(100 * P).liquidation_price(&a, 0).unwrap();
        assert!(lp > 100 * P);
        assert!(cache(lp).health(&a).unwrap().maintenance_health().unwrap() < 0);
        assert!(
            cache(lp - 1)
                .health(&a)
                .unwrap()
                .maintenance_health()
                .unwrap()
                >= 0
        );
        // Fully paid long: no positive price liquidates it.
        let a = account(20_000, 100, 10_000);
        assert_eq!(cache(100 * P).liquidation_price(&a, 0), None);
        // No position in that market.
        assert_eq!(cache(100 * P).liquidation_price(&a, 1), None);
    }

    #[test]
    fn decimals_parse_exactly_and_format_back() {
        assert_eq!(parse_scaled("12", 6), Ok(12_000_000));
        assert_eq!(parse_scaled("0.5", 6), Ok(500_000));
        assert_eq!(parse_scaled("1_000.250000", 6), Ok(1_000_250_000));
        assert_eq!(parse_scaled(".000001", 6), Ok(1));
        assert!(parse_scaled("0.0000001", 6)
            .unwrap_err()
            .contains("decimal places"));
        assert!(parse_scaled("-1", 6).is_err());
        assert!(parse_scaled("1e6", 6).is_err());
        assert!(parse_scaled("", 6).is_err());
        assert!(parse_scaled("99999999999999999999", 6)
            .unwrap_err()
            .contains("too large"));
        // SOL-PERP (9 decimals) against USDC (6): $150 = 0.15 atoms per lamport.
        assert_eq!(parse_price("150", 6, 9), Ok(150_000_000));
        assert_eq!(format_price(150_000_000, 6, 9, 2), "150.00");
        // BTC (8 decimals) at 100,000.5.
        let p = parse_price("100000.5", 6, 8).unwrap();
        assert_eq!(format_price(p, 6, 8, 1), "100000.5");
        assert_eq!(format_scaled(-1_500_000, 6, 6), "-1.500000");
        assert_eq!(format_scaled(42, 0, 2), "42.00");
    }
}
