//! Runs the Backstop program natively inside real agave hosts — LiteSVM in the tests and
//! the agave test validator on localnet — where no SBF toolchain is available, and makes
//! the transaction log read exactly as it does when the SBF build runs.
//!
//! The program is registered as a builtin ([`builtin`]). The host's own
//! `InvokeContext::process_executable_chain` (solana-program-runtime 4.2.2,
//! `src/invoke_context.rs`) already writes `Program <id> invoke [depth]` before a builtin
//! runs and `Program <id> success` / `failed: …` after it, at the right depth — the same
//! two lines, from the same code, that frame an SBF program. This bridge adds what the
//! SBF loader and its syscalls write in between, and nothing else:
//!
//! - `Program log: <message>` for every log (`stable_log::program_log`, as the `sol_log_`
//!   syscall in solana-syscalls 4.2.2 `src/logging.rs`);
//! - `Program data: <base64> …` for events (`stable_log::program_data`, as
//!   `sol_log_data`);
//! - `Program <id> consumed <n> of <m> compute units` and, when the program set return
//!   data, `Program return: <id> <base64>` once the program returns, in that order and on
//!   failure too (solana-program-runtime 4.2.2 `src/vm.rs`, `execute`).
//!
//! CPIs (the SPL Token transfers) go through the host's `process_instruction`, which logs
//! the callee's invoke/success lines at depth 2; the bridge adds none of its own.
//!
//! Why a bridge at all (see TOOLCHAIN.md, "two traps"): Anchor 1.2.2 reads sysvars, logs
//! and performs CPIs through `solana-sysvar` 3.1.1's syscall stubs, and 4.x callers use
//! 4.x's; off SBF the default stubs print to stdout and answer a CPI with `Ok(())`
//! without moving a token. [`install_syscall_stubs`] serves both majors from one host
//! implementation bound to the running instruction's `InvokeContext`.
//! (solana-program-test's `processor!` did this before, but it logs invoke/success a
//! second time around the builtin and around each CPI — at the caller's depth — and
//! writes neither `Program data:` nor `Program return:`.)

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use solana_account_info::AccountInfo;
use solana_clock::Clock;
use solana_epoch_rewards::EpochRewards;
use solana_epoch_schedule::EpochSchedule;
use solana_instruction::error::{InstructionError, UNSUPPORTED_SYSVAR};
use solana_instruction::Instruction;
use solana_last_restart_slot::LastRestartSlot;
use solana_program_error::ProgramResult;
use solana_program_runtime::invoke_context::{BuiltinFunctionRegisterer, InvokeContext};
use solana_program_runtime::serialization::{deserialize_parameters, serialize_parameters};
use solana_program_runtime::stable_log;
use solana_program_runtime::sysvar_cache::SysvarCache;
use solana_rent::Rent;
use solana_sbpf::program::BuiltinFunctionDefinition;
use solana_sbpf::vm::ContextObject;
use solana_svm_timings::ExecuteTimings;
use solana_sysvar_id::SysvarId;
use solana_sysvar_v3::program_stubs as v3;
use solana_sysvar_v4::program_stubs as v4;

type Address = solana_pubkey_v4::Pubkey;

thread_local! {
    /// The `InvokeContext` of the instruction running on this thread, as an address: set
    /// by [`invoke_builtin`] for the duration of one invocation (restored afterwards, so a
    /// nested invocation of the builtin leaves its caller's in place).
    static CONTEXT: Cell<usize> = const { Cell::new(0) };
}

/// The running instruction's `InvokeContext`.
///
/// # Panics
/// Outside an invocation of the builtin — a syscall stub called with no program running,
/// which is a bug in the caller, not an input error.
fn context<'a>() -> &'a mut InvokeContext<'static, 'static> {
    let addr = CONTEXT.with(Cell::get);
    assert!(
        addr != 0,
        "a syscall ran outside an invocation of the Backstop builtin"
    );
    // SAFETY: `addr` was stored by `invoke_builtin` from a live `&mut InvokeContext` and
    // is cleared (restored) before that borrow ends; the host runs one instruction per
    // thread at a time, and every use here is strictly nested inside that call.
    unsafe { &mut *std::ptr::with_exposed_provenance_mut(addr) }
}

/// Unwinds out of the program with `InstructionError`: what an SBF syscall does when it
/// fails (the VM stops; the program gets no chance to handle it). Caught in
/// [`invoke_builtin`]; `resume_unwind` runs no panic hook, so nothing is printed.
struct Abort(InstructionError);

