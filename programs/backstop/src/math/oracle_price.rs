//! Oracle price validation and conversion to the program's fixed-point price.

use super::safe::{cast, MathError, MathResult, SafeMath};
use crate::constants::{
    BPS_DENOMINATOR, MAX_ORACLE_EXPO, MAX_PRICE, MAX_STALE_HAIRCUT_BPS, PRICE_DECIMALS,
    STALE_HAIRCUT_BPS_PER_MINUTE,
};

/// A price as oracles publish it: `price · 10^expo` quote units per whole base unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPrice {
    pub price: i64,
    pub conf: u64,
    pub expo: i32,
    pub publish_time: i64,
}

/// Why a price was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NonPositive,
    Stale,
    ConfidenceTooWide,
    Unrepresentable,
}

/// A validated price in fixed point (quote atoms per base atom · 10⁹).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedPrice {
    pub price: u64,
    pub conf: u64,
}

/// Checks sign, age and confidence (docs/DESIGN.md §8): price > 0, `now − publish_time ≤
/// max_age_secs`, `conf / price ≤ max_conf_bps`.
pub fn check(
    raw: &RawPrice,
    now: i64,
    max_age_secs: u32,
    max_conf_bps: u16,
) -> Result<(), Rejection> {
    if raw.price <= 0 {
        return Err(Rejection::NonPositive);
    }
    if now.saturating_sub(raw.publish_time) > max_age_secs as i64 {
        return Err(Rejection::Stale);
    }
    // u64 × 10⁴ and u63 × u16 both fit u128: the products are exact.
    let wide = u128::from(raw.conf).saturating_mul(u128::from(BPS_DENOMINATOR))
        > (raw.price as u128).saturating_mul(u128::from(max_conf_bps));
    if wide {
        return Err(Rejection::ConfidenceTooWide);
    }
    Ok(())
}

/// Converts a positive raw price to fixed point for a market whose base token has
/// `base_decimals` and whose collateral has `quote_decimals`. The price rounds down and
/// the confidence up when precision is lost (both conservative for margin checks).
pub fn to_fixed(raw: &RawPrice, quote_decimals: u8, base_decimals: u8) -> MathResult<FixedPrice> {
    if raw.price <= 0 || raw.expo.unsigned_abs() > MAX_ORACLE_EXPO.unsigned_abs() {
        return Err(MathError::InvalidInput);
    }
    let shift = raw
        .expo
        .safe_add(i32::from(quote_decimals))?
        .safe_sub(i32::from(base_decimals))?
        .safe_add(cast(PRICE_DECIMALS)?)?;
    let (price, conf) = if shift >= 0 {
        let m = 10u128
            .checked_pow(shift as u32)
            .ok_or(MathError::Overflow)?;
        (
            (raw.price as u128).safe_mul(m)?,
            (raw.conf as u128).safe_mul(m)?,
        )
    } else {
        let d = 10u128
            .checked_pow(shift.unsigned_abs())
            .ok_or(MathError::Overflow)?;
        (
            (raw.price as u128).safe_div(d)?,
            (raw.conf as u128).div_ceil(d),
        )
    };
    if price == 0 || price > MAX_PRICE as u128 {
        return Err(MathError::InvalidInput);
    }
    Ok(FixedPrice {
        price: cast(price)?,
        conf: cast(conf.min(MAX_PRICE as u128))?,
    })
}

/// A price as health uses it. `degraded`: it failed a guard (stale, too uncertain or
/// unusable) and positions in its market are valued at the edge of `conf` against the
/// holder, in maintenance checks too (docs/DESIGN.md §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValuedPrice {
    pub price: FixedPrice,
    pub degraded: bool,
    /// Degraded because the price is old (or a fallback to the last accepted one), not
    /// merely too uncertain: initial margin then takes the widest interval (±50%), since
    /// the market may have moved since — a too-uncertain price is current, its own
    /// interval is the honest uncertainty.
    pub stale: bool,
}

/// The haircut (bps of the price) a price `over_secs` past its max age carries: the
/// market's confidence limit (the most uncertainty a fresh price may carry), plus
/// [`STALE_HAIRCUT_BPS_PER_MINUTE`] per started minute of staleness, at most
/// [`MAX_STALE_HAIRCUT_BPS`]. Non-decreasing in age; a price just past its age already
/// counts as uncertain as a fresh one may be.
pub fn stale_haircut_bps(max_conf_bps: u16, over_secs: i64) -> u16 {
    let minutes = u64::try_from(over_secs.max(0)).unwrap_or(0).div_ceil(60);
    let bps = u64::from(max_conf_bps)
        .saturating_add(minutes.saturating_mul(u64::from(STALE_HAIRCUT_BPS_PER_MINUTE)));
    bps.min(u64::from(MAX_STALE_HAIRCUT_BPS)) as u16
}

