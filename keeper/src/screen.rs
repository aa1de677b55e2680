//! The per-tick health pass at crash scale.
//!
//! [`plan::assess`] walks every cached account (a hash map of full `MarginAccount`s,
//! ~1 KB each) on every tick: at 10⁵ accounts that is ~100 MB of memory per tick, and the
//! pass is bound by the cache misses, not the arithmetic. [`HealthPass`] keeps instead,
//! per account, the program's own division-free screen
//! ([`backstop::math::health::clearly_above_maintenance`]) in linear form:
//!
//!   bound = 10¹³·(capital + pnl − Σ(basis + 3)) + Σₘ (10⁴·b − |b|·mmₘ)·Pₘ
//!
//! as a constant per account and one coefficient per position, stored per market. When a
//! market's price moves by Δ, only the accounts holding it are touched (bound += coef·Δ,
//! exact integer arithmetic); the accounts whose bound is negative — and only they — get
//! the program's exact health, as before. An account whose terms overflow is checked
//! exactly every tick, as the program's screen would give up on it too. The decisions are
//! therefore [`plan::assess`]'s exactly; a property test checks it over random books,
//! price moves, stale markets, parameter changes and account writes.
//!
//! The runner tells the pass which accounts it wrote ([`HealthPass::touch`]) and resets
//! it after a full resync.

use std::collections::{HashMap, HashSet};

use anchor_lang::prelude::Pubkey;
use backstop::constants::{BPS_DENOMINATOR, PRICE_PRECISION};
use backstop::math::margin::size_scaled_rates;
use backstop::oracle::PriceCache;
use backstop::state::MarginAccount;

use crate::plan::{self, Book, Risk};

/// A market's (initial, maintenance, imf) margin parameters.
fn rates(p: &backstop::state::MarketParams) -> (u16, u16, u32) {
    (p.initial_margin_bps, p.maintenance_margin_bps, p.imf_factor)
}

/// 10⁴ as the screen's integer type.
const BPS: i128 = BPS_DENOMINATOR as i128;

/// One position's coefficient, filed under its market.
#[derive(Debug, Clone, Copy)]
struct Entry {
    row: u32,
    /// The row's generation when filed: entries of an older generation are dead.
    generation: u32,
    coef: i128,
}

#[derive(Debug, Default)]
struct MarketTerms {
    entries: Vec<Entry>,
    /// The price the bounds include (`None`: counted as 0; such accounts have no exact
    /// health, so they are never at risk, as in [`plan::assess`]).
    price: Option<u64>,
    /// (initial, maintenance, imf): a position's maintenance rate is
    /// `size_scaled_rates` of its size — fixed per position, so bounds stay linear.
    rates: (u16, u16, u32),
    /// The market's price is a conservative stand-in (`MarketPrice::degraded`): valued at
    /// its interval's edge, not linear in the price, so its holders are decided by the
    /// exact health every pass.
    degraded: bool,
}

/// The incremental health pass; see the module documentation.
#[derive(Debug, Default)]
pub struct HealthPass {
    row_of: HashMap<Pubkey, u32>,
    keys: Vec<Pubkey>,
    live: Vec<bool>,
    generation: Vec<u32>,
    /// The screen at the markets' current `price`s, scaled by 10¹³.
    bound: Vec<i128>,
    /// Overflow somewhere in the row's terms: decide it with the exact health every tick.
    exact: Vec<bool>,
    /// Entries each row filed (they die with the row).
    filed: Vec<u32>,
    /// Entries filed in all markets, and how many of them are dead.
    entries: usize,
    dead: usize,
    free: Vec<u32>,
    markets: Vec<MarketTerms>,
    /// (index, (IM, MM, imf), degraded) of the book's markets when built.
    signature: Vec<(u16, (u16, u16, u32), bool)>,
    dirty: HashSet<Pubkey>,
    rebuild: bool,
    built: bool,
}

impl HealthPass {
    pub fn new() -> Self {
        Self::default()
    }

    /// `key` was written (or removed) in the book: its row is rebuilt at the next pass.
    pub fn touch(&mut self, key: Pubkey) {
        if !self.rebuild {
            self.dirty.insert(key);
        }
    }

    /// Everything may have changed (a full resync): rebuild at the next pass.
    pub fn reset(&mut self) {
        self.rebuild = true;
        self.dirty.clear();
    }

    /// Accounts with a row.
    pub fn len(&self) -> usize {
        self.row_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.row_of.is_empty()
    }

