//! The decision loop: snapshot, live updates, periodic resync, decisions on every change,
//! a pool of sending threads with in-flight dedupe and per-account failure backoff.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use anyhow::{Context, Result};
use backstop::constants::{MAX_CLAWBACK_BATCH, MAX_TALLY_BATCH};
use backstop::state::{Exchange, MarginAccount, PerpMarket};
use backstop_client::batch::max_batch;
use backstop_client::rpc::{load_exchange, margin_accounts_streamed};
use backstop_client::view::decode_oracle;
use backstop_client::{decode, ix, pda};
use crossbeam_channel::{Receiver, Sender as ChanSender};
use solana_sdk::signer::Signer;
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::config::Settings;
use crate::exec::{Outcome, Sender, Sent, Status, Submitted, ATTEMPTS};
use crate::feed::{self, Update};
use crate::lut;
use crate::metrics::Metrics;
use crate::plan::{self, Action, BatchSize, Book, Limits, Skip};
use crate::screen::HealthPass;
use solana_sdk::signature::Signature;

/// What a transaction holds while it is in flight, and what a failure backs off: at most
/// one transaction at a time per lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lock {
    /// A margin account (liquidation, bankruptcy, a tally or clawback batch member).
    Account(Pubkey),
    /// The exchange's round steps (`begin_clawback`, `finalize_tally`).
    Epoch,
}

impl std::fmt::Display for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Lock::Account(k) => write!(f, "account {k}"),
            Lock::Epoch => f.write_str("epoch"),
        }
    }
}

/// One transaction for a sending thread: the action, its in-flight locks, its
/// instructions, the lookup tables to compile it with, when its price was seen, and how
/// many times it was sent before.
pub struct Job {
    action: Action,
    keys: Vec<Lock>,
    ixs: Vec<anchor_lang::solana_program::instruction::Instruction>,
    tables: Vec<solana_sdk::message::AddressLookupTableAccount>,
    price_seen: Option<(Instant, u64)>,
    /// Times it was signed before (a new signature only once the last one's blockhash
    /// expired unseen).
    attempt: u32,
    /// A previous send ran out of compute: ask for the whole `--compute-unit-limit`.
    full_budget: bool,
}

/// A sent transaction the confirmer watches: every signature of the job so far.
struct Pending {
    job: Job,
    sent: Vec<Sent>,
}

/// Messages into the decision loop.
pub enum Msg {
    Feed(Update),
    Done {
        action: Action,
        keys: Vec<Lock>,
        outcome: Outcome,
        price_seen: Option<(Instant, u64)>,
    },
}

impl Msg {
    fn done(job: Job, outcome: Outcome) -> Msg {
        Msg::Done {
            action: job.action,
            keys: job.keys,
            outcome,
            price_seen: job.price_seen,
        }
    }
}

pub struct Keeper {
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub sender: Arc<Sender>,
    pub book: Book,
    /// Cluster unix time minus local unix time: from the processed clock sysvar over the
    /// websocket, or the last snapshot while that is not flowing.
    clock_offset: i64,
    /// When the websocket last delivered the clock sysvar.
    clock_seen: Option<Instant>,
    /// The incremental health pass over the book.
    pass: HealthPass,
    /// Liquidations sent and not yet ended, by liquidatee: the takeover each will make.
    /// Planning counts them as done (the keeper's margin and --max-position room), and
    /// liquidations list their markets.
    takeovers: HashMap<Pubkey, (plan::Takeover, u64)>,
    /// Members of a tally or clawback batch that failed: sent alone until each succeeds,
    /// so one bad account cannot hold back its batch.
    suspect: HashSet<Pubkey>,
    /// The takeovers `decide` planned, until the dispatch sends (or drops) them.
    planned: HashMap<Pubkey, (plan::Takeover, u64)>,
    in_flight: HashSet<Lock>,
    /// Jobs handed to the senders and not yet ended (sent and unconfirmed included).
    outstanding: usize,
    backoff: Backoff,
    /// Per market: when (and in which slot) the last oracle change was seen.
    price_seen: HashMap<u16, (Instant, u64)>,
    skip_logged: HashMap<Pubkey, Instant>,
    tally_batch: BatchSize,
    clawback_batch: BatchSize,
    watch: Arc<Mutex<Vec<Pubkey>>>,
    /// The keeper's address lookup tables (usable entries only), kept by [`lut::spawn`].
    tables: Arc<RwLock<lut::Index>>,
    /// The margin accounts the tables should hold (set at each resync).
    table_wanted: Arc<Mutex<Vec<Pubkey>>>,
    /// The slot each account in the book was last written from (websocket notification,
    /// snapshot or refresh context). A write from an older slot is dropped: a long
    /// resync or a backlog of queued notifications never puts older state over newer.
    written: HashMap<Pubkey, u64>,
}

fn local_unix() -> i64 {
    crate::metrics::unix_ms() / 1_000
}

/// Takes a full snapshot: the exchange, markets, oracles, the clock and every margin
/// account (for `status`; the running keeper merges its resyncs into its book instead,
/// [`Keeper::resync`]).
pub fn snapshot(
    rpc: &solana_rpc_client::rpc_client::RpcClient,
    exchange: &Pubkey,
) -> Result<(Book, i64)> {
    let ex = load_exchange(rpc, exchange)?;
    let mut accounts = HashMap::new();
    margin_accounts_streamed(&rpc.url(), rpc.commitment(), exchange, |k, a, _| {
        accounts.insert(k, a);
    })
    .context("getProgramAccounts")?;
    let book = Book {
        exchange_address: *exchange,
        exchange: Some(ex.exchange),
        markets: ex.markets,
        accounts,
    };
    Ok((book, ex.now))
}

impl Keeper {
    pub fn new(settings: Settings, metrics: Arc<Metrics>, sender: Arc<Sender>) -> Self {
        Keeper {
            book: Book {
                exchange_address: settings.exchange,
                ..Default::default()
            },
            settings,
            metrics,
            sender,
            clock_offset: 0,
            clock_seen: None,
            pass: HealthPass::new(),
            takeovers: HashMap::new(),
            suspect: HashSet::new(),
            planned: HashMap::new(),
            in_flight: HashSet::new(),
            outstanding: 0,
            backoff: Backoff::default(),
            price_seen: HashMap::new(),
            skip_logged: HashMap::new(),
            tally_batch: BatchSize {
                legacy: 1,
                with_table: 1,
            },
            clawback_batch: BatchSize {
                legacy: 1,
                with_table: 1,
            },
            watch: Arc::new(Mutex::new(vec![])),
            tables: Arc::new(RwLock::new(lut::Index::default())),
            table_wanted: Arc::new(Mutex::new(vec![])),
            written: HashMap::new(),
        }
    }

