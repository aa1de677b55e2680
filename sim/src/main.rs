//! `backstop-sim`: when the insurance fund runs out, who pays, and how much more than
//! necessary — the same crash under every policy.

use std::path::PathBuf;

use anyhow::{Context, Result};
use backstop_sim::population::{self, SCENARIOS};
use backstop_sim::report::{self, Inputs};
use backstop_sim::{svg, Market, USDC};
use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "backstop-sim",
    version,
    about = "Simulate a crash and allocate the resulting deficit under Backstop's clawback and the industry's policies",
    after_help = "Liquidations and bankruptcies use the program's own math (backstop::math); the Backstop policies call \
the program's clawback `allocate`. Amounts are USDC. Example:\n  backstop-sim --scenario gap-20 --accounts 10000 --seed 7 --svg-dir docs/sim"
)]
struct Args {
    /// Named price path (see --list-scenarios).
    #[arg(long, default_value = "gap-20", conflicts_with = "prices")]
    scenario: String,
    /// A price path from CSV instead: one price (USDC per base unit) per line.
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Accounts to generate (with --seed).
    #[arg(long, default_value_t = 10_000, conflicts_with = "population")]
    accounts: usize,
    /// Seed of the generated population; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Load accounts from CSV (`capital,base,entry_price`) instead of generating them.
    #[arg(long)]
    population: Option<PathBuf>,
    /// Insurance fund at the start, in bps of total capital.
    #[arg(long, default_value_t = 10)]
    insurance_bps: u64,
    /// Per-round rate cap of the capped Backstop policy, bps.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    rate_cap_bps: u16,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Also write charges.svg and waterfall.svg into this directory.
    #[arg(long)]
    svg_dir: Option<PathBuf>,
    /// List the named scenarios and exit.
    #[arg(long)]
    list_scenarios: bool,
    /// Use dynamic margins (size-scaled rates, `MarketParams::DYNAMIC_EXAMPLE`) instead of
    /// the static 10% / 5%.
    #[arg(long)]
    dynamic_margins: bool,
    /// Run every named scenario under static and under dynamic margins and print the
    /// comparison (with --svg-dir, also margins.svg), then exit.
    #[arg(long)]
    compare_margins: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(a: Args) -> Result<()> {
    if a.compare_margins {
        let rows = backstop_sim::compare::run(a.accounts, a.seed, a.insurance_bps)?;
        print!("{}", backstop_sim::compare::table(&rows));
        if let Some(dir) = &a.svg_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("margins.svg");
            std::fs::write(&path, backstop_sim::compare::chart(&rows))
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    if a.list_scenarios {
        for (name, what, prices) in SCENARIOS {
            println!("{name:<12} {what}: {prices:?}");
        }
        return Ok(());
    }
    let (scenario, prices) = match &a.prices {
        Some(p) => (
            p.display().to_string(),
            population::prices_from_csv(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )?,
        ),
        None => (a.scenario.clone(), population::scenario(&a.scenario)?),
    };
    let market = if a.dynamic_margins {
        Market::dynamic()
    } else {
        Market::default()
    };
    let (accounts, seed) = match &a.population {
        Some(p) => (
            population::from_csv(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("in {}", p.display()))?,
            None,
        ),
        None => (
            population::generate(a.accounts, a.seed, prices[0], &market)?,
            Some(a.seed),
        ),
    };
    let capital: u128 = accounts.iter().map(|x| x.capital as u128).sum();
    let insurance = u64::try_from(capital * a.insurance_bps as u128 / 10_000)
        .context("insurance fund too large")?;
    let r = report::simulate(&Inputs {
        scenario,
        seed,
        population: accounts,
        prices,
        market,
        insurance,
        rate_cap_bps: a.rate_cap_bps,
    })?;
    match a.output {
        Output::Table => print!("{}", report::table(&r)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&r)?),
    }
    if let Some(dir) = &a.svg_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, body) in [
            ("charges.svg", svg::charges_chart(&r)),
            ("waterfall.svg", svg::waterfall_chart(&r)),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
            if a.output == Output::Table {
                println!("wrote {}", path.display());
            }
        }
    }
    if r.deficit == 0 && a.output == Output::Table {
        println!(
            "\nThe insurance fund ({} USDC) covered every loss: nothing to allocate. Try a harsher --scenario or a smaller --insurance-bps.",
            insurance / USDC
        );
    }
    Ok(())
}