    /// [`plan::assess`]'s answer — the accounts below maintenance margin, riskiest first —
    /// touching only the accounts that hold a market whose price moved.
    pub fn assess(&mut self, book: &Book, cache: &PriceCache) -> Vec<Risk> {
        // The coefficients depend on each market's maintenance margin, and a degraded
        // market's holders are exact: a new market, a changed rate or a market whose price
        // became (or stopped being) degraded rebuilds everything.
        let signature: Vec<(u16, (u16, u16, u32), bool)> = book
            .markets
            .iter()
            .map(|m| {
                let index = m.market.index;
                (
                    index,
                    rates(&m.market.params),
                    cache.get(index).is_some_and(|p| p.degraded),
                )
            })
            .collect();
        if !self.built || self.rebuild || signature != self.signature {
            self.build(book, cache, signature);
        } else {
            self.move_prices(cache);
            for key in std::mem::take(&mut self.dirty) {
                self.remove(&key);
                if let Some(a) = book.accounts.get(&key) {
                    self.insert(key, a);
                }
            }
            self.compact();
        }
        let mut out: Vec<Risk> = (0..self.keys.len())
            .filter(|&r| self.live[r] && (self.exact[r] || self.bound[r] < 0))
            .filter_map(|r| {
                let key = self.keys[r];
                plan::risk(cache, &key, book.accounts.get(&key)?)
            })
            .filter(|r| r.maintenance_health < 0)
            .collect();
        out.sort_unstable_by(plan::order);
        out
    }

    fn market_mut(&mut self, index: u16) -> &mut MarketTerms {
        let i = usize::from(index);
        if self.markets.len() <= i {
            self.markets.resize_with(i + 1, MarketTerms::default);
        }
        &mut self.markets[i]
    }

    fn build(
        &mut self,
        book: &Book,
        cache: &PriceCache,
        signature: Vec<(u16, (u16, u16, u32), bool)>,
    ) {
        *self = HealthPass {
            built: true,
            signature,
            ..HealthPass::default()
        };
        for m in &book.markets {
            let t = self.market_mut(m.market.index);
            t.rates = rates(&m.market.params);
            t.price = cache.get(m.market.index).map(|p| p.price.price);
            t.degraded = cache.get(m.market.index).is_some_and(|p| p.degraded);
        }
        self.row_of.reserve(book.accounts.len());
        for (key, a) in &book.accounts {
            self.insert(*key, a);
        }
    }

    /// Moves every market to its price in `cache`, updating its holders' bounds.
    fn move_prices(&mut self, cache: &PriceCache) {
        for m in 0..self.markets.len() {
            let new = u16::try_from(m)
                .ok()
                .and_then(|i| cache.get(i))
                .map(|p| p.price.price);
            let t = &mut self.markets[m];
            if new == t.price {
                continue;
            }
            let delta = i128::from(new.unwrap_or(0)) - i128::from(t.price.unwrap_or(0));
            t.price = new;
            for e in &t.entries {
                let r = e.row as usize;
                if self.generation[r] != e.generation || self.exact[r] {
                    continue;
                }
                match e
                    .coef
                    .checked_mul(delta)
                    .and_then(|d| self.bound[r].checked_add(d))
                {
                    Some(b) => self.bound[r] = b,
                    None => self.exact[r] = true,
                }
            }
        }
    }

    fn remove(&mut self, key: &Pubkey) {
        if let Some(r) = self.row_of.remove(key) {
            let r = r as usize;
            self.live[r] = false;
            self.generation[r] = self.generation[r].wrapping_add(1);
            self.free.push(r as u32);
            self.dead += self.filed[r] as usize;
            self.filed[r] = 0;
        }
    }

    fn insert(&mut self, key: Pubkey, a: &MarginAccount) {
        let r = match self.free.pop() {
            Some(r) => r as usize,
            None => {
                self.keys.push(key);
                self.live.push(false);
                self.generation.push(0);
                self.bound.push(0);
                self.exact.push(false);
                self.filed.push(0);
                self.keys.len() - 1
            }
        };
        self.keys[r] = key;
        self.live[r] = true;
        self.row_of.insert(key, r as u32);
        let generation = self.generation[r];
        let mut exact = false;
        let mut constant = i128::from(a.capital).checked_add(i128::from(a.pnl));
        let mut at_prices: i128 = 0;
        for p in a.positions.iter().filter(|p| p.active) {
            constant =
                constant.and_then(|c| c.checked_sub(i128::from(p.quote_basis).checked_add(3)?));
            let m = usize::from(p.market_index);
            if self.markets.len() <= m {
                self.markets.resize_with(m + 1, MarketTerms::default);
            }
            let ((im_base, mm_base, imf), price) = (self.markets[m].rates, self.markets[m].price);
            exact |= self.markets[m].degraded;
            // The program's own rate for this size.
            let Ok((_, mm)) = size_scaled_rates(im_base, mm_base, imf, p.base_qty) else {
                exact = true;
                continue;
            };
            let b = i128::from(p.base_qty);
            let coef = b
                .checked_mul(BPS)
                .and_then(|x| x.checked_sub(b.checked_abs()?.checked_mul(i128::from(mm))?));
            let Some(coef) = coef else {
                exact = true;
                continue;
            };
            self.markets[m].entries.push(Entry {
                row: r as u32,
                generation,
                coef,
            });
            self.filed[r] += 1;
            self.entries += 1;
            match coef
                .checked_mul(i128::from(price.unwrap_or(0)))
                .and_then(|v| at_prices.checked_add(v))
            {
                Some(v) => at_prices = v,
                None => exact = true,
            }
        }
        let bound = constant
            .and_then(|c| c.checked_mul(PRICE_PRECISION.checked_mul(BPS)?))
            .and_then(|c| c.checked_add(at_prices));
        self.bound[r] = bound.unwrap_or(0);
        self.exact[r] = exact || bound.is_none();
    }

