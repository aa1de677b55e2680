//! Sending: instructions for each action, compute budget and priority fee, simulation,
//! confirmation with a timeout, retries with backoff, and the classification of failures
//! (a benign race when another keeper already did the work).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use backstop_client::batch::{set_compute_unit_limit, set_compute_unit_price};
use backstop_client::ix::{self, ExchangeKeys};
use backstop_client::rpc::{failure, failure_of, Failure};
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::rpc_client::RpcClient;
use solana_rpc_client_api::config::{RpcSendTransactionConfig, RpcSimulateTransactionConfig};
use solana_sdk::hash::Hash;
use solana_sdk::message::{
    v0, AddressLookupTableAccount, Message as LegacyMessage, VersionedMessage,
};
use solana_sdk::signature::{Keypair, Signature};
use solana_sdk::signer::Signer;
use solana_sdk::transaction::VersionedTransaction;

use backstop::error::BackstopError;

use crate::config::PriorityFee;
use crate::plan::{Action, Book};

/// Program errors that mean "someone else already did it" (or the state moved on), not a
/// keeper fault: matched by code, never by text.
pub const BENIGN: &[BackstopError] = {
    use BackstopError::*;
    &[
        NotLiquidatable,
        NothingToLiquidate,
        NoPositionInMarket,
        NotBankrupt,
        AlreadyTallied,
        AlreadyClawedBack,
        NothingToClawBack,
        WrongEpochPhase,
        EpochNotReady,
        TallyIncomplete,
        NotTallied,
        NoDeficit,
    ]
};

/// The benign program error `code` is, if any.
pub fn benign(code: u32) -> Option<BackstopError> {
    BENIGN.iter().copied().find(|e| u32::from(*e) == code)
}

/// Why a transaction failed: the metrics label and the backoff key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailKind {
    /// A program error that is not a benign race, by name (`InsufficientMargin`, or
    /// another program's).
    Program(String),
    /// The runtime refused the transaction without a program error.
    Transaction,
    /// RPC or transport errors, expired blockhashes or confirmation timeouts, after the
    /// retries.
    Rpc,
    /// The message could not be compiled or signed.
    Build,
}

impl FailKind {
    /// The `kind` label of `backstop_keeper_errors_total`.
    pub fn label(&self) -> &str {
        match self {
            FailKind::Program(name) => name,
            FailKind::Transaction => "transaction",
            FailKind::Rpc => "rpc",
            FailKind::Build => "build",
        }
    }
}

/// How an action ended.
#[derive(Debug)]
pub enum Outcome {
    Confirmed {
        signature: Signature,
        slot: u64,
        /// The compute-unit limit it requested.
        compute_units: u32,
    },
    /// Another keeper (or the market) got there first.
    BenignRace(String),
    /// Would have been sent (`--dry-run`).
    DryRun,
    Failed {
        kind: FailKind,
        message: String,
    },
}

/// A transaction on its way: sent, its confirmation not yet seen.
#[derive(Debug, Clone)]
pub struct Sent {
    pub signature: Signature,
    /// The signed transaction, to broadcast again while its blockhash is valid.
    pub transaction: VersionedTransaction,
    pub blockhash: Hash,
    /// The compute-unit limit it requested.
    pub compute_units: u32,
    /// When it was last broadcast.
    pub at: Instant,
}

/// What [`Sender::submit`] did.
#[derive(Debug)]
pub enum Submitted {
    /// Sent; confirm it with [`Sender::statuses`].
    Sent(Sent),
    /// Ended before sending (simulation refused it, dry run, or RPC failures).
    Done(Outcome),
}

/// A transaction the cluster has processed: its slot, its error if it failed, and
/// whether it reached `confirmed`.
#[derive(Debug, Clone)]
pub struct Status {
    pub slot: u64,
    pub err: Option<solana_sdk::transaction::TransactionError>,
    pub confirmed: bool,
}

