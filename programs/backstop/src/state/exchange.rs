use anchor_lang::prelude::*;

use crate::constants::*;
use crate::error::BackstopError;
use crate::state::{Books, ClawbackPolicy, EpochState};

/// Exchange-wide parameters (bounded by `validate`).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
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
}

impl ExchangeParams {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.pnl_warmup_secs <= MAX_PNL_WARMUP_SECS
                && self.min_epoch_secs <= MAX_MIN_EPOCH_SECS
                && self.round_cooldown_secs <= MAX_ROUND_COOLDOWN_SECS
                && self.clawback_rate_cap_bps > 0
                && self.clawback_rate_cap_bps as u64 <= BPS_DENOMINATOR
                && self.liquidation_buffer_bps <= MAX_LIQUIDATION_BUFFER_BPS,
            BackstopError::InvalidParameter
        );
        Ok(())
    }
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

    pub fn is_paused(&self, bit: u8) -> bool {
        self.paused & bit != 0
    }

    /// Owned seeds of this exchange's PDA, for signing vault transfers.
    pub fn seeds(&self) -> ExchangeSeeds {
        ExchangeSeeds {
            admin: self.admin,
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
