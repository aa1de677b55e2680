//! Health pass per price tick for 10³ … 10⁶ cached accounts (or the sizes given, e.g.
//! `1000,100000`), two ways, with the keeper's own code: the full pass (`plan::assess`:
//! the program's price guards, its division-free screen of every decoded account, exact
//! health where the screen cannot clear, those below maintenance sorted worst first) and
//! the incremental one the keeper runs (`screen::HealthPass`: the same screen kept per
//! market, only holders of a moved market updated, then the same exact step). Both
//! markets move every tick, so every account is touched: the pass's worst case.
//!
//! `cargo run --profile bench-fast -p backstop-bench --example bench_health [SIZES]`

use std::collections::HashMap;
use std::time::Instant;

use anchor_lang::prelude::Pubkey;
use anchor_lang::{AnchorDeserialize, Space};
use backstop::math::oracle_price::RawPrice;
use backstop::state::{Exchange, MarginAccount, MarketParams, PerpMarket, Position};
use backstop_client::view::MarketState;
use backstop_keeper::plan::{assess, Book};
use backstop_keeper::screen::HealthPass;

fn zeroed<T: AnchorDeserialize + Space>() -> T {
    T::deserialize(&mut &vec![0u8; T::INIT_SPACE][..]).unwrap()
}

fn book(n: usize, tick: i64) -> Book {
    let mut ex: Exchange = zeroed();
    ex.collateral_decimals = 6;
    let markets = (0..2u16)
        .map(|i| {
            let mut m: PerpMarket = zeroed();
            m.index = i;
            m.base_decimals = 6;
            m.params = MarketParams::EXAMPLE;
            MarketState {
                address: Pubkey::new_unique(),
                market: m,
                oracle: Ok(RawPrice {
                    price: 100_000_000 + tick,
                    conf: 10_000,
                    expo: -6,
                    publish_time: 0,
                }),
            }
        })
        .collect();
    // Deterministic spread of sizes and leverage (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let accounts: HashMap<Pubkey, MarginAccount> = (0..n)
        .map(|_| {
            let mut a: MarginAccount = zeroed();
            a.capital = 100_000_000 + next() % 10_000_000_000;
            for (slot, market) in [(0usize, 0u16), (1, 1)] {
                let base = (next() % 50_000_000) as i64 + 1;
                let base = if next() % 2 == 0 { base } else { -base };
                a.positions[slot] = Position {
                    market_index: market,
                    active: true,
                    base_qty: base,
                    quote_basis: base * (95 + (next() % 10) as i64),
                };
            }
            (Pubkey::new_unique(), a)
        })
        .collect();
    Book {
        exchange_address: Pubkey::new_unique(),
        exchange: Some(ex),
        markets,
        accounts,
    }
}

/// Median, min and max of `times` (ms).
fn stats(times: &mut [f64]) -> (f64, f64, f64) {
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .nth(1)
        .map(|a| {
            a.split(',')
                .map(|n| n.parse().expect("sizes: 1000,10000"))
                .collect()
        })
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000, 1_000_000]);
    println!(
        "health pass per price tick (both markets move: every account is touched), {} threads available, 1 used",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>10} {:>26} {:>12} {:>12} {:>12} {:>9} {:>14}",
        "accounts", "pass", "median ms", "min ms", "max ms", "at risk", "ns/account"
    );
    for n in sizes {
        let mut b = book(n, 0);
        let set = |b: &mut Book, tick: i64| {
            // A new oracle price each tick (the cached accounts are not re-decoded).
            for m in &mut b.markets {
                if let Ok(r) = &mut m.oracle {
                    r.price = 100_000_000 + tick * 1_000;
                }
            }
        };
        // Before: the full pass over every cached account (plan::assess).
        let ticks = 21;
        let mut full = vec![];
        let mut at_risk_full = 0;
        for tick in 0..ticks {
            set(&mut b, tick);
            let t = Instant::now();
            let (cache, _) = b.prices(0);
            let risks = assess(&b, &cache);
            at_risk_full = std::hint::black_box(&risks).len();
            full.push(t.elapsed().as_secs_f64() * 1e3);
        }
        // Now: the incremental pass (built once, then only the moved markets' holders).
        let mut pass = HealthPass::new();
        set(&mut b, 0);
        let t = Instant::now();
        let (cache, _) = b.prices(0);
        std::hint::black_box(pass.assess(&b, &cache));
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut inc = vec![];
        let mut at_risk = 0;
        for tick in 1..=21 {
            set(&mut b, tick);
            let t = Instant::now();
            let (cache, _) = b.prices(0);
            let risks = pass.assess(&b, &cache);
            at_risk = std::hint::black_box(&risks).len();
            inc.push(t.elapsed().as_secs_f64() * 1e3);
        }
        // Same prices, same answer (the property test checks this in general).
        let (cache, _) = b.prices(0);
        let key = |r: &backstop_keeper::plan::Risk| (r.account, r.maintenance_health);
        assert_eq!(
            assess(&b, &cache).iter().map(key).collect::<Vec<_>>(),
            pass.assess(&b, &cache).iter().map(key).collect::<Vec<_>>(),
            "the two passes disagree"
        );
        for (name, times, risk) in [
            ("full (plan::assess)", &mut full, at_risk_full),
            ("incremental (HealthPass)", &mut inc, at_risk),
        ] {
            let (med, min, max) = stats(times);
            println!(
                "{n:>10} {name:>26} {med:>12.3} {min:>12.3} {max:>12.3} {risk:>9} {:>14.1}",
                med * 1e6 / n as f64
            );
        }
        println!("{n:>10} {:>26} {build_ms:>12.3}", "build once (HealthPass)");
    }
}
