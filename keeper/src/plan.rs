//! Decisions, as pure functions of decoded accounts: which accounts are liquidatable and
//! in which order, how much the keeper can take over while staying above initial margin,
//! which bankruptcies to resolve, and the next step of a clawback round with its batches.
//! Health, liquidation sizing and prices all come from the program's `math`.

use std::collections::HashMap;

use anchor_lang::prelude::Pubkey;
use backstop::math::health::Health;
use backstop::math::liquidation::{base_to_liquidate, liquidation_price, LiquidationParams};
use backstop::math::trade::taker_quote;
use backstop::oracle::PriceCache;
use backstop::state::{ClawbackBasis, EpochPhase, Exchange, MarginAccount};
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
        account
            .positions
            .iter()
            .filter(|p| p.active)
            .filter_map(|p| self.market(p.market_index))
            .map(|m| (m.address, m.market.oracle))
            .collect()
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

/// Health of every account whose markets all have usable prices, riskiest first (lowest
/// equity − MM; ties by address so the order is deterministic).
pub fn assess(book: &Book, cache: &PriceCache) -> Vec<Risk> {
    let mut out: Vec<Risk> = book
        .accounts
        .iter()
        .filter_map(|(k, a)| {
            let h = view::health(cache, a)?;
            Some(Risk {
                account: *k,
                health: h,
                maintenance_health: h.maintenance_health().ok()?,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.maintenance_health
            .cmp(&b.maintenance_health)
            .then(a.account.cmp(&b.account))
    });
    out
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
    /// In-flight dedupe key: one transaction at a time per account / epoch step.
    pub fn key(&self) -> String {
        match self {
            Action::Liquidate { account, .. } => format!("liquidate:{account}"),
            Action::ResolveBankruptcy { account } => format!("bankrupt:{account}"),
            Action::BeginClawback => "begin_clawback".into(),
            Action::Tally { accounts } => format!("tally:{}", accounts[0]),
            Action::FinalizeTally => "finalize_tally".into(),
            Action::Clawback { accounts } => format!("clawback:{}", accounts[0]),
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
    let mut actions = vec![];
    let mut skips = vec![];
    let Some(ex) = book.exchange.as_ref() else {
        return (actions, skips);
    };
    // The keeper's account as it would be after the takeovers planned so far.
    let mut keeper_acc = keeper.map(|(k, a)| (*k, a.clone()));
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
                let mp = cache.get(p.market_index)?;
                Some((*p, mp.price.price, mp.params))
            })
            .max_by_key(|(p, price, _)| p.base_qty.unsigned_abs() as u128 * *price as u128)
        else {
            continue;
        };
        let lp = LiquidationParams {
            maintenance_margin_bps: params.maintenance_margin_bps,
            liquidation_fee_bps: params.liquidation_fee_bps,
            buffer_bps: ex.params.liquidation_buffer_bps,
            insurance_share_bps: params.insurance_share_bps,
        };
        let discounted = r.health.equity > 0;
        let wanted = base_to_liquidate(
            &r.health,
            pos.base_qty,
            price,
            &lp,
            discounted,
            pos.base_qty.unsigned_abs(),
        )
        .unwrap_or(0);
        if wanted == 0 {
            continue;
        }
        let was_long = pos.base_qty > 0;
        let px = if discounted {
            liquidation_price(price, lp.liquidation_fee_bps, was_long).unwrap_or(price)
        } else {
            price
        };
        let Some((kkey, kacc)) = keeper_acc.as_mut() else {
            skips.push(Skip::KeeperMarginTooSmall {
                account: r.account,
                market_index: pos.market_index,
            });
            continue;
        };
        let _ = kkey;
        let take = capacity(
            cache,
            kacc,
            pos.market_index,
            was_long,
            px,
            wanted,
            limits.max_position_base,
        );
        if take == 0 {
            skips.push(Skip::KeeperMarginTooSmall {
                account: r.account,
                market_index: pos.market_index,
            });
            continue;
        }
        if let Some(after) = takeover(kacc, pos.market_index, was_long, px, take) {
            *kacc = after;
        }
        actions.push(Action::Liquidate {
            account: r.account,
            market_index: pos.market_index,
            max_base_qty: take,
        });
    }
    (actions, skips)
}

/// The keeper's account after taking `base` atoms of a position (long if the liquidatee
/// was long) at fixed price `px`.
fn takeover(
    keeper: &MarginAccount,
    market_index: u16,
    liquidatee_was_long: bool,
    px: u64,
    base: u64,
) -> Option<MarginAccount> {
    let mut k = keeper.clone();
    let delta = i64::try_from(base).ok()?;
    let delta = if liquidatee_was_long { delta } else { -delta };
    // The liquidatee's closing fill is −delta; the keeper takes the other side.
    let quote = -taker_quote(-delta, px).ok()?;
    let (mut tb, mut tp, mut lo, mut so) = (0i128, 0i128, u64::MAX / 2, u64::MAX / 2);
    k.apply_fill(
        market_index,
        delta,
        quote,
        &mut tb,
        &mut tp,
        &mut lo,
        &mut so,
        0,
        0,
    )
    .ok()?;
    Some(k)
}

/// The most of `wanted` the keeper can take while meeting initial margin (the program's
/// check after a liquidation) and `max_position_base`: `wanted` itself when it fits,
/// else the largest amount found by bisection.
fn capacity(
    cache: &PriceCache,
    keeper: &MarginAccount,
    market_index: u16,
    liquidatee_was_long: bool,
    px: u64,
    wanted: u64,
    max_position_base: u64,
) -> u64 {
    let fits = |q: u64| -> bool {
        if q == 0 {
            return true;
        }
        let Some(after) = takeover(keeper, market_index, liquidatee_was_long, px, q) else {
            return false;
        };
        let held = after
            .position(market_index)
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

/// The next step of the bad-debt epoch at cluster time `now`, with batches of at most
/// `tally_batch` / `clawback_batch` accounts. Empty when nothing is due.
pub fn epoch_step(book: &Book, now: i64, tally_batch: usize, clawback_batch: usize) -> Vec<Action> {
    let Some(ex) = book.exchange.as_ref() else {
        return vec![];
    };
    let e = &ex.epoch;
    let mut keys: Vec<&Pubkey> = book.accounts.keys().collect();
    keys.sort();
    match e.phase {
        EpochPhase::Normal => vec![],
        EpochPhase::BadDebt => {
            let old_enough = now >= e.epoch_opened_at + ex.params.min_epoch_secs as i64;
            if ex.deficit > 0 && old_enough && now >= e.cooldown_until {
                vec![Action::BeginClawback]
            } else {
                vec![]
            }
        }
        EpochPhase::Tallying => {
            let todo: Vec<Pubkey> = keys
                .into_iter()
                .filter(|k| book.accounts[*k].clawback.tally_round != e.round_seq)
                .copied()
                .collect();
            if todo.is_empty() || e.tallied >= e.accounts_to_tally {
                vec![Action::FinalizeTally]
            } else {
                todo.chunks(tally_batch.max(1))
                    .map(|c| Action::Tally {
                        accounts: c.to_vec(),
                    })
                    .collect()
            }
        }
        EpochPhase::Applying => {
            let capital = e.basis == ClawbackBasis::Capital;
            let todo: Vec<Pubkey> = keys
                .into_iter()
                .filter(|k| {
                    let c = &book.accounts[*k].clawback;
                    let weighted = if capital {
                        c.capital_weight > 0
                    } else {
                        c.profit_weight > 0
                    };
                    c.tally_round == e.round_seq && weighted && c.applied_round != e.round_seq
                })
                .copied()
                .collect();
            todo.chunks(clawback_batch.max(1))
                .map(|c| Action::Clawback {
                    accounts: c.to_vec(),
                })
                .collect()
        }
    }
}
