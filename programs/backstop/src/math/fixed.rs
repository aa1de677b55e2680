//! Fixed-point helpers with an explicit rounding direction in every name.

use super::safe::{cast, MathError, MathResult, SafeMath};
use crate::constants::{BPS_DENOMINATOR, PRICE_PRECISION};

/// ⌊a / b⌋ for b > 0 (rounds toward −∞, also for negative `a`).
#[inline]
pub fn div_floor(a: i128, b: i128) -> MathResult<i128> {
    if b <= 0 {
        return Err(MathError::DivisionByZero);
    }
    Ok(a.div_euclid(b))
}

/// ⌈a / b⌉ for b > 0 (rounds toward +∞, also for negative `a`).
#[inline]
pub fn div_ceil(a: i128, b: i128) -> MathResult<i128> {
    let q = div_floor(a, b)?;
    if q.safe_mul(b)? == a {
        Ok(q)
    } else {
        q.safe_add(1)
    }
}

/// ⌈a / b⌉ for unsigned values.
#[inline]
pub fn div_ceil_u128(a: u128, b: u128) -> MathResult<u128> {
    if b == 0 {
        return Err(MathError::DivisionByZero);
    }
    Ok(a.div_ceil(b))
}

/// Value of `base_qty` base atoms at `price`, rounded down (toward −∞).
///
/// Rounding down is conservative for the account holding the position: a long is worth
/// slightly less, a short owes slightly more.
#[inline]
pub fn value_floor(base_qty: i64, price: u64) -> MathResult<i128> {
    let p: i128 = cast(price)?;
    div_floor((base_qty as i128).safe_mul(p)?, PRICE_PRECISION)
}

/// Value of `base_qty` base atoms at `price`, rounded up (toward +∞).
#[inline]
pub fn value_ceil(base_qty: i64, price: u64) -> MathResult<i128> {
    let p: i128 = cast(price)?;
    div_ceil((base_qty as i128).safe_mul(p)?, PRICE_PRECISION)
}

/// Absolute notional |base_qty| · price, rounded up: the basis of margin requirements and
/// fees, which an account owes, so it rounds against the account.
#[inline]
pub fn notional_ceil(base_qty: i64, price: u64) -> MathResult<u128> {
    let n = (base_qty.unsigned_abs() as u128).safe_mul(price as u128)?;
    div_ceil_u128(n, PRICE_PRECISION as u128)
}

/// Absolute notional rounded down: what an account is *credited* from.
#[inline]
pub fn notional_floor(base_qty: i64, price: u64) -> MathResult<u128> {
    let n = (base_qty.unsigned_abs() as u128).safe_mul(price as u128)?;
    n.safe_div(PRICE_PRECISION as u128)
}

/// ⌈amount · bps / 10⁴⌉ — an amount owed by an account (margin, fee): rounds up.
#[inline]
pub fn bps_ceil(amount: u128, bps: u16) -> MathResult<u128> {
    div_ceil_u128(amount.safe_mul(bps as u128)?, BPS_DENOMINATOR as u128)
}

/// ⌊amount · bps / 10⁴⌋ — an amount credited to an account: rounds down.
#[inline]
pub fn bps_floor(amount: u128, bps: u16) -> MathResult<u128> {
    amount
        .safe_mul(bps as u128)?
        .safe_div(BPS_DENOMINATOR as u128)
}

/// ⌈base_qty_abs · PRICE_PRECISION / price⌉: the base quantity whose notional at `price`
/// covers `notional`.
#[inline]
pub fn base_for_notional_ceil(notional: u128, price: u64) -> MathResult<u128> {
    if price == 0 {
        return Err(MathError::DivisionByZero);
    }
    div_ceil_u128(notional.safe_mul(PRICE_PRECISION as u128)?, price as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_and_ceil_round_toward_infinities() {
        assert_eq!(div_floor(7, 2).unwrap(), 3);
        assert_eq!(div_floor(-7, 2).unwrap(), -4);
        assert_eq!(div_ceil(7, 2).unwrap(), 4);
        assert_eq!(div_ceil(-7, 2).unwrap(), -3);
        assert_eq!(div_ceil(6, 2).unwrap(), 3);
        assert_eq!(div_ceil(-6, 2).unwrap(), -3);
        assert!(div_floor(1, 0).is_err());
    }

    #[test]
    fn value_of_positions_rounds_down_for_both_sides() {
        // 1 base atom at 0.5 quote atoms: long worth 0, short owes 1.
        let half = (PRICE_PRECISION / 2) as u64;
        assert_eq!(value_floor(1, half).unwrap(), 0);
        assert_eq!(value_floor(-1, half).unwrap(), -1);
        assert_eq!(value_ceil(1, half).unwrap(), 1);
        assert_eq!(notional_ceil(-1, half).unwrap(), 1);
        assert_eq!(notional_floor(-1, half).unwrap(), 0);
    }

    #[test]
    fn bps_rounding() {
        assert_eq!(bps_ceil(1, 1).unwrap(), 1);
        assert_eq!(bps_floor(1, 1).unwrap(), 0);
        assert_eq!(bps_ceil(10_000, 500).unwrap(), 500);
    }

    #[test]
    fn extreme_values_do_not_wrap() {
        // i64 × u64 always fits i128: the widest product is still representable.
        assert!(value_floor(i64::MIN, u64::MAX).is_ok());
        assert!(value_floor(i64::MAX, u64::MAX).is_ok());
        assert!(bps_ceil(u128::MAX, 2).is_err());
    }
}
