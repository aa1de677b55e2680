//! Names and messages for the custom error codes a Backstop transaction can fail with:
//! the program's own `BackstopError` (6000+), Anchor's framework errors (100–5000) and,
//! when the failing program is SPL Token (a CPI inside deposit/withdraw), its errors.

use anchor_lang::error::ErrorCode as AnchorCode;
use anchor_lang::prelude::Pubkey;
use anchor_spl::token::spl_token;
use backstop::error::BackstopError;

/// A decoded custom error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub code: u32,
    pub name: String,
    pub message: String,
}

/// Backstop's errors in declaration order (the enum is append-only, codes 6000 + i).
/// Kept complete by the test below against the committed IDL.
const BACKSTOP: &[BackstopError] = {
    use BackstopError::*;
    &[
        MathOverflow,
        ZeroAmount,
        InvalidParameter,
        Paused,
        MarketPaused,
        NotAccountOwner,
        WrongExchange,
        WrongVault,
        WrongInsuranceVault,
        WrongMint,
        WrongOracle,
        OracleWrongOwner,
        OracleInvalidData,
        OracleNonPositivePrice,
        OracleStale,
        OracleConfidenceTooWide,
        OracleUnrepresentable,
        NotOracleAuthority,
        MissingMarketAccounts,
        InvalidRemainingAccounts,
        InsufficientCapital,
        InitialMarginViolated,
        BadDebtWithdrawalLimit,
        PriceOutsideBand,
        SelfTrade,
        TooManyPositions,
        NotLiquidatable,
        SelfLiquidation,
        NoPositionInMarket,
        NothingToLiquidate,
        NotBankrupt,
        AccountNotEmpty,
        WrongEpochPhase,
        EpochNotReady,
        TallyIncomplete,
        AlreadyTallied,
        NotTallied,
        AlreadyClawedBack,
        NothingToClawBack,
        DuplicateAccount,
        AccountNotWritable,
        NoDeficit,
        InsufficientInsurance,
        InsuranceLocked,
        ConservationViolated,
        ZeroSumViolated,
        InsuranceMismatch,
        VaultMismatch,
        WrongMarket,
        LiquidatorBelowInitialMargin,
        UnsupportedOracleKind,
        HealthDecreased,
        ZeroSize,
        CoverDuringApplying,
        NotAdmin,
        SameOwnerLiquidation,
        MathDivisionByZero,
        MathInvalidInput,
        BatchTooLarge,
        ChangeAlreadyQueued,
        NothingQueued,
        TimelockPending,
        WaitsForNormal,
        StepTooLarge,
        BankruptcyPending,
        NotPendingAdmin,
        WrongDestination,
        ChangeExpired,
        PauseHoldsChanges,
        PauseCooldown,
        PriceNotOracle,
        ClawbackDue,
        TooManyMarkets,
        ReduceWorseThanOracle,
        EquityBelowZero,
        OpenInterestCapExceeded,
    ]
};

/// Anchor framework errors a client can meet (account validation and constraints).
const ANCHOR: &[AnchorCode] = {
    use AnchorCode::*;
    &[
        InstructionMissing,
        InstructionFallbackNotFound,
        InstructionDidNotDeserialize,
        InstructionDidNotSerialize,
        ConstraintMut,
        ConstraintHasOne,
        ConstraintSigner,
        ConstraintRaw,
        ConstraintOwner,
        ConstraintRentExempt,
        ConstraintSeeds,
        ConstraintExecutable,
        ConstraintAddress,
        ConstraintZero,
        ConstraintTokenMint,
        ConstraintTokenOwner,
        ConstraintMintDecimals,
        ConstraintSpace,
        ConstraintTokenTokenProgram,
        ConstraintDuplicateMutableAccount,
        RequireViolated,
        RequireEqViolated,
        RequireKeysEqViolated,
        RequireNeqViolated,
        RequireKeysNeqViolated,
        RequireGtViolated,
        RequireGteViolated,
        AccountDiscriminatorAlreadySet,
        AccountDiscriminatorNotFound,
        AccountDiscriminatorMismatch,
        AccountDidNotDeserialize,
        AccountDidNotSerialize,
        AccountNotEnoughKeys,
        AccountNotMutable,
        AccountOwnedByWrongProgram,
        InvalidProgramId,
        InvalidProgramExecutable,
        AccountNotSigner,
        AccountNotSystemOwned,
        AccountNotInitialized,
        AccountNotProgramData,
        AccountNotAssociatedTokenAccount,
        AccountSysvarMismatch,
        DeclaredProgramIdMismatch,
        TryingToInitPayerAsProgramAccount,
        InvalidNumericConversion,
    ]
};

/// Describes a custom error code returned by `program` (the program that failed, as
/// reported by the runtime log `Program <id> failed: custom program error: 0x…`).
pub fn describe(program: &Pubkey, code: u32) -> Option<Described> {
    if *program == spl_token::ID {
        let e = spl_token::error::TokenError::try_from(code).ok()?;
        return Some(Described {
            code,
            name: format!("{e:?}"),
            message: format!("SPL Token: {e}"),
        });
    }
    if *program != backstop::ID {
        return None;
    }
    BACKSTOP
        .iter()
        .map(|e| (u32::from(*e), e.name(), e.to_string()))
        .chain(
            ANCHOR
                .iter()
                .map(|e| (u32::from(*e), e.name(), e.to_string())),
        )
        .find(|(c, _, _)| *c == code)
        .map(|(code, name, message)| Described {
            code,
            name,
            message,
        })
}

/// The program that failed with a custom error, from a transaction's logs: the first
/// `Program <id> failed:` line is the innermost failing program (a CPI fails before its
/// caller does).
pub fn failing_program<S: AsRef<str>>(logs: &[S]) -> Option<Pubkey> {
    logs.iter().find_map(|l| {
        let rest = l.as_ref().strip_prefix("Program ")?;
        let (id, tail) = rest.split_once(' ')?;
        if tail.starts_with("failed") {
            id.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backstop_error_of_the_idl_is_described() {
        let idl: serde_json::Value =
            serde_json::from_str(include_str!("../../idl/backstop.json")).unwrap();
        let errors = idl["errors"].as_array().unwrap();
        assert_eq!(errors.len(), BACKSTOP.len(), "an error was added: list it");
        for e in errors {
            let code = e["code"].as_u64().unwrap() as u32;
            let d = describe(&backstop::ID, code).unwrap();
            assert_eq!(d.name, e["name"].as_str().unwrap());
            assert_eq!(d.message, e["msg"].as_str().unwrap());
        }
    }

    #[test]
    fn anchor_and_token_errors_are_described_by_the_failing_program() {
        let d = describe(&backstop::ID, 3012).unwrap();
        assert_eq!(d.name, "AccountNotInitialized");
        let d = describe(&spl_token::ID, 1).unwrap();
        assert_eq!(d.name, "InsufficientFunds");
        assert_eq!(describe(&Pubkey::new_unique(), 6000), None);
        let logs = [
            "Program BytU8UN8u1ELe8Lp3Uko37BLw9wfPg5FGz1dGhU2Uv4n invoke [1]",
            "Program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA invoke [2]",
            "Program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA failed: custom program error: 0x1",
            "Program BytU8UN8u1ELe8Lp3Uko37BLw9wfPg5FGz1dGhU2Uv4n failed: custom program error: 0x1",
        ];
        assert_eq!(failing_program(&logs), Some(spl_token::ID));
    }
}
