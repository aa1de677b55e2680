//! Decisions, as pure functions of decoded accounts: which accounts are liquidatable and
//! in which order, how much the keeper can take over while staying above initial margin,
//! which bankruptcies to resolve, and the next step of a clawback round with its batches.
//! Health, liquidation sizing and prices all come from the program's `math`.

use std::collections::HashMap;

use anchor_lang::prelude::Pubkey;
use backstop::engine::position::{fill, Fill};
use backstop::engine::round::weights_at_snapshot;
use backstop::math::health::Health;
use backstop::math::liquidation::{liquidatee_fill, liquidation_terms_sized};
use backstop::oracle::PriceCache;
use backstop::state::{EpochPhase, Exchange, MarginAccount, PnlClock};
use backstop_client::view::{self, MarketState};

/// Everything the keeper knows: the exchange, its markets with their oracles, and every
/// margin account, decoded once and updated in place.
#[derive(Debug, Clone, Default)]
pub struct Book {
    pub exchange_address: Pubkey,
    pub exchange: Option<Exchange>,
    pub markets: Vec<MarketState>,
    pub accounts: HashMap<Pubkey, MarginAccount>,
}

impl Book {
    pub fn market(&self, index: u16) -> Option<&MarketState> {
        self.markets.iter().find(|m| m.market.index == index)
    }

    /// (market, oracle) pairs for every market `account` holds.
    pub fn pairs_for(&self, account: &MarginAccount) -> Vec<(Pubkey, Pubkey)> {
        view::pairs_for(&self.markets, account)
    }

    /// The program's price cache at `now`, and how many markets had no usable price.
    pub fn prices(&self, now: i64) -> (PriceCache, usize) {
        let d = self
            .exchange
            .as_ref()
            .map(|e| e.collateral_decimals)
            .unwrap_or(6);
        let (cache, problems) = view::price_cache(&self.markets, d, now);
        (cache, problems.len())
    }
}

/// One account's standing at the current prices.
#[derive(Debug, Clone, Copy)]
pub struct Risk {
    pub account: Pubkey,
    pub health: Health,
    /// equity − maintenance margin (negative: liquidatable).
    pub maintenance_health: i128,
}

/// The accounts the keeper must act on — below maintenance margin (liquidatable, or
/// flat with negative equity: bankrupt) — riskiest first (lowest equity − MM; ties by
/// address so the order is deterministic). Only accounts whose markets all have usable
/// prices are assessed. Healthy accounts are neither kept nor sorted: with 100,000 cached
/// accounts, sorting everyone took most of the per-tick time. The program's division-free
/// screen (`PriceCache::clearly_healthy`) skips the exact health of accounts that are
/// certainly healthy; decisions stay exactly the program's.
pub fn assess(book: &Book, cache: &PriceCache) -> Vec<Risk> {
    let mut out: Vec<Risk> = book
        .accounts
        .iter()
        .filter(|(_, a)| !cache.clearly_healthy(a))
        .filter_map(|(k, a)| risk(cache, k, a).filter(|r| r.maintenance_health < 0))
        .collect();
    out.sort_unstable_by(order);
    out
}

/// The `n` riskiest accounts, healthy or not (for `status`).
pub fn riskiest(book: &Book, cache: &PriceCache, n: usize) -> Vec<Risk> {
    let mut out: Vec<Risk> = book
        .accounts
        .iter()
        .filter_map(|(k, a)| risk(cache, k, a))
        .collect();
    if n < out.len() {
        out.select_nth_unstable_by(n, order);
        out.truncate(n);
    }
    out.sort_unstable_by(order);
    out
}

pub(crate) fn risk(cache: &PriceCache, k: &Pubkey, a: &MarginAccount) -> Option<Risk> {
    let h = view::health(cache, a)?;
    Some(Risk {
        account: *k,
        health: h,
        maintenance_health: h.maintenance_health().ok()?,
    })
}

pub(crate) fn order(a: &Risk, b: &Risk) -> std::cmp::Ordering {
    a.maintenance_health
        .cmp(&b.maintenance_health)
        .then(a.account.cmp(&b.account))
}

/// What the keeper will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Liquidate {
        account: Pubkey,
        market_index: u16,
        max_base_qty: u64,
    },
    ResolveBankruptcy {
        account: Pubkey,
    },
    BeginClawback,
    Tally {
        accounts: Vec<Pubkey>,
    },
    FinalizeTally,
    Clawback {
        accounts: Vec<Pubkey>,
    },
}

