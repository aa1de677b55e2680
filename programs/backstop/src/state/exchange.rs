use anchor_lang::prelude::*;

use crate::constants::*;
use crate::error::BackstopError;
use crate::math::safe::SafeMath;
use crate::state::{Books, ClawbackPolicy, EpochState};

/// Exchange-wide parameters (bounded by `validate`, changed through the timelock).
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct ExchangeParams {
    /// Seconds over which positive pnl vests before `settle_pnl` may convert it to capital.
    pub pnl_warmup_secs: u32,
    /// Minimum age of a bad-debt epoch before the first clawback round may begin.
    pub min_epoch_secs: u32,
    /// Wait between the end of one round and the start of the next.
    pub round_cooldown_secs: u32,
    /// The most of an account's weight one round may charge, in bps (10 000 = 100%).
    pub clawback_rate_cap_bps: u16,
    /// Weight policy for the profit basis.
    pub clawback_policy: ClawbackPolicy,
    /// Liquidations stop once equity ≥ MM · (1 + buffer).
    pub liquidation_buffer_bps: u16,
    /// Wait between queueing an admin change (parameters, insurance withdrawal) and the
    /// earliest time anyone may apply it. Zero only for localnets and tests: shown by
    /// `backstop exchange show`.
    pub admin_delay_secs: u32,
    /// A pause lapses this long after it was set (0: until the admin lifts it).
    pub max_pause_secs: u32,
}

impl ExchangeParams {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.pnl_warmup_secs <= MAX_PNL_WARMUP_SECS
                && self.min_epoch_secs <= MAX_MIN_EPOCH_SECS
                && self.round_cooldown_secs <= MAX_ROUND_COOLDOWN_SECS
                && self.clawback_rate_cap_bps > 0
                && self.clawback_rate_cap_bps as u64 <= BPS_DENOMINATOR
                && self.liquidation_buffer_bps <= MAX_LIQUIDATION_BUFFER_BPS
                && self.admin_delay_secs <= MAX_ADMIN_DELAY_SECS
                && self.max_pause_secs <= MAX_PAUSE_SECS,
            BackstopError::InvalidParameter
        );
        Ok(())
    }

    /// A change from `old` moves each rate by at most one step.
    /// Durations that protect users (the admin delay, warmup, epoch timing) at most halve
    /// per change; a bounded pause stays bounded and at most doubles.
    pub fn validate_step(&self, old: &ExchangeParams) -> Result<()> {
        let halves = |new: u32, old: u32| new >= old / 2;
        let pause_ok = old.max_pause_secs == 0
            || (self.max_pause_secs > 0
                && u64::from(self.max_pause_secs) <= u64::from(old.max_pause_secs) * 2);
        require!(
            self.clawback_rate_cap_bps
                .abs_diff(old.clawback_rate_cap_bps)
                <= MAX_RATE_CAP_STEP_BPS
                && self
                    .liquidation_buffer_bps
                    .abs_diff(old.liquidation_buffer_bps)
                    <= MAX_BUFFER_STEP_BPS
                && halves(self.admin_delay_secs, old.admin_delay_secs)
                && halves(self.pnl_warmup_secs, old.pnl_warmup_secs)
                && halves(self.min_epoch_secs, old.min_epoch_secs)
                && halves(self.round_cooldown_secs, old.round_cooldown_secs)
                && pause_ok,
            BackstopError::StepTooLarge
        );
        Ok(())
    }
}

/// An exchange-parameter change waiting for the admin delay.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct QueuedExchangeParams {
    pub active: bool,
    pub params: ExchangeParams,
    pub queued_at: i64,
    /// Anyone may apply it from this time on (while no bad-debt epoch is open).
    pub ready_at: i64,
}

/// An insurance withdrawal waiting for the admin delay.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct QueuedWithdrawal {
    pub active: bool,
    pub amount: u64,
    /// The token account the admin named when queueing.
    pub destination: Pubkey,
    pub queued_at: i64,
    pub ready_at: i64,
}

