//! Named precision constants, PDA seeds and parameter bounds.
//!
//! Units: collateral amounts are native token atoms (`u64`). Prices are fixed point:
//! quote atoms per *base atom*, scaled by [`PRICE_PRECISION`]. A SOL-PERP (9 base decimals)
//! at $150 with 6-decimal USDC collateral is `150e6 / 1e9 * 1e9 = 150_000_000`.

use anchor_lang::prelude::*;

/// Decimal places of a fixed-point price.
#[constant]
pub const PRICE_DECIMALS: u32 = 9;
/// `10^PRICE_DECIMALS`.
pub const PRICE_PRECISION: i128 = 1_000_000_000;
/// Basis points in one.
pub const BPS_DENOMINATOR: u64 = 10_000;
/// Maximum open positions per margin account: bounded so that every liquidation and
/// every tally fits in one transaction.
pub const MAX_POSITIONS: usize = 4;
/// `MAX_POSITIONS` for the IDL (which has no `usize`).
#[constant]
pub const MAX_OPEN_POSITIONS: u8 = MAX_POSITIONS as u8;

/// Most markets one exchange may list. `begin_clawback` reads every market's oracle in
/// one instruction for the round's price snapshot (kept in `Exchange::round_prices`, so
/// that `tally` and every touch-first tally read no market or oracle account): 14 (market,
/// oracle) pairs are what a legacy transaction carries with the keeper's compute-budget
/// instructions (`documented_batch_limits_are_the_measured_ones`), so no exchange can
/// list more markets than a round can snapshot.
#[constant]
pub const MAX_MARKETS: u16 = 14;

#[constant]
pub const EXCHANGE_SEED: &[u8] = b"exchange";
#[constant]
pub const VAULT_SEED: &[u8] = b"vault";
#[constant]
pub const INSURANCE_SEED: &[u8] = b"insurance";
#[constant]
pub const MARKET_SEED: &[u8] = b"market";
#[constant]
pub const MARGIN_SEED: &[u8] = b"margin";
#[constant]
pub const ORACLE_SEED: &[u8] = b"oracle";

/// Exchange pause bits (`set_paused`). A pause can only stop new risk: deposits,
/// withdrawals of free capital, risk-reducing trades, liquidations, settling and the epoch
/// cranks stay open in every pause, so no pause can trap a user's money.
///
/// Open interest frozen: trades that would grow it are refused (`Paused`); closing a
/// position, or handing it to another account, still goes through.
#[constant]
pub const PAUSE_TRADING: u8 = 1 << 0;
/// No new margin accounts.
#[constant]
pub const PAUSE_NEW_ACCOUNTS: u8 = 1 << 1;
pub const PAUSE_ALL: u8 = PAUSE_TRADING | PAUSE_NEW_ACCOUNTS;

// Parameter bounds (update_*_params refuse values outside them).
pub const MAX_PNL_WARMUP_SECS: u32 = 30 * 24 * 3600;
pub const MAX_MIN_EPOCH_SECS: u32 = 7 * 24 * 3600;
pub const MAX_ROUND_COOLDOWN_SECS: u32 = 24 * 3600;
pub const MAX_LIQUIDATION_BUFFER_BPS: u16 = 5_000;
/// 1%: a taker fee above the largest venues' (Drift, Mango: 0.02–0.1%) by an order of
/// magnitude; fees go to the insurance fund, so a higher one only taxes users.
pub const MAX_TAKER_FEE_BPS: u16 = 100;
/// 10%: the band in which trades may print around the oracle. Wider bands let colluding
/// accounts move value between themselves at prices far from the mark.
pub const MAX_TRADE_DEVIATION_BPS: u16 = 1_000;
/// 5%: the discount a liquidator takes (Drift and Mango pay 1–5%). Above it a liquidation
/// stops being a fee and becomes a confiscation of the liquidatee's equity — the admin
/// attack of an in-bounds 20% fee.
pub const MAX_LIQUIDATION_FEE_BPS: u16 = 500;
pub const MAX_ORACLE_AGE_SECS: u32 = 3_600;
pub const MAX_ORACLE_CONF_BPS: u16 = 1_000;
pub const MAX_BASE_DECIMALS: u8 = 18;
/// The largest fixed-point price accepted from an oracle (keeps `base_qty * price` in i128).
pub const MAX_PRICE: u64 = i64::MAX as u64;

