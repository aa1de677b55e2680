use anchor_lang::prelude::*;

use crate::constants::MAX_POSITIONS;
use crate::error::BackstopError;
use crate::math::health::bankruptcy_shortfall;
use crate::math::safe::{cast, negative, SafeMath};
use crate::math::warmup::WarmupSchedule;
use crate::state::Books;

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
    /// Capital this account deposited during bad-debt epoch `deposited_epoch`: left out
    /// of the equity a LeverageWeighted round measures leverage on, so a deposit made
    /// after the loss cannot dilute the account's weight.
    pub epoch_deposited: u64,
    pub deposited_epoch: u64,
}

impl MarginAccount {
    /// Capital deposited during the open epoch `epoch_id` (0 for any other epoch).
    pub fn deposited_in(&self, epoch_id: u64) -> u64 {
        if self.deposited_epoch == epoch_id {
            self.epoch_deposited
        } else {
            0
        }
    }

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

    /// Signed base atoms held in `market_index` (0 when flat).
    pub fn base_in(&self, market_index: u16) -> i64 {
        self.position(market_index).map_or(0, |p| p.base_qty)
    }

    pub fn has_open_positions(&self) -> bool {
        self.positions.iter().any(|p| p.active)
    }

    /// Flat with capital + pnl < 0 (see `math::health::bankruptcy_shortfall`).
    pub fn is_bankrupt(&self) -> bool {
        matches!(
            bankruptcy_shortfall(self.capital, self.pnl, self.has_open_positions()),
            Ok(Some(_))
        )
    }

    /// What the exchange's counters count this account as (`engine::track`).
    pub fn standing(&self) -> crate::state::Standing {
        crate::state::Standing {
            bankrupt: self.is_bankrupt(),
            profit_capable: self.pnl > 0 || self.has_open_positions(),
            has_capital: self.capital > 0,
        }
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

    /// Adds `delta` to settled pnl, keeping the warmup schedule and the books' Σ pnl in
    /// step. Every pnl change goes through here.
    pub fn add_pnl(&mut self, delta: i64, books: &mut Books, clock: PnlClock) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        let before = self.positive_pnl();
        let pnl = self.pnl.safe_add(delta)?;
        let total_pnl = books.total_pnl.safe_add(i128::from(delta))?;
        let after = if pnl > 0 { pnl.unsigned_abs() } else { 0 };
        let mut w: WarmupSchedule = self.warmup.into();
        w.rebase(before, after, clock.now, clock.warmup_secs)?;
        self.pnl = pnl;
        books.total_pnl = total_pnl;
        self.warmup = w.into();
        Ok(())
    }

    /// Adds `delta` to capital and the books' Σ capital; refuses to go below zero.
    pub fn add_capital(&mut self, delta: i64, books: &mut Books) -> Result<()> {
        let d = delta.unsigned_abs();
        if delta >= 0 {
            let capital = self.capital.safe_add(d)?;
            books.total_capital = books.total_capital.safe_add(u128::from(d))?;
            self.capital = capital;
        } else {
            require!(self.capital >= d, BackstopError::InsufficientCapital);
            let total = books.total_capital.safe_sub(u128::from(d))?;
            self.capital = self.capital.safe_sub(d)?;
            books.total_capital = total;
        }
        Ok(())
    }

    /// Realizes negative pnl against capital ("losses are never delayed"): moves
    /// min(−pnl, capital) from capital to pnl. Returns the amount moved.
    pub fn absorb_losses(&mut self, books: &mut Books, clock: PnlClock) -> Result<u64> {
        if self.pnl >= 0 {
            return Ok(0);
        }
        let loss = self.pnl.unsigned_abs().min(self.capital);
        self.add_capital(negative(loss)?, books)?;
        self.add_pnl(cast(loss)?, books, clock)?;
        Ok(loss)
    }

    /// Converts the vested part of positive pnl into capital (the caller decides when
    /// conversion is allowed: only while no deficit is open). Returns the amount.
    pub fn convert_vested(&mut self, books: &mut Books, clock: PnlClock) -> Result<u64> {
        let mut w: WarmupSchedule = self.warmup.into();
        let converted = w.vested(self.positive_pnl(), clock.now, clock.warmup_secs)?;
        if converted == 0 {
            return Ok(0);
        }
        w.convert(converted)?;
        let delta: i64 = cast(converted)?;
        // Conversion moves value between pnl and capital without re-basing the schedule.
        self.pnl = self.pnl.safe_sub(delta)?;
        books.total_pnl = books.total_pnl.safe_sub(i128::from(delta))?;
        self.add_capital(delta, books)?;
        self.warmup = w.into();
        Ok(converted)
    }
}

/// The time and warmup period every pnl change is booked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PnlClock {
    /// Cluster unix time.
    pub now: i64,
    /// The exchange's `pnl_warmup_secs`.
    pub warmup_secs: u32,
}
