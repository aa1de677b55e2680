//! Runs the Backstop program natively inside real agave hosts — LiteSVM in the tests and
//! the agave test validator on localnet — where no SBF toolchain is available.
//!
//! Two things are needed (see TOOLCHAIN.md, "two traps"):
//!
//! 1. **Syscall stubs across two `solana-sysvar` majors.** Anchor 1.2.2 reads sysvars and
//!    performs CPIs through `solana-sysvar` 3.1.1's stubs; solana-program-test 4.2.2 only
//!    installs its working stubs (which execute CPIs inside the host's invoke context) into
//!    `solana-sysvar` 4.x. Without a bridge, 3.1.1's default stub answers a token CPI with
//!    `Ok(())` *without moving a token*. [`install_syscall_stubs`] takes program-test's
//!    stubs out of 4.x and serves both majors from them.
//! 2. **The entrypoint shape.** `processor!` wants a plain `fn`; Anchor's `entry` ties every
//!    lifetime to `'info`. [`entrypoint`] is the shim.

use std::sync::{Once, OnceLock};

use solana_account_info::AccountInfo;
use solana_instruction::Instruction;
use solana_program_error::ProgramResult;
use solana_sysvar_v3::program_stubs as v3;
use solana_sysvar_v4::program_stubs as v4;

pub use solana_program_test::processor;

/// program-test's stubs, owned here once taken out of `solana-sysvar` 4.x.
static INNER: OnceLock<Box<dyn v4::SyscallStubs>> = OnceLock::new();

fn inner() -> &'static dyn v4::SyscallStubs {
    INNER
        .get()
        .expect("install_syscall_stubs() must run before the program executes")
        .as_ref()
}

/// program-test's stubs leave `sol_log_data` at the trait default, which prints to stdout,
/// so events would never reach the transaction log. Route them through `sol_log`, which
/// program-test does write into the host's log collector: the line reads
/// `Program log: Program data: <base64>…` (on SBF it is `Program data: …`);
/// `backstop_client::events` decodes both.
fn log_data(fields: &[&[u8]]) {
    use base64::Engine;
    let encoded: Vec<String> = fields
        .iter()
        .map(|f| base64::engine::general_purpose::STANDARD.encode(f))
        .collect();
    inner().sol_log(&format!("Program data: {}", encoded.join(" ")));
}

/// Serves `solana-sysvar` 3.1.1 callers (Anchor) from program-test's stubs.
struct V3Bridge;
/// Serves `solana-sysvar` 4.x callers from the same stubs after we took them out.
struct V4Forward;

fn pk_4_to_3(k: solana_pubkey_v4::Pubkey) -> solana_pubkey_v3::Pubkey {
    solana_pubkey_v3::Pubkey::new_from_array(k.to_bytes())
}

