//! Events: every state change emits one, so any user can recompute their own books.

use anchor_lang::prelude::*;

use crate::state::{ExchangeParams, MarketParams};

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeInitialized {
    pub exchange: Pubkey,
    pub admin: Pubkey,
    pub collateral_mint: Pubkey,
    pub vault: Pubkey,
    pub insurance_vault: Pubkey,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeParamsUpdated {
    pub exchange: Pubkey,
    pub old: ExchangeParams,
    pub new: ExchangeParams,
}

/// An admin change was queued: anyone may apply it from `ready_at` (while no bad-debt
/// epoch is open); until then users see it coming.
#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeParamsQueued {
    pub exchange: Pubkey,
    pub old: ExchangeParams,
    pub new: ExchangeParams,
    pub ready_at: i64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketParamsQueued {
    pub market: Pubkey,
    pub old: MarketParams,
    pub new: MarketParams,
    pub ready_at: i64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsuranceWithdrawalQueued {
    pub exchange: Pubkey,
    pub amount: u64,
    pub destination: Pubkey,
    pub ready_at: i64,
}

/// What a cancelled or queued admin change was.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    ExchangeParams,
    MarketParams,
    InsuranceWithdrawal,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeCancelled {
    pub exchange: Pubkey,
    /// The exchange, or the market whose change was cancelled.
    pub target: Pubkey,
    pub kind: ChangeKind,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminProposed {
    pub exchange: Pubkey,
    pub admin: Pubkey,
    pub proposed: Pubkey,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminChanged {
    pub exchange: Pubkey,
    pub old: Pubkey,
    pub new: Pubkey,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketPausedSet {
    pub market: Pubkey,
    pub paused: bool,
    /// The pause lapses after this long (0: until lifted).
    pub max_pause_secs: u32,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausedSet {
    pub exchange: Pubkey,
    pub flags: u8,
    /// The pause lapses after this long (0: until lifted).
    pub max_pause_secs: u32,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketAdded {
    pub exchange: Pubkey,
    pub market: Pubkey,
    pub index: u16,
    pub oracle: Pubkey,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketParamsUpdated {
    pub market: Pubkey,
    pub old: MarketParams,
    pub new: MarketParams,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleFeedCreated {
    pub feed: Pubkey,
    pub authority: Pubkey,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OraclePriceSet {
    pub feed: Pubkey,
    pub price: i64,
    pub conf: u64,
    pub expo: i32,
    pub publish_time: i64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarginAccountCreated {
    pub exchange: Pubkey,
    pub account: Pubkey,
    pub owner: Pubkey,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarginAccountClosed {
    pub exchange: Pubkey,
    pub account: Pubkey,
    pub owner: Pubkey,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposited {
    pub account: Pubkey,
    pub amount: u64,
    pub capital_after: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    pub account: Pubkey,
    pub amount: u64,
    pub capital_after: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeFilled {
    pub market_index: u16,
    pub taker: Pubkey,
    pub maker: Pubkey,
    /// Taker side, signed.
    pub base_qty: i64,
    pub price: u64,
    pub oracle_price: u64,
    /// Taker's quote basis change (the maker's is the negative).
    pub quote: i64,
    pub taker_fee: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PnlSettled {
    pub account: Pubkey,
    pub marked: i64,
    pub losses_absorbed: u64,
    pub converted_to_capital: u64,
    pub capital_after: u64,
    pub pnl_after: i64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsuranceContributed {
    pub exchange: Pubkey,
    pub contributor: Pubkey,
    pub amount: u64,
    pub balance_after: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsuranceWithdrawn {
    pub exchange: Pubkey,
    pub amount: u64,
    pub balance_after: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liquidated {
    pub market_index: u16,
    pub liquidator: Pubkey,
    pub liquidatee: Pubkey,
    /// Base atoms moved (absolute).
    pub base_qty: u64,
    pub liquidatee_was_long: bool,
    pub oracle_price: u64,
    pub liquidation_price: u64,
    pub equity_before: i64,
    pub equity_after: i64,
    pub maintenance_margin_after: u64,
    /// Paid by the liquidator to the insurance fund (discounted liquidation).
    pub insurance_fee: u64,
    /// Paid by the insurance fund to the liquidator (liquidatee equity ≤ 0).
    pub insurance_paid: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankruptcyResolved {
    pub account: Pubkey,
    pub owner: Pubkey,
    /// Negative equity written up to zero.
    pub shortfall: u64,
    pub capital_consumed: u64,
    pub insurance_paid: u64,
    pub deficit_added: u64,
    pub insurance_before: u64,
    pub insurance_after: u64,
    pub deficit_before: u64,
    pub deficit_after: u64,
    pub epoch_id: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochOpened {
    pub exchange: Pubkey,
    pub epoch_id: u64,
    pub deficit: u64,
    pub opened_at: i64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundStarted {
    pub exchange: Pubkey,
    pub epoch_id: u64,
    pub round: u64,
    pub deficit: u64,
    /// Accounts that existed at the round's start.
    pub accounts: u32,
    /// Of those, the ones a profit-basis round must tally (open positions or positive
    /// pnl), and the ones with capital (tallied too when no account has profit weight).
    pub profit_accounts: u32,
    pub capital_accounts: u32,
    pub rate_cap_bps: u16,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyRecorded {
    pub account: Pubkey,
    pub round: u64,
    pub profit_weight: u128,
    pub profit_cap: u64,
    pub capital: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyFinalized {
    pub exchange: Pubkey,
    pub epoch_id: u64,
    pub round: u64,
    pub basis_is_capital: bool,
    pub deficit: u64,
    pub total_weight: u128,
    /// The round's exact rate r = rate_num / rate_den.
    pub rate_num: u128,
    pub rate_den: u128,
    pub accounts_to_apply: u32,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClawbackApplied {
    pub account: Pubkey,
    pub owner: Pubkey,
    pub epoch_id: u64,
    pub round: u64,
    pub basis_is_capital: bool,
    pub weight: u128,
    pub rate_num: u128,
    pub rate_den: u128,
    /// min(⌈weight · rate⌉, cap).
    pub amount: u64,
    pub to_deficit: u64,
    /// Rounding excess beyond the deficit, moved to the insurance fund.
    pub to_insurance: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundEnded {
    pub exchange: Pubkey,
    pub epoch_id: u64,
    pub round: u64,
    pub charged: u64,
    pub to_insurance: u64,
    pub deficit_after: u64,
    pub cooldown_until: i64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeficitCovered {
    pub exchange: Pubkey,
    pub payer: Pubkey,
    pub amount: u64,
    pub deficit_after: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochClosed {
    pub exchange: Pubkey,
    pub epoch_id: u64,
    pub rounds: u32,
    pub deficit_opened: u64,
    pub clawed_back: u64,
    pub covered: u64,
}

#[event]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurplusSwept {
    pub exchange: Pubkey,
    pub vault_surplus: u64,
    pub insurance_surplus: u64,
}

/// Calls macro `$m!` with the name of every event the program emits: the one list of
/// them, for the program's tests and the client's decoder (the names must be in scope
/// where `$m!` expands: `use backstop::events::*`).
#[macro_export]
macro_rules! for_each_event {
    ($m:ident) => {
        $m!(
            ExchangeInitialized,
            ExchangeParamsUpdated,
            ExchangeParamsQueued,
            MarketParamsQueued,
            InsuranceWithdrawalQueued,
            ChangeCancelled,
            AdminProposed,
            AdminChanged,
            MarketPausedSet,
            PausedSet,
            MarketAdded,
            MarketParamsUpdated,
            OracleFeedCreated,
            OraclePriceSet,
            MarginAccountCreated,
            MarginAccountClosed,
            Deposited,
            Withdrawn,
            TradeFilled,
            PnlSettled,
            InsuranceContributed,
            InsuranceWithdrawn,
            Liquidated,
            BankruptcyResolved,
            EpochOpened,
            RoundStarted,
            TallyRecorded,
            TallyFinalized,
            ClawbackApplied,
            RoundEnded,
            DeficitCovered,
            EpochClosed,
            SurplusSwept,
        );
    };
}

/// Returned by the read-only `health` instruction (return data).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthReport {
    pub equity: i128,
    pub equity_conservative: i128,
    pub unrealized: i128,
    pub notional: u128,
    pub initial_margin: u128,
    pub maintenance_margin: u128,
    pub open_positions: u8,
    pub liquidatable: bool,
    pub bankrupt: bool,
    /// Open positions valued at a degraded price (the market's oracle stale, too
    /// uncertain or unusable): at the edge of its interval against the account.
    pub degraded_positions: u8,
}

/// The largest serialized event (discriminator included) [`emit`] writes from the stack.
/// Every event is fixed-size and well below it (`every_event_fits_the_stack_buffer`).
pub const MAX_EVENT_BYTES: usize = 256;

/// Emits `event` as "Program data: <base64>" in the transaction log, like `emit!`, but
/// without a heap allocation: the discriminator and the Borsh body are written into a
/// stack buffer. (The SBF heap is a 32 KiB bump allocator that never frees; `emit!`
/// allocates a `Vec` per event, and a batch emits one event per account.)
///
/// Anchor 1.2.2's `sol_log_data` is a no-op when the program is compiled for the host, so
/// in native hosts (LiteSVM, the localnet validator with the builtin) `emit!` events would
/// vanish. Off SBF this goes through the syscall stubs, which write into the host's real
/// transaction log; on SBF it is the `sol_log_data` syscall, exactly what `emit!` calls.
/// Every event in the program goes through here.
pub fn emit<E: anchor_lang::Event>(event: E) {
    let mut buf = [0u8; MAX_EVENT_BYTES];
    let Some(len) = encode_event(&event, &mut buf) else {
        // Unreachable for this program's events (fixed-size, tested); never drop one.
        log_data(&event.data());
        return;
    };
    log_data(buf.get(..len).unwrap_or_default());
}

/// Writes discriminator + Borsh body of `event` into `buf`; `None` if it does not fit.
pub fn encode_event<E: anchor_lang::Event>(event: &E, buf: &mut [u8]) -> Option<usize> {
    use std::io::Write;
    let capacity = buf.len();
    let mut w: &mut [u8] = buf;
    w.write_all(E::DISCRIMINATOR).ok()?;
    event.serialize(&mut w).ok()?;
    capacity.checked_sub(w.len())
}

fn log_data(data: &[u8]) {
    #[cfg(target_os = "solana")]
    anchor_lang::solana_program::log::sol_log_data(&[data]);
    #[cfg(not(target_os = "solana"))]
    anchor_lang::compat::solana_sysvar::program_stubs::sol_log_data(&[data]);
}

/// Writes "Program log: <message>" into the transaction log (see [`emit`] for why `msg!`
/// is not enough in native hosts: off SBF it prints to stdout instead).
pub fn log(message: &str) {
    #[cfg(target_os = "solana")]
    anchor_lang::prelude::msg!("{}", message);
    #[cfg(not(target_os = "solana"))]
    anchor_lang::compat::solana_sysvar::program_stubs::sol_log(message);
}

/// `msg!`-style formatting into the transaction log, in every host.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::events::log(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes the all-zero value of each event (Borsh sizes here do not depend on
    /// values: every field is fixed-size) and checks it fits the stack buffer, and that
    /// the bytes are exactly what `emit!` would log.
    macro_rules! check_events {
        ($($e:ident),* $(,)?) => {$({
            let zero = [0u8; 1024];
            let event = $e::deserialize(&mut &zero[..]).expect(stringify!($e));
            let mut buf = [0u8; MAX_EVENT_BYTES];
            let len = encode_event(&event, &mut buf)
                .unwrap_or_else(|| panic!("{} does not fit {} bytes", stringify!($e), MAX_EVENT_BYTES));
            assert_eq!(&buf[..len], &anchor_lang::Event::data(&event)[..], stringify!($e));
        })*};
    }

    #[test]
    fn every_event_fits_the_stack_buffer() {
        crate::for_each_event!(check_events);
    }

    #[test]
    fn an_event_too_large_for_the_buffer_is_reported() {
        let zero = [0u8; 1024];
        let event = ClawbackApplied::deserialize(&mut &zero[..]).unwrap();
        let mut small = [0u8; 16];
        assert_eq!(encode_event(&event, &mut small), None);
    }
}
