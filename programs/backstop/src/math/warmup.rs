//! Positive-PnL warmup (docs/DESIGN.md §6.9).
//!
//! Positive settled pnl vests linearly over `warmup_secs` before `settle_pnl` may turn it
//! into capital. The schedule is re-based whenever the positive pnl changes for any reason
//! other than conversion: what had vested stays vested (capped at the new positive pnl) and
//! the rest starts a fresh linear schedule. Re-basing only ever slows vesting — in the
//! pool's favour — and a profit that vanished and came back must warm up again, so a
//! price spike cannot ride on the vesting time of an earlier, honest profit.

use super::safe::{cast, MathResult, SafeMath};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmupSchedule {
    /// When the current linear schedule started (unix seconds).
    pub started_at: i64,
    /// Amount vesting linearly from `started_at`.
    pub base: u64,
    /// Amount already vested when the schedule started.
    pub carry: u64,
    /// Converted to capital since the schedule started.
    pub converted: u64,
}

impl WarmupSchedule {
    /// Positive pnl that may be converted to capital now: ⌊base · elapsed / warmup⌋ + carry
    /// − converted (rounded down: vests slower), never more than the positive pnl.
    pub fn vested(&self, positive_pnl: u64, now: i64, warmup_secs: u32) -> MathResult<u64> {
        if warmup_secs == 0 {
            return Ok(positive_pnl);
        }
        let elapsed = now
            .saturating_sub(self.started_at)
            .clamp(0, warmup_secs as i64) as u128;
        let linear: u64 = cast(
            (self.base as u128)
                .safe_mul(elapsed)?
                .safe_div(u128::from(warmup_secs))?,
        )?;
        let total = self.carry.safe_add(linear)?;
        Ok(total.saturating_sub(self.converted).min(positive_pnl))
    }

    /// Re-bases the schedule after positive pnl changed from `old_positive` to `new_positive`.
    pub fn rebase(
        &mut self,
        old_positive: u64,
        new_positive: u64,
        now: i64,
        warmup_secs: u32,
    ) -> MathResult<()> {
        if old_positive == new_positive {
            return Ok(());
        }
        let vested = self
            .vested(old_positive, now, warmup_secs)?
            .min(new_positive);
        *self = WarmupSchedule {
            started_at: now,
            base: new_positive.safe_sub(vested)?,
            carry: vested,
            converted: 0,
        };
        Ok(())
    }

    /// Records a conversion of `amount` (≤ `vested`) to capital.
    pub fn convert(&mut self, amount: u64) -> MathResult<()> {
        self.converted = self.converted.safe_add(amount)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vests_linearly_and_caps_at_pnl() {
        let mut w = WarmupSchedule::default();
        w.rebase(0, 1_000, 100, 1_000).unwrap();
        assert_eq!(w.vested(1_000, 100, 1_000).unwrap(), 0);
        assert_eq!(w.vested(1_000, 600, 1_000).unwrap(), 500);
        assert_eq!(w.vested(1_000, 5_000, 1_000).unwrap(), 1_000);
        assert_eq!(w.vested(300, 5_000, 1_000).unwrap(), 300);
    }

    #[test]
    fn conversion_does_not_restart_the_clock() {
        let mut w = WarmupSchedule::default();
        w.rebase(0, 1_000, 0, 100).unwrap();
        let v = w.vested(1_000, 50, 100).unwrap();
        assert_eq!(v, 500);
        w.convert(v).unwrap();
        assert_eq!(w.vested(500, 50, 100).unwrap(), 0);
        assert_eq!(w.vested(500, 100, 100).unwrap(), 500);
    }

    #[test]
    fn new_profit_keeps_vested_and_warms_the_rest() {
        let mut w = WarmupSchedule::default();
        w.rebase(0, 1_000, 0, 100).unwrap();
        w.rebase(1_000, 3_000, 50, 100).unwrap(); // 500 vested so far
        assert_eq!(w.vested(3_000, 50, 100).unwrap(), 500);
        assert_eq!(w.vested(3_000, 100, 100).unwrap(), 500 + 1_250);
    }

    #[test]
    fn profit_that_vanished_warms_up_again() {
        let mut w = WarmupSchedule::default();
        w.rebase(0, 1_000, 0, 100).unwrap();
        w.rebase(1_000, 0, 200, 100).unwrap(); // fully vested, then lost
        w.rebase(0, 1_000, 201, 100).unwrap(); // spike back
        assert_eq!(w.vested(1_000, 201, 100).unwrap(), 0);
    }

    #[test]
    fn zero_warmup_vests_immediately() {
        let w = WarmupSchedule::default();
        assert_eq!(w.vested(77, 0, 0).unwrap(), 77);
    }

    proptest! {
        /// Vested never exceeds the positive pnl and never decreases with time.
        #[test]
        fn vested_is_bounded_and_monotone(
            steps in prop::collection::vec((0u64..1_000_000, 0i64..500), 1..20),
            warmup in 1u32..1_000,
        ) {
            let mut w = WarmupSchedule::default();
            let mut pos = 0u64;
            let mut now = 0i64;
            for (new_pos, dt) in steps {
                w.rebase(pos, new_pos, now, warmup).unwrap();
                pos = new_pos;
                let v1 = w.vested(pos, now, warmup).unwrap();
                now += dt;
                let v2 = w.vested(pos, now, warmup).unwrap();
                prop_assert!(v1 <= v2 && v2 <= pos);
            }
            prop_assert_eq!(w.vested(pos, now + warmup as i64, warmup).unwrap(), pos);
        }
    }
}
