//! The crash scenario, over JSON-RPC on the localnet: a fresh exchange with one PERP
//! market at $100, an insurance fund of 100 USDC, a 10x long against two shorts, then a
//! gap to $85. A keeper (the `backstop-keeper` binary, with the "keeper" participant's
//! keypair) liquidates (which resolves the bankruptcy in the same instruction) and runs the
//! clawback round; the scenario
//! waits for the exchange to return to `Normal` and prints a summary table.
//!
//! The numbers are the worked example of docs/DESIGN.md §5.4, also asserted on LiteSVM in
//! `tests/tests/waterfall.rs`: charges of 211.224490, 140.816327 and 15.959184 USDC.

use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use anyhow::{bail, Context, Result};
use backstop::state::{EpochPhase, Exchange, MarginAccount};
use backstop_client::{decode, ix, pda};
use backstop_migrations::{deploy, send, Config};
use solana_rpc_client::rpc_client::RpcClient;
use solana_sdk::signature::{Keypair, Signature};
use solana_sdk::signer::Signer;
use solana_sdk::transaction::Transaction;

use crate::{land_all, Localnet};

pub const USDC: u64 = 1_000_000;
/// PERP has 6 decimals, like the LiteSVM harness's market.
pub const BASE: i64 = 1_000_000;

pub struct Person {
    pub name: &'static str,
    pub wallet: Keypair,
    pub token: Pubkey,
    pub deposit: u64,
}

pub struct Crash {
    pub exchange: Pubkey,
    pub market: Pubkey,
    pub oracle: Pubkey,
    /// loser, winner-1, winner-2, keeper, bystander.
    pub people: Vec<Person>,
}

impl Crash {
    pub fn person(&self, name: &str) -> &Person {
        self.people
            .iter()
            .find(|p| p.name == name)
            .expect("participant")
    }
    pub fn keeper(&self) -> &Keypair {
        &self.person("keeper").wallet
    }
    pub fn margin(&self, name: &str) -> Pubkey {
        pda::margin_account(&self.exchange, &self.person(name).wallet.pubkey())
    }
}

fn deploy_config(exchange_id: u16, oracle_max_age_secs: u32) -> Config {
    let text = format!(
        r#"
[exchange]
id = {exchange_id}
[exchange.params]
pnl_warmup_secs = 0
min_epoch_secs = 0
round_cooldown_secs = 0
clawback_rate_cap_bps = 10000
clawback_policy = "profit_pro_rata"
liquidation_buffer_bps = 1000
# zero admin delay: a localnet demo (real clusters: days)
admin_delay_secs = 0
max_pause_secs = 0
[[markets]]
name = "PERP"
base_decimals = 6
oracle = {{ kind = "feed", price = 100.0 }}
[markets.params]
initial_margin_bps = 1000
maintenance_margin_bps = 500
liquidation_fee_bps = 100
insurance_share_bps = 2000
taker_fee_bps = 10
max_trade_deviation_bps = 200
oracle_max_age_secs = {oracle_max_age_secs}
oracle_max_conf_bps = 200
"#
    );
    toml::from_str(&text).expect("the scenario's deploy config parses")
}

/// Sets the PERP oracle to `price` whole USDC; returns the confirmed transaction.
pub fn set_price(net: &Localnet, c: &Crash, price: u64) -> Result<Signature> {
    Ok(send(
        &net.rpc(),
        &net.admin,
        &[],
        &[ix::set_oracle_price(
            &net.admin.pubkey(),
            &c.oracle,
            (price * USDC) as i64,
            0,
        )],
    )?)
}

/// Deploys the scenario's exchange `exchange_id` (no accounts yet); idempotent.
pub fn deploy_exchange(
    net: &Localnet,
    exchange_id: u16,
    oracle_max_age_secs: u32,
) -> Result<backstop_migrations::Report> {
    deploy(
        &net.rpc(),
        &net.admin,
        &net.mint,
        &deploy_config(exchange_id, oracle_max_age_secs),
    )
}

