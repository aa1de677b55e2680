//! Oracle price validation and conversion to the program's fixed-point price.

use super::safe::{cast, MathError, MathResult, SafeMath};
use crate::constants::{BPS_DENOMINATOR, MAX_ORACLE_EXPO, MAX_PRICE, PRICE_DECIMALS};

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
}
