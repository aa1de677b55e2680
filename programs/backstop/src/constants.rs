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

/// Exchange pause bits (`set_paused`).
pub const PAUSE_TRADING: u8 = 1 << 0;
pub const PAUSE_DEPOSITS: u8 = 1 << 1;
pub const PAUSE_WITHDRAWALS: u8 = 1 << 2;
pub const PAUSE_LIQUIDATIONS: u8 = 1 << 3;
pub const PAUSE_ALL: u8 = PAUSE_TRADING | PAUSE_DEPOSITS | PAUSE_WITHDRAWALS | PAUSE_LIQUIDATIONS;

// Parameter bounds (update_*_params refuse values outside them).
pub const MAX_PNL_WARMUP_SECS: u32 = 30 * 24 * 3600;
pub const MAX_MIN_EPOCH_SECS: u32 = 7 * 24 * 3600;
pub const MAX_ROUND_COOLDOWN_SECS: u32 = 24 * 3600;
pub const MAX_LIQUIDATION_BUFFER_BPS: u16 = 5_000;
pub const MAX_TAKER_FEE_BPS: u16 = 1_000;
pub const MAX_TRADE_DEVIATION_BPS: u16 = 2_000;
pub const MAX_ORACLE_AGE_SECS: u32 = 3_600;
pub const MAX_ORACLE_CONF_BPS: u16 = 1_000;
pub const MAX_BASE_DECIMALS: u8 = 18;
/// The largest fixed-point price accepted from an oracle (keeps `base_qty * price` in i128).
pub const MAX_PRICE: u64 = i64::MAX as u64;
/// Largest |oracle exponent| accepted.
pub const MAX_ORACLE_EXPO: i32 = 18;

/// The Solana runtime keeps at most this many bytes of one transaction's log; past it the
/// log is cut ("Log truncated") and the events of a batch would be lost to indexers.
pub const LOG_BYTES_LIMIT: usize = 10_000;
/// Most margin accounts one `tally` may carry. Bounded by the 64 account locks of a v0
/// transaction with a lookup table (fee payer, exchange, program, compute-budget program
/// and one (market, oracle) pair leave 58); its log (one `TallyRecorded` per account,
/// 122 bytes) stays under [`LOG_BYTES_LIMIT`]
/// (`largest_batches_log_within_the_budget`).
#[constant]
pub const MAX_TALLY_BATCH: u8 = 58;
/// Most margin accounts one `clawback` may carry: its log (one 230-byte
/// `ClawbackApplied` per account, plus the token transfer and the round's closing events)
/// must stay under [`LOG_BYTES_LIMIT`]; 57 accounts (the lock limit) would log ≈ 14 KB.
/// Measured by `largest_batches_log_within_the_budget`: 36 accounts logged 9,601 bytes,
/// too close once SBF adds its "consumed … compute units" lines; 34 leave ≈ 850 bytes.
#[constant]
pub const MAX_CLAWBACK_BATCH: u8 = 34;