fn abort(error: InstructionError) -> ! {
    std::panic::resume_unwind(Box::new(Abort(error)))
}

/// Restores the previous context address when an invocation ends, however it ends.
struct ContextGuard(usize);

impl ContextGuard {
    fn enter(invoke_context: &mut InvokeContext) -> Self {
        let addr = std::ptr::from_mut(invoke_context).expose_provenance();
        ContextGuard(CONTEXT.with(|c| c.replace(addr)))
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.set(self.0));
    }
}

/// Runs the program for the host's current instruction: the part of an SBF invocation
/// between the host's `invoke` and `success`/`failed` lines.
fn invoke_builtin(invoke_context: &mut InvokeContext) -> Result<u64, Box<dyn std::error::Error>> {
    let _guard = ContextGuard::enter(invoke_context);
    let budget = invoke_context.get_remaining();
    // The host refuses a builtin that consumed nothing (BuiltinProgramsMustConsumeUnits).
    invoke_context.compute_meter.consume_checked(1)?;

    let transaction_context = &invoke_context.transaction_context;
    let instruction_context = transaction_context.get_current_instruction_context()?;
    let program_id = *instruction_context.get_program_key()?;
    let direct_pointers = invoke_context
        .get_feature_set()
        .direct_account_pointers_in_program_input;
    // The SBF ABI: serialize the accounts as the loader would, and hand the program the
    // AccountInfos the SBF entrypoint would deserialize.
    let (mut parameters, _regions, accounts_metadata, _data_offset) =
        serialize_parameters(&instruction_context, false, false, direct_pointers)?;
    // SAFETY: `parameters` is the loader's serialization of this instruction, the exact
    // input `deserialize` parses; it outlives every AccountInfo built from it (both live
    // until the end of this function).
    let (program_key, account_infos, data) =
        unsafe { solana_program_entrypoint::deserialize(parameters.as_slice_mut().as_mut_ptr()) };

    let result = match std::panic::catch_unwind(AssertUnwindSafe(|| {
        entrypoint(program_key, &account_infos, data)
    })) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(program_error)) => Err(InstructionError::from(u64::from(program_error))),
        // A syscall that aborts the program on SBF (a failed CPI, bad seeds, the compute
        // budget) unwinds to here with its error: the program never sees it.
        Err(payload) => Err(match payload.downcast::<Abort>() {
            Ok(abort) => abort.0,
            Err(_panic) => InstructionError::ProgramFailedToComplete,
        }),
    };

    // What the SBF loader writes once the program returns, success or not (vm.rs).
    let log = invoke_context.get_log_collector();
    let consumed = budget.saturating_sub(invoke_context.get_remaining());
    solana_svm_log_collector::ic_logger_msg!(
        log,
        "Program {} consumed {} of {} compute units",
        program_id,
        consumed,
        budget
    );
    let (_, return_data) = invoke_context.transaction_context.get_return_data();
    if !return_data.is_empty() {
        stable_log::program_return(&log, &program_id, return_data);
    }
    result?;

    // Write what the program changed back into the host's accounts exactly as the SBF
    // loader does after a program returns: from the serialized input the AccountInfos
    // point into, refusing what SBF refuses (a read-only account modified, a realloc past
    // the limit, …). Re-fetch the instruction context: a CPI pushed and popped frames.
    drop(account_infos);
    let instruction_context = invoke_context
        .transaction_context
        .get_current_instruction_context()?;
    deserialize_parameters(
        &instruction_context,
        false,
        false,
        parameters.as_slice(),
        &accounts_metadata,
    )?;
    Ok(0)
}

fn to_v3(k: Address) -> solana_pubkey_v3::Pubkey {
    solana_pubkey_v3::Pubkey::new_from_array(k.to_bytes())
}

fn to_v4(k: &solana_pubkey_v3::Pubkey) -> Address {
    Address::new_from_array(k.to_bytes())
}

/// The program as the host's builtin-function definition.
struct Backstop;

impl BuiltinFunctionDefinition<InvokeContext<'_, '_>> for Backstop {
    type Error = Box<dyn std::error::Error>;
    fn rust(
        invoke_context: &mut InvokeContext<'_, '_>,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
    ) -> Result<u64, Self::Error> {
        invoke_builtin(invoke_context)
    }
}