impl Action {
    /// Compute units to request when the simulation cannot measure them (a program that
    /// is not metered, such as the native builtin on this machine's localnet). Generous
    /// per-action estimates for the SBF build (every instruction's work is bounded by its
    /// account list); on a metered program the simulation's figure replaces them.
    pub fn fallback_units(&self) -> u32 {
        let per = |n: usize, each: u32| u32::try_from(n).unwrap_or(u32::MAX).saturating_mul(each);
        match self {
            Action::Liquidate { .. } => 300_000,
            Action::ResolveBankruptcy { .. } => 100_000,
            Action::BeginClawback => 200_000,
            Action::Tally { accounts } => 40_000u32.saturating_add(per(accounts.len(), 15_000)),
            Action::FinalizeTally => 60_000,
            Action::Clawback { accounts } => 40_000u32.saturating_add(per(accounts.len(), 25_000)),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Action::Liquidate { .. } => "liquidate",
            Action::ResolveBankruptcy { .. } => "resolve_bankruptcy",
            Action::BeginClawback => "begin_clawback",
            Action::Tally { .. } => "tally",
            Action::FinalizeTally => "finalize_tally",
            Action::Clawback { .. } => "clawback",
        }
    }
}

/// Why a liquidatable account was left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The keeper has no margin account, or no room above initial margin for any of it.
    KeeperMarginTooSmall { account: Pubkey, market_index: u16 },
    /// The keeper's own account (the program refuses self-liquidation).
    OwnAccount,
}

/// Limits on what the keeper takes over.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most base atoms of any one market the keeper's account may hold after a takeover.
    pub max_position_base: u64,
}

/// Liquidations to send, worst account first, each sized to what the program will
/// liquidate and capped so the keeper's account stays at or above initial margin (and
/// within `limits`). Accounts the keeper cannot take are reported in the skips.
pub fn liquidations(
    book: &Book,
    cache: &PriceCache,
    risks: &[Risk],
    keeper: Option<(&Pubkey, &MarginAccount)>,
    limits: &Limits,
) -> (Vec<Action>, Vec<Skip>) {
    let (planned, skips) = liquidations_after(book, cache, risks, keeper, limits, &[]);
    (planned.into_iter().map(|(a, _)| a).collect(), skips)
}

/// The keeper's account after `takeovers` (the program's own fills, in order; one that
/// cannot be simulated is left out).
pub fn after_takeovers(
    book: &Book,
    keeper: &MarginAccount,
    takeovers: &[(Takeover, u64)],
) -> MarginAccount {
    let mut k = keeper.clone();
    for (t, base) in takeovers {
        if let Some(after) = takeover(book, &k, t, *base) {
            k = after;
        }
    }
    k
}

/// [`liquidations`] for a keeper whose `in_flight` takeovers (sent, not yet seen in its
/// account) are counted as done: they use its margin and its `--max-position` room.
/// Returns each liquidation with the takeover it plans.
pub fn liquidations_after(
    book: &Book,
    cache: &PriceCache,
    risks: &[Risk],
    keeper: Option<(&Pubkey, &MarginAccount)>,
    limits: &Limits,
    in_flight: &[(Takeover, u64)],
) -> (Vec<(Action, Planned)>, Vec<Skip>) {
    let mut actions = vec![];
    let mut skips = vec![];
    let Some(ex) = book.exchange.as_ref() else {
        return (actions, skips);
    };
    // The keeper's account as it would be after the takeovers in flight and those
    // planned so far.
    let mut keeper_acc = keeper.map(|(k, a)| (*k, after_takeovers(book, a, in_flight)));
    for r in risks.iter().take_while(|r| r.maintenance_health < 0) {
        if !r.health.is_liquidatable().unwrap_or(false) {
            continue;
        }
        if keeper_acc.as_ref().is_some_and(|(k, _)| *k == r.account) {
            skips.push(Skip::OwnAccount);
            continue;
        }
        let Some(acc) = book.accounts.get(&r.account) else {
            continue;
        };
        // The largest position by notional goes first: it moves health the most.
        let Some((pos, price, params)) = acc
            .positions
            .iter()
            .filter(|p| p.active && p.base_qty != 0)
            .filter_map(|p| {
                // Only at a price that passed its guards: the program refuses to
                // liquidate at a degraded one (it still values it, conservatively).
                let mp = cache.get(p.market_index).filter(|mp| !mp.degraded)?;
                Some((*p, mp.price.price, mp.params))
            })
            .max_by_key(|(p, price, _)| p.base_qty.unsigned_abs() as u128 * *price as u128)
        else {
            continue;
        };
        let lp = params.liquidation_params(ex.params.liquidation_buffer_bps);
        let Ok(terms) = liquidation_terms_sized(
            &r.health,
            pos.base_qty,
            price,
            &lp,
            pos.base_qty.unsigned_abs(),
            |b| params.maintenance_rate(b),
        ) else {
            continue;
        };
        let wanted = terms.base;
        if wanted == 0 {
            continue;
        }
        let Some((_, kacc)) = keeper_acc.as_mut() else {
            skips.push(Skip::KeeperMarginTooSmall {
                account: r.account,
                market_index: pos.market_index,
            });
            continue;
        };
        let t = Takeover {
            market_index: pos.market_index,
            liquidatee_was_long: terms.liquidatee_was_long,
            price: terms.price,
        };
        let take = capacity(book, cache, kacc, &t, wanted, limits.max_position_base);
        if take == 0 {
            skips.push(Skip::KeeperMarginTooSmall {
                account: r.account,
                market_index: pos.market_index,
            });
            continue;
        }
        if let Some(after) = takeover(book, kacc, &t, take) {
            *kacc = after;
        }
        actions.push((
            Action::Liquidate {
                account: r.account,
                market_index: pos.market_index,
                max_base_qty: take,
            },
            (t, take),
        ));
    }
    (actions, skips)
}