macro_rules! forward_common {
    () => {
        fn sol_log(&self, message: &str) {
            inner().sol_log(message)
        }
        fn sol_log_compute_units(&self) {
            inner().sol_log_compute_units()
        }
        fn sol_remaining_compute_units(&self) -> u64 {
            inner().sol_remaining_compute_units()
        }
        fn sol_invoke_signed(
            &self,
            instruction: &Instruction,
            account_infos: &[AccountInfo],
            signers_seeds: &[&[&[u8]]],
        ) -> ProgramResult {
            inner().sol_invoke_signed(instruction, account_infos, signers_seeds)
        }
        fn sol_get_sysvar(
            &self,
            sysvar_id_addr: *const u8,
            var_addr: *mut u8,
            offset: u64,
            length: u64,
        ) -> u64 {
            inner().sol_get_sysvar(sysvar_id_addr, var_addr, offset, length)
        }
        fn sol_get_clock_sysvar(&self, var_addr: *mut u8) -> u64 {
            inner().sol_get_clock_sysvar(var_addr)
        }
        fn sol_get_epoch_schedule_sysvar(&self, var_addr: *mut u8) -> u64 {
            inner().sol_get_epoch_schedule_sysvar(var_addr)
        }
        fn sol_get_fees_sysvar(&self, var_addr: *mut u8) -> u64 {
            inner().sol_get_fees_sysvar(var_addr)
        }
        fn sol_get_rent_sysvar(&self, var_addr: *mut u8) -> u64 {
            inner().sol_get_rent_sysvar(var_addr)
        }
        fn sol_get_epoch_rewards_sysvar(&self, var_addr: *mut u8) -> u64 {
            inner().sol_get_epoch_rewards_sysvar(var_addr)
        }
        fn sol_get_last_restart_slot(&self, var_addr: *mut u8) -> u64 {
            inner().sol_get_last_restart_slot(var_addr)
        }
        fn sol_get_epoch_stake(&self, vote_address: *const u8) -> u64 {
            inner().sol_get_epoch_stake(vote_address)
        }
        unsafe fn sol_memcpy(&self, dst: *mut u8, src: *const u8, n: usize) {
            unsafe { inner().sol_memcpy(dst, src, n) }
        }
        unsafe fn sol_memmove(&self, dst: *mut u8, src: *const u8, n: usize) {
            unsafe { inner().sol_memmove(dst, src, n) }
        }
        unsafe fn sol_memcmp(&self, s1: *const u8, s2: *const u8, n: usize, result: *mut i32) {
            unsafe { inner().sol_memcmp(s1, s2, n, result) }
        }
        unsafe fn sol_memset(&self, s: *mut u8, c: u8, n: usize) {
            unsafe { inner().sol_memset(s, c, n) }
        }
        fn sol_set_return_data(&self, data: &[u8]) {
            inner().sol_set_return_data(data)
        }
        fn sol_log_data(&self, fields: &[&[u8]]) {
            log_data(fields)
        }
        fn sol_get_processed_sibling_instruction(&self, index: usize) -> Option<Instruction> {
            inner().sol_get_processed_sibling_instruction(index)
        }
        fn sol_get_stack_height(&self) -> u64 {
            inner().sol_get_stack_height()
        }
    };
}

impl v3::SyscallStubs for V3Bridge {
    forward_common!();
    fn sol_get_return_data(&self) -> Option<(solana_pubkey_v3::Pubkey, Vec<u8>)> {
        inner()
            .sol_get_return_data()
            .map(|(k, d)| (pk_4_to_3(k), d))
    }
}

impl v4::SyscallStubs for V4Forward {
    forward_common!();
    fn sol_get_return_data(&self) -> Option<(solana_pubkey_v4::Pubkey, Vec<u8>)> {
        inner().sol_get_return_data()
    }
}

/// Installs program-test's syscall stubs for both `solana-sysvar` majors. Idempotent and
/// thread-safe; call before the program runs in any host.
pub fn install_syscall_stubs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // program-test installs its stubs into solana-sysvar 4.x while it sets up a bank;
        // starting one ProgramTest is the only public way to get them.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            let pt = solana_program_test::ProgramTest::default();
            let _ = pt.start().await;
        });
        // ProgramTest::default() turns on debug logging of every instruction; keep the
        // host quiet unless RUST_LOG asks for more.
        agave_logger::setup_with_default("warn");
        let taken = v4::set_syscall_stubs(Box::new(V4Forward));
        if INNER.set(taken).is_err() {
            unreachable!("guarded by Once");
        }
        v3::set_syscall_stubs(Box::new(V3Bridge));
    });
}

/// The program's entrypoint in the plain-`fn` shape `processor!` expects.
pub fn entrypoint(
    program_id: &solana_pubkey_v4::Pubkey,
    accounts: &[AccountInfo],
    data: &[u8],
) -> ProgramResult {
    // SAFETY: Anchor's `entry` ties the program id, the account slice, the accounts' own
    // data and the instruction data to one lifetime 'info. All of them outlive this call
    // (the host owns them for the whole instruction), so shortening nothing and only
    // unifying the lifetimes is sound.
    let (program_id, accounts, data): (&_, &[AccountInfo], &[u8]) =
        unsafe { std::mem::transmute((program_id, accounts, data)) };
    backstop::entry(program_id, accounts, data)
}