/// The compute-unit limit for a transaction whose simulation consumed `consumed`: 20%
/// more, plus 1,000 for the compute-budget instructions and account-size variation,
/// rounded up, within `cap`.
pub fn size_units(consumed: u64, cap: u32) -> u32 {
    let sized = consumed.saturating_mul(6).div_ceil(5).saturating_add(1_000);
    u32::try_from(sized).unwrap_or(u32::MAX).min(cap)
}

pub struct Sender {
    pub rpc: RpcClient,
    pub payer: Keypair,
    /// The most compute units any transaction may request (`--compute-unit-limit`).
    pub compute_unit_limit: u32,
    pub priority_fee: PriorityFee,
    pub dry_run: bool,
    pub confirm_timeout: Duration,
    /// Attempts that had to be retried (transport errors, expired blockhashes, timeouts).
    pub retries: std::sync::atomic::AtomicU64,
    /// Whether the program's compute is metered (an SBF program): then each transaction
    /// requests what its simulation consumed; otherwise (a native builtin, as on this
    /// machine's localnet) the per-action fallback.
    metered: std::sync::atomic::AtomicBool,
    blockhash: Mutex<Option<(Hash, Instant)>>,
    fee_cache: Mutex<Option<(u64, Instant)>>,
}

/// Attempts per action before giving up (each with a fresh blockhash).
pub const ATTEMPTS: u32 = 3;

impl Sender {
    pub fn new(
        url: &str,
        payer: Keypair,
        compute_unit_limit: u32,
        priority_fee: PriorityFee,
        dry_run: bool,
        confirm_timeout: Duration,
    ) -> Self {
        Sender {
            rpc: RpcClient::new_with_timeout_and_commitment(
                url.to_string(),
                Duration::from_secs(15),
                CommitmentConfig::confirmed(),
            ),
            payer,
            compute_unit_limit,
            priority_fee,
            dry_run,
            confirm_timeout,
            retries: Default::default(),
            metered: std::sync::atomic::AtomicBool::new(true),
            blockhash: Mutex::new(None),
            fee_cache: Mutex::new(None),
        }
    }

    /// Reads how the program runs: a native builtin (owned by the native loader) is not
    /// metered, so its simulations cannot size compute. Returns whether it is metered.
    pub fn detect_metering(&self) -> bool {
        let metered = match self.rpc.get_account(&backstop::ID) {
            Ok(a) => a.owner != solana_sdk_ids::native_loader::ID,
            Err(_) => true,
        };
        self.metered
            .store(metered, std::sync::atomic::Ordering::Relaxed);
        metered
    }

