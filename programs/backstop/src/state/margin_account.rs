use anchor_lang::prelude::*;

use crate::constants::MAX_POSITIONS;
use crate::error::BackstopError;
use crate::math::safe::{cast, SafeMath};
use crate::math::warmup::WarmupSchedule;

#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct Position {
    pub market_index: u16,
    pub active: bool,
    /// Signed base atoms (long > 0).
    pub base_qty: i64,
    /// Quote atoms paid (long) or received (short, negative).
    pub quote_basis: i64,
}

#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct Warmup {
    pub started_at: i64,
    pub base: u64,
    pub carry: u64,
    pub converted: u64,
}

impl From<Warmup> for WarmupSchedule {
    fn from(w: Warmup) -> Self {
        WarmupSchedule {
            started_at: w.started_at,
            base: w.base,
            carry: w.carry,
            converted: w.converted,
        }
    }
}

impl From<WarmupSchedule> for Warmup {
    fn from(w: WarmupSchedule) -> Self {
        Warmup {
            started_at: w.started_at,
            base: w.base,
            carry: w.carry,
            converted: w.converted,
        }
    }
}

/// Clawback bookkeeping: the current round's tally and the last receipt.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct ClawbackRecord {
    /// Round (exchange `round_seq`) this account was last tallied in.
    pub tally_round: u64,
    /// Profit-basis weight and cap recorded at that tally.
    pub profit_weight: u128,
    pub profit_cap: u64,
    /// Capital at that tally (the capital-basis weight).
    pub capital_weight: u64,
    /// Round this account was last charged in.
    pub applied_round: u64,
    /// Last receipt.
    pub last_epoch: u64,
    pub last_round: u64,
    pub last_basis_is_capital: bool,
    pub last_weight: u128,
    pub last_rate_num: u128,
    pub last_rate_den: u128,
    pub last_amount: u64,
    /// Lifetime total clawed back from this account.
    pub lifetime_total: u64,
}

/// One owner's margin account on one exchange.
#[account]
#[derive(InitSpace, Debug)]
pub struct MarginAccount {
    pub exchange: Pubkey,
    pub owner: Pubkey,
    pub bump: u8,
    /// Protected principal.
    pub capital: u64,
    /// Settled profit and loss: junior to capital, reachable by clawback.
    pub pnl: i64,
    pub positions: [Position; MAX_POSITIONS],
    pub warmup: Warmup,
    pub clawback: ClawbackRecord,
    pub created_at: i64,
    /// Capital this account withdrew during bad-debt epoch `withdrawn_epoch`: counted in
    /// its capital-basis weight for that epoch (the charge stays capped at the capital it
    /// still has). Without it, withdrawing the permitted maximum before a capital round cut
    /// an account's charge to a fraction of its share (tests/tests/economic.rs).
    pub epoch_withdrawn: u64,
    pub withdrawn_epoch: u64,
    pub reserved: [u8; 16],
}

impl MarginAccount {
    /// Capital withdrawn during the open epoch `epoch_id` (0 for any other epoch).
    pub fn withdrawn_in(&self, epoch_id: u64) -> u64 {
        if self.withdrawn_epoch == epoch_id {
            self.epoch_withdrawn
        } else {
            0
        }
    }
}

impl MarginAccount {
    pub fn position(&self, market_index: u16) -> Option<&Position> {
        self.positions
            .iter()
            .find(|p| p.active && p.market_index == market_index)
    }

    /// The position slot for `market_index`, opening a free slot if needed.
    pub fn position_slot(&mut self, market_index: u16) -> Result<&mut Position> {
        let idx = match self
            .positions
            .iter()
            .position(|p| p.active && p.market_index == market_index)
        {
            Some(i) => i,
            None => {
                let free = self
                    .positions
                    .iter()
                    .position(|p| !p.active)
                    .ok_or(BackstopError::TooManyPositions)?;
                self.positions[free] = Position {
                    market_index,
                    active: true,
                    base_qty: 0,
                    quote_basis: 0,
                };
                free
            }
        };
        Ok(&mut self.positions[idx])
    }

