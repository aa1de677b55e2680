//! The transaction log of the natively-run program has exactly the lines the agave
//! runtime writes for an SBF program (issue 16), so Anchor's `EventParser`, its
//! `AnchorError` parser, `.view()` and explorers read a native run as they read mainnet.
//!
//! The line shapes, from agave 4.2.2's sources:
//! - `Program <id> invoke [<depth>]`, `Program <id> success`,
//!   `Program <id> failed: <error>`: solana-program-runtime `src/stable_log.rs`, written
//!   by `InvokeContext::process_executable_chain` (`src/invoke_context.rs`) around every
//!   invocation, the SBF loader's and a builtin's alike;
//! - `Program <id> consumed <n> of <m> compute units`, then `Program return: <id>
//!   <base64>` when return data is set, after the program returns, success or not:
//!   solana-program-runtime `src/vm.rs` (`execute`);
//! - `Program log: <message>` and `Program data: <base64>…`: the `sol_log_` and
//!   `sol_log_data` syscalls, solana-syscalls `src/logging.rs`;
//! - `AnchorError …` / `Instruction: <Name>`: anchor-lang-error 1.2.2 `Error::log` and
//!   anchor-syn 1.2.2's handlers, through `msg!`.
//!
//! The SPL Token program in these transactions is the real SBF build, so each test also
//! checks Backstop's framing lines against the ones the runtime wrote for it.

use anchor_lang::prelude::Pubkey;
use backstop::error::BackstopError;
use backstop_tests::harness::*;
use regex::Regex;

const TOKEN: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";

/// Asserts `logs` match `expected` line for line; in a pattern, `{P}` is Backstop's id,
/// `{T}` the token program's, `{N}` a decimal number, `{B64}` base64 and `{K}` a base58
/// pubkey. Everything else is literal.
#[track_caller]
fn assert_lines(logs: &[String], expected: &[&str]) {
    let all = logs.join("\n");
    assert_eq!(
        logs.len(),
        expected.len(),
        "line count differs; the log was:\n{all}"
    );
    for (i, (line, pattern)) in logs.iter().zip(expected).enumerate() {
        let re = regex::escape(pattern)
            .replace(r"\{P\}", &backstop::ID.to_string())
            .replace(r"\{T\}", TOKEN)
            .replace(r"\{N\}", "[0-9]+")
            .replace(r"\{B64\}", "[A-Za-z0-9+/]+={0,2}")
            .replace(r"\{K\}", "[1-9A-HJ-NP-Za-km-z]{32,44}")
            // Checked separately by the caller.
            .replace(r"\{ANCHOR_ERROR\}", "Program log: AnchorError .*");
        let re = Regex::new(&format!("^{re}$")).expect("pattern");
        assert!(
            re.is_match(line),
            "line {i}: {line:?} does not match {pattern:?}; the log was:\n{all}"
        );
    }
}

/// The framing lines (invoke/consumed/success/failed) with the program id and numbers
/// blanked, so a builtin's and an SBF program's can be compared.
fn frames_of(logs: &[String], program: &str) -> Vec<String> {
    let number = Regex::new("[0-9]+").expect("re");
    logs.iter()
        .filter_map(|l| l.strip_prefix(&format!("Program {program} ")))
        .map(|rest| number.replace_all(rest, "N").into_owned())
        .collect()
}