    /// Whether a write of `key` read at `slot` is at least as new as what the book holds
    /// (and records it as the newest if so). Slot 0 means "unknown": always accepted,
    /// recorded as nothing.
    fn newer(&mut self, key: &Pubkey, slot: u64) -> bool {
        if slot == 0 {
            return true;
        }
        let held = self.written.get(key).copied().unwrap_or(0);
        if slot < held {
            self.metrics.stale_writes.inc();
            return false;
        }
        if slot > 0 {
            self.written.insert(*key, slot);
        }
        true
    }

    /// Puts a snapshot's exchange, markets and oracles into the book, each unless the book
    /// already holds a newer write (a notification that arrived while it was read);
    /// returns the cluster time it was read at.
    fn install_exchange(&mut self, ex: &backstop_client::rpc::ExchangeSnapshot) -> i64 {
        let slot_of = |k: &Pubkey| {
            ex.read_at
                .iter()
                .find(|(x, _)| x == k)
                .map_or(0, |(_, s)| *s)
        };
        let ex_key = ex.address;
        if self.newer(&ex_key, slot_of(&ex_key)) {
            self.book.exchange = Some(ex.exchange.clone());
        }
        let mut markets = ex.markets.clone();
        for m in &mut markets {
            let old = self
                .book
                .markets
                .iter()
                .find(|o| o.market.index == m.market.index)
                .cloned();
            if !self.newer(&m.address, slot_of(&m.address)) {
                if let Some(o) = &old {
                    m.market = o.market.clone();
                }
            }
            if !self.newer(&m.market.oracle, slot_of(&m.market.oracle)) {
                if let Some(o) = &old {
                    m.oracle = o.oracle.clone();
                }
            }
        }
        self.book.markets = markets;
        ex.now
    }

    /// A snapshot's margin accounts read at `slot`, all at once (the resync streams them
    /// through the same [`Keeper::merge_account`] and [`Keeper::drop_unseen`]): each
    /// replaces the book's unless the book's is newer; an account the snapshot does not
    /// have is dropped unless it was written after `slot` (created since).
    pub fn install_accounts(&mut self, accounts: HashMap<Pubkey, MarginAccount>, slot: u64) {
        let seen: HashSet<Pubkey> = accounts.keys().copied().collect();
        for (k, a) in accounts {
            self.merge_account(k, a, slot);
        }
        self.drop_unseen(&seen, slot);
    }

    /// One account of a snapshot read at `slot`: it replaces the book's unless the book's
    /// is newer.
    fn merge_account(&mut self, key: Pubkey, a: MarginAccount, slot: u64) {
        if self.newer(&key, slot) {
            self.put_account(key, a);
        }
    }

    /// After a full snapshot read at `slot` that had exactly the accounts `seen`: an
    /// account it did not have is dropped unless it was written after `slot` (created
    /// since). The removal is recorded at `slot`: a notification from before the close,
    /// still queued, cannot bring the account back. The health pass then rebuilds.
    fn drop_unseen(&mut self, seen: &HashSet<Pubkey>, slot: u64) {
        let gone: Vec<Pubkey> = self
            .book
            .accounts
            .keys()
            .filter(|k| !seen.contains(k))
            .copied()
            .collect();
        for k in gone {
            if self.newer(&k, slot) {
                self.drop_account(&k);
            }
        }
        self.pass.reset();
    }

    pub fn now(&self) -> i64 {
        local_unix() + self.clock_offset
    }

    /// Every write of a margin account into the book goes through here or
    /// [`Keeper::drop_account`], so the health pass re-screens it.
    fn put_account(&mut self, key: Pubkey, a: MarginAccount) {
        self.pass.touch(key);
        self.book.accounts.insert(key, a);
    }

    fn drop_account(&mut self, key: &Pubkey) {
        self.pass.touch(*key);
        self.book.accounts.remove(key);
    }

    fn keeper_account(&self) -> Pubkey {
        pda::margin_account(&self.settings.exchange, &self.sender.payer.pubkey())
    }

    /// Reads a full snapshot into the book: the exchange, markets and oracles, then every
    /// margin account merged as the `getProgramAccounts` response streams in (at the
    /// response's context slot), so a resync never holds a second copy of the book. An
    /// account the node sends before its context slot (agave sends the context first)
    /// waits for it. Returns the snapshot's cluster time.
    fn stream_snapshot(&mut self) -> Result<i64> {
        let rpc = &self.sender.rpc;
        // A lower bound for the snapshot's slot, should the node not give its context.
        let floor = rpc.get_slot().unwrap_or(0);
        let ex = load_exchange(rpc, &self.settings.exchange)?;
        let (url, commitment, exchange) = (rpc.url(), rpc.commitment(), self.settings.exchange);
        let now = self.install_exchange(&ex);
        // Every account may change: the health pass rebuilds (and tracks nothing meanwhile).
        self.pass.reset();
        let mut seen: HashSet<Pubkey> = HashSet::with_capacity(self.book.accounts.len());
        let mut early = vec![];
        let read = margin_accounts_streamed(&url, commitment, &exchange, |k, a, slot| {
            seen.insert(k);
            if slot > 0 {
                self.merge_account(k, a, slot);
            } else {
                early.push((k, a));
            }
        })
        .context("getProgramAccounts")?;
        let slot = if read.slot > 0 { read.slot } else { floor };
        for (k, a) in early {
            self.merge_account(k, a, slot);
        }
        self.drop_unseen(&seen, slot);
        Ok(now)
    }