/// The Backstop program as a builtin for `ProgramCacheEntry::new_builtin` (the validator)
/// or `LiteSVM::add_builtin`. Installs the syscall stubs.
pub fn builtin() -> BuiltinFunctionRegisterer {
    install_syscall_stubs();
    <Backstop as BuiltinFunctionDefinition<_>>::register
}

/// Calls Backstop's native entry (Anchor's dispatch, plus the `Instruction:` and
/// `AnchorError …` lines an SBF build writes; see `backstop::native_entry`).
fn entrypoint(
    program_id: &solana_pubkey_v3::Pubkey,
    accounts: &[AccountInfo],
    data: &[u8],
) -> ProgramResult {
    // SAFETY: Anchor's `entry` ties the program id, the account slice, the accounts' own
    // data and the instruction data to one lifetime 'info. All of them outlive this call
    // (they live in `invoke_builtin`'s frame), so only the lifetimes are unified.
    let (program_id, accounts, data): (&_, &[AccountInfo], &[u8]) =
        unsafe { std::mem::transmute((program_id, accounts, data)) };
    backstop::native_entry(program_id, accounts, data)
}

/// The syscalls an SBF program makes, served from the running instruction's context with
/// the log lines the SBF runtime writes.
struct Host;

impl Host {
    fn log(&self, message: &str) {
        stable_log::program_log(&context().get_log_collector(), message);
    }

    fn log_data(&self, fields: &[&[u8]]) {
        stable_log::program_data(&context().get_log_collector(), fields);
    }

    fn remaining_compute_units(&self) -> u64 {
        context().get_remaining()
    }

    fn log_compute_units(&self) {
        let remaining = self.remaining_compute_units();
        solana_svm_log_collector::ic_logger_msg!(
            context().get_log_collector(),
            "Program consumption: {} units remaining",
            remaining
        );
    }

    /// A CPI: the caller's AccountInfo changes go into the host's accounts, the host runs
    /// the callee (and logs its invoke/success lines), and the callee's changes come back
    /// into the caller's AccountInfos. Any failure aborts the caller, as the SBF
    /// `sol_invoke_signed` syscall does: the callee's error becomes the caller's.
    fn invoke_signed(
        &self,
        instruction: &Instruction,
        account_infos: &[AccountInfo],
        signers_seeds: &[&[&[u8]]],
    ) -> ProgramResult {
        match Self::cpi(instruction, account_infos, signers_seeds) {
            Ok(()) => Ok(()),
            Err(e) => abort(e),
        }
    }

    fn cpi(
        instruction: &Instruction,
        account_infos: &[AccountInfo],
        signers_seeds: &[&[&[u8]]],
    ) -> Result<(), InstructionError> {
        let invoke_context = context();
        let caller = invoke_context
            .transaction_context
            .get_current_instruction_context()
            .and_then(|c| c.get_program_key().copied())?;
        let signers = signers_seeds
            .iter()
            .map(|seeds| Address::create_program_address(seeds, &caller))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| InstructionError::InvalidSeeds)?;
        let instruction = Instruction {
            program_id: instruction.program_id,
            accounts: instruction.accounts.clone(),
            data: instruction.data.clone(),
        };
        invoke_context.prepare_next_cpi_instruction(instruction, &signers)?;

        let mut written_back = Vec::new();
        {
            let tc = &invoke_context.transaction_context;
            let current = tc.get_current_instruction_context()?;
            let next = tc.get_next_instruction_context()?;
            for callee_account in next.instruction_accounts().iter() {
                let key = tc.get_key_of_account_at_index(callee_account.index_in_transaction)?;
                let info_index = account_infos
                    .iter()
                    .position(|info| to_v4(info.key) == *key)
                    .ok_or(InstructionError::MissingAccount)?;
                let info = &account_infos[info_index];
                let index_in_caller = current
                    .get_index_of_account_in_instruction(callee_account.index_in_transaction)?;
                let mut account = current.try_borrow_instruction_account(index_in_caller)?;
                if account.get_lamports() != info.lamports() {
                    account.set_lamports(info.lamports())?;
                }
                let data = info
                    .try_borrow_data()
                    .map_err(|_| InstructionError::AccountBorrowFailed)?;
                match account.can_data_be_resized(data.len()) {
                    Ok(()) => account.set_data_from_slice(&data)?,
                    Err(e) if account.get_data() != *data => return Err(e),
                    Err(_) => {}
                }
                if account.get_owner().to_bytes() != info.owner.to_bytes() {
                    account.set_owner(info.owner.as_ref())?;
                }
                if callee_account.is_writable() {
                    written_back.push((callee_account.index_in_transaction, info_index));
                }
            }
        }