#[test]
fn a_cpi_and_an_event_log_as_on_sbf() {
    let mut t = TestExchange::new();
    let u = t.wallet_user(1_000_000_000);
    // Account creation: a CPI into the system program, a builtin (no `consumed` line).
    let meta = t.create_account(&u).expect("create");
    assert_lines(
        &meta.logs,
        &[
            "Program {P} invoke [1]",
            "Program log: Instruction: CreateMarginAccount",
            "Program 11111111111111111111111111111111 invoke [2]",
            "Program 11111111111111111111111111111111 success",
            "Program data: {B64}",
            "Program {P} consumed {N} of {N} compute units",
            "Program {P} success",
        ],
    );
    let meta = t.deposit(&u, 5_000_000).expect("deposit");
    assert_lines(
        &meta.logs,
        &[
            "Program {P} invoke [1]",
            "Program log: Instruction: Deposit",
            "Program {T} invoke [2]",
            "Program {T} consumed {N} of {N} compute units",
            "Program {T} success",
            "Program data: {B64}",
            "Program {P} consumed {N} of {N} compute units",
            "Program {P} success",
        ],
    );
    // One invoke and one success per invocation: Backstop's frame reads like the SBF
    // token program's.
    let ours = frames_of(&meta.logs, &backstop::ID.to_string());
    let token_frames = frames_of(&meta.logs, TOKEN);
    assert_eq!(
        ours,
        vec!["invoke [N]", "consumed N of N compute units", "success"],
        "Backstop's framing lines"
    );
    assert_eq!(ours, token_frames, "same shapes as the SBF token program's");
    // The event is a standard `Program data:` line.
    let events = backstop_client::events::parse_logs(&meta.logs);
    assert!(
        matches!(&events[..], [backstop_client::events::Event::Deposited(d)] if d.amount == 5_000_000),
        "{events:?}"
    );
}

#[test]
fn a_failed_cpi_aborts_the_program_as_on_sbf() {
    let mut t = TestExchange::new();
    let u = t.user(1_000_000);
    // More than the wallet holds: the token program refuses (InsufficientFunds = 0x1),
    // and on SBF the failed CPI stops Backstop there — no Anchor error line of its own.
    let f = assert_failed(t.deposit(&u, 2_000_000));
    assert_lines(
        &f.logs,
        &[
            "Program {P} invoke [1]",
            "Program log: Instruction: Deposit",
            "Program {T} invoke [2]",
            "Program log: Error: insufficient funds",
            "Program {T} consumed {N} of {N} compute units",
            "Program {T} failed: custom program error: 0x1",
            "Program {P} consumed {N} of {N} compute units",
            "Program {P} failed: custom program error: 0x1",
        ],
    );
}

#[test]
fn a_program_error_logs_the_anchor_error_line() {
    let mut t = TestExchange::new();
    let a = t.funded_user(50_000_000);
    let b = t.funded_user(50_000_000);
    let far = t.price(0) * 2.0;
    let f = assert_failed(t.trade(&a, &b, 0, 1_000, far));
    assert_eq!(
        f.custom_code(),
        Some(6000 + BackstopError::PriceOutsideBand as u32)
    );
    let code = 6000 + BackstopError::PriceOutsideBand as u32;
    let message = BackstopError::PriceOutsideBand.to_string();
    // `require!`/`error!` log where the error was thrown; `Err(e.into())` logs "occurred".
    let anchor_error = Regex::new(&format!(
        concat!(
            r"^Program log: AnchorError (occurred|thrown in programs/backstop/src/[a-z_/]+\.rs:",
            r"[0-9]+)\. Error Code: PriceOutsideBand\. Error Number: {}\. Error Message: {}\.$"
        ),
        code,
        regex::escape(&message)
    ))
    .expect("re");
    let failed = format!("Program {{P}} failed: custom program error: {code:#x}");
    assert_lines(
        &f.logs,
        &[
            "Program {P} invoke [1]",
            "Program log: Instruction: Trade",
            "{ANCHOR_ERROR}",
            "Program {P} consumed {N} of {N} compute units",
            &failed,
        ],
    );
    assert!(anchor_error.is_match(&f.logs[2]), "{}", f.logs[2]);
}