    /// Full resync; reconciles the cached book with the chain.
    pub fn resync(&mut self) -> Result<()> {
        let old: Vec<(u16, _)> = self
            .book
            .markets
            .iter()
            .map(|m| (m.market.index, m.oracle.clone()))
            .collect();
        let before = self.book.accounts.len();
        let now = self.stream_snapshot()?;
        for m in &self.book.markets {
            let was = old
                .iter()
                .find(|(i, _)| *i == m.market.index)
                .map(|(_, o)| o);
            if was != Some(&m.oracle) {
                self.price_seen.insert(m.market.index, (Instant::now(), 0));
            }
        }
        // The snapshot's clock is the confirmed one, a little behind the banks transactions
        // execute in; the websocket's processed clock is better while it flows.
        if self
            .clock_seen
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
        {
            self.clock_offset = now - local_unix();
        }
        self.metrics.resyncs.inc();
        self.metrics.fresh_data();
        self.metrics.accounts.set(self.book.accounts.len() as i64);
        let mut watch = vec![self.settings.exchange];
        watch.extend(self.book.markets.iter().map(|m| m.market.oracle));
        watch.extend(self.book.markets.iter().map(|m| m.address));
        *self.watch.lock().unwrap() = watch;
        self.size_batches();
        // The accounts a profit round tallies (open positions or positive pnl) first: with
        // many idle accounts, those are the ones a round batch needs in a table.
        let mut wanted: Vec<(bool, Pubkey)> = self
            .book
            .accounts
            .iter()
            .map(|(k, a)| (!a.standing().profit_capable, *k))
            .collect();
        wanted.sort_unstable();
        *self.table_wanted.lock().unwrap() = wanted.into_iter().map(|(_, k)| k).collect();
        debug!(accounts = self.book.accounts.len(), before, "resynced");
        Ok(())
    }

    /// The largest tally / clawback batches that fit one transaction with the keeper's
    /// compute-budget instructions: legacy, and v0 with the accounts in one lookup table.
    fn size_batches(&mut self) {
        let payer = self.sender.payer.pubkey();
        let ex = self.settings.exchange;
        let keys = ix::ExchangeKeys::of(ex);
        let fake: Vec<Pubkey> = (0..64).map(|_| Pubkey::new_unique()).collect();
        let tally = |n: usize| ix::tally(&ex, &fake[..n]);
        let clawback = |n: usize| ix::clawback(&keys, &fake[..n]);
        self.tally_batch = BatchSize {
            legacy: max_batch(&payer, MAX_TALLY_BATCH.into(), tally).max(1),
            with_table: lut::max_batch_v0(&payer, MAX_TALLY_BATCH.into(), tally).max(1),
        };
        self.clawback_batch = BatchSize {
            legacy: max_batch(&payer, MAX_CLAWBACK_BATCH.into(), clawback).max(1),
            with_table: lut::max_batch_v0(&payer, MAX_CLAWBACK_BATCH.into(), clawback).max(1),
        };
    }

    /// Applies one account update from the websocket or a post-send refresh. Returns
    /// whether the book changed in a way that calls for a decision (clock ticks do not:
    /// the once-a-second decision covers what time alone makes due).
    pub fn apply(
        &mut self,
        key: Pubkey,
        owner: Pubkey,
        data: &[u8],
        slot: u64,
        seen: Instant,
    ) -> bool {
        if key == solana_sdk_ids::sysvar::clock::ID {
            // Clock (bincode): slot, epoch_start_timestamp, epoch, leader_schedule_epoch,
            // unix_timestamp — the last at bytes 32..40.
            if let Some(ts) = data.get(32..40) {
                let ts = i64::from_le_bytes(ts.try_into().expect("8 bytes"));
                self.clock_offset = ts - local_unix();
                self.clock_seen = Some(seen);
            }
            return false;
        }
        if !self.newer(&key, slot) {
            return false;
        }
        if key == self.settings.exchange {
            if let Ok(e) = decode::exchange(data) {
                self.book.exchange = Some(e);
            }
            return true;
        }
        if let Some(i) = self
            .book
            .markets
            .iter()
            .position(|m| m.market.oracle == key)
        {
            let m = &mut self.book.markets[i];
            let decoded = decode_oracle(&m.market, &owner, data);
            if decoded != m.oracle {
                m.oracle = decoded;
                self.price_seen.insert(m.market.index, (seen, slot));
            }
            return true;
        }
        if let Some(i) = self.book.markets.iter().position(|m| m.address == key) {
            if let Ok(pm) = decode::market(data) {
                let pm: PerpMarket = pm;
                self.book.markets[i].market = pm;
            }
            return true;
        }
        if owner == backstop::ID {
            match decode::margin_account(data) {
                Ok(a) if a.exchange == self.settings.exchange => {
                    self.put_account(key, a);
                }
                _ => {
                    // Closed (zero data) or not a margin account of this exchange.
                    if data.is_empty() {
                        self.drop_account(&key);
                    }
                }
            }
            self.metrics.accounts.set(self.book.accounts.len() as i64);
        } else if data.is_empty() {
            self.drop_account(&key);
        }
        true
    }