        let mut consumed = 0;
        invoke_context.process_instruction(&mut consumed, &mut ExecuteTimings::default())?;

        let tc = &invoke_context.transaction_context;
        let current = tc.get_current_instruction_context()?;
        for (index_in_transaction, info_index) in written_back {
            let index_in_caller =
                current.get_index_of_account_in_instruction(index_in_transaction)?;
            let account = current.try_borrow_instruction_account(index_in_caller)?;
            let info = &account_infos[info_index];
            **info
                .try_borrow_mut_lamports()
                .map_err(|_| InstructionError::AccountBorrowFailed)? = account.get_lamports();
            if info.owner.to_bytes() != account.get_owner().to_bytes() {
                // SAFETY: as on SBF, where the runtime rewrites the owner field in the
                // serialized input after a CPI, the owner lives in the instruction's
                // parameter buffer that this AccountInfo points into, and no other
                // reference to it is live during the call.
                #[allow(clippy::transmute_ptr_to_ptr)]
                #[allow(mutable_transmutes)]
                let owner = unsafe {
                    std::mem::transmute::<&solana_pubkey_v3::Pubkey, &mut solana_pubkey_v3::Pubkey>(
                        info.owner,
                    )
                };
                *owner = to_v3(*account.get_owner());
            }
            let new_data = account.get_data();
            if info.data_len() != new_data.len() {
                info.resize(new_data.len())
                    .map_err(|_| InstructionError::InvalidRealloc)?;
            }
            info.try_borrow_mut_data()
                .map_err(|_| InstructionError::AccountBorrowFailed)?
                .clone_from_slice(new_data);
        }
        Ok(())
    }

    fn set_return_data(&self, data: &[u8]) {
        let tc = &mut context().transaction_context;
        if let Ok(program) = tc
            .get_current_instruction_context()
            .and_then(|c| c.get_program_key().copied())
        {
            // Past MAX_RETURN_DATA the SBF syscall aborts the program; so does this.
            if let Err(e) = tc.set_return_data(program, data.to_vec()) {
                abort(e);
            }
        }
    }

    /// `None` when no return data is set, as the SBF syscall answers.
    fn return_data(&self) -> Option<(Address, Vec<u8>)> {
        let (program, data) = context().transaction_context.get_return_data();
        (!data.is_empty()).then(|| (*program, data.to_vec()))
    }

    fn stack_height(&self) -> u64 {
        context().get_stack_height() as u64
    }

    /// Copies sysvar `T` from the cache into `var_addr`, charging what the syscall costs.
    fn sysvar<T: Clone>(
        &self,
        var_addr: *mut u8,
        fetch: impl FnOnce(&SysvarCache) -> Result<std::sync::Arc<T>, InstructionError>,
    ) -> u64 {
        let ic = context();
        let cost = ic.get_execution_cost().sysvar_base_cost + std::mem::size_of::<T>() as u64;
        if ic.compute_meter.consume_checked(cost).is_err() {
            abort(InstructionError::ComputationalBudgetExceeded);
        }
        match fetch(ic.environment_config.sysvar_cache()) {
            // SAFETY: the caller passes the address of a `T` (the syscall's contract).
            Ok(value) => unsafe {
                std::ptr::write(var_addr.cast::<T>(), T::clone(&value));
                0
            },
            Err(_) => UNSUPPORTED_SYSVAR,
        }
    }

    /// `sol_get_sysvar`: `length` bytes at `offset` of the sysvar's bincode serialization.
    fn sysvar_bytes(&self, id: &Address, var_addr: *mut u8, offset: u64, length: u64) -> u64 {
        fn slice<T: serde::Serialize>(
            value: Result<std::sync::Arc<T>, InstructionError>,
            var_addr: *mut u8,
            offset: u64,
            length: u64,
        ) -> u64 {
            let Ok(value) = value else {
                return UNSUPPORTED_SYSVAR;
            };
            let Ok(bytes) = bincode::serialize(&*value) else {
                return UNSUPPORTED_SYSVAR;
            };
            let (Ok(start), Ok(len)) = (usize::try_from(offset), usize::try_from(length)) else {
                return UNSUPPORTED_SYSVAR;
            };
            let Some(part) = start.checked_add(len).and_then(|end| bytes.get(start..end)) else {
                return UNSUPPORTED_SYSVAR;
            };
            // SAFETY: the caller passes a buffer of `length` bytes (the syscall's contract).
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), var_addr, len) };
            0
        }
        let ic = context();
        let cost = ic.get_execution_cost();
        let units = cost.sysvar_base_cost
            + 32u64.checked_div(cost.cpi_bytes_per_unit).unwrap_or(0)
            + length
                .checked_div(cost.cpi_bytes_per_unit)
                .unwrap_or(0)
                .max(cost.mem_op_base_cost);
        if ic.compute_meter.consume_checked(units).is_err() {
            abort(InstructionError::ComputationalBudgetExceeded);
        }
        let cache = ic.environment_config.sysvar_cache();
        match *id {
            id if id == Clock::id() => slice(cache.get_clock(), var_addr, offset, length),
            id if id == Rent::id() => slice(cache.get_rent(), var_addr, offset, length),
            id if id == EpochSchedule::id() => {
                slice(cache.get_epoch_schedule(), var_addr, offset, length)
            }
            id if id == EpochRewards::id() => {
                slice(cache.get_epoch_rewards(), var_addr, offset, length)
            }
            id if id == LastRestartSlot::id() => {
                slice(cache.get_last_restart_slot(), var_addr, offset, length)
            }
            _ => UNSUPPORTED_SYSVAR,
        }
    }
}

