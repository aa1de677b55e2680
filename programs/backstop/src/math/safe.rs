//! Checked arithmetic that reports where it failed.

use core::fmt;

/// Why a pure math function refused to give an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathError {
    /// A result does not fit its type.
    Overflow,
    /// Division by zero.
    DivisionByZero,
    /// An input outside the function's domain (documented at the function).
    InvalidInput,
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MathError::Overflow => write!(f, "arithmetic overflow"),
            MathError::DivisionByZero => write!(f, "division by zero"),
            MathError::InvalidInput => write!(f, "input outside the function's domain"),
        }
    }
}

impl std::error::Error for MathError {}

pub type MathResult<T> = Result<T, MathError>;

#[track_caller]
#[inline(never)]
#[cold]
fn report(err: MathError) -> MathError {
    let loc = core::panic::Location::caller();
    #[cfg(not(test))]
    crate::log!("math error {:?} at {}:{}", err, loc.file(), loc.line());
    #[cfg(test)]
    let _ = loc;
    err
}

/// Checked arithmetic with the caller's location in the log on failure.
pub trait SafeMath: Sized + Copy {
    fn safe_add(self, rhs: Self) -> MathResult<Self>;
    fn safe_sub(self, rhs: Self) -> MathResult<Self>;
    fn safe_mul(self, rhs: Self) -> MathResult<Self>;
    /// Division rounding toward zero.
    fn safe_div(self, rhs: Self) -> MathResult<Self>;
}

macro_rules! impl_safe_math {
    ($($t:ty),*) => {$(
        impl SafeMath for $t {
            #[track_caller]
            #[inline]
            fn safe_add(self, rhs: Self) -> MathResult<Self> {
                self.checked_add(rhs).ok_or_else(|| report(MathError::Overflow))
            }
            #[track_caller]
            #[inline]
            fn safe_sub(self, rhs: Self) -> MathResult<Self> {
                self.checked_sub(rhs).ok_or_else(|| report(MathError::Overflow))
            }
            #[track_caller]
            #[inline]
            fn safe_mul(self, rhs: Self) -> MathResult<Self> {
                self.checked_mul(rhs).ok_or_else(|| report(MathError::Overflow))
            }
            #[track_caller]
            #[inline]
            fn safe_div(self, rhs: Self) -> MathResult<Self> {
                if rhs == 0 {
                    return Err(report(MathError::DivisionByZero));
                }
                self.checked_div(rhs).ok_or_else(|| report(MathError::Overflow))
            }
        }
    )*};
}
impl_safe_math!(u8, u16, u32, u64, u128, i32, i64, i128);

/// −`amount` as a signed delta (a debit), failing with `Overflow` above `i64::MAX`.
#[track_caller]
#[inline]
pub fn negative(amount: u64) -> MathResult<i64> {
    0i64.safe_sub(cast(amount)?)
}

/// Converts between integer types, failing with `Overflow` when the value does not fit.
#[track_caller]
#[inline]
pub fn cast<T, U>(v: T) -> MathResult<U>
where
    U: TryFrom<T>,
{
    U::try_from(v).map_err(|_| report(MathError::Overflow))
}
