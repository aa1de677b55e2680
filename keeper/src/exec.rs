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

/// How an action ended.
#[derive(Debug)]
pub enum Outcome {
    Confirmed {
        signature: Signature,
        slot: u64,
    },
    /// Another keeper (or the market) got there first.
    BenignRace(String),
    /// Would have been sent (`--dry-run`).
    DryRun,
    Failed {
        kind: String,
        message: String,
    },
}

pub struct Sender {
    pub rpc: RpcClient,
    pub payer: Keypair,
    pub compute_unit_limit: u32,
    pub priority_fee: PriorityFee,
    pub dry_run: bool,
    pub confirm_timeout: Duration,
    /// Attempts that had to be retried (transport errors, expired blockhashes, timeouts).
    pub retries: std::sync::atomic::AtomicU64,
    blockhash: Mutex<Option<(Hash, Instant)>>,
    fee_cache: Mutex<Option<(u64, Instant)>>,
}

/// Attempts per action before giving up (each with a fresh blockhash).
const ATTEMPTS: u32 = 3;

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
            blockhash: Mutex::new(None),
            fee_cache: Mutex::new(None),
        }
    }

    /// The instructions of `action` (without compute budget).
    pub fn instructions(&self, book: &Book, action: &Action) -> Option<Vec<Instruction>> {
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

    /// Simulates, sends and confirms `ixs`, retrying with a fresh blockhash on expiry or
    /// transport errors (backoff 0.5 s, 1 s, 2 s). With lookup `tables`, as a v0
    /// transaction that names the tables' accounts by index; otherwise legacy.
    pub fn execute(&self, ixs: Vec<Instruction>, tables: &[AddressLookupTableAccount]) -> Outcome {
        let writable: Vec<Pubkey> = ixs
            .iter()
            .flat_map(|i| {
                i.accounts
                    .iter()
                    .filter(|a| a.is_writable)
                    .map(|a| a.pubkey)
            })
            .collect();
        let mut all = vec![
            set_compute_unit_limit(self.compute_unit_limit),
            set_compute_unit_price(self.priority_fee(&writable)),
        ];
        all.extend(ixs);
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
            let tx = match self.sign(&all, tables, blockhash) {
                Ok(tx) => tx,
                Err(message) => {
                    return Outcome::Failed {
                        kind: "build".into(),
                        message,
                    }
                }
            };
            // Simulation: catches races and program errors without paying a fee.
            let sim = self.rpc.simulate_transaction_with_config(
                &tx,
                RpcSimulateTransactionConfig {
                    sig_verify: false,
                    replace_recent_blockhash: false,
                    commitment: Some(CommitmentConfig::processed()),
                    ..Default::default()
                },
            );
            match sim {
                Ok(r) => {
                    if let Some(err) = r.value.err {
                        let f = failure_of(&err.into(), r.value.logs.unwrap_or_default());
                        if is_blockhash_problem(&f) {
                            last_err = f.to_string();
                            continue;
                        }
                        return classify(f);
                    }
                }
                Err(e) => {
                    last_err = format!("simulateTransaction: {e}");
                    continue;
                }
            }
            if self.dry_run {
                return Outcome::DryRun;
            }
            let sig = match self.rpc.send_transaction_with_config(
                &tx,
                RpcSendTransactionConfig {
                    skip_preflight: true,
                    ..Default::default()
                },
            ) {
                Ok(s) => s,
                Err(e) => {
                    if let Some(f) = failure(&e) {
                        return classify(f);
                    }
                    last_err = format!("sendTransaction: {e}");
                    continue;
                }
            };
            match self.confirm(&sig) {
                Ok(Some((slot, None))) => {
                    return Outcome::Confirmed {
                        signature: sig,
                        slot,
                    };
                }
                Ok(Some((_, Some(err)))) => {
                    let logs = self.logs(&sig);
                    return classify(failure_of(&err, logs));
                }
                Ok(None) => {
                    last_err = format!("{sig} not confirmed within {:?}", self.confirm_timeout)
                }
                Err(e) => last_err = e,
            }
        }
        Outcome::Failed {
            kind: "rpc".into(),
            message: format!("gave up after {ATTEMPTS} attempts: {last_err}"),
        }
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

    /// Polls the signature status until confirmed, failed, or the timeout.
    #[allow(clippy::type_complexity)]
    fn confirm(
        &self,
        sig: &Signature,
    ) -> Result<Option<(u64, Option<solana_sdk::transaction::TransactionError>)>, String> {
        let start = Instant::now();
        let mut errors = 0;
        while start.elapsed() < self.confirm_timeout {
            match self.rpc.get_signature_statuses(&[*sig]) {
                Ok(r) => {
                    if let Some(Some(st)) = r.value.first() {
                        if st.satisfies_commitment(CommitmentConfig::confirmed()) {
                            return Ok(Some((st.slot, st.err.clone())));
                        }
                    }
                }
                Err(e) => {
                    errors += 1;
                    if errors > 20 {
                        return Err(format!("getSignatureStatuses: {e}"));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(None)
    }

    /// The logs of a landed transaction (to decode why it failed).
    fn logs(&self, sig: &Signature) -> Vec<String> {
        use solana_rpc_client_api::config::RpcTransactionConfig;
        let cfg = RpcTransactionConfig {
            encoding: Some(solana_transaction_status_client_types::UiTransactionEncoding::Base64),
            commitment: Some(CommitmentConfig::confirmed()),
            max_supported_transaction_version: Some(0),
        };
        for _ in 0..5 {
            if let Ok(tx) = self.rpc.get_transaction_with_config(sig, cfg) {
                if let Some(meta) = tx.transaction.meta {
                    let logs: Option<Vec<String>> = meta.log_messages.into();
                    return logs.unwrap_or_default();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        vec![]
    }
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
            kind: d.name.clone(),
            message: f.to_string(),
        },
        None => Outcome::Failed {
            kind: "transaction".into(),
            message: f.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