/// A takeover and how many base atoms it moves.
pub type Planned = (Takeover, u64);

/// A takeover the keeper plans: a position in `market_index` (long if the liquidatee was
/// long) taken over at the liquidation's `price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takeover {
    pub market_index: u16,
    pub liquidatee_was_long: bool,
    pub price: u64,
}

/// The keeper's account after taking `base` atoms in takeover `t`: the program's own
/// fill, applied to copies of the exchange's books and the market.
fn takeover(book: &Book, keeper: &MarginAccount, t: &Takeover, base: u64) -> Option<MarginAccount> {
    let mut k = keeper.clone();
    let mut market = book.market(t.market_index)?.market.clone();
    // The cached market can lag the keeper's own account (markets arrive over the
    // websocket, the keeper's account is re-read after each send); open interest always
    // covers the keeper's position, so make the copy say so rather than skip the takeover.
    if let Some(p) = k.position(t.market_index) {
        let held = p.base_qty.unsigned_abs();
        if p.base_qty > 0 {
            market.long_open_interest = market.long_open_interest.max(held);
        } else {
            market.short_open_interest = market.short_open_interest.max(held);
        }
    }
    let mut books = book.exchange.as_ref()?.books;
    let (delta, quote) = liquidatee_fill(t.liquidatee_was_long, base, t.price).ok()?;
    let liquidatee_side = Fill {
        market_index: t.market_index,
        base_delta: delta,
        quote_delta: quote,
    };
    // The keeper takes the other side of the liquidatee's closing fill. The clock only
    // matters for warmup, which the keeper's margin check does not read.
    let clock = PnlClock {
        now: 0,
        warmup_secs: 0,
    };
    fill(
        &mut k,
        &mut market,
        &mut books,
        liquidatee_side.opposite().ok()?,
        clock,
    )
    .ok()?;
    Some(k)
}

/// The most of `wanted` the keeper can take while meeting initial margin (the program's
/// check after a liquidation) and `max_position_base`: `wanted` itself when it fits,
/// else the largest amount found by bisection.
fn capacity(
    book: &Book,
    cache: &PriceCache,
    keeper: &MarginAccount,
    t: &Takeover,
    wanted: u64,
    max_position_base: u64,
) -> u64 {
    let fits = |q: u64| -> bool {
        if q == 0 {
            return true;
        }
        let Some(after) = takeover(book, keeper, t, q) else {
            return false;
        };
        let held = after
            .position(t.market_index)
            .map(|p| p.base_qty.unsigned_abs())
            .unwrap_or(0);
        held <= max_position_base
            && cache
                .health(&after)
                .ok()
                .and_then(|h| h.meets_initial_margin().ok())
                .unwrap_or(false)
    };
    if fits(wanted) {
        return wanted;
    }
    let (mut ok, mut bad) = (0u64, wanted);
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        if fits(mid) {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    ok
}

/// Bankrupt accounts (no positions, equity < 0) to resolve.
pub fn bankruptcies(risks: &[Risk]) -> Vec<Action> {
    risks
        .iter()
        .filter(|r| r.health.is_bankrupt())
        .map(|r| Action::ResolveBankruptcy { account: r.account })
        .collect()
}

/// Most accounts per batch: in a legacy transaction, and in a v0 transaction whose
/// accounts all come from one address lookup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSize {
    pub legacy: usize,
    pub with_table: usize,
}

/// How round instructions can be batched: the sizes, and which of the keeper's lookup
/// tables (if any) names each account.
pub struct Batching<'a> {
    pub tally: BatchSize,
    pub clawback: BatchSize,
    pub table_of: &'a dyn Fn(&Pubkey) -> Option<usize>,
}

