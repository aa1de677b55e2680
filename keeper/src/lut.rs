//! The keeper's own address lookup tables of the exchange's margin accounts, so `tally`
//! and `clawback` batches go out as v0 transactions that name each account with one byte
//! instead of 32: a `tally` then carries up to `MAX_TALLY_BATCH` (60, the account-lock
//! limit) accounts instead of the 29 a legacy transaction fits.
//!
//! A background thread ([`spawn`]) keeps the tables complete:
//! - at start it finds the tables this keeper's key already owns (`getProgramAccounts` on
//!   the lookup-table program, `authority` = the keeper), so a restart reuses them;
//! - every few seconds it extends a table with room with the accounts not yet in any
//!   ([`EXTEND_CHUNK`] per transaction, up to the table's 256 addresses), creating a new
//!   table when all are full;
//! - addresses are published to the [`Index`] only once the extension is rooted (the
//!   validator resolves a v0 transaction's tables against its root bank), so every table
//!   the sender uses is usable at once.
//!
//! Nothing else depends on it: an account not in a table yet is batched the legacy way.
//! Rent: ~0.0019 SOL per table plus 0.00022 SOL per 32 addresses, paid by the keeper.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, Context, Result};
use solana_address_lookup_table_interface::instruction as alt;
use solana_address_lookup_table_interface::state::{
    AddressLookupTable, LOOKUP_TABLE_MAX_ADDRESSES,
};
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::rpc_client::RpcClient;
use solana_rpc_client_api::config::{RpcAccountInfoConfig, RpcProgramAccountsConfig};
use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};
use solana_sdk::message::AddressLookupTableAccount;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use solana_sdk::transaction::Transaction;
use tracing::{info, warn};

/// Addresses per `ExtendLookupTable` transaction: 20 × 32 bytes keep it well inside a
/// legacy transaction (`extend_fits_a_legacy_transaction`).
pub const EXTEND_CHUNK: usize = 20;

/// Byte offset of `LookupTableMeta::authority`'s key (after the 4-byte state tag, two
/// slots, the start index and the `Option` tag).
const AUTHORITY_OFFSET: usize = 22;

/// The usable tables and which one holds each address. Shared between the maintenance
/// thread (writer) and the decision loop (reader).
#[derive(Debug, Default, Clone)]
pub struct Index {
    tables: Vec<AddressLookupTableAccount>,
    of: HashMap<Pubkey, usize>,
}

impl Index {
    /// The table holding `key`, if any (an index into this `Index`'s tables).
    pub fn table_of(&self, key: &Pubkey) -> Option<usize> {
        self.of.get(key).copied()
    }