/// One exchange: collateral mint, vaults, parameters, aggregates and the epoch machine.
#[account]
#[derive(InitSpace, Debug)]
pub struct Exchange {
    pub admin: Pubkey,
    pub collateral_mint: Pubkey,
    /// Token account holding all margin collateral (authority: this PDA).
    pub vault: Pubkey,
    /// Token account holding the insurance fund (authority: this PDA).
    pub insurance_vault: Pubkey,
    pub id: u16,
    pub bump: u8,
    pub collateral_decimals: u8,
    /// PAUSE_* bits.
    pub paused: u8,
    pub params: ExchangeParams,
    pub num_accounts: u32,
    pub num_markets: u16,
    pub num_oracle_feeds: u16,
    /// Σ capital, Σ pnl, Σ basis, both vault balances and the deficit (I1, I3).
    pub books: Books,
    pub epoch: EpochState,
    /// Capital withdrawn during bad-debt epoch `withdrawn_epoch` (all accounts). A
    /// capital-basis round weighs capital + what was withdrawn during the epoch, so
    /// leaving early does not shrink an account's share (see `MarginAccount::epoch_withdrawn`).
    pub epoch_withdrawn_total: u64,
    pub withdrawn_epoch: u64,
    /// The admin that created the exchange: the PDA seed, kept when the admin changes.
    pub creator: Pubkey,
    /// Proposed by the admin, becomes admin when it signs `accept_admin` (default: none).
    pub pending_admin: Pubkey,
    pub queued_params: QueuedExchangeParams,
    pub queued_withdrawal: QueuedWithdrawal,
    /// When the pause bits were last set or lifted (queued changes wait a full delay after).
    pub paused_at: i64,
    /// When the current (or last) pause began (for `max_pause_secs`).
    pub pause_started_at: i64,
    /// Accounts flat with negative equity that `resolve_bankruptcy` has not written up
    /// yet: insurance cannot be withdrawn while any exists.
    pub unresolved_bankruptcies: u32,
    /// Accounts able to carry profit weight (an open position or positive pnl), and
    /// accounts with capital: kept exact by `engine::track` on every account change, so
    /// a round knows in O(1) how many tallies it needs (docs/DESIGN.md §6.2).
    pub profit_capable_accounts: u32,
    pub capital_accounts: u32,
    /// The smallest Σ(capital + withdrawn this epoch) seen since epoch `holdback_epoch`
    /// opened: the base of the `BadDebt` withdrawal hold-back. It only ratchets down, so
    /// no one else's deposit can shrink an account's hold-back.
    pub holdback_base: u128,
    pub holdback_epoch: u64,
    /// The round's price snapshot, one fixed-point price per market index, recorded by
    /// `begin_clawback` (round `epoch.round_seq`).
    pub round_prices: [u64; MAX_MARKETS as usize],
    pub reserved: [u8; 48],
}

impl Exchange {
    /// Capital withdrawn by all accounts during the open epoch `epoch_id`.
    pub fn withdrawn_in(&self, epoch_id: u64) -> u64 {
        if self.withdrawn_epoch == epoch_id {
            self.epoch_withdrawn_total
        } else {
            0
        }
    }

    /// The base of the withdrawal hold-back now: the smallest Σ(capital + withdrawn this
    /// epoch) seen since the epoch opened, ratcheted down to today's value and stored.
    /// Deposits raise today's Σ but never the base, so no one else's deposit can shrink an
    /// account's hold-back; losses lower it, which only holds back more.
    pub fn holdback_base_now(&mut self) -> Result<u128> {
        let epoch = self.epoch.epoch_id;
        let today = self
            .books
            .total_capital
            .safe_add(u128::from(self.withdrawn_in(epoch)))?;
        let base = if self.holdback_epoch == epoch {
            self.holdback_base.min(today)
        } else {
            today
        };
        self.holdback_base = base;
        self.holdback_epoch = epoch;
        Ok(base)
    }

    /// Records the hold-back base when a bad-debt epoch opens: Σ capital then.
    pub fn start_holdback(&mut self) {
        self.holdback_base = self.books.total_capital;
        self.holdback_epoch = self.epoch.epoch_id;
    }

    /// Whether pause `bit` is in force at `now`: set, and not lapsed after
    /// `max_pause_secs`.
    pub fn is_paused(&self, bit: u8, now: i64) -> bool {
        self.paused & bit != 0
            && pause_in_force(self.pause_started_at, self.params.max_pause_secs, now)
    }

    /// Owned seeds of this exchange's PDA, for signing vault transfers.
    pub fn seeds(&self) -> ExchangeSeeds {
        ExchangeSeeds {
            admin: self.creator,
            id: self.id.to_le_bytes(),
            bump: [self.bump],
        }
    }
}

pub struct ExchangeSeeds {
    admin: Pubkey,
    id: [u8; 2],
    bump: [u8; 1],
}

impl ExchangeSeeds {
    pub fn as_slices(&self) -> [&[u8]; 4] {
        [EXCHANGE_SEED, self.admin.as_ref(), &self.id, &self.bump]
    }
}

/// A pause set at `paused_at` is in force at `now` unless `max_pause_secs` (non-zero) has
/// passed since.
pub fn pause_in_force(paused_at: i64, max_pause_secs: u32, now: i64) -> bool {
    max_pause_secs == 0 || now < paused_at.saturating_add(i64::from(max_pause_secs))
}

/// Starts, changes or lifts a pause (`on`) whose state is (`was_on`, `started_at`): the
/// new `started_at`, or `PauseCooldown`. A pause in force is not extended by setting it
/// again, and a new pause may start only `2 · max_pause_secs` after the last one began
/// (at least `max_pause_secs` unpaused), so a bounded pause cannot be renewed back to back.
pub fn next_pause_start(
    was_on: bool,
    started_at: i64,
    on: bool,
    max_pause_secs: u32,
    now: i64,
) -> Result<i64> {
    if !on {
        return Ok(started_at);
    }
    if was_on && pause_in_force(started_at, max_pause_secs, now) {
        return Ok(started_at);
    }
    // Lifting a pause early does not reset the budget either: the window runs from the
    // start of the last pause (0: never paused).
    if max_pause_secs > 0 && started_at != 0 {
        let again_at = started_at.saturating_add(2i64.saturating_mul(i64::from(max_pause_secs)));
        require!(now >= again_at, BackstopError::PauseCooldown);
    }
    Ok(now)
}