/// `price · bps / 10⁴`, rounded up (a wider interval is the conservative side).
pub fn widen(price: u64, bps: u16) -> MathResult<u64> {
    cast(
        u128::from(price)
            .safe_mul(u128::from(bps))?
            .div_ceil(u128::from(BPS_DENOMINATOR)),
    )
}

/// The price health values a market at when its oracle failed `check` with `rejection`:
/// - too uncertain: the oracle price with its own (wide) confidence;
/// - stale: the old price with its confidence widened by [`stale_haircut_bps`] of its age;
/// - non-positive or unrepresentable: the market's last accepted price `last_price`
///   widened by [`MAX_STALE_HAIRCUT_BPS`] (an error when the market never had one).
///
/// Positions are then valued at `price − conf` (longs) or `price + conf` (shorts), so a
/// degraded market can only lower an account's health, never raise it.
#[allow(clippy::too_many_arguments)]
pub fn conservative(
    raw: &RawPrice,
    rejection: Rejection,
    now: i64,
    max_age_secs: u32,
    max_conf_bps: u16,
    quote_decimals: u8,
    base_decimals: u8,
    last_price: u64,
) -> MathResult<FixedPrice> {
    let fallback = || -> MathResult<FixedPrice> {
        if last_price == 0 || last_price > MAX_PRICE {
            return Err(MathError::InvalidInput);
        }
        Ok(FixedPrice {
            price: last_price,
            conf: widen(last_price, MAX_STALE_HAIRCUT_BPS)?,
        })
    };
    // A stand-in's interval is at most ±100% of its price (a long valued at 0 at worst,
    // a short at twice the price): an absurd published confidence must not make a
    // holder's equity unrepresentable, and no honest wide interval is narrowed.
    let capped = |f: FixedPrice| -> MathResult<FixedPrice> {
        Ok(FixedPrice {
            price: f.price,
            conf: f.conf.min(f.price),
        })
    };
    match rejection {
        Rejection::NonPositive | Rejection::Unrepresentable => fallback(),
        Rejection::ConfidenceTooWide => {
            capped(to_fixed(raw, quote_decimals, base_decimals).or_else(|_| fallback())?)
        }
        Rejection::Stale => {
            let Ok(fixed) = to_fixed(raw, quote_decimals, base_decimals) else {
                return fallback();
            };
            let over = now
                .saturating_sub(raw.publish_time)
                .saturating_sub(i64::from(max_age_secs));
            let extra = widen(fixed.price, stale_haircut_bps(max_conf_bps, over))?;
            capped(FixedPrice {
                price: fixed.price,
                conf: fixed.conf.saturating_add(extra).min(MAX_PRICE),
            })
        }
    }
}