    /// The tables that name any of `keys`, to compile a v0 message with.
    pub fn tables_for(&self, keys: &[Pubkey]) -> Vec<AddressLookupTableAccount> {
        let mut idx: Vec<usize> = keys.iter().filter_map(|k| self.table_of(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter().map(|i| self.tables[i].clone()).collect()
    }

    /// Addresses across all tables.
    pub fn len(&self) -> usize {
        self.of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.of.is_empty()
    }

    pub fn tables(&self) -> usize {
        self.tables.len()
    }

    /// Publishes `table` with exactly the `addresses` it holds on chain, in order (a v0
    /// message names an account by its position in the table). Tables only grow, so this
    /// extends what was published before.
    fn publish(&mut self, table: Pubkey, addresses: &[Pubkey]) {
        let i = match self.tables.iter().position(|t| t.key == table) {
            Some(i) => i,
            None => {
                self.tables.push(AddressLookupTableAccount {
                    key: table,
                    addresses: vec![],
                });
                self.tables.len() - 1
            }
        };
        // A lagging read can be shorter than what was published: keep the longer list.
        if addresses.len() < self.tables[i].addresses.len() {
            return;
        }
        self.tables[i].addresses = addresses.to_vec();
        for a in addresses {
            self.of.entry(*a).or_insert(i);
        }
    }
}

/// Most accounts per v0 transaction: accounts a transaction may lock in all (its own keys
/// plus those loaded from tables).
pub const MAX_TX_ACCOUNT_LOCKS: usize = 64;

/// The largest `n` for which `build(n)`, with the compute-budget pair, fits one v0
/// transaction whose `n` accounts all come from one lookup table: within the packet size
/// and the account-lock limit. Searching up to `max`.
pub fn max_batch_v0(
    payer: &Pubkey,
    max: usize,
    build: impl Fn(usize) -> anchor_lang::solana_program::instruction::Instruction,
) -> usize {
    use backstop_client::batch::{
        set_compute_unit_limit, set_compute_unit_price, PACKET_DATA_SIZE,
    };
    use solana_sdk::message::{v0, VersionedMessage};
    let fits = |n: usize| {
        let ix = build(n);
        let table = AddressLookupTableAccount {
            key: Pubkey::new_unique(),
            addresses: ix.accounts.iter().rev().take(n).map(|a| a.pubkey).collect(),
        };
        let ixs = [
            set_compute_unit_limit(1_400_000),
            set_compute_unit_price(1),
            ix,
        ];
        let Ok(message) = v0::Message::try_compile(payer, &ixs, &[table], Default::default())
        else {
            return false;
        };
        let locks = message.account_keys.len()
            + message
                .address_table_lookups
                .iter()
                .map(|l| l.writable_indexes.len() + l.readonly_indexes.len())
                .sum::<usize>();
        let signatures = usize::from(message.header.num_required_signatures);
        let Ok(bytes) = bincode::serialize(&VersionedMessage::V0(message)) else {
            return false;
        };
        // The signatures (a short-vec length, then 64 bytes each) and the message.
        let size = 1 + 64 * signatures + bytes.len();
        size <= PACKET_DATA_SIZE && locks <= MAX_TX_ACCOUNT_LOCKS
    };
    (1..=max).take_while(|n| fits(*n)).last().unwrap_or(0)
}

/// The keeper's tables as read from the chain: (table, its addresses, room left).
fn load_own(rpc: &RpcClient, authority: &Pubkey) -> Result<Vec<(Pubkey, Vec<Pubkey>)>> {
    let accounts = rpc
        .get_program_ui_accounts_with_config(
            &solana_address_lookup_table_interface::program::id(),
            RpcProgramAccountsConfig {
                filters: Some(vec![RpcFilterType::Memcmp(Memcmp::new_base58_encoded(
                    AUTHORITY_OFFSET,
                    authority.as_ref(),
                ))]),
                account_config: RpcAccountInfoConfig {
                    encoding: Some(solana_rpc_client_api::response::UiAccountEncoding::Base64),
                    // Rooted state only: what is published must be usable at once (the
                    // leader resolves tables against its root bank).
                    commitment: Some(CommitmentConfig::finalized()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .context("getProgramAccounts on the lookup-table program")?;
    let mut out = vec![];
    for (key, acct) in accounts {
        let Some(data) = acct.data.decode() else {
            continue;
        };
        let Ok(table) = AddressLookupTable::deserialize(&data) else {
            continue;
        };
        if table.meta.authority != Some(*authority) || table.meta.deactivation_slot != u64::MAX {
            continue;
        }
        out.push((key, table.addresses.to_vec()));
    }
    out.sort_by_key(|(_, a)| std::cmp::Reverse(a.len()));
    Ok(out)
}

/// Keeps `index` covering `wanted` until `stop`. Failures are logged and retried with
/// backoff; the keeper batches legacy transactions meanwhile.
pub fn spawn(
    url: String,
    payer: Keypair,
    wanted: Arc<Mutex<Vec<Pubkey>>>,
    index: Arc<RwLock<Index>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lookup-tables".into())
        .spawn(move || {
            let rpc = RpcClient::new_with_timeout_and_commitment(
                url,
                Duration::from_secs(15),
                CommitmentConfig::confirmed(),
            );
            let mut m = Maintainer {
                rpc,
                payer,
                tables: vec![],
                loaded: false,
            };
            let mut backoff = Duration::from_secs(1);
            while !stop.load(Ordering::Relaxed) {
                let want: Vec<Pubkey> = wanted.lock().unwrap().clone();
                match m.step(&want, &index) {
                    Ok(true) => backoff = Duration::from_secs(1),
                    Ok(false) => {
                        backoff = Duration::from_secs(1);
                        std::thread::sleep(Duration::from_secs(2));
                    }
                    Err(e) => {
                        // Re-read the tables from the chain before the next attempt.
                        m.loaded = false;
                        warn!(error = %format!("{e:#}"), retry_in = ?backoff, "lookup table maintenance failed; batches stay legacy-sized until it succeeds");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        })
}

struct Maintainer {
    rpc: RpcClient,
    payer: Keypair,
    /// (table, addresses it holds on chain).
    tables: Vec<(Pubkey, Vec<Pubkey>)>,
    loaded: bool,
}

impl Maintainer {
    /// One unit of work; `Ok(true)` when it did something (call again at once).
    fn step(&mut self, wanted: &[Pubkey], index: &RwLock<Index>) -> Result<bool> {
        if !self.loaded {
            self.tables = load_own(&self.rpc, &self.payer.pubkey())?;
            let mut ix = index.write().unwrap();
            for (t, a) in &self.tables {
                ix.publish(*t, a);
            }
            if !self.tables.is_empty() {
                info!(
                    tables = self.tables.len(),
                    addresses = ix.len(),
                    "reusing this keeper's address lookup tables"
                );
            }
            self.loaded = true;
            return Ok(true);
        }
        let held: HashSet<&Pubkey> = self.tables.iter().flat_map(|(_, a)| a).collect();
        let missing: Vec<Pubkey> = wanted
            .iter()
            .filter(|k| !held.contains(k))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(false);
        }
        let table = match self
            .tables
            .iter()
            .position(|(_, a)| a.len() < LOOKUP_TABLE_MAX_ADDRESSES)
        {
            Some(i) => i,
            None => {
                // A table's address derives from a recent slot, which must be in the
                // SlotHashes of the bank that runs the creation: a finalized slot always
                // is (a confirmed one may be that very bank's).
                let slot = self
                    .rpc
                    .get_slot_with_commitment(CommitmentConfig::finalized())
                    .context("getSlot")?;
                let (create, table) =
                    alt::create_lookup_table(self.payer.pubkey(), self.payer.pubkey(), slot);
                self.send(&[create]).context("creating a lookup table")?;
                info!(%table, "created an address lookup table for tally and clawback batches");
                self.tables.push((table, vec![]));
                self.tables.len() - 1
            }
        };
        // Fill this table (every extension confirmed in turn), then wait once for the
        // root to pass the last one.
        let address = self.tables[table].0;
        let room = LOOKUP_TABLE_MAX_ADDRESSES - self.tables[table].1.len();
        let mut landed = 0;
        for chunk in missing[..missing.len().min(room)].chunks(EXTEND_CHUNK) {
            let extend = alt::extend_lookup_table(
                address,
                self.payer.pubkey(),
                Some(self.payer.pubkey()),
                chunk.to_vec(),
            );
            landed = self.send(&[extend]).context("extending a lookup table")?;
        }
        // Usable once the extension is rooted: the runtime accepts a lookup in any later
        // slot, but the leader's scheduler resolves a v0 transaction's tables against its
        // root bank and drops one it cannot resolve (agave 4.2.2, solana-core
        // banking_stage/transaction_scheduler/receive_and_buffer.rs); the RPC node re-sends
        // it until the root catches up — 30 s per batch here when addresses were only
        // confirmed. The root trails the tip by ~32 slots.
        let start = Instant::now();
        while self
            .rpc
            .get_slot_with_commitment(CommitmentConfig::finalized())
            .context("getSlot")?
            <= landed
        {
            if start.elapsed() > Duration::from_secs(120) {
                return Err(anyhow!("slot {landed} was not rooted within 120 s"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        // Publish what the chain holds, not what we asked for: the positions must match.
        let data = self
            .rpc
            .get_account_with_commitment(&address, CommitmentConfig::finalized())
            .context("reading the lookup table back")?
            .value
            .ok_or_else(|| anyhow!("lookup table {address} is not rooted yet"))?
            .data;
        let on_chain = AddressLookupTable::deserialize(&data)
            .map_err(|e| anyhow!("lookup table {address}: {e}"))?
            .addresses
            .to_vec();
        index.write().unwrap().publish(address, &on_chain);
        self.tables[table].1 = on_chain;
        Ok(true)
    }

    /// Sends and confirms; returns the slot it landed in.
    fn send(&self, ixs: &[anchor_lang::solana_program::instruction::Instruction]) -> Result<u64> {
        let blockhash = self.rpc.get_latest_blockhash()?;
        let tx = Transaction::new_signed_with_payer(
            ixs,
            Some(&self.payer.pubkey()),
            &[&self.payer],
            blockhash,
        );
        let sig = self.rpc.send_and_confirm_transaction(&tx)?;
        let status = self
            .rpc
            .get_signature_statuses(&[sig])?
            .value
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| anyhow!("{sig} confirmed but has no status"))?;
        Ok(status.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_doubles_the_tally_batch_and_the_lock_limit_caps_it() {
        use backstop::constants::{MAX_CLAWBACK_BATCH, MAX_TALLY_BATCH};
        let payer = Pubkey::new_unique();
        let ex = Pubkey::new_unique();
        let keys = backstop_client::ix::ExchangeKeys::of(ex);
        let fake: Vec<Pubkey> = (0..64).map(|_| Pubkey::new_unique()).collect();
        let tally = |n: usize| backstop_client::ix::tally(&ex, &fake[..n]);
        let legacy = backstop_client::batch::max_batch(&payer, 64, tally);
        // Without the program's own cap the lock limit binds: 64 minus the payer, the
        // exchange, the program and the compute-budget program.
        assert_eq!(max_batch_v0(&payer, 64, tally), 60);
        assert_eq!(max_batch_v0(&payer, MAX_TALLY_BATCH.into(), tally), 60);
        assert!(legacy < 30, "legacy tally batch {legacy}");
        let clawback = |n: usize| backstop_client::ix::clawback(&keys, &fake[..n]);
        assert_eq!(
            max_batch_v0(&payer, MAX_CLAWBACK_BATCH.into(), clawback),
            usize::from(MAX_CLAWBACK_BATCH),
            "the log budget, not the packet, bounds a clawback batch with a table"
        );
    }

    #[test]
    fn extend_fits_a_legacy_transaction() {
        let payer = Pubkey::new_unique();
        let ix = alt::extend_lookup_table(
            Pubkey::new_unique(),
            payer,
            Some(payer),
            (0..EXTEND_CHUNK).map(|_| Pubkey::new_unique()).collect(),
        );
        let size = backstop_client::batch::legacy_tx_size(&payer, &[ix]);
        assert!(size <= backstop_client::batch::PACKET_DATA_SIZE, "{size}");
    }

    #[test]
    fn the_index_names_each_address_once_and_finds_its_tables() {
        let (t1, t2) = (Pubkey::new_unique(), Pubkey::new_unique());
        let a: Vec<Pubkey> = (0..5).map(|_| Pubkey::new_unique()).collect();
        let mut ix = Index::default();
        ix.publish(t1, &a[..2]);
        ix.publish(t1, &a[..3]);
        // A lagging (shorter) read never shrinks a published table.
        ix.publish(t1, &a[..1]);
        ix.publish(t2, &a[2..]);
        assert_eq!(ix.len(), 5);
        assert_eq!(ix.table_of(&a[2]), Some(0), "the first table keeps it");
        assert_eq!(ix.table_of(&a[4]), Some(1));
        let tables = ix.tables_for(&[a[0], a[4], Pubkey::new_unique()]);
        assert_eq!(
            tables.iter().map(|t| t.key).collect::<Vec<_>>(),
            vec![t1, t2]
        );
        // Each table mirrors the chain's list, positions included.
        assert_eq!(tables[0].addresses, a[..3].to_vec());
        assert_eq!(tables[1].addresses, a[2..].to_vec());
    }
}