    /// Drops dead entries once they outnumber the live ones (amortized O(1) per write).
    fn compact(&mut self) {
        if self.dead < 1_024 || self.dead * 2 < self.entries {
            return;
        }
        let generation = &self.generation;
        let live = &self.live;
        for t in &mut self.markets {
            t.entries
                .retain(|e| live[e.row as usize] && generation[e.row as usize] == e.generation);
        }
        self.entries -= self.dead;
        self.dead = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::{AnchorDeserialize, Space};
    use backstop::math::oracle_price::RawPrice;
    use backstop::state::{Exchange, MarketParams, PerpMarket, Position};
    use backstop_client::view::MarketState;
    use proptest::prelude::*;

    const NOW: i64 = 1_000_000;

    fn zeroed<T: AnchorDeserialize + Space>() -> T {
        T::deserialize(&mut &vec![0u8; T::INIT_SPACE][..]).unwrap()
    }

    fn market(index: u16, mm: u16, price: Option<i64>) -> MarketState {
        let mut m: PerpMarket = zeroed();
        m.index = index;
        m.base_decimals = 6;
        m.params = MarketParams {
            maintenance_margin_bps: mm,
            ..MarketParams::EXAMPLE
        };
        MarketState {
            address: Pubkey::new_unique(),
            market: m,
            oracle: price
                .map(|p| RawPrice {
                    price: p,
                    conf: 0,
                    expo: -6,
                    publish_time: NOW,
                })
                .ok_or_else(|| "stale".to_string()),
        }
    }

    /// An account from (capital, pnl, [(market, base, entry price)]).
    fn account(capital: u64, pnl: i64, positions: &[(u16, i64, i64)]) -> MarginAccount {
        let mut a: MarginAccount = zeroed();
        a.capital = capital;
        a.pnl = pnl;
        for (slot, (m, base, entry)) in positions.iter().enumerate() {
            a.positions[slot] = Position {
                market_index: *m,
                active: true,
                base_qty: *base,
                quote_basis: (i128::from(*base) * i128::from(*entry) / 1_000_000) as i64,
            };
        }
        a
    }

    fn account_strategy() -> impl Strategy<Value = MarginAccount> {
        (
            0u64..20_000_000_000,
            -5_000_000_000i64..5_000_000_000,
            proptest::collection::vec(
                (
                    0u16..3,
                    -2_000_000_000i64..2_000_000_000,
                    50_000_000i64..150_000_000,
                ),
                0..4,
            ),
        )
            .prop_map(|(capital, pnl, mut ps)| {
                ps.sort_by_key(|p| p.0);
                ps.dedup_by_key(|p| p.0);
                account(capital, pnl, &ps)
            })
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Market i to a price (None: its oracle unusable).
        Price(u16, Option<i64>),
        /// Write account slot j (insert or replace).
        Write(usize, Box<MarginAccount>),
        Remove(usize),
        /// Market i's maintenance rate and size premium.
        Margin(u16, u16, u32),
        /// Market i's oracle ages by some seconds and gets a confidence (bps of its price):
        /// fresh, stale or too uncertain — a degraded market is valued at its edge.
        Degrade(u16, i64, i64),
        Resync,
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..3, proptest::option::weighted(0.9, 40_000_000i64..160_000_000))
                .prop_map(|(m, p)| Op::Price(m, p)),
            3 => (0usize..40, account_strategy()).prop_map(|(j, a)| Op::Write(j, Box::new(a))),
            1 => (0usize..40).prop_map(Op::Remove),
            1 => (0u16..3, 0u16..3_000, prop_oneof![Just(0u32), 0u32..200_000])
                .prop_map(|(m, mm, imf)| Op::Margin(m, mm, imf)),
            2 => (0u16..3, 0i64..400, 0i64..500).prop_map(|(m, age, conf)| Op::Degrade(m, age, conf)),
            1 => Just(Op::Resync),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn the_incremental_pass_decides_as_the_full_one(
            start in proptest::collection::vec(account_strategy(), 0..40),
            ops in proptest::collection::vec(op_strategy(), 1..40),
        ) {
            let keys: Vec<Pubkey> = (0..40).map(|_| Pubkey::new_unique()).collect();
            let mut ex: Exchange = zeroed();
            ex.collateral_decimals = 6;
            let mut book = Book {
                exchange_address: Pubkey::new_unique(),
                exchange: Some(ex),
                markets: (0..3).map(|i| market(i, 500, Some(100_000_000))).collect(),
                accounts: start.into_iter().enumerate().map(|(j, a)| (keys[j], a)).collect(),
            };
            let mut pass = HealthPass::new();
            let check = |pass: &mut HealthPass, book: &Book| {
                let (cache, _) = book.prices(NOW);
                let want: Vec<(Pubkey, i128)> = plan::assess(book, &cache)
                    .iter()
                    .map(|r| (r.account, r.maintenance_health))
                    .collect();
                let got: Vec<(Pubkey, i128)> = pass
                    .assess(book, &cache)
                    .iter()
                    .map(|r| (r.account, r.maintenance_health))
                    .collect();
                (want, got)
            };
            let (want, got) = check(&mut pass, &book);
            prop_assert_eq!(want, got);
            for op in ops {
                match op {
                    Op::Price(m, p) => {
                        let params = book.markets[m as usize].market.params;
                        book.markets[m as usize] = market(m, params.maintenance_margin_bps, p);
                        book.markets[m as usize].market.params = params;
                    }
                    Op::Write(j, a) => {
                        book.accounts.insert(keys[j], *a);
                        pass.touch(keys[j]);
                    }
                    Op::Remove(j) => {
                        book.accounts.remove(&keys[j]);
                        pass.touch(keys[j]);
                    }
                    Op::Margin(m, mm, imf) => {
                        let p = &mut book.markets[m as usize].market.params;
                        p.maintenance_margin_bps = mm;
                        p.imf_factor = imf;
                    }
                    Op::Degrade(m, age, conf_bps) => {
                        if let Ok(raw) = book.markets[m as usize].oracle.as_mut() {
                            raw.publish_time = NOW - age;
                            raw.conf = (raw.price * conf_bps / 10_000) as u64;
                        }
                    }
                    Op::Resync => pass.reset(),
                }
                let (want, got) = check(&mut pass, &book);
                prop_assert_eq!(want, got);
            }
        }
    }