#[test]
fn a_constraint_error_logs_the_account_and_the_compared_keys() {
    let mut t = TestExchange::new();
    let owner = t.funded_user(10_000_000);
    let thief = t.user(10_000_000);
    // The thief signs a deposit into the owner's margin account: `has_one = owner`.
    let k = t.keys;
    let mut ix = backstop_client::ix::deposit(&k, &thief.pubkey(), &thief.token, 1);
    ix = swap_account(ix, &thief.margin, &owner.margin);
    let f = assert_failed(t.send(&[ix], &[&thief.key]));
    let code = 6000 + BackstopError::NotAccountOwner as u32;
    let message = BackstopError::NotAccountOwner.to_string();
    let caused = format!(
        "Program log: AnchorError caused by account: margin_account. Error Code: \
         NotAccountOwner. Error Number: {code}. Error Message: {message}."
    );
    let failed = format!("Program {{P}} failed: custom program error: {code:#x}");
    assert_lines(
        &f.logs,
        &[
            "Program {P} invoke [1]",
            "Program log: Instruction: Deposit",
            &caused,
            "Program log: Left:",
            &format!("Program log: {}", owner.pubkey()),
            "Program log: Right:",
            &format!("Program log: {}", thief.pubkey()),
            "Program {P} consumed {N} of {N} compute units",
            &failed,
        ],
    );

    // An Anchor framework error (3012) with no compared values.
    let missing = Pubkey::new_unique();
    let ix = swap_account(
        backstop_client::ix::deposit(&k, &owner.pubkey(), &owner.token, 1),
        &owner.margin,
        &missing,
    );
    let f = assert_failed(t.send(&[ix], &[&owner.key]));
    assert_lines(
        &f.logs,
        &[
            "Program {P} invoke [1]",
            "Program log: Instruction: Deposit",
            "Program log: AnchorError caused by account: margin_account. Error Code: \
             AccountNotInitialized. Error Number: 3012. Error Message: The program expected \
             this account to be already initialized.",
            "Program {P} consumed {N} of {N} compute units",
            "Program {P} failed: custom program error: 0xbc4",
        ],
    );
}

#[test]
fn health_writes_return_data_and_the_return_line() {
    let mut t = TestExchange::new();
    let u = t.funded_user(10_000_000);
    let ex = t.exchange_key();
    let meta = t
        .send(&[backstop_client::ix::health(&ex, &u.margin, &[])], &[])
        .expect("health");
    assert_lines(
        &meta.logs,
        &[
            "Program {P} invoke [1]",
            "Program log: Instruction: Health",
            "Program {P} consumed {N} of {N} compute units",
            "Program return: {P} {B64}",
            "Program {P} success",
        ],
    );
    assert_eq!(meta.return_data.program_id, backstop::ID);
    use base64::Engine;
    let line = meta.logs[3].rsplit(' ').next().expect("b64");
    let logged = base64::engine::general_purpose::STANDARD
        .decode(line)
        .expect("b64");
    assert_eq!(
        logged, meta.return_data.data,
        "the line carries the return data"
    );
}

#[test]
fn an_unknown_instruction_logs_no_name() {
    let mut t = TestExchange::new();
    let ix = anchor_lang::solana_program::instruction::Instruction {
        program_id: backstop::ID,
        accounts: vec![],
        data: vec![1, 2, 3, 4, 5, 6, 7, 8],
    };
    let f = assert_failed(t.send(&[ix], &[]));
    assert_lines(
        &f.logs,
        &[
            "Program {P} invoke [1]",
            "Program log: AnchorError occurred. Error Code: InstructionFallbackNotFound. Error \
             Number: 101. Error Message: Fallback functions are not supported.",
            "Program {P} consumed {N} of {N} compute units",
            "Program {P} failed: custom program error: 0x65",
        ],
    );
}

#[test]
fn every_idl_instruction_has_its_logged_name() {
    let idl: serde_json::Value =
        serde_json::from_str(include_str!("../../idl/backstop.json")).expect("IDL");
    let names: Vec<String> = idl["instructions"]
        .as_array()
        .expect("instructions")
        .iter()
        .map(|ix| {
            let snake = ix["name"].as_str().expect("name");
            snake
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect::<String>())
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let mut known: Vec<&str> = backstop::native::INSTRUCTION_NAMES.to_vec();
    known.sort_unstable();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(known, want);
}