    /// Re-reads accounts a confirmed or failed action touched, and the exchange.
    fn refresh(&mut self, accounts: &[Pubkey]) {
        let mut keys = vec![self.settings.exchange, self.keeper_account()];
        keys.extend_from_slice(accounts);
        for chunk in keys.chunks(100) {
            let commitment = self.sender.rpc.commitment();
            match self
                .sender
                .rpc
                .get_multiple_accounts_with_commitment(chunk, commitment)
            {
                Ok(found) => {
                    let slot = found.context.slot;
                    for (k, a) in chunk.iter().zip(found.value) {
                        match a {
                            Some(a) => {
                                self.apply(*k, a.owner, &a.data, slot, Instant::now());
                            }
                            None => {
                                if self.newer(k, slot) {
                                    self.drop_account(k);
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    self.metrics.error("rpc");
                    warn!(error = %e, "refreshing accounts after a send failed; the next resync will catch up");
                }
            }
        }
    }

    /// Re-reads the accounts of a confirmed clawback and counts the charges from their
    /// receipts (charged in the current round, amount > 0). The websocket may have
    /// delivered the new state already, so receipts, not before/after diffs, are counted.
    fn count_charges(&mut self, accounts: &[Pubkey]) {
        self.refresh(accounts);
        let round = self.book.exchange.as_ref().map_or(0, |e| e.epoch.round_seq);
        let (mut n, mut atoms) = (0u64, 0u64);
        for k in accounts {
            if let Some(a) = self.book.accounts.get(k) {
                if a.clawback.applied_round == round && a.clawback.last_amount > 0 {
                    n += 1;
                    atoms += a.clawback.last_amount;
                }
            }
        }
        self.metrics.clawback_charges.inc_by(n);
        self.metrics.clawback_charged_atoms.inc_by(atoms);
        info!(
            charged_accounts = n,
            charged_atoms = atoms,
            "clawback charges recorded"
        );
    }

    fn blocked(&self, keys: &[Lock]) -> bool {
        let now = Instant::now();
        keys.iter()
            .any(|k| self.in_flight.contains(k) || self.backoff.blocked(k, now))
    }

    /// Everything due now, in priority order: liquidations (worst first), bankruptcies,
    /// then the next epoch step.
    pub fn decide(&mut self) -> Vec<(Action, Vec<Lock>)> {
        self.planned.clear();
        let now = self.now();
        let t = Instant::now();
        // Health as the program values it now (a stale or uncertain market conservatively);
        // a liquidation's own market must still be fresh when it lands, a little after
        // now, which the send path checks (`oracle_margin_secs`).
        let (cache, _) = self.book.prices(now);
        let risks = self.pass.assess(&self.book, &cache);
        self.metrics
            .health_recompute_micros
            .set(t.elapsed().as_micros() as i64);
        let liquidatable = risks
            .iter()
            .filter(|r| r.health.is_liquidatable().unwrap_or(false))
            .count();
        self.metrics.liquidatable.set(liquidatable as i64);
        if let Some(e) = &self.book.exchange {
            self.metrics
                .deficit
                .set(i64::try_from(e.books.deficit).unwrap_or(i64::MAX));
        }
        let me = self.keeper_account();
        let keeper = self.book.accounts.get(&me).map(|a| (&me, a));
        let limits = Limits {
            max_position_base: self.settings.max_position,
        };
        let in_flight: Vec<(plan::Takeover, u64)> = self.takeovers.values().copied().collect();
        // Accounts with a transaction in flight are not planned again (their takeover is
        // already counted in `in_flight`).
        let open: Vec<plan::Risk> = risks
            .iter()
            .filter(|r| !self.in_flight.contains(&Lock::Account(r.account)))
            .copied()
            .collect();
        let (liqs, skips) =
            plan::liquidations_after(&self.book, &cache, &open, keeper, &limits, &in_flight);
        for s in skips {
            if let Skip::KeeperMarginTooSmall {
                account,
                market_index,
            } = s
            {
                let recently = self
                    .skip_logged
                    .get(&account)
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(30));
                if !recently {
                    self.metrics.skipped_keeper_margin.inc();
                    warn!(
                        %account,
                        market_index,
                        keeper_account = %me,
                        "account is liquidatable but the keeper's margin account cannot take any of the position while staying above initial margin; deposit more into the keeper's account (or raise --max-position)"
                    );
                    self.skip_logged.insert(account, Instant::now());
                }
            }
        }
        let mut out: Vec<(Action, Vec<Lock>)> = vec![];
        for (a, planned) in liqs {
            if let Action::Liquidate { account, .. } = &a {
                self.planned.insert(*account, planned);
                out.push((a.clone(), vec![Lock::Account(*account)]));
            }
        }
        for a in plan::bankruptcies(&risks) {
            if let Action::ResolveBankruptcy { account } = &a {
                let keys = vec![Lock::Account(*account)];
                out.push((a, keys));
            }
        }
        let busy: HashSet<Pubkey> = self
            .in_flight
            .iter()
            .filter_map(|k| match k {
                Lock::Account(a) => Some(*a),
                Lock::Epoch => None,
            })
            .collect();
        let tables = self.tables.read().unwrap();
        self.metrics.lookup_table_addresses.set(tables.len() as i64);
        let table_of = |k: &Pubkey| tables.table_of(k);
        let batching = plan::Batching {
            tally: self.tally_batch,
            clawback: self.clawback_batch,
            table_of: &table_of,
        };
        let steps = plan::epoch_step_with(&self.book, now, &batching);
        drop(tables);
        let t_now = Instant::now();
        // A batch leaves out members that are busy or backing off; suspects (members of a
        // batch that failed) go alone, so the failing one backs off by itself.
        let split = |accounts: Vec<Pubkey>,
                     make: fn(Vec<Pubkey>) -> Action,
                     out: &mut Vec<(Action, Vec<Lock>)>| {
            let free: Vec<Pubkey> = accounts
                .into_iter()
                .filter(|k| !busy.contains(k) && !self.backoff.blocked(&Lock::Account(*k), t_now))
                .collect();
            let (alone, rest): (Vec<Pubkey>, Vec<Pubkey>) =
                free.into_iter().partition(|k| self.suspect.contains(k));
            for k in alone {
                out.push((make(vec![k]), vec![Lock::Account(k)]));
            }
            if !rest.is_empty() {
                let keys = rest.iter().map(|k| Lock::Account(*k)).collect();
                out.push((make(rest), keys));
            }
        };
        for a in steps {
            match a {
                Action::Tally { accounts } => {
                    split(accounts, |accounts| Action::Tally { accounts }, &mut out)
                }
                Action::Clawback { accounts } => {
                    split(accounts, |accounts| Action::Clawback { accounts }, &mut out)
                }
                other => {
                    // Round steps wait for every account operation of the round.
                    let any_round_work = !busy.is_empty();
                    if !any_round_work || matches!(other, Action::BeginClawback) {
                        out.push((other, vec![Lock::Epoch]));
                    }
                }
            }
        }
        out.retain(|(_, keys)| !self.blocked(keys));
        out
    }

    fn record(
        &mut self,
        action: &Action,
        keys: &[Lock],
        outcome: &Outcome,
        price_seen: Option<(Instant, u64)>,
    ) {
        for k in keys {
            self.in_flight.remove(k);
        }
        if let Action::Liquidate { account, .. } = action {
            self.takeovers.remove(account);
        }
        if let Action::Tally { accounts } | Action::Clawback { accounts } = action {
            match outcome {
                Outcome::Confirmed { .. } => {
                    for k in accounts {
                        self.suspect.remove(k);
                    }
                }
                Outcome::Failed { .. } if accounts.len() > 1 => {
                    self.suspect.extend(accounts.iter().copied());
                }
                _ => {}
            }
        }
        self.outstanding = self.outstanding.saturating_sub(1);
        self.metrics.in_flight.set(self.outstanding as i64);
        match outcome {
            Outcome::Confirmed {
                signature,
                slot,
                compute_units,
            } => {
                self.backoff.succeed(keys);
                self.metrics.transactions.inc();
                match action {
                    Action::Liquidate {
                        account,
                        market_index,
                        ..
                    } => {
                        self.metrics.liquidations.inc();
                        let (ms, slots) = price_seen
                            .map(|(t, s)| {
                                let secs = t.elapsed().as_secs_f64();
                                self.metrics.latency.observe(secs);
                                (
                                    (secs * 1e3) as u64,
                                    if s > 0 { slot.saturating_sub(s) } else { 0 },
                                )
                            })
                            .unwrap_or((0, 0));
                        info!(%account, market_index, %signature, slot, latency_ms = ms, latency_slots = slots, compute_units, "liquidated");
                    }
                    Action::ResolveBankruptcy { account } => {
                        self.metrics.bankruptcies.inc();
                        info!(%account, %signature, "bankruptcy resolved");
                    }
                    Action::BeginClawback => {
                        self.metrics.rounds_begun.inc();
                        info!(%signature, "clawback round begun");
                    }
                    Action::Tally { accounts } => {
                        self.metrics.tallies.inc();
                        self.metrics.tallied_accounts.inc_by(accounts.len() as u64);
                        info!(accounts = accounts.len(), %signature, "tallied");
                    }
                    Action::FinalizeTally => info!(%signature, "tally finalized"),
                    Action::Clawback { accounts } => {
                        // Charges are counted from the accounts' receipts after the refresh.
                        info!(accounts = accounts.len(), %signature, "clawback applied");
                    }
                }
            }
            Outcome::BenignRace(name) => {
                self.metrics.benign_races.inc();
                info!(action = action.kind(), error = %name, "already done by someone else (benign race)");
            }
            Outcome::DryRun => info!(action = ?action, "dry run: would send"),
            Outcome::Failed { kind, message } => {
                self.metrics.error(kind.label());
                let now = Instant::now();
                self.backoff.prune(now);
                let delay = self.backoff.fail(keys, kind, now);
                error!(
                    action = action.kind(),
                    kind = kind.label(),
                    error = %message,
                    backoff_ms = delay.as_millis() as u64,
                    "transaction failed; backing off what it locked"
                );
            }
        }
    }

    /// Runs until `stop`: the decision loop with `settings.workers` sending threads.
    pub fn run(mut self, stop: Arc<AtomicBool>) -> Result<()> {
        let (tx, rx): (ChanSender<Msg>, Receiver<Msg>) = crossbeam_channel::unbounded();
        // First snapshot, retried until it succeeds (the exchange may not exist yet).
        let mut backoff = Duration::from_millis(500);
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match self.resync() {
                Ok(()) => break,
                Err(e) => {
                    self.metrics.error("rpc");
                    warn!(error = %format!("{e:#}"), "initial snapshot failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        self.metrics.ready.store(true, Ordering::Relaxed);
        info!(
            exchange = %self.settings.exchange,
            accounts = self.book.accounts.len(),
            markets = self.book.markets.len(),
            keeper = %self.sender.payer.pubkey(),
            tally_batch = self.tally_batch.legacy,
            tally_batch_with_table = self.tally_batch.with_table,
            clawback_batch = self.clawback_batch.legacy,
            clawback_batch_with_table = self.clawback_batch.with_table,
            lookup_tables = self.settings.lookup_tables,
            dry_run = self.settings.dry_run,
            "snapshot loaded; watching"
        );
        if self.settings.lookup_tables && !self.settings.dry_run {
            lut::spawn(
                self.settings.url.clone(),
                self.sender.payer.insecure_clone(),
                self.table_wanted.clone(),
                self.tables.clone(),
                stop.clone(),
            )?;
        }
        let (ftx, frx) = crossbeam_channel::unbounded::<Update>();
        feed::spawn(
            self.settings.ws_url.clone(),
            self.settings.exchange,
            self.watch.clone(),
            ftx,
            stop.clone(),
        );
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for u in frx {
                    if tx.send(Msg::Feed(u)).is_err() {
                        break;
                    }
                }
            });
        }
        if !self.sender.detect_metering() {
            info!("the Backstop program runs unmetered (a native builtin): transactions request the per-action fallback compute limits");
        }
        let (jtx, jrx) = crossbeam_channel::unbounded::<Job>();
        let (ptx, prx) = crossbeam_channel::unbounded::<Pending>();
        // Senders simulate, size, sign and send; they never wait for a confirmation.
        for i in 0..self.settings.workers {
            let jrx = jrx.clone();
            let ptx = ptx.clone();
            let tx = tx.clone();
            let sender = self.sender.clone();
            let metrics = self.metrics.clone();
            std::thread::Builder::new()
                .name(format!("sender-{i}"))
                .spawn(move || {
                    for job in jrx {
                        match sender.submit(
                            &job.ixs,
                            &job.tables,
                            job.action.fallback_units(),
                            job.full_budget,
                        ) {
                            Submitted::Sent(sent) => {
                                metrics.compute_unit_limit.set(sent.compute_units.into());
                                let p = Pending {
                                    job,
                                    sent: vec![sent],
                                };
                                if ptx.send(p).is_err() {
                                    break;
                                }
                            }
                            Submitted::Done(outcome) => {
                                if tx.send(Msg::done(job, outcome)).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                })?;
        }
        drop(ptx);
        // One confirmer for every sent transaction: a getSignatureStatuses call per 256
        // pending every 200 ms. A transaction not seen within --confirm-timeout-secs is
        // broadcast again (same signature) while its blockhash is valid; only once the
        // blockhash has expired unseen is it simulated and signed again, up to ATTEMPTS
        // signatures: two signatures of one action are never live at once.
        {
            let sender = self.sender.clone();
            let tx = tx.clone();
            let jtx = jtx.clone();
            let stop = stop.clone();
            let metrics = self.metrics.clone();
            std::thread::Builder::new()
                .name("confirmer".into())
                .spawn(move || confirm_loop(&sender, &metrics, &prx, &tx, &jtx, &stop))?;
        }
        let mut last_resync = Instant::now();
        let mut last_decide = Instant::now() - Duration::from_secs(10);
        let mut dirty = true;
        while !stop.load(Ordering::Relaxed) {
            let mut msgs = vec![];
            if let Ok(m) = rx.recv_timeout(Duration::from_millis(50)) {
                msgs.push(m);
            }
            msgs.extend(rx.try_iter());
            let mut to_refresh = vec![];
            for m in msgs {
                match m {
                    Msg::Feed(Update::Account {
                        key,
                        owner,
                        data,
                        slot,
                        seen,
                    }) => {
                        self.metrics.fresh_data();
                        dirty |= self.apply(key, owner, &data, slot, seen);
                    }
                    Msg::Feed(Update::Connected) => {
                        info!("websocket subscriptions established; resyncing");
                        last_resync = Instant::now() - self.settings.resync;
                    }
                    Msg::Feed(Update::Disconnected(reason)) => {
                        self.metrics.ws_reconnects.inc();
                        self.metrics.error("websocket");
                        warn!(%reason, "websocket lost; reconnecting (the periodic resync keeps the book current meanwhile)");
                    }
                    Msg::Done {
                        action,
                        keys,
                        outcome,
                        price_seen,
                    } => {
                        self.record(&action, &keys, &outcome, price_seen);
                        let retries = self.sender.retries.load(Ordering::Relaxed);
                        let counted = self.metrics.rpc_retries.get();
                        self.metrics
                            .rpc_retries
                            .inc_by(retries.saturating_sub(counted));
                        if let (Action::Clawback { accounts }, Outcome::Confirmed { .. }) =
                            (&action, &outcome)
                        {
                            self.count_charges(accounts);
                        } else {
                            to_refresh.extend(touched(&action));
                        }
                        dirty = true;
                    }
                }
            }
            if !to_refresh.is_empty() {
                self.refresh(&to_refresh);
            }
            if last_resync.elapsed() >= self.settings.resync {
                last_resync = Instant::now();
                if let Err(e) = self.resync() {
                    self.metrics.error("rpc");
                    warn!(error = %format!("{e:#}"), "resync failed; keeping the cached book and retrying next period");
                }
                dirty = true;
            }
            // Time alone changes what is due (epoch age, cooldowns, oracle staleness).
            if dirty || last_decide.elapsed() >= Duration::from_secs(1) {
                dirty = false;
                last_decide = Instant::now();
                for (action, keys) in self.decide() {
                    // Riskiest first: what does not fit waits for the next pass.
                    if self.outstanding >= self.settings.max_in_flight {
                        debug!(
                            in_flight = self.outstanding,
                            "in-flight limit reached; the rest waits"
                        );
                        break;
                    }
                    // One transaction per lock: an action decided together with another
                    // that holds one of its accounts waits for the next pass.
                    if keys.iter().any(|k| self.in_flight.contains(k)) {
                        continue;
                    }
                    // A liquidation names the markets of the keeper's takeovers in flight:
                    // when it lands, the keeper may hold them.
                    let pending_markets: Vec<u16> = self
                        .takeovers
                        .values()
                        .map(|(t, _)| t.market_index)
                        .collect();
                    let Some(ixs) = self
                        .sender
                        .instructions(&self.book, &action, &pending_markets)
                    else {
                        continue;
                    };
                    let price_seen = match &action {
                        Action::Liquidate { market_index, .. } => {
                            // Re-check freshness right before sending.
                            let m = self.book.market(*market_index);
                            let d = self
                                .book
                                .exchange
                                .as_ref()
                                .map(|e| e.collateral_decimals)
                                .unwrap_or(6);
                            let by = self.now() + self.settings.oracle_margin_secs;
                            if m.is_none_or(|m| m.price(d, by).is_err()) {
                                continue;
                            }
                            self.price_seen.get(market_index).copied()
                        }
                        _ => None,
                    };
                    for k in &keys {
                        self.in_flight.insert(*k);
                    }
                    if let Action::Liquidate { account, .. } = &action {
                        if let Some(t) = self.planned.remove(account) {
                            self.takeovers.insert(*account, t);
                        }
                    }
                    // Round batches name their accounts through the keeper's tables.
                    let tables = match &action {
                        Action::Tally { accounts } | Action::Clawback { accounts } => {
                            self.tables.read().unwrap().tables_for(accounts)
                        }
                        _ => vec![],
                    };
                    info!(
                        action = action.kind(),
                        detail = ?action,
                        lookup_tables = tables.len(),
                        "sending"
                    );
                    self.outstanding += 1;
                    self.metrics.in_flight.set(self.outstanding as i64);
                    let _ = jtx.send(Job {
                        action,
                        keys,
                        ixs,
                        tables,
                        price_seen,
                        attempt: 0,
                        full_budget: false,
                    });
                }
            }
        }
        info!(
            in_flight = self.in_flight.len(),
            "stopping: waiting for in-flight transactions"
        );
        drop(jtx);
        let deadline = Instant::now() + self.settings.confirm_timeout;
        while !self.in_flight.is_empty() && Instant::now() < deadline {
            if let Ok(Msg::Done {
                action,
                keys,
                outcome,
                price_seen,
            }) = rx.recv_timeout(Duration::from_millis(100))
            {
                self.record(&action, &keys, &outcome, price_seen);
            }
        }
        info!("stopped");
        Ok(())
    }
}

/// Watches sent transactions until each is confirmed or fails; broadcasts again what is
/// not seen in time while its blockhash is valid, and sends back to the senders (a new
/// signature) what expired unseen, up to [`ATTEMPTS`] signatures. Reports each end to
/// the decision loop: every job ends in exactly one `Msg::Done`.
fn confirm_loop(
    sender: &Sender,
    metrics: &Metrics,
    incoming: &Receiver<Pending>,
    done: &ChanSender<Msg>,
    resend: &ChanSender<Job>,
    stop: &AtomicBool,
) {
    let mut pending: Vec<Pending> = vec![];
    let mut rpc_errors = 0u32;
    loop {
        match incoming.recv_timeout(Duration::from_millis(200)) {
            Ok(p) => pending.push(p),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if pending.is_empty() {
                    return;
                }
                // The senders are gone; keep confirming what is out, at the same pace.
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
        pending.extend(incoming.try_iter());
        let stopping = stop.load(Ordering::Relaxed);
        if pending.is_empty() {
            if stopping {
                return;
            }
            continue;
        }
        if stopping
            && pending.iter().all(|p| {
                p.sent
                    .last()
                    .is_none_or(|s| s.at.elapsed() > sender.confirm_timeout)
            })
        {
            return;
        }
        let sigs: Vec<Signature> = pending
            .iter()
            .flat_map(|p| p.sent.iter().map(|s| s.signature))
            .collect();
        let statuses = match sender.statuses(&sigs) {
            Ok(s) => {
                rpc_errors = 0;
                s
            }
            Err(e) => {
                rpc_errors += 1;
                metrics.error("rpc");
                if rpc_errors % 25 == 1 {
                    warn!(error = %e, pending = pending.len(), "cannot read signature statuses; retrying");
                }
                vec![None; sigs.len()]
            }
        };
        let mut statuses = statuses.into_iter();
        let mut still = Vec::with_capacity(pending.len());
        for mut p in pending.drain(..) {
            let mine: Vec<Status> = statuses.by_ref().take(p.sent.len()).flatten().collect();
            let outcome = match settle(sender, &mut p, &mine, stopping) {
                Step::Wait => {
                    still.push(p);
                    continue;
                }
                Step::Resign { full_budget } => {
                    sender.retries.fetch_add(1, Ordering::Relaxed);
                    let mut job = p.job;
                    job.attempt += 1;
                    job.full_budget |= full_budget;
                    if resend.send(job).is_err() {
                        return;
                    }
                    continue;
                }
                Step::End(outcome) => outcome,
            };
            if done.send(Msg::done(p.job, outcome)).is_err() {
                return;
            }
        }
        pending = still;
    }
}

/// What the confirmer does next with one job.
enum Step {
    Wait,
    /// Simulate and sign again (the last signature can no longer land).
    Resign {
        full_budget: bool,
    },
    End(Outcome),
}

/// Decides a job's next step from the statuses of its signatures.
fn settle(sender: &Sender, p: &mut Pending, seen: &[Status], stopping: bool) -> Step {
    let last = p.sent.last().expect("a pending job has been sent");
    let (signature, compute_units) = (last.signature, last.compute_units);
    if let Some(ok) = seen.iter().find(|s| s.confirmed && s.err.is_none()) {
        return Step::End(Outcome::Confirmed {
            signature,
            slot: ok.slot,
            compute_units,
        });
    }
    if let Some(err) = seen
        .iter()
        .filter(|s| s.confirmed)
        .find_map(|s| s.err.as_ref())
    {
        if crate::exec::out_of_compute(err) && p.job.attempt + 1 < ATTEMPTS && !stopping {
            warn!(
                action = p.job.action.kind(),
                compute_units,
                "ran out of compute; sending again with the whole --compute-unit-limit"
            );
            return Step::Resign { full_budget: true };
        }
        return Step::End(sender.failed(err));
    }
    if !seen.is_empty() || last.at.elapsed() < sender.confirm_timeout {
        // Processed and not yet confirmed, or not yet due.
        return Step::Wait;
    }
    match sender.blockhash_valid(&last.blockhash) {
        Some(true) | None => {
            // Still able to land (or the node did not say): the same bytes again.
            if let Err(e) = sender.rebroadcast(&last.transaction) {
                debug!(error = %e, "re-broadcast failed; trying again later");
            }
            if let Some(l) = p.sent.last_mut() {
                l.at = Instant::now();
            }
            Step::Wait
        }
        Some(false) => {
            // Expired. One last look, in case it landed since the statuses were read.
            let sigs: Vec<Signature> = p.sent.iter().map(|s| s.signature).collect();
            if let Ok(again) = sender.statuses(&sigs) {
                if again.iter().flatten().next().is_some() {
                    return Step::Wait;
                }
            }
            if p.job.attempt + 1 < ATTEMPTS && !stopping {
                warn!(
                    %signature,
                    action = p.job.action.kind(),
                    "not seen before its blockhash expired; simulating and signing again"
                );
                Step::Resign { full_budget: false }
            } else {
                Step::End(Outcome::Failed {
                    kind: crate::exec::FailKind::Rpc,
                    message: format!(
                        "{signature} not seen before its blockhash expired, after {} signatures",
                        p.job.attempt + 1
                    ),
                })
            }
        }
    }
}

/// Accounts an action writes (re-read after it lands).
fn touched(a: &Action) -> Vec<Pubkey> {
    match a {
        Action::Liquidate { account, .. } | Action::ResolveBankruptcy { account } => vec![*account],
        Action::Tally { accounts } | Action::Clawback { accounts } => accounts.clone(),
        _ => vec![],
    }
}

/// `status`: the riskiest accounts and the epoch state, as text.
pub fn status_text(book: &Book, now: i64, top: usize) -> String {
    use std::fmt::Write;
    let (cache, problems) = book.prices(now);
    let risks = plan::assess(book, &cache);
    let top_risks = plan::riskiest(book, &cache, top);
    let ex: &Exchange = book.exchange.as_ref().expect("snapshot has the exchange");
    let d = ex.collateral_decimals;
    let amt = |v: i128| backstop_client::view::format_scaled(v, d as i32, d as u32);
    let mut o = String::new();
    let e = &ex.epoch;
    let _ = writeln!(o, "Exchange {}", book.exchange_address);
    let _ = writeln!(
        o,
        "  epoch {:?} (epoch {}, round {}; tallied {}, still needed {} with profit / {} with capital, applied {}/{}), deficit {}, insurance {}, vault {}",
        e.phase,
        e.epoch_id,
        e.rounds_in_epoch,
        e.tallied,
        e.profit_pending,
        e.capital_pending,
        e.applied,
        e.to_apply,
        amt(ex.books.deficit as i128),
        amt(ex.books.insurance_balance as i128),
        amt(ex.books.vault_balance as i128)
    );
    let _ =
        writeln!(
        o,
        "  {} margin accounts, {} liquidatable, {} bankrupt, {} market(s) without a usable price",
        book.accounts.len(),
        risks.iter().filter(|r| r.health.is_liquidatable().unwrap_or(false)).count(),
        risks.iter().filter(|r| r.health.is_bankrupt()).count(),
        problems
    );
    let _ = writeln!(
        o,
        "\n  {:<44} {:>16} {:>16} {:>16}  STATUS",
        "ACCOUNT", "EQUITY", "MAINT. MARGIN", "EQUITY − MM"
    );
    for r in &top_risks {
        let status = if r.health.is_bankrupt() {
            "bankrupt"
        } else if r.health.is_liquidatable().unwrap_or(false) {
            "liquidatable"
        } else {
            "ok"
        };
        let _ = writeln!(
            o,
            "  {:<44} {:>16} {:>16} {:>16}  {status}",
            r.account.to_string(),
            amt(r.health.equity),
            amt(r.health.maintenance_margin as i128),
            amt(r.maintenance_health)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::{AccountSerialize, AnchorDeserialize, Space};

    fn keeper() -> Keeper {
        let exchange = Pubkey::new_unique();
        let cli = crate::config::Cli::load_from([
            "keeper",
            "--url",
            "http://127.0.0.1:1",
            "--exchange",
            &exchange.to_string(),
        ])
        .expect("flags");
        let settings = Settings::resolve(&cli.config).expect("settings");
        let sender = Sender::new(
            &settings.url,
            solana_sdk::signature::Keypair::new(),
            200_000,
            settings.priority_fee,
            true,
            Duration::from_secs(1),
        );
        Keeper::new(
            settings,
            Metrics::new(Duration::from_secs(60)),
            Arc::new(sender),
        )
    }

    fn account(k: &Keeper, capital: u64) -> MarginAccount {
        let zeros = vec![0u8; MarginAccount::INIT_SPACE];
        let mut a = MarginAccount::deserialize(&mut &zeros[..]).expect("zeroed account");
        a.exchange = k.settings.exchange;
        a.capital = capital;
        a
    }

    fn bytes(a: &MarginAccount) -> Vec<u8> {
        let mut out = vec![];
        a.try_serialize(&mut out).expect("serialize");
        out
    }

    fn capital(k: &Keeper, key: &Pubkey) -> Option<u64> {
        k.book.accounts.get(key).map(|a| a.capital)
    }

    #[test]
    fn a_stale_websocket_write_after_a_resync_never_overwrites_newer_state() {
        let mut k = keeper();
        let (a, b) = (Pubkey::new_unique(), Pubkey::new_unique());
        let now = Instant::now();
        // A resync read at slot 100.
        k.install_accounts(HashMap::from([(a, account(&k, 5))]), 100);
        assert_eq!(capital(&k, &a), Some(5));
        // A notification from slot 95, queued behind the resync, arrives: dropped.
        assert!(!k.apply(a, backstop::ID, &bytes(&account(&k, 3)), 95, now));
        assert_eq!(capital(&k, &a), Some(5));
        // Same slot or newer: applied.
        assert!(k.apply(a, backstop::ID, &bytes(&account(&k, 7)), 101, now));
        assert_eq!(capital(&k, &a), Some(7));
        // A slow resync whose response is older than what the websocket already gave.
        k.install_accounts(HashMap::from([(a, account(&k, 6))]), 100);
        assert_eq!(capital(&k, &a), Some(7), "the newer notification stands");
        // An account created after the snapshot was read is not dropped by it...
        assert!(k.apply(b, backstop::ID, &bytes(&account(&k, 9)), 105, now));
        k.install_accounts(HashMap::from([(a, account(&k, 7))]), 103);
        assert_eq!(capital(&k, &b), Some(9));
        // ...but a newer snapshot without it removes it (closed), and a notification from
        // before the close, still queued, does not bring it back.
        k.install_accounts(HashMap::from([(a, account(&k, 7))]), 106);
        assert_eq!(capital(&k, &b), None);
        assert!(!k.apply(b, backstop::ID, &bytes(&account(&k, 9)), 104, now));
        assert_eq!(capital(&k, &b), None);
        // A close notification from before the account's last write is ignored.
        assert!(!k.apply(a, solana_sdk_ids::system_program::ID, &[], 102, now));
        assert_eq!(capital(&k, &a), Some(7));
        assert_eq!(k.metrics.stale_writes.get(), 5);
        // A write whose slot is unknown (0) is taken as it comes.
        assert!(k.apply(a, backstop::ID, &bytes(&account(&k, 8)), 0, now));
        assert_eq!(capital(&k, &a), Some(8));
    }
}

#[cfg(test)]
mod confirm_tests {
    use super::*;
    use solana_sdk::hash::Hash;
    use solana_sdk::instruction::InstructionError;
    use solana_sdk::message::{Message, VersionedMessage};
    use solana_sdk::signature::Keypair;
    use solana_sdk::transaction::{TransactionError, VersionedTransaction};

    fn pending(attempt: u32) -> Pending {
        let payer = Keypair::new();
        let tx = VersionedTransaction::try_new(
            VersionedMessage::Legacy(Message::new(&[], Some(&payer.pubkey()))),
            &[&payer],
        )
        .unwrap();
        Pending {
            job: Job {
                action: Action::FinalizeTally,
                keys: vec![Lock::Epoch],
                ixs: vec![],
                tables: vec![],
                price_seen: None,
                attempt,
                full_budget: false,
            },
            sent: vec![Sent {
                signature: tx.signatures[0],
                transaction: tx,
                blockhash: Hash::default(),
                compute_units: 60_000,
                at: Instant::now(),
            }],
        }
    }

    fn sender() -> Sender {
        // Nothing listens there: these cases never reach the node.
        Sender::new(
            "http://127.0.0.1:1",
            Keypair::new(),
            1_400_000,
            crate::config::PriorityFee::Fixed(0),
            false,
            Duration::from_secs(30),
        )
    }

    fn status(confirmed: bool, err: Option<TransactionError>) -> Status {
        Status {
            slot: 7,
            err,
            confirmed,
        }
    }

    #[test]
    fn the_confirmer_ends_waits_or_resigns_as_the_statuses_say() {
        let s = sender();
        // Not seen and not yet due: wait.
        assert!(matches!(
            settle(&s, &mut pending(0), &[], false),
            Step::Wait
        ));
        // Processed but not confirmed: wait, whatever the age.
        assert!(matches!(
            settle(&s, &mut pending(0), &[status(false, None)], false),
            Step::Wait
        ));
        // A confirmed success ends it, reporting the limit it requested.
        assert!(matches!(
            settle(
                &s,
                &mut pending(0),
                &[status(false, None), status(true, None)],
                false
            ),
            Step::End(Outcome::Confirmed {
                slot: 7,
                compute_units: 60_000,
                ..
            })
        ));
        // A confirmed failure ends it with the program error.
        let code = u32::from(backstop::error::BackstopError::InsufficientCapital);
        let failed = TransactionError::InstructionError(2, InstructionError::Custom(code));
        assert!(matches!(
            settle(&s, &mut pending(0), &[status(true, Some(failed))], false),
            Step::End(Outcome::Failed {
                kind: crate::exec::FailKind::Program(_),
                ..
            })
        ));
        // Out of compute: signed again with the whole cap, while attempts remain.
        let oom =
            TransactionError::InstructionError(2, InstructionError::ComputationalBudgetExceeded);
        assert!(matches!(
            settle(
                &s,
                &mut pending(0),
                &[status(true, Some(oom.clone()))],
                false
            ),
            Step::Resign { full_budget: true }
        ));
        assert!(matches!(
            settle(
                &s,
                &mut pending(ATTEMPTS - 1),
                &[status(true, Some(oom))],
                false
            ),
            Step::End(Outcome::Failed { .. })
        ));
    }
}
