//! Health recomputation per price tick for 1,000 / 10,000 / 100,000 cached accounts, with
//! the keeper's own code path (`Book::prices` + `plan::assess`: the program's price
//! guards, a division-free screen of every decoded account, the program's exact health
//! for any account the screen cannot clear, and those below maintenance sorted worst
//! first).
//!
//! `cargo run --profile bench-fast -p backstop-bench --example bench_health`

use std::collections::HashMap;
use std::time::Instant;

use anchor_lang::prelude::Pubkey;
use anchor_lang::{AnchorDeserialize, Space};
use backstop::math::oracle_price::RawPrice;
use backstop::state::{Exchange, MarginAccount, MarketParams, PerpMarket, Position};
use backstop_client::view::MarketState;
use backstop_keeper::plan::{assess, Book};

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
            m.params = MarketParams {
                initial_margin_bps: 1_000,
                maintenance_margin_bps: 500,
                liquidation_fee_bps: 100,
                insurance_share_bps: 2_000,
                taker_fee_bps: 10,
                max_trade_deviation_bps: 200,
                oracle_max_age_secs: 60,
                oracle_max_conf_bps: 200,
            };
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

fn main() {
    println!(
        "health recomputation per price tick (prices, screen of every account, exact health where needed, sort of those at risk), {} threads available, 1 used",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>10} {:>12} {:>12} {:>12} {:>14} {:>9}",
        "accounts", "median ms", "min ms", "max ms", "ns/account", "at risk"
    );
    for n in [1_000usize, 10_000, 100_000] {
        let mut b = book(n, 0);
        let mut times = vec![];
        let mut at_risk = 0;
        for tick in 0..21 {
            // A new oracle price each tick (the cached accounts are not re-decoded).
            for m in &mut b.markets {
                if let Ok(r) = &mut m.oracle {
                    r.price = 100_000_000 + tick * 1_000;
                }
            }
            let t = Instant::now();
            let (cache, _) = b.prices(0);
            let risks = assess(&b, &cache);
            at_risk = std::hint::black_box(&risks).len();
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let med = times[times.len() / 2];
        println!(
            "{n:>10} {med:>12.3} {:>12.3} {:>12.3} {:>14.0} {at_risk:>9}",
            times[0],
            times[times.len() - 1],
            med * 1e6 / n as f64
        );
    }
}