/// Cuts `todo` (in priority order) into batches: the accounts of one lookup table go
/// together, up to `size.with_table` each (a v0 message names them with one byte each);
/// accounts in no table go `size.legacy` at a time. Batches come in the order of their
/// first account in `todo`, so the first batch holds the first account.
pub fn pack(
    todo: &[Pubkey],
    size: BatchSize,
    table_of: &dyn Fn(&Pubkey) -> Option<usize>,
) -> Vec<Vec<Pubkey>> {
    // Per table (or none): its accounts with their rank in `todo`.
    type Group = (Option<usize>, Vec<(usize, Pubkey)>);
    let mut groups: Vec<Group> = vec![];
    let mut group_of: HashMap<Option<usize>, usize> = HashMap::new();
    for (rank, k) in todo.iter().enumerate() {
        let t = table_of(k);
        let g = *group_of.entry(t).or_insert_with(|| {
            groups.push((t, vec![]));
            groups.len() - 1
        });
        groups[g].1.push((rank, *k));
    }
    let mut batches: Vec<(usize, Vec<Pubkey>)> = vec![];
    for (table, keys) in groups {
        let n = if table.is_some() {
            size.with_table
        } else {
            size.legacy
        };
        for c in keys.chunks(n.max(1)) {
            batches.push((c[0].0, c.iter().map(|(_, k)| *k).collect()));
        }
    }
    batches.sort_by_key(|(first, _)| *first);
    batches.into_iter().map(|(_, b)| b).collect()
}

/// The next step of the bad-debt epoch at cluster time `now`, with legacy batches of at
/// most `tally_batch` / `clawback_batch` accounts. Empty when nothing is due.
pub fn epoch_step(book: &Book, now: i64, tally_batch: usize, clawback_batch: usize) -> Vec<Action> {
    let none = |_: &Pubkey| None;
    epoch_step_with(
        book,
        now,
        &Batching {
            tally: BatchSize {
                legacy: tally_batch,
                with_table: tally_batch,
            },
            clawback: BatchSize {
                legacy: clawback_batch,
                with_table: clawback_batch,
            },
            table_of: &none,
        },
    )
}