macro_rules! stubs {
    ($pubkey:ty, $from:expr) => {
        fn sol_log(&self, message: &str) {
            Host.log(message)
        }
        fn sol_log_data(&self, fields: &[&[u8]]) {
            Host.log_data(fields)
        }
        fn sol_log_compute_units(&self) {
            Host.log_compute_units()
        }
        fn sol_remaining_compute_units(&self) -> u64 {
            Host.remaining_compute_units()
        }
        fn sol_invoke_signed(
            &self,
            instruction: &Instruction,
            account_infos: &[AccountInfo],
            signers_seeds: &[&[&[u8]]],
        ) -> ProgramResult {
            Host.invoke_signed(instruction, account_infos, signers_seeds)
        }
        fn sol_get_sysvar(
            &self,
            sysvar_id_addr: *const u8,
            var_addr: *mut u8,
            offset: u64,
            length: u64,
        ) -> u64 {
            // SAFETY: the caller passes the address of a 32-byte sysvar id.
            let id = Address::new_from_array(unsafe { *sysvar_id_addr.cast::<[u8; 32]>() });
            Host.sysvar_bytes(&id, var_addr, offset, length)
        }
        fn sol_get_clock_sysvar(&self, var_addr: *mut u8) -> u64 {
            Host.sysvar(var_addr, SysvarCache::get_clock)
        }
        fn sol_get_epoch_schedule_sysvar(&self, var_addr: *mut u8) -> u64 {
            Host.sysvar(var_addr, SysvarCache::get_epoch_schedule)
        }
        fn sol_get_rent_sysvar(&self, var_addr: *mut u8) -> u64 {
            Host.sysvar(var_addr, SysvarCache::get_rent)
        }
        fn sol_get_epoch_rewards_sysvar(&self, var_addr: *mut u8) -> u64 {
            Host.sysvar(var_addr, SysvarCache::get_epoch_rewards)
        }
        fn sol_get_last_restart_slot(&self, var_addr: *mut u8) -> u64 {
            Host.sysvar(var_addr, SysvarCache::get_last_restart_slot)
        }
        fn sol_set_return_data(&self, data: &[u8]) {
            Host.set_return_data(data)
        }
        fn sol_get_return_data(&self) -> Option<($pubkey, Vec<u8>)> {
            Host.return_data().map(|(k, d)| ($from(k), d))
        }
        fn sol_get_stack_height(&self) -> u64 {
            Host.stack_height()
        }
    };
}

/// Serves `solana-sysvar` 3.1.1 callers (Anchor).
struct V3;
/// Serves `solana-sysvar` 4.x callers.
struct V4;

impl v3::SyscallStubs for V3 {
    stubs!(solana_pubkey_v3::Pubkey, to_v3);
}

impl v4::SyscallStubs for V4 {
    stubs!(Address, std::convert::identity);
}

/// Installs the bridge's syscall stubs for both `solana-sysvar` majors. Idempotent and
/// thread-safe; [`builtin`] calls it.
pub fn install_syscall_stubs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        v3::set_syscall_stubs(Box::new(V3));
        v4::set_syscall_stubs(Box::new(V4));
    });
}
