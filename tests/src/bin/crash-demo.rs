//! Plays a price crash through Backstop's whole default waterfall on the real SVM (the
//! native program in LiteSVM with the real SPL Token program) and prints what happened:
//! liquidation → bankruptcy → insurance → clawback, ending with a summary table.
//!
//! `cargo run -p backstop-tests --bin crash-demo`

use backstop::state::EpochPhase;
use backstop_tests::*;

fn usdc(atoms: i128) -> String {
    let sign = if atoms < 0 { "-" } else { "" };
    let a = atoms.unsigned_abs();
    format!("{sign}{}.{:06}", a / USDC as u128, a % USDC as u128)
}

fn step(n: &mut u32, what: &str) {
    *n += 1;
    println!("\n[{n}] {what}");
}

fn main() {
    let mut n = 0;
    let mut ex = TestExchange::new();
    println!("Backstop crash demo — one exchange, one market (PERP at $100), IM 10%, MM 5%");
    println!(
        "liquidation fee 1% (20% of it to insurance), taker fee 0.10%, clawback: profit pro rata"
    );

    step(
        &mut n,
        "Seed the insurance fund with 100 USDC and open five accounts",
    );
    let donor = ex.user(100 * USDC);
    ex.contribute_insurance(&donor, 100 * USDC).unwrap();
    let names = ["loser", "winner-1", "winner-2", "keeper", "bystander"];
    let deposits = [1_100, 1_000, 1_000, 10_000, 500];
    let users: Vec<User> = deposits.iter().map(|d| ex.funded_user(d * USDC)).collect();
    for (name, d) in names.iter().zip(deposits) {
        println!("    {name:<10} deposits {d:>6} USDC");
    }

    step(
        &mut n,
        "loser buys 60 PERP from winner-1 and 40 from winner-2 at $100 (10x)",
    );
    ex.trade(&users[0], &users[1], 0, 60 * BASE, 100.0).unwrap();
    ex.trade(&users[0], &users[2], 0, 40 * BASE, 100.0).unwrap();
    println!(
        "    insurance fund {} USDC (100 + taker fees)",
        usdc(ex.insurance_balance() as i128)
    );

    step(&mut n, "The oracle gaps from $100 to $85");
    ex.set_price(0, 85.0);
    let h = ex.health(&users[0].margin).unwrap();
    println!(
        "    loser equity {} USDC, maintenance margin {} USDC → liquidatable, already underwater",
        usdc(h.equity),
        usdc(h.maintenance_margin as i128)
    );

    step(
        &mut n,
        "keeper liquidates the loser: the whole position moves at the oracle price, the \
         insurance fund pays the keeper's fee, and the loser, left flat and negative, is \
         written up in the same instruction (capital absorbed, insurance pays what it has, \
         the rest is deficit)",
    );
    let ins = ex.insurance_balance();
    let k0 = ex.account(&users[3]).pnl;
    ex.liquidate(&users[3], &users[0].margin, 0, u64::MAX)
        .unwrap();
    let e = ex.exchange();
    println!(
        "    keeper fee {} USDC; insurance {} → {} USDC; deficit {} USDC, phase {:?} (epoch {})",
        usdc((ex.account(&users[3]).pnl - k0) as i128),
        usdc(ins as i128),
        usdc(ex.insurance_balance() as i128),
        usdc(e.books.deficit as i128),
        e.epoch.phase,
        e.epoch.epoch_id
    );

    step(
        &mut n,
        "Clawback round: begin → tally → finalize → clawback",
    );
    ex.run_round(25);
    let e = ex.exchange();
    println!(
        "    phase {:?}, deficit {} USDC",
        e.epoch.phase,
        usdc(e.books.deficit as i128)
    );
    assert_eq!(e.epoch.phase, EpochPhase::Normal);

    println!("\nSummary (USDC)");
    println!(
        "{:<10} {:>12} {:>12} {:>14} {:>12} {:>14}",
        "account", "capital", "settled pnl", "positive PnL", "clawed back", "share of PnL"
    );
    for (name, u) in names.iter().zip(&users) {
        let a = ex.account(u);
        let w = a.clawback.last_weight;
        let share = if w > 0 {
            format!("{:.4}%", a.clawback.last_amount as f64 * 100.0 / w as f64)
        } else {
            "-".into()
        };
        println!(
            "{:<10} {:>12} {:>12} {:>14} {:>12} {:>14}",
            name,
            usdc(a.capital as i128),
            usdc(a.pnl as i128),
            usdc(w as i128),
            usdc(a.clawback.last_amount as i128),
            share
        );
    }
    println!(
        "\nvault {} + deficit {} == Σ capital + Σ pnl − Σ basis: checked after every one of {} transactions",
        usdc(ex.vault_balance() as i128),
        usdc(ex.exchange().books.deficit as i128),
        ex.tx_count
    );
    println!(
        "insurance fund {} USDC (the clawback's rounding excess)",
        usdc(ex.insurance_balance() as i128)
    );
}