/// [`check`] then [`to_fixed`]; a price that fails either is [`conservative`]ly valued
/// instead (`degraded`), or refused with the guard's reason when even that is impossible.
#[allow(clippy::too_many_arguments)]
pub fn valued(
    raw: &RawPrice,
    now: i64,
    max_age_secs: u32,
    max_conf_bps: u16,
    quote_decimals: u8,
    base_decimals: u8,
    last_price: u64,
) -> Result<ValuedPrice, Rejection> {
    let rejection = match check(raw, now, max_age_secs, max_conf_bps) {
        Ok(()) => match to_fixed(raw, quote_decimals, base_decimals) {
            Ok(price) => {
                return Ok(ValuedPrice {
                    price,
                    degraded: false,
                    stale: false,
                })
            }
            Err(_) => Rejection::Unrepresentable,
        },
        Err(r) => r,
    };
    conservative(
        raw,
        rejection,
        now,
        max_age_secs,
        max_conf_bps,
        quote_decimals,
        base_decimals,
        last_price,
    )
    .map(|price| ValuedPrice {
        price,
        degraded: true,
        stale: rejection != Rejection::ConfidenceTooWide,
    })
    .map_err(|_| rejection)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(price: i64, conf: u64, expo: i32, t: i64) -> RawPrice {
        RawPrice {
            price,
            conf,
            expo,
            publish_time: t,
        }
    }

    #[test]
    fn sol_usdc_example() {
        // $150.00 with expo −2, SOL 9 decimals, USDC 6: 0.15 quote atoms per lamport.
        let f = to_fixed(&raw(15_000, 5, -2, 0), 6, 9).unwrap();
        assert_eq!(f.price, 150_000_000);
        assert_eq!(f.conf, 50_000);
    }

    #[test]
    fn precision_loss_rounds_price_down_conf_up() {
        // shift = −8 + 0 − 9 + 9 = −8.
        let f = to_fixed(&raw(123_456_789, 1, -8, 0), 0, 9).unwrap();
        assert_eq!(f.price, 1);
        assert_eq!(f.conf, 1);
        assert!(to_fixed(&raw(99, 0, -8, 0), 0, 9).is_err());
    }

    #[test]
    fn guards() {
        assert_eq!(
            check(&raw(0, 0, 0, 100), 100, 10, 100),
            Err(Rejection::NonPositive)
        );
        assert_eq!(
            check(&raw(-5, 0, 0, 100), 100, 10, 100),
            Err(Rejection::NonPositive)
        );
        assert_eq!(
            check(&raw(5, 0, 0, 100), 111, 10, 100),
            Err(Rejection::Stale)
        );
        assert_eq!(check(&raw(5, 0, 0, 100), 110, 10, 100), Ok(()));
        assert_eq!(
            check(&raw(10_000, 101, 0, 0), 0, 10, 100),
            Err(Rejection::ConfidenceTooWide)
        );
        assert_eq!(check(&raw(10_000, 100, 0, 0), 0, 10, 100), Ok(()));
    }

    #[test]
    fn absurd_exponents_refused() {
        assert!(to_fixed(&raw(1, 0, 40, 0), 6, 0).is_err());
        assert!(to_fixed(&raw(i64::MAX, 0, 18, 0), 6, 0).is_err());
    }

    #[test]
    fn degraded_prices_widen_against_the_holder() {
        // Fresh: as is.
        let v = valued(&raw(100, 1, 0, 1_000), 1_000, 60, 200, 0, 0, 0).unwrap();
        assert!(!v.degraded);
        // Too uncertain: the oracle's own interval, at most ±100%; current, not stale.
        let v = valued(&raw(100, 90, 0, 1_000), 1_000, 60, 200, 0, 0, 0).unwrap();
        assert_eq!(v.price.conf, 90 * 1_000_000_000);
        assert!(v.degraded && !v.stale);
        let v = valued(&raw(100, 500, 0, 1_000), 1_000, 60, 200, 0, 0, 0).unwrap();
        assert_eq!(v.price.conf, 100 * 1_000_000_000);
        let v = valued(&raw(100, 5, 0, 1_000), 1_000, 60, 200, 0, 0, 0).unwrap();
        assert!(v.degraded);
        assert_eq!(v.price.conf, 5 * 1_000_000_000);
        // Stale by 61 s past 60: 2% + 2 started minutes · 1% = 4% of 100 on top of conf 1.
        let v = valued(&raw(100, 1, 0, 1_000), 1_121, 60, 200, 0, 0, 0).unwrap();
        assert!(v.degraded);
        assert_eq!(v.price.price, 100 * 1_000_000_000);
        assert_eq!(v.price.conf, 5 * 1_000_000_000);
        // Non-positive: the last accepted price widened by 50%, or refused without one.
        let v = valued(&raw(-3, 0, 0, 1_000), 1_000, 60, 200, 0, 0, 80).unwrap();
        assert_eq!(
            v.price,
            FixedPrice {
                price: 80,
                conf: 40
            }
        );
        assert_eq!(
            valued(&raw(-3, 0, 0, 1_000), 1_000, 60, 200, 0, 0, 0),
            Err(Rejection::NonPositive)
        );
    }

    proptest::proptest! {
        /// The stale haircut never shrinks as a price ages, starts at the confidence limit
        /// and never exceeds its cap.
        #[test]
        fn stale_haircut_grows_with_age(conf_bps in 1u16..=1_000, a in 0i64..1_000_000, b in 0i64..1_000_000) {
            let (young, old) = (a.min(b), a.max(b));
            proptest::prop_assert!(stale_haircut_bps(conf_bps, young) <= stale_haircut_bps(conf_bps, old));
            proptest::prop_assert!(stale_haircut_bps(conf_bps, young) >= conf_bps.min(MAX_STALE_HAIRCUT_BPS));
            proptest::prop_assert!(stale_haircut_bps(conf_bps, old) <= MAX_STALE_HAIRCUT_BPS);
        }
    }
}
