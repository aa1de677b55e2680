use anchor_lang::prelude::*;

use crate::constants::*;
use crate::error::BackstopError;
use crate::math::liquidation::LiquidationParams;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum OracleKind {
    /// A Backstop `OracleFeed` account (localnet, demos, tests).
    Feed,
    /// A Pyth receiver `PriceUpdateV2` account.
    PythPull,
}

/// Risk parameters of one perpetual market (bounded by `validate`, changed through the
/// timelock in steps bounded by `validate_step`).
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct MarketParams {
    pub initial_margin_bps: u16,
    pub maintenance_margin_bps: u16,
    /// Discount a liquidator receives (must be below maintenance margin).
    pub liquidation_fee_bps: u16,
    /// Share of the liquidation discount that goes to the insurance fund.
    pub insurance_share_bps: u16,
    pub taker_fee_bps: u16,
    /// Trades must be within this distance of the oracle price.
    pub max_trade_deviation_bps: u16,
    pub oracle_max_age_secs: u32,
    /// Max confidence / price.
    pub oracle_max_conf_bps: u16,
    /// Most open interest (base atoms per side) a trade may grow the market to; 0: no
    /// cap. Trades that close or hand over positions fill whatever the open interest, so
    /// a cap at or below the current open interest makes the market reduce-only (until
    /// the cap is raised; unlike a pause it does not lapse, and it changes through the
    /// admin delay like every parameter). Liquidations never grow open interest.
    pub max_open_interest: u64,
}

impl MarketParams {
    /// Typical parameters, for tests, benchmarks and examples: 10% initial and 5%
    /// maintenance margin, 1% liquidation fee (20% of it to insurance), 0.1% taker fee,
    /// trades within 2% of the oracle, oracle at most 60 s old and 2% uncertain, no
    /// open-interest cap.
    pub const EXAMPLE: MarketParams = MarketParams {
        initial_margin_bps: 1_000,
        maintenance_margin_bps: 500,
        liquidation_fee_bps: 100,
        insurance_share_bps: 2_000,
        taker_fee_bps: 10,
        max_trade_deviation_bps: 200,
        oracle_max_age_secs: 60,
        oracle_max_conf_bps: 200,
        max_open_interest: 0,
    };

    /// 0 < liquidation fee < maintenance < initial ≤ 100%, and every other value bounded.
    pub fn validate(&self) -> Result<()> {
        let ok = self.initial_margin_bps as u64 <= BPS_DENOMINATOR
            && self.maintenance_margin_bps < self.initial_margin_bps
            && self.maintenance_margin_bps >= MIN_MAINTENANCE_MARGIN_BPS
            && self.liquidation_fee_bps < self.maintenance_margin_bps
            && self.liquidation_fee_bps <= MAX_LIQUIDATION_FEE_BPS
            && self.insurance_share_bps as u64 <= BPS_DENOMINATOR
            && self.taker_fee_bps <= MAX_TAKER_FEE_BPS
            && self.max_trade_deviation_bps > 0
            && self.max_trade_deviation_bps <= MAX_TRADE_DEVIATION_BPS
            && self.oracle_max_age_secs > 0
            && self.oracle_max_age_secs <= MAX_ORACLE_AGE_SECS
            && self.oracle_max_conf_bps > 0
            && self.oracle_max_conf_bps <= MAX_ORACLE_CONF_BPS;
        if !ok {
            crate::log!("market params out of bounds: {:?}", self);
        }
        require!(ok, BackstopError::InvalidParameter);
        Ok(())
    }
}

impl MarketParams {
    /// A change from `old` moves each rate by at most one step (`MAX_*_STEP_*`).
    pub fn validate_step(&self, old: &MarketParams) -> Result<()> {
        let ok = self.initial_margin_bps.abs_diff(old.initial_margin_bps) <= MAX_MARGIN_STEP_BPS
            && self
                .maintenance_margin_bps
                .abs_diff(old.maintenance_margin_bps)
                <= MAX_MARGIN_STEP_BPS
            && self.liquidation_fee_bps.abs_diff(old.liquidation_fee_bps) <= MAX_FEE_STEP_BPS
            && self.taker_fee_bps.abs_diff(old.taker_fee_bps) <= MAX_FEE_STEP_BPS
            && self.insurance_share_bps.abs_diff(old.insurance_share_bps) <= MAX_SHARE_STEP_BPS
            && self
                .max_trade_deviation_bps
                .abs_diff(old.max_trade_deviation_bps)
                <= MAX_BAND_STEP_BPS
            && self.oracle_max_conf_bps.abs_diff(old.oracle_max_conf_bps) <= MAX_BAND_STEP_BPS
            && self.oracle_max_age_secs.abs_diff(old.oracle_max_age_secs)
                <= MAX_ORACLE_AGE_STEP_SECS;
        if !ok {
            crate::log!("market params step too large: {:?} -> {:?}", old, self);
        }
        require!(ok, BackstopError::StepTooLarge);
        Ok(())
    }

    /// The parameters a liquidation in this market uses, with the exchange's buffer.
    pub fn liquidation_params(&self, buffer_bps: u16) -> LiquidationParams {
        LiquidationParams {
            maintenance_margin_bps: self.maintenance_margin_bps,
            liquidation_fee_bps: self.liquidation_fee_bps,
            buffer_bps,
            insurance_share_bps: self.insurance_share_bps,
        }
    }
}

#[account]
#[derive(InitSpace, Debug)]
pub struct PerpMarket {
    pub exchange: Pubkey,
    pub index: u16,
    pub bump: u8,
    pub paused: bool,
    pub name: [u8; 16],
    pub oracle: Pubkey,
    pub oracle_kind: OracleKind,
    /// Pyth feed id the `PriceUpdateV2` must carry (zero for `Feed`).
    pub pyth_feed_id: [u8; 32],
    pub base_decimals: u8,
    pub params: MarketParams,
    /// Σ positive base over all accounts; equals `short_open_interest` (I2).
    pub long_open_interest: u64,
    pub short_open_interest: u64,
    /// A parameter change waiting for the admin delay.
    pub queued_params: QueuedMarketParams,
    /// When `paused` was last set or lifted (queued changes wait a full delay after it).
    pub paused_at: i64,
    /// When the current (or last) pause began (for the exchange's `max_pause_secs`).
    pub pause_started_at: i64,
    /// The last oracle price a trade or liquidation accepted (fixed point): the round's
    /// snapshot falls back to it when the oracle account cannot be read at all.
    pub last_price: u64,
    pub reserved: [u8; 24],
}

/// A market-parameter change waiting for the admin delay.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct QueuedMarketParams {
    pub active: bool,
    pub params: MarketParams,
    pub queued_at: i64,
    /// Anyone may apply it from this time on (while no bad-debt epoch is open).
    pub ready_at: i64,
}

impl PerpMarket {
    /// Frozen open interest at `now`: `paused` set and not lapsed after `max_pause_secs`.
    pub fn pause_in_force(&self, max_pause_secs: u32, now: i64) -> bool {
        self.paused && crate::state::pause_in_force(self.pause_started_at, max_pause_secs, now)
    }
}
