//! Every error the program returns. Append-only: codes are part of the public interface.

use anchor_lang::prelude::*;

use crate::math::oracle_price::Rejection;
use crate::math::trade::{PriceRefusal, SideRefusal};
use crate::math::MathError;

#[error_code]
pub enum BackstopError {
    #[msg("Arithmetic overflow: an amount is too large for the books; use a smaller amount")]
    MathOverflow,
    #[msg("Amount must be greater than zero")]
    ZeroAmount,
    #[msg("Parameter out of bounds; see the bounds in constants.rs and the error log")]
    InvalidParameter,
    #[msg("The exchange is paused: no trade may grow open interest (close or hand over positions) and no new accounts; deposits, withdrawals and liquidations stay open")]
    Paused,
    #[msg("The market is paused: no trade may grow its open interest; close positions or hand them over")]
    MarketPaused,
    #[msg("Signer is not the owner of this margin account")]
    NotAccountOwner,
    #[msg("Account belongs to a different exchange")]
    WrongExchange,
    #[msg("Token account is not the exchange's collateral vault")]
    WrongVault,
    #[msg("Token account is not the exchange's insurance vault")]
    WrongInsuranceVault,
    #[msg("Token account mint is not the exchange's collateral mint")]
    WrongMint,
    #[msg("Oracle account does not match the market's oracle")]
    WrongOracle,
    #[msg("Oracle account is owned by the wrong program")]
    OracleWrongOwner,
    #[msg("Oracle account data could not be decoded")]
    OracleInvalidData,
    #[msg("Oracle price is zero or negative")]
    OracleNonPositivePrice,
    #[msg("Oracle price is older than the market's max age; wait for a fresh update")]
    OracleStale,
    #[msg("Oracle confidence interval is wider than the market allows; wait for calmer prices")]
    OracleConfidenceTooWide,
    #[msg("Oracle price cannot be represented at this market's precision")]
    OracleUnrepresentable,
    #[msg("Only the oracle feed's authority may set its price")]
    NotOracleAuthority,
    #[msg("A market and oracle account pair is missing for one of the account's positions; pass every position's market and oracle")]
    MissingMarketAccounts,
    #[msg("Remaining accounts must be (market, oracle) pairs of this exchange")]
    InvalidRemainingAccounts,
    #[msg("Withdrawal exceeds the account's capital")]
    InsufficientCapital,
    #[msg("Operation would leave the account below initial margin; deposit more or reduce size")]
    InitialMarginViolated,
    #[msg("Withdrawal exceeds what may leave during a bad-debt epoch (capital minus its share of the deficit)")]
    BadDebtWithdrawalLimit,
    #[msg("Trade price is outside the oracle band (max_trade_deviation_bps)")]
    PriceOutsideBand,
    #[msg("Taker and maker must be different margin accounts")]
    SelfTrade,
    #[msg("The account already holds MAX_POSITIONS positions; close one first")]
    TooManyPositions,
    #[msg("Account is not liquidatable: equity is at or above maintenance margin")]
    NotLiquidatable,
    #[msg("An account cannot liquidate itself")]
    SelfLiquidation,
    #[msg("The liquidatee has no position in this market")]
    NoPositionInMarket,
    #[msg("Nothing to liquidate with the given limits")]
    NothingToLiquidate,
    #[msg("Account is not bankrupt: it has open positions or non-negative equity")]
    NotBankrupt,
    #[msg("Account is not empty: close positions and withdraw capital first")]
    AccountNotEmpty,
    #[msg("Not allowed in the current epoch phase; see the exchange's epoch phase")]
    WrongEpochPhase,
    #[msg("The bad-debt epoch is too young, or the round cooldown has not passed")]
    EpochNotReady,
    #[msg("Not every margin account has been tallied in this round")]
    TallyIncomplete,
    #[msg("Account already tallied in this round")]
    AlreadyTallied,
    #[msg("Account was not tallied in this round")]
    NotTallied,
    #[msg("Account already clawed back in this round")]
    AlreadyClawedBack,
    #[msg("Account has no weight in this round; nothing to claw back")]
    NothingToClawBack,
    #[msg("The same account appears twice in one batch")]
    DuplicateAccount,
    #[msg("Margin account in a batch is not writable")]
    AccountNotWritable,
    #[msg("There is no deficit to cover")]
    NoDeficit,
    #[msg("Insurance fund balance is too small")]
    InsufficientInsurance,
    #[msg("Insurance cannot be withdrawn while the exchange has a deficit or a bad-debt epoch is open")]
    InsuranceLocked,
    #[msg("Conservation invariant I1 violated: vault + deficit != capital + pnl - basis")]
    ConservationViolated,
    #[msg("Zero-sum invariant I2 violated: long and short open interest differ")]
    ZeroSumViolated,
    #[msg("Insurance invariant I3 violated: insurance vault below its recorded balance")]
    InsuranceMismatch,
    #[msg("Vault balance is below the exchange's recorded balance")]
    VaultMismatch,
    #[msg("Market index does not match")]
    WrongMarket,
    #[msg("Liquidator's account would fall below initial margin; take a smaller size or deposit")]
    LiquidatorBelowInitialMargin,
    #[msg("Oracle kind is not supported")]
    UnsupportedOracleKind,
    #[msg(
        "Risk-reducing trade would make the account less healthy; trade closer to the oracle price"
    )]
    HealthDecreased,
    #[msg("A position in this market is required")]
    ZeroSize,
    #[msg("Cover the deficit before or after a clawback round is applied, not during it")]
    CoverDuringApplying,
    #[msg("Signer is not the exchange admin")]
    NotAdmin,
    #[msg("Liquidator and liquidatee have the same owner")]
    SameOwnerLiquidation,
    #[msg("Division by zero in the program's math: an input that should be positive is zero; check the amounts and the market's parameters")]
    MathDivisionByZero,
    #[msg(
        "A value is outside what the program's math accepts; see the error log for the call site"
    )]
    MathInvalidInput,
    #[msg("Too many accounts in one batch: its events would not fit the transaction log; split it (see MAX_TALLY_BATCH, MAX_CLAWBACK_BATCH)")]
    BatchTooLarge,
    #[msg("A change of this kind is already queued; apply or cancel it first")]
    ChangeAlreadyQueued,
    #[msg("Nothing of this kind is queued")]
    NothingQueued,
    #[msg("The admin delay has not passed yet; apply the change at or after its ready time (see `exchange show`)")]
    TimelockPending,
    #[msg("Parameter changes and insurance withdrawals apply only while no bad-debt epoch is open; apply it once the exchange is back to Normal")]
    WaitsForNormal,
    #[msg("The change moves a rate by more than one step allows; queue smaller steps (see the MAX_*_STEP constants)")]
    StepTooLarge,
    #[msg("A bankrupt account is still unresolved; resolve it (resolve_bankruptcy) before insurance can be withdrawn")]
    BankruptcyPending,
    #[msg("Signer is not the proposed admin")]
    NotPendingAdmin,
    #[msg("Destination token account differs from the one the withdrawal was queued for")]
    WrongDestination,
    #[msg("The queued change was not applied within a day of becoming ready and expired; cancel it and queue it again")]
    ChangeExpired,
    #[msg("A pause is in force, or was set or lifted less than admin_delay_secs ago: queued changes wait until users have had the full delay to react")]
    PauseHoldsChanges,
    #[msg("The last pause ended too recently: a new one may start max_pause_secs after the previous one lapsed")]
    PauseCooldown,
    #[msg("While a deficit is open trades fill only at the oracle price (no value may move between accounts); resend with price equal to the oracle price")]
    PriceNotOracle,
    #[msg("This account owes its share of the clawback round in progress; close it after the clawback crank has charged it")]
    ClawbackDue,
    #[msg("The exchange already has MAX_MARKETS markets")]
    TooManyMarkets,
    #[msg("Below initial margin a trade may only reduce the position at the oracle price or better for this account")]
    ReduceWorseThanOracle,
    #[msg("Below initial margin a trade may not lower the account's equity below zero")]
    EquityBelowZero,
    #[msg("This trade would grow the market's open interest past its cap (max_open_interest): trade less, or close or hand over positions, which always fill")]
    OpenInterestCapExceeded,
}

