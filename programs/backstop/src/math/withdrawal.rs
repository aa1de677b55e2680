//! What capital may leave while a deficit is open.

use super::fixed::div_ceil_u128;
use super::safe::{cast, MathResult, SafeMath};

/// The most of `capital` that may leave while `deficit` is open: capital minus the
/// account's share of the deficit, ⌈(capital + withdrawn) · deficit / total_weight⌉
/// (rounded up: more stays in the pool), where `withdrawn` is what this account already
/// took out during the epoch and `total_weight` is Σ capital + Σ withdrawn over all
/// accounts. A capital-basis round weighs capital + withdrawn too, so the share held back
/// is what that round would charge. With no deficit everything may leave.
pub fn withdrawable_during_deficit(
    capital: u64,
    withdrawn: u64,
    deficit: u64,
    total_weight: u128,
) -> MathResult<u64> {
    if deficit == 0 || total_weight == 0 {
        return Ok(capital);
    }
    let weight = u128::from(capital).safe_add(u128::from(withdrawn))?;
    let share = div_ceil_u128(weight.safe_mul(u128::from(deficit))?, total_weight)?;
    let held: u64 = cast(share.min(u128::from(capital)))?;
    capital.safe_sub(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn holds_back_the_pro_rata_share_rounded_up() {
        // 1 000 of 10 000 weight, deficit 333: share ⌈33.3⌉ = 34.
        assert_eq!(
            withdrawable_during_deficit(1_000, 0, 333, 10_000).unwrap(),
            966
        );
        assert_eq!(
            withdrawable_during_deficit(1_000, 0, 0, 10_000).unwrap(),
            1_000
        );
        // A share above the capital holds everything back.
        assert_eq!(withdrawable_during_deficit(10, 0, 500, 20).unwrap(), 0);
    }

    proptest! {
        /// Withdrawing in steps never takes out more than one withdrawal of the limit: each
        /// step adds to `withdrawn` and to the total what it takes from capital, so the
        /// share held back cannot shrink.
        #[test]
        fn steps_never_beat_one_withdrawal(
            capital in 0u64..1_000_000_000,
            withdrawn in 0u64..1_000_000,
            others in 0u64..10_000_000_000,
            deficit in 0u64..1_000_000_000,
            steps in proptest::collection::vec(0u16..=10_000, 1..8),
        ) {
            let total = u128::from(capital) + u128::from(withdrawn) + u128::from(others);
            let once = withdrawable_during_deficit(capital, withdrawn, deficit, total).unwrap();
            let (mut c, mut w, mut taken) = (capital, withdrawn, 0u64);
            for bps in steps {
                let limit = withdrawable_during_deficit(c, w, deficit, total).unwrap();
                let x = (u128::from(limit) * u128::from(bps) / 10_000) as u64;
                c -= x;
                w += x;
                taken += x;
            }
            prop_assert!(taken <= once);
        }
    }
}
