//! What an SBF build of the program writes into the transaction log through `msg!`, for
//! native hosts (LiteSVM, the localnet validator's builtin), where `msg!` prints to
//! stdout instead (solana-msg 3.1 `sol_log` off SBF).
//!
//! [`crate::native_entry`] is `entry` plus two kinds of lines Anchor 1.2.2 writes with
//! `msg!`: `Program log: Instruction: <Name>` when an instruction is dispatched
//! (anchor-syn 1.2.2 `codegen/program/handlers.rs`), and the `AnchorError …` /
//! `ProgramError …` lines of a refused instruction (anchor-lang-error 1.2.2
//! `Error::log`), reproduced here word for word so clients (Anchor's `AnchorError`
//! parser, explorers) read a native run exactly as an SBF one.

use anchor_lang::error::{AnchorError, ComparedValues, Error, ErrorOrigin, ProgramErrorWithOrigin};
use anchor_lang::Discriminator;

use crate::events::log;

macro_rules! names {
    ($($ix:ident),* $(,)?) => {
        /// The instruction's name as Anchor logs it (`Instruction: <Name>`), from the
        /// discriminator at the start of `data`; `None` for an unknown one (Anchor logs
        /// nothing then and refuses with `InstructionFallbackNotFound`).
        pub fn instruction_name(data: &[u8]) -> Option<&'static str> {
            $(
                if data.starts_with(crate::instruction::$ix::DISCRIMINATOR) {
                    return Some(stringify!($ix));
                }
            )*
            None
        }

        /// Every instruction name [`instruction_name`] knows, for the IDL cross-check.
        pub const INSTRUCTION_NAMES: &[&str] = &[$(stringify!($ix)),*];
    };
}

names!(
    InitializeExchange,
    AddMarket,
    UpdateExchangeParams,
    ApplyExchangeParams,
    CancelExchangeParams,
    UpdateMarketParams,
    ApplyMarketParams,
    CancelMarketParams,
    SetMarketPaused,
    SetPaused,
    ProposeAdmin,
    AcceptAdmin,
    CreateOracleFeed,
    SetOraclePrice,
    CreateMarginAccount,
    CloseMarginAccount,
    Deposit,
    Withdraw,
    Trade,
    SettlePnl,
    ContributeInsurance,
    WithdrawInsurance,
    ApplyInsuranceWithdrawal,
    CancelInsuranceWithdrawal,
    Health,
    Liquidate,
    ResolveBankruptcy,
    BeginClawback,
    Tally,
    FinalizeTally,
    Clawback,
    CoverDeficit,
    SweepSurplus
);

/// Writes what anchor-lang-error 1.2.2's `Error::log` writes with `msg!`.
pub fn log_error(error: &Error) {
    match error {
        Error::AnchorError(e) => log_anchor_error(e),
        Error::ProgramError(e) => log_program_error(e),
    }
}

fn log_anchor_error(e: &AnchorError) {
    match &e.error_origin {
        None => log(&format!(
            "AnchorError occurred. Error Code: {}. Error Number: {}. Error Message: {}.",
            e.error_name, e.error_code_number, e.error_msg
        )),
        Some(ErrorOrigin::Source(source)) => log(&format!(
            "AnchorError thrown in {}:{}. Error Code: {}. Error Number: {}. Error Message: {}.",
            source.filename, source.line, e.error_name, e.error_code_number, e.error_msg
        )),
        Some(ErrorOrigin::AccountName(account)) => log(&format!(
            "AnchorError caused by account: {}. Error Code: {}. Error Number: {}. Error \
             Message: {}.",
            account, e.error_name, e.error_code_number, e.error_msg
        )),
    }
    log_compared(e.compared_values.as_ref());
}

fn log_program_error(e: &ProgramErrorWithOrigin) {
    let code = u64::from(e.program_error.clone());
    match &e.error_origin {
        None => log(&format!(
            "ProgramError occurred. Error Code: {:?}. Error Number: {}. Error Message: {}.",
            e.program_error, code, e.program_error
        )),
        Some(ErrorOrigin::Source(source)) => log(&format!(
            "ProgramError thrown in {}:{}. Error Code: {:?}. Error Number: {}. Error Message: \
             {}.",
            source.filename, source.line, e.program_error, code, e.program_error
        )),
        Some(ErrorOrigin::AccountName(account)) => log(&format!(
            "ProgramError caused by account: {}. Error Code: {:?}. Error Number: {}. Error \
             Message: {}.",
            account, e.program_error, code, e.program_error
        )),
    }
    log_compared(e.compared_values.as_ref());
}

/// `Left:`/`Right:` lines; a pubkey is logged as `sol_log_pubkey` does (its base58).
fn log_compared(values: Option<&ComparedValues>) {
    match values {
        Some(ComparedValues::Pubkeys((left, right))) => {
            log("Left:");
            log(&left.to_string());
            log("Right:");
            log(&right.to_string());
        }
        Some(ComparedValues::Values((left, right))) => {
            log(&format!("Left: {left}"));
            log(&format!("Right: {right}"));
        }
        None => {}
    }
}