    #[test]
    fn only_holders_of_the_moved_market_are_touched_and_dead_entries_are_compacted() {
        let mut ex: Exchange = zeroed();
        ex.collateral_decimals = 6;
        let mut book = Book {
            exchange_address: Pubkey::new_unique(),
            exchange: Some(ex),
            markets: vec![
                market(0, 500, Some(100_000_000)),
                market(1, 500, Some(100_000_000)),
            ],
            accounts: HashMap::new(),
        };
        // 3,000 accounts long 10 base units in market 0 at $100 with 60 USDC each: 6%
        // above maintenance (5%) at $100, liquidatable below ~$99.
        let keys: Vec<Pubkey> = (0..3_000).map(|_| Pubkey::new_unique()).collect();
        for k in &keys {
            book.accounts
                .insert(*k, account(60_000_000, 0, &[(0, 10_000_000, 100_000_000)]));
        }
        let mut pass = HealthPass::new();
        let (cache, _) = book.prices(NOW);
        assert!(pass.assess(&book, &cache).is_empty());
        assert_eq!(pass.len(), 3_000);
        // Market 1 moving touches nobody's bound; market 0 falling 2% makes all liquidatable.
        book.markets[1] = market(1, 500, Some(50_000_000));
        let (cache, _) = book.prices(NOW);
        assert!(pass.assess(&book, &cache).is_empty());
        book.markets[0] = market(0, 500, Some(98_000_000));
        let (cache, _) = book.prices(NOW);
        assert_eq!(pass.assess(&book, &cache).len(), 3_000);
        // Rewriting every account twice leaves dead entries that get compacted.
        for _ in 0..2 {
            for k in &keys {
                book.accounts.insert(
                    *k,
                    account(1_000_000_000, 0, &[(0, 10_000_000, 100_000_000)]),
                );
                pass.touch(*k);
            }
            assert!(pass.assess(&book, &cache).is_empty());
        }
        assert!(pass.entries <= 2 * 3_000 && pass.dead <= pass.entries / 2 + 1_024);
    }
}