impl From<MathError> for BackstopError {
    fn from(e: MathError) -> Self {
        match e {
            MathError::Overflow => BackstopError::MathOverflow,
            MathError::DivisionByZero => BackstopError::MathDivisionByZero,
            MathError::InvalidInput => BackstopError::MathInvalidInput,
        }
    }
}

impl From<PriceRefusal> for BackstopError {
    fn from(r: PriceRefusal) -> Self {
        match r {
            PriceRefusal::OutsideBand => BackstopError::PriceOutsideBand,
            PriceRefusal::NotOracle => BackstopError::PriceNotOracle,
        }
    }
}

impl From<SideRefusal> for BackstopError {
    fn from(r: SideRefusal) -> Self {
        match r {
            SideRefusal::InitialMargin => BackstopError::InitialMarginViolated,
            SideRefusal::HealthDecreased => BackstopError::HealthDecreased,
            SideRefusal::WorseThanOracle => BackstopError::ReduceWorseThanOracle,
            SideRefusal::NegativeEquity => BackstopError::EquityBelowZero,
        }
    }
}

impl From<MathError> for anchor_lang::error::Error {
    fn from(e: MathError) -> Self {
        BackstopError::from(e).into()
    }
}

impl From<Rejection> for BackstopError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::NonPositive => BackstopError::OracleNonPositivePrice,
            Rejection::Stale => BackstopError::OracleStale,
            Rejection::ConfidenceTooWide => BackstopError::OracleConfidenceTooWide,
            Rejection::Unrepresentable => BackstopError::OracleUnrepresentable,
        }
    }
}
