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
    /// Size premium (docs/DESIGN.md §4.2, `math::margin::size_scaled_rates`): a position's
    /// margin rates grow as `imf_factor · √|base atoms| / 10⁶` bps once that exceeds the
    /// base initial rate (maintenance in proportion), up to 100%. 0: fixed rates. At most
    /// `MAX_IMF_FACTOR`; a change moves it by at most `math::margin::imf_step_limit`.
    pub imf_factor: u32,
    /// Share of a position's unrealized profit initial margin counts (bps; 10,000: all).
    /// Maintenance margin and liquidations count it in full.
    pub unrealized_weight_bps: u16,
    /// Time constant of the market's smoothed price (`math::margin::next_stable_price`),
    /// updated whenever a trade or liquidation accepts an oracle read; initial margin
    /// values positions at the worse of it and the oracle. 0: no smoothing. At most
    /// `MAX_STABLE_WINDOW_SECS`.
    pub stable_price_window_secs: u32,
}

impl MarketParams {
    /// Typical parameters, for tests, benchmarks and examples: 10% initial and 5%
    /// maintenance margin, 1% liquidation fee (20% of it to insurance), 0.1% taker fee,
    /// trades within 2% of the oracle, oracle at most 60 s old and 2% uncertain, no
    /// open-interest cap, fixed margin rates, unrealized profit counted in full and no
    /// smoothed price (the static rules; see [`MarketParams::DYNAMIC_EXAMPLE`]).
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
        imf_factor: 0,
        unrealized_weight_bps: 10_000,
        stable_price_window_secs: 0,
    };

    /// [`MarketParams::EXAMPLE`] with dynamic margin, for a base token of 6 decimals: rates
    /// grow past 10% for positions above 250 units (imf 63,246: 20% at 1,000 units, 63%
    /// at 10,000), unrealized profit counts 80% toward initial margin, and a 5-minute
    /// smoothed price guards initial margin against single-print spikes.
    pub const DYNAMIC_EXAMPLE: MarketParams = MarketParams {
        imf_factor: 63_246,
        unrealized_weight_bps: 8_000,
        stable_price_window_secs: 300,
        ..MarketParams::EXAMPLE
    };

    /// The maintenance rate of a position of `base_qty` atoms (liquidation sizing).
    pub fn maintenance_rate(&self, base_qty: i64) -> crate::math::MathResult<u16> {
        crate::math::margin::size_scaled_rates(
            self.initial_margin_bps,
            self.maintenance_margin_bps,
            self.imf_factor,
            base_qty,
        )
        .map(|(_, mm)| mm)
    }

    /// The initial and maintenance margin rates of a position of `base_qty` atoms.
    pub fn margin_rates(&self, base_qty: i64) -> Result<(u16, u16)> {
        Ok(crate::math::margin::size_scaled_rates(
            self.initial_margin_bps,
            self.maintenance_margin_bps,
            self.imf_factor,
            base_qty,
        )?)
    }

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
            && self.oracle_max_conf_bps <= MAX_ORACLE_CONF_BPS
            && self.imf_factor <= MAX_IMF_FACTOR
            && self.unrealized_weight_bps as u64 <= BPS_DENOMINATOR
            && self.stable_price_window_secs <= MAX_STABLE_WINDOW_SECS;
        if !ok {
            crate::log!("market params out of bounds: {:?}", self);
        }
        require!(ok, BackstopError::InvalidParameter);
        Ok(())
    }
}

impl MarketParams {
    /// A change from `old` moves each rate by at most one step (`MAX_*_STEP_*`); the size
    /// premium by `math::margin::imf_step_limit(imf_reference)`, the premium of a
    /// reference position (`math::margin::imf_reference_atoms`).
    pub fn validate_step(&self, old: &MarketParams, imf_reference: u128) -> Result<()> {
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
                <= MAX_ORACLE_AGE_STEP_SECS
            // The size premium raises maintenance margin too: bounded steps, so no change
            // makes positions liquidatable at once.
            && self.imf_factor.abs_diff(old.imf_factor)
                <= crate::math::margin::imf_step_limit(imf_reference);
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
    /// The smoothed price (`math::margin::next_stable_price`; 0 until the first read) and
    /// when it was last updated.
    pub stable_price: u64,
    pub stable_price_at: i64,
    pub reserved: [u8; 8],
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
    /// The smoothed price initial margin and settlement use: 0 (none) while smoothing is
    /// off or before the first accepted read.
    pub fn smoothed_price(&self) -> u64 {
        if self.params.stable_price_window_secs == 0 {
            0
        } else {
            self.stable_price
        }
    }

    /// Records an accepted oracle read: the last price and the smoothed price.
    pub fn accept_price(&mut self, price: u64, now: i64) -> Result<()> {
        self.last_price = price;
        self.stable_price = crate::math::margin::next_stable_price(
            self.stable_price,
            self.stable_price_at,
            price,
            now,
            self.params.stable_price_window_secs,
        )?;
        self.stable_price_at = now;
        Ok(())
    }

    /// Frozen open interest at `now`: `paused` set and not lapsed after `max_pause_secs`.
    pub fn pause_in_force(&self, max_pause_secs: u32, now: i64) -> bool {
        self.paused && crate::state::pause_in_force(self.pause_started_at, max_pause_secs, now)
    }
}