/// Deploys exchange `exchange_id` (when not yet), funds the participants, seeds the
/// insurance fund with 100 USDC and opens the positions (loser long 100 PERP at $100
/// against winner-1 short 60 and winner-2 short 40). `keeper` is the keeper
/// participant's wallet, which deposits `keeper_deposit`.
pub fn setup(
    net: &Localnet,
    exchange_id: u16,
    oracle_max_age_secs: u32,
    keeper: Keypair,
    keeper_deposit: u64,
) -> Result<Crash> {
    let rpc = net.rpc();
    let report = deploy_exchange(net, exchange_id, oracle_max_age_secs)?;
    let (exchange, market, oracle) = (report.exchange, report.markets[0].1, report.markets[0].2);
    let keys = ix::ExchangeKeys::of(exchange);
    let mut c = Crash {
        exchange,
        market,
        oracle,
        people: vec![],
    };
    set_price(net, &c, 100)?;
    let mut keeper = Some(keeper);
    let plan = [
        ("loser", 1_100 * USDC),
        ("winner-1", 1_000 * USDC),
        ("winner-2", 1_000 * USDC),
        ("keeper", keeper_deposit),
        ("bystander", 500 * USDC),
    ];
    for (name, deposit) in plan {
        let wallet = match name {
            "keeper" => keeper.take().expect("one keeper"),
            _ => Keypair::new(),
        };
        net.fund_sol(&wallet.pubkey(), 10_000_000_000)?;
        let token = net.fund_usdc(&wallet.pubkey(), deposit + 100 * USDC)?;
        let mut ixs = vec![ix::create_margin_account(&wallet.pubkey(), &exchange)];
        if deposit > 0 {
            ixs.push(ix::deposit(&keys, &wallet.pubkey(), &token, deposit));
        }
        send(&rpc, &wallet, &[], &ixs)?;
        c.people.push(Person {
            name,
            wallet,
            token,
            deposit,
        });
    }
    let donor = Keypair::new();
    net.fund_sol(&donor.pubkey(), 1_000_000_000)?;
    let donor_token = net.fund_usdc(&donor.pubkey(), 100 * USDC)?;
    send(
        &rpc,
        &donor,
        &[],
        &[ix::contribute_insurance(
            &keys,
            &donor.pubkey(),
            &donor_token,
            100 * USDC,
        )],
    )?;
    set_price(net, &c, 100)?; // fresh for the trades, whatever the max age
    for (maker, qty) in [("winner-1", 60), ("winner-2", 40)] {
        let (l, m) = (&c.person("loser").wallet, &c.person(maker).wallet);
        send(
            &rpc,
            l,
            &[m],
            &[ix::trade(
                &keys,
                &l.pubkey(),
                &m.pubkey(),
                &market,
                &oracle,
                qty * BASE,
                100_000_000_000, // $100: 100 quote atoms per base atom, fixed point 10⁹
                &[],
            )],
        )?;
    }
    Ok(c)
}

pub fn exchange(rpc: &RpcClient, c: &Crash) -> Result<Exchange> {
    Ok(decode::exchange(&rpc.get_account_data(&c.exchange)?)?)
}

pub fn account(rpc: &RpcClient, c: &Crash, name: &str) -> Result<MarginAccount> {
    Ok(decode::margin_account(
        &rpc.get_account_data(&c.margin(name))?,
    )?)
}