    pub fn metered(&self) -> bool {
        self.metered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The instructions of `action` (without compute budget). A liquidation lists the
    /// (market, oracle) pairs of the liquidatee's markets, the keeper's, and
    /// `pending_markets` (takeovers in flight the keeper may hold when it lands).
    pub fn instructions(
        &self,
        book: &Book,
        action: &Action,
        pending_markets: &[u16],
    ) -> Option<Vec<Instruction>> {
        let ex = book.exchange_address;
        let keys = ExchangeKeys::of(ex);
        let all_pairs: Vec<(Pubkey, Pubkey)> = book
            .markets
            .iter()
            .map(|m| (m.address, m.market.oracle))
            .collect();
        Some(match action {
            Action::Liquidate {
                account,
                market_index,
                max_base_qty,
            } => {
                let liqee = book.accounts.get(account)?;
                let m = book.market(*market_index)?;
                let mut pairs = book.pairs_for(liqee);
                let me = backstop_client::pda::margin_account(&ex, &self.payer.pubkey());
                if let Some(k) = book.accounts.get(&me) {
                    for p in book.pairs_for(k) {
                        if !pairs.contains(&p) {
                            pairs.push(p);
                        }
                    }
                }
                for p in pending_markets
                    .iter()
                    .filter_map(|i| book.market(*i))
                    .map(|m| (m.address, m.market.oracle))
                {
                    if !pairs.contains(&p) {
                        pairs.push(p);
                    }
                }
                pairs.retain(|(k, _)| *k != m.address);
                vec![ix::liquidate(
                    &keys,
                    &self.payer.pubkey(),
                    account,
                    &m.address,
                    &m.market.oracle,
                    *max_base_qty,
                    &pairs,
                )]
            }
            Action::ResolveBankruptcy { account } => vec![ix::resolve_bankruptcy(&keys, account)],
            Action::BeginClawback => vec![ix::begin_clawback(&ex, &all_pairs)],
            Action::Tally { accounts } => vec![ix::tally(&ex, accounts)],
            Action::FinalizeTally => vec![ix::finalize_tally(&ex)],
            Action::Clawback { accounts } => vec![ix::clawback(&keys, accounts)],
        })
    }

    fn latest_blockhash(&self, fresh: bool) -> Result<Hash, String> {
        let mut cache = self.blockhash.lock().unwrap();
        if let Some((h, at)) = *cache {
            if !fresh && at.elapsed() < Duration::from_secs(20) {
                return Ok(h);
            }
        }
        let h = self
            .rpc
            .get_latest_blockhash()
            .map_err(|e| format!("getLatestBlockhash: {e}"))?;
        *cache = Some((h, Instant::now()));
        Ok(h)
    }

    /// Micro-lamports per CU: fixed, or the median recent fee for `writable` (capped),
    /// refreshed at most every 10 s.
    fn priority_fee(&self, writable: &[Pubkey]) -> u64 {
        match self.priority_fee {
            PriorityFee::Fixed(f) => f,
            PriorityFee::Auto { cap } => {
                let mut cache = self.fee_cache.lock().unwrap();
                if let Some((f, at)) = *cache {
                    if at.elapsed() < Duration::from_secs(10) {
                        return f;
                    }
                }
                let fee = self
                    .rpc
                    .get_recent_prioritization_fees(writable)
                    .map(|v| {
                        let mut fees: Vec<u64> = v.iter().map(|f| f.prioritization_fee).collect();
                        fees.sort_unstable();
                        fees.get(fees.len() / 2).copied().unwrap_or(0)
                    })
                    .unwrap_or(0)
                    .min(cap);
                *cache = Some((fee, Instant::now()));
                fee
            }
        }
    }

    /// Simulates, sizes, signs and sends `ixs`, without waiting for the confirmation.
    /// The simulation asks for `--compute-unit-limit` units when the program is metered
    /// (the sent transaction then requests [`size_units`] of what it consumed), and for
    /// `fallback_units` otherwise; the priority fee is paid on the requested limit.
    /// Expired blockhashes and transport errors are retried with a fresh blockhash
    /// (backoff 0.5 s, 1 s). With lookup `tables`, a v0 transaction that names the
    /// tables' accounts by index; otherwise legacy.
    pub fn submit(
        &self,
        ixs: &[Instruction],
        tables: &[AddressLookupTableAccount],
        fallback_units: u32,
        full_budget: bool,
    ) -> Submitted {
        let writable: Vec<Pubkey> = ixs
            .iter()
            .flat_map(|i| {
                i.accounts
                    .iter()
                    .filter(|a| a.is_writable)
                    .map(|a| a.pubkey)
            })
            .collect();
        let price = self.priority_fee(&writable);
        let metered = self.metered();
        // A transaction that ran out of compute once asks for the whole cap the next time.
        let simulated_limit = if metered || full_budget {
            self.compute_unit_limit
        } else {
            fallback_units.min(self.compute_unit_limit)
        };
        let with_budget = |limit: u32| {
            let mut all = vec![set_compute_unit_limit(limit), set_compute_unit_price(price)];
            all.extend(ixs.iter().cloned());
            all
        };
        let mut last_err = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(500 << (attempt - 1)));
            }
            let blockhash = match self.latest_blockhash(attempt > 0) {
                Ok(h) => h,
                Err(e) => {
                    last_err = e;
                    continue;
                }
            };
            let mut tx = match self.sign(&with_budget(simulated_limit), tables, blockhash) {
                Ok(tx) => tx,
                Err(message) => {
                    return Submitted::Done(Outcome::Failed {
                        kind: FailKind::Build,
                        message,
                    })
                }
            };
            // Simulation: catches races and program errors without paying a fee, and
            // measures the compute the transaction needs.
            let sim = self.rpc.simulate_transaction_with_config(
                &tx,
                RpcSimulateTransactionConfig {
                    sig_verify: false,
                    replace_recent_blockhash: false,
                    commitment: Some(CommitmentConfig::processed()),
                    ..Default::default()
                },
            );
            let consumed = match sim {
                Ok(r) => {
                    if let Some(err) = r.value.err {
                        let f = failure_of(&err.into(), r.value.logs.unwrap_or_default());
                        if is_blockhash_problem(&f) {
                            last_err = f.to_string();
                            continue;
                        }
                        return Submitted::Done(classify(f));
                    }
                    r.value.units_consumed
                }
                Err(e) => {
                    last_err = format!("simulateTransaction: {e}");
                    continue;
                }
            };
            let limit = match consumed {
                Some(units) if metered && !full_budget && units > 0 => {
                    let sized = size_units(units, self.compute_unit_limit);
                    match self.sign(&with_budget(sized), tables, blockhash) {
                        Ok(t) => tx = t,
                        Err(message) => {
                            return Submitted::Done(Outcome::Failed {
                                kind: FailKind::Build,
                                message,
                            })
                        }
                    }
                    sized
                }
                _ => simulated_limit,
            };
            if self.dry_run {
                return Submitted::Done(Outcome::DryRun);
            }
            match self.rpc.send_transaction_with_config(
                &tx,
                RpcSendTransactionConfig {
                    skip_preflight: true,
                    ..Default::default()
                },
            ) {
                Ok(signature) => {
                    return Submitted::Sent(Sent {
                        signature,
                        transaction: tx,
                        blockhash,
                        compute_units: limit,
                        at: Instant::now(),
                    })
                }
                Err(e) => {
                    if let Some(f) = failure(&e) {
                        return Submitted::Done(classify(f));
                    }
                    last_err = format!("sendTransaction: {e}");
                }
            }
        }
        Submitted::Done(Outcome::Failed {
            kind: FailKind::Rpc,
            message: format!("gave up after {ATTEMPTS} attempts: {last_err}"),
        })
    }

    /// The statuses of `sigs` in order (`None`: not processed, as far as the node's
    /// status cache knows), one `getSignatureStatuses` call per 256. Always one entry per
    /// signature.
    pub fn statuses(&self, sigs: &[Signature]) -> Result<Vec<Option<Status>>, String> {
        let mut out = Vec::with_capacity(sigs.len());
        for chunk in sigs.chunks(256) {
            let r = self
                .rpc
                .get_signature_statuses(chunk)
                .map_err(|e| format!("getSignatureStatuses: {e}"))?;
            let mut got: Vec<Option<Status>> = r
                .value
                .into_iter()
                .map(|st| {
                    st.map(|st| Status {
                        confirmed: st.satisfies_commitment(CommitmentConfig::confirmed()),
                        slot: st.slot,
                        err: st.err,
                    })
                })
                .collect();
            // A node that answers short is treated as "not seen" for the rest.
            got.resize(chunk.len(), None);
            out.extend(got);
        }
        Ok(out)
    }

    /// Whether `blockhash` can still land a transaction (`None`: the node did not say).
    pub fn blockhash_valid(&self, blockhash: &Hash) -> Option<bool> {
        self.rpc
            .is_blockhash_valid(blockhash, CommitmentConfig::processed())
            .ok()
    }

    /// Broadcasts an already signed transaction again (same signature: it lands once).
    pub fn rebroadcast(&self, tx: &VersionedTransaction) -> Result<(), String> {
        self.rpc
            .send_transaction_with_config(
                tx,
                RpcSendTransactionConfig {
                    skip_preflight: true,
                    ..Default::default()
                },
            )
            .map(|_| ())
            .map_err(|e| format!("sendTransaction: {e}"))
    }

    /// How a landed transaction that failed with `err` ended. Decoded from the error
    /// alone (a custom code is read as Backstop's: the keeper's instructions make no
    /// CPI that can fail with another program's code), so a burst of failures never
    /// stalls the confirmer on `getTransaction`.
    pub fn failed(&self, err: &solana_sdk::transaction::TransactionError) -> Outcome {
        classify(failure_of(err, vec![]))
    }

    /// A signed transaction: v0 through `tables` when there are any, legacy otherwise.
    fn sign(
        &self,
        ixs: &[Instruction],
        tables: &[AddressLookupTableAccount],
        blockhash: Hash,
    ) -> Result<VersionedTransaction, String> {
        let message = if tables.is_empty() {
            VersionedMessage::Legacy(LegacyMessage::new_with_blockhash(
                ixs,
                Some(&self.payer.pubkey()),
                &blockhash,
            ))
        } else {
            VersionedMessage::V0(
                v0::Message::try_compile(&self.payer.pubkey(), ixs, tables, blockhash)
                    .map_err(|e| format!("compiling a v0 message: {e}"))?,
            )
        };
        VersionedTransaction::try_new(message, &[&self.payer]).map_err(|e| format!("signing: {e}"))
    }
}