    pub fn has_open_positions(&self) -> bool {
        self.positions.iter().any(|p| p.active)
    }

    pub fn is_empty(&self) -> bool {
        self.capital == 0 && self.pnl == 0 && !self.has_open_positions()
    }

    pub fn positive_pnl(&self) -> u64 {
        if self.pnl > 0 {
            self.pnl as u64
        } else {
            0
        }
    }

    /// Adds `delta` to settled pnl, keeping the warmup schedule and the exchange's Σ pnl in
    /// step. Every pnl change goes through here.
    pub fn add_pnl(
        &mut self,
        delta: i64,
        total_pnl: &mut i128,
        now: i64,
        warmup_secs: u32,
    ) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        let before = self.positive_pnl();
        self.pnl = self.pnl.safe_add(delta)?;
        *total_pnl = total_pnl.safe_add(delta as i128)?;
        let mut w: WarmupSchedule = self.warmup.into();
        w.rebase(before, self.positive_pnl(), now, warmup_secs)?;
        self.warmup = w.into();
        Ok(())
    }

    pub fn add_capital(&mut self, delta: i64, total_capital: &mut u128) -> Result<()> {
        if delta >= 0 {
            self.capital = self.capital.safe_add(delta as u64)?;
            *total_capital = total_capital.safe_add(delta as u128)?;
        } else {
            let d = delta.unsigned_abs();
            require!(self.capital >= d, BackstopError::InsufficientCapital);
            self.capital -= d;
            *total_capital = total_capital.safe_sub(d as u128)?;
        }
        Ok(())
    }

    /// Applies a fill of (`base_delta`, `quote_delta`) in `market_index`, updating the
    /// exchange's Σ basis / Σ pnl and the market's open interest. Frees the slot and
    /// realizes the basis into pnl when the position goes flat.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_fill(
        &mut self,
        market_index: u16,
        base_delta: i64,
        quote_delta: i64,
        total_basis: &mut i128,
        total_pnl: &mut i128,
        long_oi: &mut u64,
        short_oi: &mut u64,
        now: i64,
        warmup_secs: u32,
    ) -> Result<()> {
        use crate::math::trade;
        let slot = self.position_slot(market_index)?;
        let (old_base, old_basis) = (slot.base_qty, slot.quote_basis);
        let r = trade::apply_fill(old_base, old_basis, base_delta, quote_delta)?;
        *long_oi = long_oi
            .safe_sub(trade::long_oi(old_base))?
            .safe_add(trade::long_oi(r.base_qty))?;
        *short_oi = short_oi
            .safe_sub(trade::short_oi(old_base))?
            .safe_add(trade::short_oi(r.base_qty))?;
        *total_basis = total_basis
            .safe_sub(old_basis as i128)?
            .safe_add(r.quote_basis as i128)?;
        slot.base_qty = r.base_qty;
        slot.quote_basis = r.quote_basis;
        if r.base_qty == 0 {
            *slot = Position::default();
        }
        self.add_pnl(r.realized, total_pnl, now, warmup_secs)
    }

    /// Realizes negative pnl against capital ("losses are never delayed"): moves
    /// min(−pnl, capital) from capital to pnl. Returns the amount moved.
    pub fn absorb_losses(
        &mut self,
        total_capital: &mut u128,
        total_pnl: &mut i128,
        now: i64,
        warmup_secs: u32,
    ) -> Result<u64> {
        if self.pnl >= 0 {
            return Ok(0);
        }
        let loss = self.pnl.unsigned_abs().min(self.capital);
        self.add_capital(-cast::<u64, i64>(loss)?, total_capital)?;
        self.add_pnl(cast(loss)?, total_pnl, now, warmup_secs)?;
        Ok(loss)
    }
}