// A price that fails its guards still values positions — conservatively — so one
// market's oracle problem never blocks health elsewhere (docs/DESIGN.md §8.2): a stale
// price's confidence is widened by the market's confidence limit plus
// `STALE_HAIRCUT_BPS_PER_MINUTE` per started minute past its max age, at most
// `MAX_STALE_HAIRCUT_BPS`; an unusable price (non-positive, unrepresentable) falls back to
// the market's last accepted price widened by the maximum.
// Dynamic margin (docs/DESIGN.md §4.2, `math::margin`).
/// The size premium is `imf_factor · √|base atoms| / IMF_SCALE` bps.
#[constant]
pub const IMF_SCALE: u32 = 1_000_000;
/// At most 1 bps per √atom: a 10⁸-atom position already needs 100%.
#[constant]
pub const MAX_IMF_FACTOR: u32 = 1_000_000;
/// The smoothed price's time constant: at most a day.
#[constant]
pub const MAX_STABLE_WINDOW_SECS: u32 = 86_400;
/// One oracle read moves the smoothed price by at most this many seconds' worth of its
/// average, however long since the last one (a print after a quiet hour is one print).
#[constant]
pub const MAX_STABLE_STEP_SECS: u32 = 60;

#[constant]
pub const STALE_HAIRCUT_BPS_PER_MINUTE: u16 = 100;
#[constant]
pub const MAX_STALE_HAIRCUT_BPS: u16 = 5_000;
/// Largest |oracle exponent| accepted.
pub const MAX_ORACLE_EXPO: i32 = 18;

/// The Solana runtime keeps at most this many bytes of one transaction's log; past it the
/// log is cut ("Log truncated") and the events of a batch would be lost to indexers.
pub const LOG_BYTES_LIMIT: usize = 10_000;
/// Most margin accounts one `tally` may carry. Bounded by the 64 account locks of a v0
/// transaction with a lookup table (fee payer, exchange, program and compute-budget
/// program leave 60: a tally reads the round's price snapshot from the exchange, no market
/// or oracle account); its log (one `TallyRecorded` per account) stays under
/// [`LOG_BYTES_LIMIT`] (`largest_batches_log_within_the_budget`).
#[constant]
pub const MAX_TALLY_BATCH: u8 = 60;
/// Most margin accounts one `clawback` may carry: its log (one 230-byte
/// `ClawbackApplied` per account, plus the token transfer and the round's closing events)
/// must stay under [`LOG_BYTES_LIMIT`]; 57 accounts (the lock limit) would log ≈ 14 KB.
/// Measured by `largest_batches_log_within_the_budget`: 36 accounts logged 9,601 bytes,
/// too close once SBF adds its "consumed … compute units" lines; 34 leave ≈ 850 bytes.
#[constant]
pub const MAX_CLAWBACK_BATCH: u8 = 34;

// The admin's powers (docs/DESIGN.md §11): every parameter change and insurance
// withdrawal waits `admin_delay_secs` after it is queued, and moves each rate by at most
// one step, so users can see a change coming and leave before it applies.

/// Longest admin delay: 30 days. (Zero is allowed for localnets and tests, and shown.)
pub const MAX_ADMIN_DELAY_SECS: u32 = 30 * 24 * 3600;
/// Longest a pause may be set to last: 30 days. Zero: until the admin lifts it.
pub const MAX_PAUSE_SECS: u32 = 30 * 24 * 3600;
/// Initial and maintenance margin move at most 5 points per change: raising margins
/// liquidates accounts, so a large jump would let the admin liquidate whom it chooses.
pub const MAX_MARGIN_STEP_BPS: u16 = 500;
/// Liquidation and taker fees move at most 1 point per change.
pub const MAX_FEE_STEP_BPS: u16 = 100;
/// The insurance share of the liquidation discount moves at most 25 points per change.
pub const MAX_SHARE_STEP_BPS: u16 = 2_500;
/// The trade band and the oracle confidence limit move at most 2 points per change.
pub const MAX_BAND_STEP_BPS: u16 = 200;
/// The oracle max age moves at most 5 minutes per change (longer ages admit staler prices).
pub const MAX_ORACLE_AGE_STEP_SECS: u32 = 300;
/// The clawback rate cap moves at most 25 points per change.
pub const MAX_RATE_CAP_STEP_BPS: u16 = 2_500;
/// The liquidation buffer moves at most 10 points per change.
pub const MAX_BUFFER_STEP_BPS: u16 = 1_000;
/// A queued change (or insurance withdrawal) may be applied during one day after it is
/// ready; then it expires and must be queued again. Without this a due change would be an
/// option the admin could exercise at the worst moment for users (in a crash, say).
pub const CHANGE_APPLY_WINDOW_SECS: i64 = 24 * 3600;
/// 1%: the lowest maintenance margin. Lower margins (the bounds allowed 0.01%) would let
/// a colluding pair run thousands-fold leverage and push losses onto the insurance fund
/// and the winners' clawback.
pub const MIN_MAINTENANCE_MARGIN_BPS: u16 = 100;
