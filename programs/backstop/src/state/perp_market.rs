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

/// Risk parameters of one perpetual market (bounded by `validate`).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
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
}

impl MarketParams {
    /// 0 < liquidation fee < maintenance < initial ≤ 100%, and every other value bounded.
    pub fn validate(&self) -> Result<()> {
        let ok = self.initial_margin_bps as u64 <= BPS_DENOMINATOR
            && self.maintenance_margin_bps < self.initial_margin_bps
            && self.maintenance_margin_bps > 0
            && self.liquidation_fee_bps < self.maintenance_margin_bps
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
    pub reserved: [u8; 32],
}