/// [`epoch_step`] with batches [`pack`]ed by lookup table.
pub fn epoch_step_with(book: &Book, now: i64, batching: &Batching) -> Vec<Action> {
    let Some(ex) = book.exchange.as_ref() else {
        return vec![];
    };
    let e = &ex.epoch;
    let mut keys: Vec<&Pubkey> = book.accounts.keys().collect();
    keys.sort();
    match e.phase {
        EpochPhase::Normal => vec![],
        EpochPhase::BadDebt => {
            if e.can_begin(ex.books.deficit, &ex.params, now).is_ok() {
                vec![Action::BeginClawback]
            } else {
                vec![]
            }
        }
        EpochPhase::Tallying => {
            if e.tally_complete() {
                return vec![Action::FinalizeTally];
            }
            // The tallies the round needs, largest profit weight at the snapshot first (the
            // weights that decide the rate). While accounts able to carry profit weight are
            // pending, only those: capital-only accounts are needed just if every one of
            // them turns out to weigh nothing (then the next step sends them). Tallying
            // them all at once would make a round over 10⁵ idle accounts cost 10⁵ tallies.
            let weight = |k: &Pubkey| {
                weights_at_snapshot(ex, &book.accounts[k])
                    .map(|(w, capital)| (w.weight, capital))
                    .unwrap_or_default()
            };
            let needed: Vec<&Pubkey> = keys
                .iter()
                .filter(|k| {
                    let a = &book.accounts[**k];
                    e.needs_tally(&a.clawback, a.standing())
                })
                .copied()
                .collect();
            let profit: Vec<&Pubkey> = needed
                .iter()
                .filter(|k| book.accounts[**k].standing().profit_capable)
                .copied()
                .collect();
            // When the book has seen more tallies than the exchange counted, the exchange
            // account is older than the tallies' writes: its counters (profit pending,
            // profit weight) are stale, so only the certain work goes out until it catches
            // up — never the capital-only accounts, never the everyone fallback.
            // Accounts created during the round carry the round's tally mark without being
            // counted (`EpochState::born_tallied`): leave them out, or one new account
            // would keep the keeper waiting forever.
            let seen_tallied = keys
                .iter()
                .filter(|k| {
                    let a = &book.accounts[**k];
                    a.clawback.tally_round == e.round_seq && a.created_at < e.round_started_at
                })
                .count();
            let exchange_behind = seen_tallied > e.tallied as usize;
            let chosen = if (e.profit_pending > 0 && !profit.is_empty()) || exchange_behind {
                profit
            } else {
                needed
            };
            let mut todo: Vec<(Pubkey, (u128, u64))> =
                chosen.into_iter().map(|k| (*k, weight(k))).collect();
            if todo.is_empty() {
                // Every account the counters need is tallied, yet the round is not
                // complete: the counters missed one. Tally every untallied account (the
                // exit that always works) — unless the exchange is merely behind.
                if exchange_behind {
                    return vec![];
                }
                todo = keys
                    .iter()
                    .filter(|k| e.due_for_tally(&book.accounts[**k].clawback))
                    .map(|k| (**k, weight(k)))
                    .collect();
            }
            todo.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let todo: Vec<Pubkey> = todo.into_iter().map(|(k, _)| k).collect();
            if todo.is_empty() {
                vec![Action::FinalizeTally]
            } else {
                pack(&todo, batching.tally, batching.table_of)
                    .into_iter()
                    .map(|accounts| Action::Tally { accounts })
                    .collect()
            }
        }
        EpochPhase::Applying => {
            let todo: Vec<Pubkey> = keys
                .into_iter()
                .filter(|k| e.due_for_clawback(&book.accounts[*k].clawback))
                .copied()
                .collect();
            pack(&todo, batching.clawback, batching.table_of)
                .into_iter()
                .map(|accounts| Action::Clawback { accounts })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::{AnchorDeserialize, Space};
    use backstop::math::oracle_price::RawPrice;
    use backstop::state::{ClawbackBasis, MarketParams, Position};

    const NOW: i64 = 1_000_000;
    const USDC: u64 = 1_000_000;
    const BASE: i64 = 1_000_000;

    fn zeroed<T: AnchorDeserialize + Space>() -> T {
        T::deserialize(&mut &vec![0u8; T::INIT_SPACE][..]).unwrap()
    }

    /// One PERP market (6 decimals, like USDC) at `price` whole USDC.
    fn book(price: i64) -> Book {
        let mut ex: Exchange = zeroed();
        ex.collateral_decimals = 6;
        ex.params.liquidation_buffer_bps = 1_000;
        ex.params.clawback_rate_cap_bps = 10_000;
        let mut m: backstop::state::PerpMarket = zeroed();
        m.base_decimals = 6;
        m.oracle = Pubkey::new_unique();
        m.params = MarketParams::EXAMPLE;
        Book {
            exchange_address: Pubkey::new_unique(),
            exchange: Some(ex),
            markets: vec![MarketState {
                address: Pubkey::new_unique(),
                market: m,
                oracle: Ok(RawPrice {
                    price: price * 1_000_000,
                    conf: 0,
                    expo: -6,
                    publish_time: NOW,
                }),
            }],
            accounts: HashMap::new(),
        }
    }

    /// An account with `capital` USDC, long `units` PERP bought at `entry` USDC.
    fn account(capital: u64, units: i64, entry: i64) -> MarginAccount {
        let mut a: MarginAccount = zeroed();
        a.capital = capital * USDC;
        if units != 0 {
            a.positions[0] = Position {
                market_index: 0,
                active: true,
                base_qty: units * BASE,
                quote_basis: units * entry * USDC as i64,
            };
        }
        a
    }

    /// Adds an account, keeping the market's open interest consistent with it (the
    /// keeper simulates fills with the program's own function, which checks OI).
    fn add(book: &mut Book, a: MarginAccount) -> Pubkey {
        for p in a.positions.iter().filter(|p| p.active) {
            let m = &mut book.markets[usize::from(p.market_index)].market;
            if p.base_qty > 0 {
                m.long_open_interest += p.base_qty.unsigned_abs();
            } else {
                m.short_open_interest += p.base_qty.unsigned_abs();
            }
        }
        let k = Pubkey::new_unique();
        book.accounts.insert(k, a);
        k
    }

    fn limits() -> Limits {
        Limits {
            max_position_base: u64::MAX,
        }
    }

    #[test]
    fn worst_account_first_and_healthy_ones_left_alone() {
        let mut b = book(90);
        let healthy = add(&mut b, account(5_000, 10, 100));
        let mild = add(&mut b, account(150, 10, 100)); // healthy: equity 50 ≥ MM 45
        let bad = add(&mut b, account(100, 10, 100)); // equity 0 < MM 45
        let worse = add(&mut b, account(1_100, 100, 100)); // equity 100 < MM 450
        let keeper = add(&mut b, account(100_000, 0, 0));
        let (cache, missing) = b.prices(NOW);
        assert_eq!(missing, 0);
        let risks = riskiest(&b, &cache, usize::MAX);
        let order: Vec<Pubkey> = risks.iter().map(|r| r.account).collect();
        assert_eq!(order[0], worse);
        assert_eq!(order[1], bad);
        assert!(order.iter().position(|k| *k == healthy) > order.iter().position(|k| *k == mild));
        let ka = b.accounts[&keeper].clone();
        let (actions, skips) = liquidations(&b, &cache, &risks, Some((&keeper, &ka)), &limits());
        let targets: Vec<Pubkey> = actions
            .iter()
            .map(|a| match a {
                Action::Liquidate { account, .. } => *account,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(targets, vec![worse, bad]);
        assert!(skips.is_empty());
    }

    #[test]
    fn sizing_is_the_programs_and_fits_the_keepers_initial_margin() {
        let mut b = book(85);
        // Underwater (equity −410): the program liquidates the whole position.
        let loser = add(&mut b, account(1_100, 100, 100));
        let rich = add(&mut b, account(10_000, 0, 0));
        let (cache, _) = b.prices(NOW);
        let risks = assess(&b, &cache);
        let ka = b.accounts[&rich].clone();
        let (actions, _) = liquidations(&b, &cache, &risks, Some((&rich, &ka)), &limits());
        assert_eq!(
            actions,
            vec![Action::Liquidate {
                account: loser,
                market_index: 0,
                max_base_qty: 100 * BASE as u64
            }]
        );
        // 300 USDC of keeper capital: at 10% IM it can carry about 3,000 USDC of notional
        // (35 PERP at $85), not the whole 100.
        let small = add(&mut b, account(300, 0, 0));
        let ka = b.accounts[&small].clone();
        let risks = assess(&b, &cache);
        let (actions, _) = liquidations(&b, &cache, &risks, Some((&small, &ka)), &limits());
        let Action::Liquidate { max_base_qty, .. } = actions[0] else {
            panic!()
        };
        assert!(
            max_base_qty > 30 * BASE as u64 && max_base_qty < 36 * BASE as u64,
            "{max_base_qty}"
        );
        let t = Takeover {
            market_index: 0,
            liquidatee_was_long: true,
            price: cache.get(0).unwrap().price.price,
        };
        let after = takeover(&b, &ka, &t, max_base_qty).unwrap();
        assert!(cache
            .health(&after)
            .unwrap()
            .meets_initial_margin()
            .unwrap());
        let one_more = takeover(&b, &ka, &t, max_base_qty + 1).unwrap();
        assert!(!cache
            .health(&one_more)
            .unwrap()
            .meets_initial_margin()
            .unwrap());
        // --max-position caps it further.
        let (actions, _) = liquidations(
            &b,
            &cache,
            &risks,
            Some((&small, &ka)),
            &Limits {
                max_position_base: 5 * BASE as u64,
            },
        );
        assert!(
            matches!(actions[0], Action::Liquidate { max_base_qty, .. } if max_base_qty == 5 * BASE as u64)
        );
        // A takeover still in flight counts as done: with the first liquidation's 30-odd
        // PERP sent but not yet in its account, the small keeper has no room for more, and
        // the --max-position room it used is gone too.
        let (planned, _) =
            liquidations_after(&b, &cache, &risks, Some((&small, &ka)), &limits(), &[]);
        let first = planned[0].1;
        assert_eq!(first, (t, max_base_qty));
        let (again, skips) =
            liquidations_after(&b, &cache, &risks, Some((&small, &ka)), &limits(), &[first]);
        assert!(again.is_empty(), "{again:?}");
        assert!(
            matches!(skips[..], [Skip::KeeperMarginTooSmall { .. }, ..]),
            "{skips:?}"
        );
        let capped = Limits {
            max_position_base: 5 * BASE as u64,
        };
        let (again, _) = liquidations_after(
            &b,
            &cache,
            &risks,
            Some((&rich, &b.accounts[&rich].clone())),
            &capped,
            &[(t, 5 * BASE as u64)],
        );
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn no_margin_no_keeper_account_and_own_account_are_skipped() {
        let mut b = book(85);
        let loser = add(&mut b, account(1_100, 100, 100));
        let broke = add(&mut b, account(0, 0, 0));
        let (cache, _) = b.prices(NOW);
        let risks = assess(&b, &cache);
        let ka = b.accounts[&broke].clone();
        let (actions, skips) = liquidations(&b, &cache, &risks, Some((&broke, &ka)), &limits());
        assert!(actions.is_empty());
        assert_eq!(
            skips,
            vec![Skip::KeeperMarginTooSmall {
                account: loser,
                market_index: 0
            }]
        );
        let (actions, skips) = liquidations(&b, &cache, &risks, None, &limits());
        assert!(actions.is_empty() && skips.len() == 1);
        let la = b.accounts[&loser].clone();
        let (actions, skips) = liquidations(&b, &cache, &risks, Some((&loser, &la)), &limits());
        assert!(actions.is_empty());
        assert_eq!(skips, vec![Skip::OwnAccount]);
    }

    /// A stale market is valued conservatively, as the program values it (so its holders'
    /// health is known), but nothing is liquidated in it at the degraded price.
    #[test]
    fn a_stale_market_is_valued_conservatively_and_never_liquidated_in() {
        let mut b = book(85);
        let loser = add(&mut b, account(1_100, 100, 100));
        let (fresh, _) = b.prices(NOW);
        let (cache, problems) = b.prices(NOW + 61);
        assert_eq!(problems, 1);
        assert!(cache.get(0).is_some_and(|p| p.degraded));
        let risks = assess(&b, &cache);
        assert_eq!(risks.len(), 1);
        assert_eq!(risks[0].account, loser);
        assert!(risks[0].health.equity < assess(&b, &fresh)[0].health.equity);
        assert_eq!(risks[0].health.degraded_positions, 1);
        let keeper = add(&mut b, account(1_000_000, 0, 0));
        let ka = b.accounts[&keeper].clone();
        let (actions, _) = liquidations(&b, &cache, &risks, Some((&keeper, &ka)), &limits());
        assert!(actions.is_empty(), "no liquidation at a degraded price");
    }

    #[test]
    fn bankrupt_accounts_are_resolved() {
        let mut b = book(85);
        let mut a = account(0, 0, 0);
        a.pnl = -5;
        let k = add(&mut b, a);
        add(&mut b, account(10, 0, 0));
        let (cache, _) = b.prices(NOW);
        assert_eq!(
            bankruptcies(&assess(&b, &cache)),
            vec![Action::ResolveBankruptcy { account: k }]
        );
    }

    #[test]
    fn packing_keeps_one_table_per_batch_and_the_first_account_first() {
        use proptest::prelude::*;
        let size = BatchSize {
            legacy: 3,
            with_table: 5,
        };
        proptest!(|(tables in proptest::collection::vec(proptest::option::of(0usize..4), 0..60))| {
            let keys: Vec<Pubkey> = tables.iter().map(|_| Pubkey::new_unique()).collect();
            let of: HashMap<Pubkey, Option<usize>> =
                keys.iter().copied().zip(tables.iter().copied()).collect();
            let table_of = |k: &Pubkey| of[k];
            let batches = pack(&keys, size, &table_of);
            // Every account exactly once.
            let mut seen: Vec<Pubkey> = batches.iter().flatten().copied().collect();
            prop_assert_eq!(seen.len(), keys.len());
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), keys.len());
            for b in &batches {
                let t = of[&b[0]];
                prop_assert!(b.iter().all(|k| of[k] == t), "one table per batch");
                let cap = if t.is_some() { 5 } else { 3 };
                prop_assert!(b.len() <= cap, "batch of {} over {}", b.len(), cap);
            }
            if let Some(first) = keys.first() {
                prop_assert!(batches[0].contains(first), "the first account goes first");
            }
            // Within a table, priority order is kept.
            let rank: HashMap<Pubkey, usize> =
                keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
            for b in &batches {
                prop_assert!(b.windows(2).all(|w| rank[&w[0]] < rank[&w[1]]));
            }
            // Fewest batches for the grouping: each table's accounts in ⌈n / size⌉.
            let mut want = 0;
            for t in [None, Some(0), Some(1), Some(2), Some(3)] {
                let n = tables.iter().filter(|x| **x == t).count();
                want += n.div_ceil(if t.is_some() { 5 } else { 3 });
            }
            prop_assert_eq!(batches.len(), want);
        });
    }

    #[test]
    fn epoch_steps_in_full_batches() {
        let mut b = book(100);
        let keys: Vec<Pubkey> = (0..60).map(|_| add(&mut b, account(10, 0, 0))).collect();
        // Normal: nothing.
        assert!(epoch_step(&b, NOW, 27, 26).is_empty());
        // BadDebt, too young, then old enough.
        let ex = b.exchange.as_mut().unwrap();
        ex.epoch.phase = EpochPhase::BadDebt;
        ex.books.deficit = 5;
        ex.epoch.epoch_opened_at = NOW;
        ex.params.min_epoch_secs = 30;
        assert!(epoch_step(&b, NOW + 29, 27, 26).is_empty());
        assert_eq!(
            epoch_step(&b, NOW + 30, 27, 26),
            vec![Action::BeginClawback]
        );
        // Tallying a capital round (no account can carry profit weight): the 60 accounts
        // with capital in 27 + 27 + 6, equal weights sorted by key, every account once.
        let ex = b.exchange.as_mut().unwrap();
        ex.epoch.phase = EpochPhase::Tallying;
        ex.epoch.round_seq = 1;
        ex.epoch.untallied = 60;
        ex.epoch.capital_pending = 60;
        let steps = epoch_step(&b, NOW, 27, 26);
        let sizes: Vec<usize> = steps
            .iter()
            .map(|s| match s {
                Action::Tally { accounts } => accounts.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![27, 27, 6]);
        let mut all: Vec<Pubkey> = steps
            .iter()
            .flat_map(|s| match s {
                Action::Tally { accounts } => accounts.clone(),
                _ => vec![],
            })
            .collect();
        all.dedup();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(all, sorted);
        // A profit round: while an account able to carry profit weight is pending, only
        // those are tallied, not the idle accounts with capital.
        let holder = add(&mut b, account(10, 5, 0));
        let e = &mut b.exchange.as_mut().unwrap().epoch;
        (e.untallied, e.profit_pending) = (61, 1);
        assert_eq!(
            epoch_step(&b, NOW, 27, 26),
            vec![Action::Tally {
                accounts: vec![holder]
            }]
        );
        // The book saw its tally before the exchange counted it: wait, do not fall back
        // to tallying everyone.
        b.exchange.as_mut().unwrap().epoch.round_started_at = NOW;
        b.accounts.get_mut(&holder).unwrap().created_at = NOW - 10;
        b.accounts.get_mut(&holder).unwrap().clawback.tally_round = 1;
        assert!(epoch_step(&b, NOW, 27, 26).is_empty());
        // An account created during the round carries the round's mark uncounted: it
        // does not make the keeper wait (the next step goes on with the round).
        b.accounts.get_mut(&holder).unwrap().created_at = NOW + 1;
        assert!(!epoch_step(&b, NOW, 27, 26).is_empty());
        b.accounts.remove(&holder);
        let e = &mut b.exchange.as_mut().unwrap().epoch;
        (e.untallied, e.profit_pending) = (60, 0);
        // All tallied: finalize.
        for k in &keys {
            b.accounts.get_mut(k).unwrap().clawback.tally_round = 1;
        }
        let e = &mut b.exchange.as_mut().unwrap().epoch;
        (e.tallied, e.untallied, e.capital_pending) = (60, 0, 0);
        assert_eq!(epoch_step(&b, NOW, 27, 26), vec![Action::FinalizeTally]);
        // Applying: only weighted accounts not yet charged, in batches of 26.
        let ex = b.exchange.as_mut().unwrap();
        ex.epoch.phase = EpochPhase::Applying;
        ex.epoch.basis = ClawbackBasis::Profit;
        for (i, k) in keys.iter().enumerate() {
            let c = &mut b.accounts.get_mut(k).unwrap().clawback;
            c.profit_weight = if i < 30 { 100 } else { 0 };
            c.applied_round = if i < 2 { 1 } else { 0 };
        }
        let sizes: Vec<usize> = epoch_step(&b, NOW, 27, 26)
            .iter()
            .map(|s| match s {
                Action::Clawback { accounts } => accounts.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![26, 2]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, ..Default::default() })]

        /// `assess` (the program's screen, then its exact health) finds exactly the
        /// accounts the program's own health puts below maintenance margin — including
        /// within an atom of the edge. (The screen's own property test is next to
        /// `compute_health` in the program.)
        #[test]
        fn assess_agrees_with_the_program(
            capital in 0u64..2_000_000_000_000,
            pnl in -1_000_000_000_000i64..1_000_000_000_000,
            base in -10_000_000_000i64..10_000_000_000,
            entry in 1i64..1_000_000,
            price in 1i64..10_000,
            pick_edge in proptest::bool::ANY,
        ) {
            let mut b = book(price);
            let mut a: MarginAccount = zeroed();
            a.capital = capital;
            a.pnl = pnl;
            a.positions[0] = Position {
                market_index: 0,
                active: base != 0,
                base_qty: base,
                quote_basis: ((base as i128 * entry as i128) / 1_000) as i64,
            };
            let (cache, _) = b.prices(NOW);
            if pick_edge {
                // Move capital so the exact health lands at −1, 0 or +1 atom.
                if let Ok(h) = cache.health(&a) {
                    let mh = h.maintenance_health().unwrap();
                    let target = (capital as i128 - mh + (pnl.rem_euclid(3) as i128 - 1)).max(0);
                    a.capital = u64::try_from(target).unwrap_or(capital);
                }
            }
            let exact = cache.health(&a).ok().and_then(|h| h.maintenance_health().ok());
            b.accounts.insert(Pubkey::new_unique(), a);
            let risks = assess(&b, &cache);
            proptest::prop_assert_eq!(risks.len(), usize::from(exact.is_some_and(|m| m < 0)));
        }
    }
}