/// Polls until the exchange has had a bad-debt epoch and is back to `Normal` with no
/// deficit (epoch id ≥ `epoch_at_least`), or fails after `timeout`.
pub fn wait_until_resolved(
    rpc: &RpcClient,
    c: &Crash,
    epoch_at_least: u64,
    timeout: Duration,
    mut progress: impl FnMut(&Exchange),
) -> Result<Exchange> {
    let start = Instant::now();
    loop {
        if let Ok(ex) = exchange(rpc, c) {
            progress(&ex);
            if ex.epoch.phase == EpochPhase::Normal
                && ex.books.deficit == 0
                && ex.epoch.epoch_id >= epoch_at_least
            {
                return Ok(ex);
            }
        }
        if start.elapsed() > timeout {
            let ex = exchange(rpc, c)?;
            bail!(
                "the exchange did not return to Normal within {timeout:?}: phase {:?}, deficit {}, epoch {}",
                ex.epoch.phase,
                ex.books.deficit,
                ex.epoch.epoch_id
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Collateral atoms as USDC with 6 decimals.
pub fn usdc(atoms: i128) -> String {
    backstop_client::view::format_scaled(atoms, 6, 6)
}

/// The summary table: per participant, deposit, capital, pnl, positive pnl weight,
/// clawed back and the share of its profit.
pub fn summary(rpc: &RpcClient, c: &Crash) -> Result<String> {
    use std::fmt::Write;
    let mut o = String::new();
    let ex = exchange(rpc, c)?;
    let _ = writeln!(
        o,
        "{:<10} {:>12} {:>12} {:>12} {:>14} {:>12} {:>10}",
        "account", "deposited", "capital", "pnl", "clawback base", "clawed back", "share"
    );
    for p in &c.people {
        let a = account(rpc, c, p.name)?;
        let w = a.clawback.last_weight;
        let share = if w > 0 {
            format!("{:.4}%", a.clawback.last_amount as f64 * 100.0 / w as f64)
        } else {
            "-".into()
        };
        let _ = writeln!(
            o,
            "{:<10} {:>12} {:>12} {:>12} {:>14} {:>12} {:>10}",
            p.name,
            usdc(p.deposit as i128),
            usdc(a.capital as i128),
            usdc(a.pnl as i128),
            usdc(w as i128),
            usdc(a.clawback.lifetime_total as i128),
            share
        );
    }
    let _ = writeln!(
        o,
        "\ninsurance fund {} USDC · deficit {} · phase {:?} · epoch {}",
        usdc(ex.books.insurance_balance as i128),
        usdc(ex.books.deficit as i128),
        ex.epoch.phase,
        ex.epoch.epoch_id,
    );
    let last = ex.epoch.last_closed;
    if last.epoch_id > 0 {
        let _ = writeln!(
            o,
            "last closed epoch {}: deficit {} USDC opened, {} clawed back, {} covered, in {} round(s)",
            last.epoch_id,
            usdc(last.deficit_opened as i128),
            usdc(last.clawed_back as i128),
            usdc(last.covered as i128),
            last.rounds,
        );
    }
    Ok(o)
}

/// A funded wallet with a margin account holding `deposit`, set up in bulk: one
/// transaction per wallet from the faucet (SOL, token account, mint), then one per wallet
/// (create + deposit, plus `then` signed by `cosigner` when given).
pub fn open_accounts(
    net: &Localnet,
    c: &Crash,
    deposits: &[u64],
    then: impl Fn(usize, &Keypair) -> Vec<anchor_lang::solana_program::instruction::Instruction>,
    cosigner: Option<&Keypair>,
) -> Result<Vec<Keypair>> {
    let rpc = net.rpc();
    let keys = ix::ExchangeKeys::of(c.exchange);
    let wallets: Vec<Keypair> = deposits.iter().map(|_| Keypair::new()).collect();
    let tokens: Vec<Keypair> = deposits.iter().map(|_| Keypair::new()).collect();
    let rent = rpc.get_minimum_balance_for_rent_exemption(165)?;
    land_all(&rpc, wallets.len(), |i, bh| {
        let mut ixs = vec![solana_system_interface::instruction::transfer(
            &net.faucet.pubkey(),
            &wallets[i].pubkey(),
            1_000_000_000,
        )];
        ixs.extend(backstop_client::token::create_token_account(
            &net.faucet.pubkey(),
            &tokens[i].pubkey(),
            rent,
            &net.mint,
            &wallets[i].pubkey(),
            &net.mint_authority.pubkey(),
            deposits[i],
        ));
        Transaction::new_signed_with_payer(
            &ixs,
            Some(&net.faucet.pubkey()),
            &[&net.faucet, &tokens[i], &net.mint_authority],
            bh,
        )
    })
    .context("funding wallets")?;
    land_all(&rpc, wallets.len(), |i, bh| {
        let w = &wallets[i];
        let mut ixs = vec![
            ix::create_margin_account(&w.pubkey(), &c.exchange),
            ix::deposit(&keys, &w.pubkey(), &tokens[i].pubkey(), deposits[i]),
        ];
        let extra = then(i, w);
        let mut signers = vec![w];
        if !extra.is_empty() {
            signers.extend(cosigner);
        }
        ixs.extend(extra);
        Transaction::new_signed_with_payer(&ixs, Some(&w.pubkey()), &signers, bh)
    })
    .context("opening margin accounts")?;
    Ok(wallets)
}

/// An exchange with no participants yet (one PERP market, oracle max age `max_age`).
pub fn empty_exchange(net: &Localnet, id: u16, max_age: u32) -> Result<Crash> {
    let r = deploy_exchange(net, id, max_age)?;
    Ok(Crash {
        exchange: r.exchange,
        market: r.markets[0].1,
        oracle: r.markets[0].2,
        people: vec![],
    })
}

/// Contributes `amount` to the insurance fund of `c`'s exchange from a new funded wallet.
pub fn fund_insurance(net: &Localnet, c: &Crash, amount: u64) -> Result<()> {
    let keys = ix::ExchangeKeys::of(c.exchange);
    let insurer = Keypair::new();
    net.fund_sol(&insurer.pubkey(), 1_000_000_000)?;
    let insurer_token = net.fund_usdc(&insurer.pubkey(), amount)?;
    send(
        &net.rpc(),
        &insurer,
        &[],
        &[ix::contribute_insurance(
            &keys,
            &insurer.pubkey(),
            &insurer_token,
            amount,
        )],
    )?;
    Ok(())
}

/// The worked example scaled out to `n` winners: on a new exchange at $100 with 100 USDC
/// of insurance, one 10x long of 100 PERP (the whale, 1,100 USDC) against `n` shorts of
/// `100 / n` PERP, each with `deposit` atoms. Returns the exchange and a funded keeper
/// wallet (10,000 USDC in its margin account).
pub fn many_winners(net: &Localnet, id: u16, n: usize, deposit: u64) -> Result<(Crash, Keypair)> {
    let c = empty_exchange(net, id, 600)?;
    let keys = ix::ExchangeKeys::of(c.exchange);
    set_price(net, &c, 100)?;
    let mut first = open_accounts(net, &c, &[1_100 * USDC, 10_000 * USDC], |_, _| vec![], None)?;
    let keeper = first.pop().context("keeper wallet")?;
    let whale = first.pop().context("whale wallet")?;
    fund_insurance(net, &c, 100 * USDC)?;
    let per = 100 * BASE / n as i64;
    open_accounts(
        net,
        &c,
        &vec![deposit; n],
        |_, w| {
            vec![ix::trade(
                &keys,
                &whale.pubkey(),
                &w.pubkey(),
                &c.market,
                &c.oracle,
                per,
                100_000_000_000,
                &[],
            )]
        },
        Some(&whale),
    )?;
    Ok((c, keeper))
}

/// `n` leveraged longs that one price update makes liquidatable at once: on a new
/// exchange at $100, each long holds 1 PERP with 15 USDC (6.7x) against one short whale
/// (50,000 USDC); at $88 each is below maintenance margin (equity ≈ 2.9 < 4.4) but not
/// bankrupt. Returns the exchange, the longs' wallets and a keeper wallet whose margin
/// account holds 1,000,000 USDC (enough initial margin to take every position over).
pub fn many_liquidatable(
    net: &Localnet,
    id: u16,
    n: usize,
) -> Result<(Crash, Vec<Keypair>, Keypair)> {
    let c = empty_exchange(net, id, 600)?;
    let keys = ix::ExchangeKeys::of(c.exchange);
    set_price(net, &c, 100)?;
    let mut first = open_accounts(
        net,
        &c,
        &[1_000_000 * USDC, 50_000 * USDC],
        |_, _| vec![],
        None,
    )?;
    let whale = first.pop().context("whale wallet")?;
    let keeper = first.pop().context("keeper wallet")?;
    let longs = open_accounts(
        net,
        &c,
        &vec![15 * USDC; n],
        |_, w| {
            vec![ix::trade(
                &keys,
                &w.pubkey(),
                &whale.pubkey(),
                &c.market,
                &c.oracle,
                BASE,
                100_000_000_000,
                &[],
            )]
        },
        Some(&whale),
    )?;
    Ok((c, longs, keeper))
}
