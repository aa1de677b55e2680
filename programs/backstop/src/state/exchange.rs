use anchor_lang::prelude::*;

use crate::constants::*;
use crate::error::BackstopError;
use crate::math::clawback::{Basis, Policy, Rate};

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

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum ClawbackPolicy {
    ProfitProRata,
    LeverageWeighted,
}

impl From<ClawbackPolicy> for Policy {
    fn from(p: ClawbackPolicy) -> Self {
        match p {
            ClawbackPolicy::ProfitProRata => Policy::ProfitProRata,
            ClawbackPolicy::LeverageWeighted => Policy::LeverageWeighted,
        }
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum EpochPhase {
    /// No deficit.
    Normal,
    /// Deficit > 0: positive pnl frozen, capital withdrawals limited, insurance locked.
    BadDebt,
    /// A round's first pass: `tally` records weights. Trades and new accounts paused.
    Tallying,
    /// A round's second pass: `clawback` charges each tallied account.
    Applying,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum ClawbackBasis {
    Profit,
    Capital,
}

impl From<Basis> for ClawbackBasis {
    fn from(b: Basis) -> Self {
        match b {
            Basis::Profit => ClawbackBasis::Profit,
            Basis::Capital => ClawbackBasis::Capital,
        }
    }
}

/// The bad-debt epoch state machine (DESIGN §5).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub struct EpochState {
    pub phase: EpochPhase,
    /// Id of the current bad-debt epoch (or of the next one while `Normal`).
    pub epoch_id: u64,
    pub epoch_opened_at: i64,
    /// Global, never reused round counter: account tallies and receipts refer to it.
    pub round_seq: u64,
    /// Rounds run in the current epoch.
    pub rounds_in_epoch: u32,
    pub round_started_at: i64,
    /// `begin_clawback` is refused before this time (cooldown after a round).
    pub cooldown_until: i64,
    /// Policy and cap frozen for the round at `begin_clawback`.
    pub policy: ClawbackPolicy,
    pub rate_cap_bps: u16,
    /// Accounts that must be tallied before `finalize_tally` (= num_accounts at begin).
    pub accounts_to_tally: u32,
    pub tallied: u32,
    pub profit_weight_total: u128,
    pub profit_weighted_accounts: u32,
    pub capital_weight_total: u128,
    pub capital_weighted_accounts: u32,
    /// Fixed at `finalize_tally`.
    pub basis: ClawbackBasis,
    pub deficit_at_finalize: u64,
    pub rate_num: u128,
    pub rate_den: u128,
    pub to_apply: u32,
    pub applied: u32,
    /// Charged in this round, and the part of it that went to the insurance fund.
    pub round_charged: u64,
    pub round_to_insurance: u64,
    /// Totals over the epoch.
    pub epoch_deficit_opened: u64,
    pub epoch_charged: u64,
    pub epoch_covered: u64,
}

impl EpochState {
    pub fn rate(&self) -> Rate {
        Rate {
            num: self.rate_num,
            den: self.rate_den,
        }
    }

    /// Whether a clawback round (Tallying or Applying) is in progress.
    pub fn in_round(&self) -> bool {
        matches!(self.phase, EpochPhase::Tallying | EpochPhase::Applying)
    }

    fn empty() -> Self {
        EpochState {
            phase: EpochPhase::Normal,
            epoch_id: 1,
            epoch_opened_at: 0,
            round_seq: 0,
            rounds_in_epoch: 0,
            round_started_at: 0,
            cooldown_until: 0,
            policy: ClawbackPolicy::ProfitProRata,
            rate_cap_bps: 0,
            accounts_to_tally: 0,
            tallied: 0,
            profit_weight_total: 0,
            profit_weighted_accounts: 0,
            capital_weight_total: 0,
            capital_weighted_accounts: 0,
            basis: ClawbackBasis::Profit,
            deficit_at_finalize: 0,
            rate_num: 0,
            rate_den: 1,
            to_apply: 0,
            applied: 0,
            round_charged: 0,
            round_to_insurance: 0,
            epoch_deficit_opened: 0,
            epoch_charged: 0,
            epoch_covered: 0,
        }
    }
}

impl Default for EpochState {
    fn default() -> Self {
        Self::empty()
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
    /// Σ capital over all margin accounts.
    pub total_capital: u128,
    /// Σ pnl over all margin accounts.
    pub total_pnl: i128,
    /// Σ quote_basis over all positions.
    pub total_basis: i128,
    /// Vault balance the books expect (the vault's token amount may only exceed it by
    /// direct donations, which `sweep_surplus` books into the insurance fund).
    pub vault_balance: u64,
    /// Insurance fund balance (I3).
    pub insurance_balance: u64,
    /// Loss not yet covered by insurance or clawback.
    pub deficit: u64,
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
