//! Simulator throughput: generate a population, run the price path twice (liquidation and
//! ADL runs) and allocate under all seven policies, for 10⁴ / 10⁵ / 10⁶ accounts.
//!
//! `cargo run --profile bench-fast -p backstop-bench --example bench_sim`

use std::time::Instant;

use backstop_sim::population;
use backstop_sim::report::{simulate, Inputs};
use backstop_sim::Market;

fn main() {
    println!(
        "simulator throughput, scenario crash-30 (6 prints), 7 policies, 1 thread of {} available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>10} {:>12} {:>12} {:>16} {:>14} {:>7}",
        "accounts", "generate s", "simulate s", "accounts/s", "bankruptcies", "rounds"
    );
    for n in [10_000usize, 100_000, 1_000_000] {
        let prices = population::scenario("crash-30").expect("scenario");
        let t = Instant::now();
        let pop = population::generate(n, 7, prices[0], &backstop_sim::Market::default())
            .expect("population");
        let generated = t.elapsed().as_secs_f64();
        let capital: u128 = pop.iter().map(|a| a.capital as u128).sum();
        let t = Instant::now();
        let r = simulate(&Inputs {
            scenario: "crash-30".into(),
            seed: Some(7),
            population: pop,
            prices,
            market: Market::default(),
            insurance: (capital / 1_000) as u64,
            rate_cap_bps: 1_000,
        })
        .expect("simulate");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{n:>10} {generated:>12.3} {secs:>12.3} {:>16.0} {:>14} {:>7}",
            n as f64 / secs,
            r.bankruptcies,
            r.policies[1].rounds
        );
    }
}