/// Whether a landed transaction ran out of compute.
pub fn out_of_compute(err: &solana_sdk::transaction::TransactionError) -> bool {
    matches!(
        err,
        solana_sdk::transaction::TransactionError::InstructionError(
            _,
            solana_sdk::instruction::InstructionError::ComputationalBudgetExceeded
        )
    )
}

fn is_blockhash_problem(f: &Failure) -> bool {
    f.runtime
        .as_deref()
        .is_some_and(|r| r.contains("Blockhash not found") || r.contains("blockhash"))
}

fn classify(f: Failure) -> Outcome {
    // The identical transaction (same blockhash) already landed: the work is done. Seen
    // when the book had not caught up with the keeper's own previous send.
    let duplicate = f
        .runtime
        .as_deref()
        .is_some_and(|r| r.contains("already been processed"))
        || f.to_string().contains("already been processed");
    if duplicate {
        return Outcome::BenignRace("AlreadyProcessed".into());
    }
    match &f.error {
        Some(d) if benign(d.code).is_some() => Outcome::BenignRace(d.name.clone()),
        Some(d) => Outcome::Failed {
            kind: FailKind::Program(d.name.clone()),
            message: f.to_string(),
        },
        None => Outcome::Failed {
            kind: FailKind::Transaction,
            message: f.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_is_sized_from_the_simulation_within_the_cap() {
        assert_eq!(size_units(0, 1_400_000), 1_000);
        assert_eq!(size_units(100_000, 1_400_000), 121_000);
        // Rounded up: 6 × 7 / 5 = 8.4 → 9.
        assert_eq!(size_units(7, 1_400_000), 1_009);
        assert_eq!(size_units(1_300_000, 1_400_000), 1_400_000);
        assert_eq!(size_units(u64::MAX, 200_000), 200_000);
        // Never below what was consumed, monotone in it.
        let mut last = 0;
        for units in (0..1_400_000u64).step_by(9_973) {
            let s = size_units(units, 1_400_000);
            assert!(u64::from(s) >= units.min(1_400_000) && s >= last);
            last = s;
        }
    }

    #[test]
    fn benign_races_are_matched_by_program_error_code() {
        assert_eq!(
            benign(BackstopError::AlreadyTallied.into()).map(u32::from),
            Some(BackstopError::AlreadyTallied.into())
        );
        assert!(benign(BackstopError::InsufficientCapital.into()).is_none());
        // SPL Token's InsufficientFunds (1) is not Backstop's anything.
        assert!(benign(1).is_none());
        // Every benign error has its own code.
        let mut codes: Vec<u32> = BENIGN.iter().map(|e| u32::from(*e)).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), BENIGN.len());
    }
}
