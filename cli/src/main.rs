//! `backstop` — the user CLI: margin accounts, deposits, withdrawals, perp trades,
//! settlement, and read-only views of accounts (positions, equity, margins, liquidation
//! prices, clawback receipts) and of the exchange.

mod admin;
mod render;

use std::process::ExitCode;

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::spl_token;
use anyhow::{anyhow, bail, Context, Result};
use backstop::state::MarginAccount;
use backstop_client::rpc::{self, ExchangeSnapshot, SendError};
use backstop_client::view::{self, parse_price, parse_scaled};
use backstop_client::{decode, ix, pda};
use base64::Engine;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::rpc_client::RpcClient;
use solana_rpc_client_api::config::{RpcAccountInfoConfig, RpcProgramAccountsConfig};
use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};
use solana_sdk::signature::{read_keypair_file, Keypair};
use solana_sdk::signer::Signer;
use solana_sdk::transaction::Transaction;

#[derive(Parser, Debug)]
#[command(
    name = "backstop",
    version,
    about = "Trade on a Backstop exchange: margin accounts, deposits, perps and clawback receipts",
    after_help = "Amounts are in collateral units (e.g. 100.5 USDC), sizes in base units (e.g. 2.5 SOL), \
prices in collateral per base unit. Start a local exchange with ./scripts/localnet.sh; the CLI then finds \
it through test-ledger/backstop/localnet.json."
)]
struct Cli {
    /// JSON-RPC URL or moniker: localnet, devnet, testnet, mainnet-beta (or l, d, t, m).
    /// Default: the Solana CLI config's json_rpc_url, else localnet.
    #[arg(short = 'u', long, global = true, env = "BACKSTOP_URL")]
    url: Option<String>,
    /// Signing keypair file (`~` is expanded). Default: the Solana CLI config's
    /// keypair_path, else ~/.config/solana/id.json.
    #[arg(short = 'k', long, global = true, env = "BACKSTOP_KEYPAIR")]
    keypair: Option<String>,
    /// Exchange address. Default: the localnet's, from test-ledger/backstop/localnet.json.
    #[arg(long, global = true, env = "BACKSTOP_EXCHANGE")]
    exchange: Option<Pubkey>,
    /// `display` for people, `json` for scripts (errors too, on stdout).
    #[arg(long, global = true, value_enum, default_value = "display")]
    output: Output,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Display,
    Json,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create, show or close your margin account.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Move collateral from a token account of yours into your margin account.
    Deposit {
        /// Amount in collateral units, e.g. 250 or 0.5.
        amount: String,
        /// Source token account (default: your token account of the collateral mint with
        /// the largest balance).
        #[arg(long)]
        from: Option<Pubkey>,
    },
    /// Move collateral from your margin account to a token account of yours.
    Withdraw {
        /// Amount in collateral units, or `all` for the whole capital.
        amount: String,
        /// Destination token account (default: your token account of the collateral mint
        /// with the largest balance).
        #[arg(long)]
        to: Option<Pubkey>,
    },
    /// Trade a perp with a counterparty at an agreed price (you are the taker and pay the
    /// taker fee). Both sign: pass the maker's keypair, or `--sign-only` to hand a
    /// partially signed transaction to the maker, who completes it with `backstop cosign`.
    Trade(TradeArgs),
    /// Sign and send a trade transaction that a taker prepared with `trade --sign-only`.
    Cosign {
        /// The base64 transaction printed by `backstop trade --sign-only`.
        transaction: String,
    },
    /// Settle realized and vested PnL of your account into capital.
    Settle,
    /// Exchange views.
    #[command(subcommand)]
    Exchange(ExchangeCmd),
    /// The admin's bounded powers: queue, apply and cancel parameter changes and
    /// insurance withdrawals, pause, hand over the admin key.
    #[command(subcommand)]
    Admin(admin::AdminCmd),
}

#[derive(Subcommand, Debug)]
enum AccountCmd {
    /// Create your margin account on the exchange (rent paid by your keypair).
    Create,
    /// Positions, equity, margins, liquidation prices and clawback receipts.
    Show {
        /// An owner wallet or a margin account address (default: your keypair's).
        address: Option<Pubkey>,
    },
    /// Close your (empty) margin account and get its rent back.
    Close,
}

#[derive(Subcommand, Debug)]
enum ExchangeCmd {
    /// Vault, insurance fund, deficit, epoch phase, and every market with its oracle price
    /// and open interest.
    Show,
}

#[derive(clap::Args, Debug)]
struct TradeArgs {
    /// Market name or index, e.g. SOL-PERP.
    #[arg(long)]
    market: String,
    /// `buy` (go long) or `sell` (go short), from your side.
    #[arg(long, value_enum)]
    side: Side,
    /// Size in base units, e.g. 2.5.
    #[arg(long)]
    size: String,
    /// Price in collateral units per base unit, e.g. 150.25 (must be within the market's
    /// band around the oracle price), or `oracle`: the oracle's current price — the only
    /// price that fills while a bad-debt deficit is open.
    #[arg(long, default_value = "oracle")]
    price: String,
    /// The maker's keypair file: signs now.
    #[arg(long, conflicts_with_all = ["maker", "sign_only"])]
    maker_keypair: Option<String>,
    /// The maker's wallet, with --sign-only.
    #[arg(long, requires = "sign_only")]
    maker: Option<Pubkey>,
    /// Sign as taker only and print the transaction for the maker to `cosign`.
    #[arg(long, requires = "maker")]
    sign_only: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.output;
    match run(cli) {
        Ok(v) => {
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let (message, hint, name) = describe_error(&e);
            if output == Output::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"error": message, "error_name": name, "hint": hint})
                    )
                    .unwrap_or_default()
                );
            } else {
                eprintln!("error: {message}");
                if let Some(h) = hint {
                    eprintln!("hint: {h}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

/// The message, a suggestion of what to do next, and the program error's name.
fn describe_error(e: &anyhow::Error) -> (String, Option<String>, Option<String>) {
    let message = format!("{e:#}");
    let name = e
        .chain()
        .find_map(|c| c.downcast_ref::<SendError>())
        .and_then(|s| s.error_name().map(str::to_string));
    let hint = name.as_deref().and_then(hint_for).map(str::to_string);
    (message, hint, name)
}

/// What to do next for the errors users meet.
fn hint_for(name: &str) -> Option<&'static str> {
    Some(match name {
        "InsufficientCapital" => "withdraw at most the account's capital; `backstop account show` shows it",
        "InitialMarginViolated" => "the account would fall below initial margin: deposit more, trade smaller, or reduce positions first",
        "BadDebtWithdrawalLimit" => "a bad-debt epoch is open: withdrawals are limited until its clawback round completes",
        "PriceOutsideBand" => "the trade price must be within the market's band around the oracle price (`backstop exchange show`)",
        "OracleStale" | "OracleConfidenceTooWide" | "OracleNonPositivePrice" => "the market's oracle price is not usable right now; retry after the next oracle update",
        "Paused" | "MarketPaused" => "the exchange or market is paused: trades that do not grow open interest still go through, and deposits and withdrawals stay open; check `backstop exchange show`",
        "PauseHoldsChanges" => "queued changes wait a full admin delay with no pause in force; `backstop exchange show` shows the pause",
        "ChangeExpired" => "the change was not applied within a day of becoming ready: cancel it and queue it again",
        "TimelockPending" => "the admin delay has not passed; `backstop exchange show` lists each queued change with its ready time",
        "WaitsForNormal" => "queued changes apply only while no bad-debt epoch is open; retry when `backstop exchange show` says Normal",
        "StepTooLarge" => "each change may move a rate by one step at most: queue a smaller change, then the next",
        "ChangeAlreadyQueued" => "a change of this kind is already queued: apply or cancel it first",
        "BankruptcyPending" => "a bankrupt account is unresolved: the keeper (or anyone) must resolve it first",
        "WrongEpochPhase" => "a clawback round is running; retry when `backstop exchange show` says the phase is Normal or BadDebt",
        "AccountNotInitialized" => "the margin account does not exist: create it with `backstop account create` (each party of a trade needs one)",
        "AccountNotEmpty" => "close positions and withdraw everything before closing the account",
        "TooManyPositions" => "the account holds the maximum number of positions; close one first",
        "OwnerMismatch" => "the token account belongs to another wallet: pass one you own with --from/--to",
        "InsufficientFunds" => "the token account holds less than the amount",
        "SelfTrade" => "taker and maker must be different wallets",
        "WarmupPending" => "profit vests over the exchange's warmup period; settle again later",
        "OpenInterestCapExceeded" => "the market is at its open-interest cap: trade a smaller size, or close or hand over a position (those always fill)",
        _ => return None,
    })
}

fn load_keypair(p: &str) -> Result<Keypair> {
    let path = rpc::expand_tilde(p);
    read_keypair_file(&path).map_err(|e| {
        anyhow!(
            "cannot read keypair {}: {e}; pass --keypair FILE (create one with `solana-keygen new`)",
            path.display()
        )
    })
}

fn resolve_exchange(given: Option<Pubkey>) -> Result<Pubkey> {
    match given {
        Some(e) => Ok(e),
        None => rpc::localnet_exchange("pass --exchange ADDRESS or set BACKSTOP_EXCHANGE"),
    }
}

pub(crate) struct Ctx {
    rpc: RpcClient,
    exchange: Pubkey,
    keypair: String,
    display: bool,
}

impl Ctx {
    fn signer(&self) -> Result<Keypair> {
        load_keypair(&self.keypair)
    }
    fn snapshot(&self) -> Result<ExchangeSnapshot> {
        rpc::load_exchange(&self.rpc, &self.exchange)
    }
    fn margin_account(&self, owner: &Pubkey) -> Result<Option<MarginAccount>> {
        let addr = pda::margin_account(&self.exchange, owner);
        match self
            .rpc
            .get_account_with_commitment(&addr, self.rpc.commitment())
        {
            Ok(r) => match r.value {
                Some(a) => Ok(Some(decode::margin_account(&a.data).map_err(|_| {
                    anyhow!("{addr} exists but is not a Backstop margin account")
                })?)),
                None => Ok(None),
            },
            Err(e) => Err(anyhow!(rpc::explain(&e))),
        }
    }
    fn require_margin_account(&self, owner: &Pubkey) -> Result<MarginAccount> {
        self.margin_account(owner)?.ok_or_else(|| {
            anyhow!(
                "{owner} has no margin account on exchange {}: create it with `backstop account create`",
                self.exchange
            )
        })
    }
    fn send(
        &self,
        what: &str,
        payer: &Keypair,
        signers: &[&Keypair],
        ixs: &[anchor_lang::solana_program::instruction::Instruction],
    ) -> Result<String> {
        let sig =
            rpc::send(&self.rpc, payer, signers, ixs).with_context(|| format!("{what} failed"))?;
        Ok(sig.to_string())
    }
    fn say(&self, s: impl AsRef<str>) {
        if self.display {
            println!("{}", s.as_ref());
        }
    }
}

fn run(cli: Cli) -> Result<Value> {
    let cluster = rpc::Cluster::resolve(cli.url.as_deref(), None, cli.keypair.as_deref())?;
    let ctx = Ctx {
        rpc: RpcClient::new_with_commitment(cluster.url, CommitmentConfig::confirmed()),
        exchange: resolve_exchange(cli.exchange)?,
        keypair: cluster.keypair.to_string_lossy().into_owned(),
        display: cli.output == Output::Display,
    };
    match cli.cmd {
        Cmd::Account(AccountCmd::Create) => account_create(&ctx),
        Cmd::Account(AccountCmd::Show { address }) => account_show(&ctx, address),
        Cmd::Account(AccountCmd::Close) => account_close(&ctx),
        Cmd::Deposit { amount, from } => deposit(&ctx, &amount, from),
        Cmd::Withdraw { amount, to } => withdraw(&ctx, &amount, to),
        Cmd::Trade(t) => trade(&ctx, t),
        Cmd::Cosign { transaction } => cosign(&ctx, &transaction),
        Cmd::Settle => settle(&ctx),
        Cmd::Exchange(ExchangeCmd::Show) => exchange_show(&ctx),
        Cmd::Admin(cmd) => admin::run(&ctx, cmd),
    }
}

fn account_create(ctx: &Ctx) -> Result<Value> {
    let owner = ctx.signer()?;
    let addr = pda::margin_account(&ctx.exchange, &owner.pubkey());
    if ctx.margin_account(&owner.pubkey())?.is_some() {
        bail!(
            "{} already has margin account {addr} on this exchange",
            owner.pubkey()
        );
    }
    ctx.snapshot()?; // a clear error when the exchange is wrong
    let sig = ctx.send(
        "creating the margin account",
        &owner,
        &[],
        &[ix::create_margin_account(&owner.pubkey(), &ctx.exchange)],
    )?;
    ctx.say(format!(
        "Created margin account {addr} for {}",
        owner.pubkey()
    ));
    ctx.say(format!(
        "Next: `backstop deposit AMOUNT`   (signature {sig})"
    ));
    Ok(
        json!({"margin_account": addr.to_string(), "owner": owner.pubkey().to_string(), "signature": sig}),
    )
}

fn account_close(ctx: &Ctx) -> Result<Value> {
    let owner = ctx.signer()?;
    ctx.require_margin_account(&owner.pubkey())?;
    let sig = ctx.send(
        "closing the margin account",
        &owner,
        &[],
        &[ix::close_margin_account(&owner.pubkey(), &ctx.exchange)],
    )?;
    let addr = pda::margin_account(&ctx.exchange, &owner.pubkey());
    ctx.say(format!(
        "Closed margin account {addr}; its rent went back to {}",
        owner.pubkey()
    ));
    Ok(json!({"margin_account": addr.to_string(), "signature": sig}))
}

/// Token accounts of `owner` for `mint`, with balances, largest first.
fn token_accounts(ctx: &Ctx, owner: &Pubkey, mint: &Pubkey) -> Result<Vec<(Pubkey, u64)>> {
    let cfg = RpcProgramAccountsConfig {
        filters: Some(vec![
            RpcFilterType::DataSize(spl_token::state::Account::LEN as u64),
            RpcFilterType::Memcmp(Memcmp::new_raw_bytes(0, mint.to_bytes().to_vec())),
            RpcFilterType::Memcmp(Memcmp::new_raw_bytes(32, owner.to_bytes().to_vec())),
        ]),
        account_config: RpcAccountInfoConfig {
            encoding: Some(solana_rpc_client_api::config::UiAccountEncoding::Base64),
            ..Default::default()
        },
        ..Default::default()
    };
    let found = ctx
        .rpc
        .get_program_ui_accounts_with_config(&spl_token::ID, cfg)
        .map_err(|e| anyhow!(rpc::explain(&e)))?;
    let mut out: Vec<(Pubkey, u64)> = found
        .into_iter()
        .filter_map(|(k, a)| {
            let data = a.data.decode()?;
            Some((k, spl_token::state::Account::unpack(&data).ok()?.amount))
        })
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

fn token_balance(ctx: &Ctx, account: &Pubkey) -> Result<spl_token::state::Account> {
    let data = ctx
        .rpc
        .get_account_data(account)
        .map_err(|_| anyhow!("token account {account} does not exist"))?;
    spl_token::state::Account::unpack(&data)
        .map_err(|_| anyhow!("{account} is not an SPL token account"))
}

fn default_token_account(ctx: &Ctx, owner: &Pubkey, mint: &Pubkey, flag: &str) -> Result<Pubkey> {
    token_accounts(ctx, owner, mint)?
        .first()
        .map(|(k, _)| *k)
        .ok_or_else(|| {
            anyhow!("{owner} has no token account of the collateral mint {mint}: create one, or pass {flag} ACCOUNT")
        })
}

fn deposit(ctx: &Ctx, amount: &str, from: Option<Pubkey>) -> Result<Value> {
    let owner = ctx.signer()?;
    let snap = ctx.snapshot()?;
    let ex = &snap.exchange;
    let atoms =
        parse_scaled(amount, ex.collateral_decimals as u32).map_err(|e| anyhow!("amount {e}"))?;
    ctx.require_margin_account(&owner.pubkey())?;
    let source = match from {
        Some(s) => s,
        None => default_token_account(ctx, &owner.pubkey(), &ex.collateral_mint, "--from")?,
    };
    let held = token_balance(ctx, &source)?;
    if held.owner == owner.pubkey() && held.amount < atoms {
        bail!(
            "insufficient funds: token account {source} holds {}, the deposit needs {}",
            render::amount(held.amount as i128, ex.collateral_decimals),
            render::amount(atoms as i128, ex.collateral_decimals)
        );
    }
    let sig = ctx.send(
        "deposit",
        &owner,
        &[],
        &[ix::deposit(
            &ix::ExchangeKeys::of(ctx.exchange),
            &owner.pubkey(),
            &source,
            atoms,
        )],
    )?;
    let after = ctx.require_margin_account(&owner.pubkey())?;
    ctx.say(format!(
        "Deposited {} from {source}; capital is now {}   (signature {sig})",
        render::amount(atoms as i128, ex.collateral_decimals),
        render::amount(after.capital as i128, ex.collateral_decimals)
    ));
    Ok(
        json!({"deposited": atoms, "source": source.to_string(), "capital": after.capital, "signature": sig}),
    )
}

fn withdraw(ctx: &Ctx, amount: &str, to: Option<Pubkey>) -> Result<Value> {
    let owner = ctx.signer()?;
    let snap = ctx.snapshot()?;
    let ex = &snap.exchange;
    let account = ctx.require_margin_account(&owner.pubkey())?;
    let atoms = if amount.eq_ignore_ascii_case("all") {
        account.capital
    } else {
        parse_scaled(amount, ex.collateral_decimals as u32).map_err(|e| anyhow!("amount {e}"))?
    };
    let destination = match to {
        Some(d) => d,
        None => default_token_account(ctx, &owner.pubkey(), &ex.collateral_mint, "--to")?,
    };
    let sig = ctx.send(
        "withdrawal",
        &owner,
        &[],
        &[ix::withdraw(
            &ix::ExchangeKeys::of(ctx.exchange),
            &owner.pubkey(),
            &destination,
            atoms,
            &snap.pairs_for(&account),
        )],
    )?;
    let after = ctx.require_margin_account(&owner.pubkey())?;
    ctx.say(format!(
        "Withdrew {} to {destination}; capital is now {}   (signature {sig})",
        render::amount(atoms as i128, ex.collateral_decimals),
        render::amount(after.capital as i128, ex.collateral_decimals)
    ));
    Ok(
        json!({"withdrawn": atoms, "destination": destination.to_string(), "capital": after.capital, "signature": sig}),
    )
}

/// The trade instruction between `taker` and `maker`, with the (market, oracle) pairs of
/// every other market either side holds.
fn trade_ix(
    ctx: &Ctx,
    snap: &ExchangeSnapshot,
    t: &TradeArgs,
    taker: &Pubkey,
    maker: &Pubkey,
) -> Result<(
    anchor_lang::solana_program::instruction::Instruction,
    TradeSummary,
)> {
    let m = snap.find_market(&t.market).ok_or_else(|| {
        let names: Vec<String> = snap.markets.iter().map(|m| m.name()).collect();
        anyhow!(
            "no market {:?} on this exchange; markets: {}",
            t.market,
            names.join(", ")
        )
    })?;
    let qd = snap.exchange.collateral_decimals;
    let bd = m.market.base_decimals;
    let size = parse_scaled(&t.size, bd as u32).map_err(|e| anyhow!("size {e}"))?;
    if size == 0 {
        bail!("size must be positive");
    }
    let size = i64::try_from(size).map_err(|_| anyhow!("size {} is too large", t.size))?;
    let price = if t.price.eq_ignore_ascii_case("oracle") {
        m.price(qd, snap.now)
            .map_err(|e| anyhow!("no usable oracle price for {}: {e}", t.market))?
            .price
    } else {
        let price = parse_price(&t.price, qd, bd).map_err(|e| anyhow!("price {e}"))?;
        if snap.exchange.books.deficit > 0 {
            if let Ok(o) = m.price(qd, snap.now) {
                if o.price != price {
                    bail!(
                        "a bad-debt deficit is open: trades fill only at the oracle price \
                         ({}); pass --price oracle",
                        view::format_price(o.price, qd, bd, 6)
                    );
                }
            }
        }
        price
    };
    let ta = ctx.require_margin_account(taker)?;
    let ma = ctx.require_margin_account(maker)?;
    let mut pairs = snap.pairs_for(&ta);
    for p in snap.pairs_for(&ma) {
        if !pairs.contains(&p) {
            pairs.push(p);
        }
    }
    pairs.retain(|(k, _)| *k != m.address);
    let base_qty = if t.side == Side::Buy { size } else { -size };
    let ix = ix::trade(
        &ix::ExchangeKeys::of(ctx.exchange),
        taker,
        maker,
        &m.address,
        &m.market.oracle,
        base_qty,
        price,
        &pairs,
    );
    let summary = TradeSummary {
        market: m.name(),
        side: if base_qty > 0 { "buy" } else { "sell" },
        size: t.size.clone(),
        base_qty,
        price: view::format_price(price, qd, bd, 4),
        price_fixed: price,
        taker: taker.to_string(),
        maker: maker.to_string(),
        transaction: None,
        signature: None,
    };
    Ok((ix, summary))
}

/// What `trade` did, as `--output json` prints it.
#[derive(Debug, serde::Serialize)]
struct TradeSummary {
    market: String,
    side: &'static str,
    size: String,
    base_qty: i64,
    price: String,
    price_fixed: u64,
    taker: String,
    maker: String,
    /// The taker-signed transaction (`--sign-only`).
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

fn trade(ctx: &Ctx, t: TradeArgs) -> Result<Value> {
    let taker = ctx.signer()?;
    let snap = ctx.snapshot()?;
    if t.sign_only {
        let maker = t.maker.expect("clap: --sign-only requires --maker");
        let (ix, mut summary) = trade_ix(ctx, &snap, &t, &taker.pubkey(), &maker)?;
        let blockhash = ctx
            .rpc
            .get_latest_blockhash()
            .map_err(|e| anyhow!(rpc::explain(&e)))?;
        let mut tx = Transaction::new_with_payer(&[ix], Some(&taker.pubkey()));
        tx.partial_sign(&[&taker], blockhash);
        let encoded = base64::engine::general_purpose::STANDARD.encode(bincode::serialize(&tx)?);
        ctx.say(format!(
            "Signed as taker {}. Send this to the maker {maker}, who runs (within about a minute, before the blockhash expires):\n\n  backstop cosign {encoded} --keypair MAKER.json\n",
            taker.pubkey()
        ));
        summary.transaction = Some(encoded);
        return Ok(serde_json::to_value(summary)?);
    }
    let maker_path = t.maker_keypair.clone().ok_or_else(|| {
        anyhow!("the maker must sign: pass --maker-keypair FILE, or --maker PUBKEY --sign-only")
    })?;
    let maker = load_keypair(&maker_path)?;
    let (ix, mut summary) = trade_ix(ctx, &snap, &t, &taker.pubkey(), &maker.pubkey())?;
    let sig = ctx.send("trade", &taker, &[&maker], &[ix])?;
    ctx.say(format!(
        "Traded: {} {} {} at {} (taker {}, maker {})   (signature {sig})",
        if t.side == Side::Buy {
            "bought"
        } else {
            "sold"
        },
        t.size,
        t.market,
        summary.price,
        taker.pubkey(),
        maker.pubkey()
    ));
    summary.signature = Some(sig);
    Ok(serde_json::to_value(summary)?)
}

fn cosign(ctx: &Ctx, encoded: &str) -> Result<Value> {
    let maker = ctx.signer()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| anyhow!("the transaction is not base64; paste the text `backstop trade --sign-only` printed"))?;
    let mut tx: Transaction = bincode::deserialize(&bytes)
        .map_err(|_| anyhow!("the text does not decode to a transaction"))?;
    let keys = tx.message.account_keys.clone();
    let trade_disc = <backstop::instruction::Trade as anchor_lang::Discriminator>::DISCRIMINATOR;
    let is_trade = tx.message.instructions.len() == 1
        && keys.get(tx.message.instructions[0].program_id_index as usize) == Some(&backstop::ID)
        && tx.message.instructions[0].data.starts_with(trade_disc);
    if !is_trade {
        bail!("refusing to sign: this transaction is not a single Backstop trade");
    }
    let n_signers = tx.message.header.num_required_signatures as usize;
    let position = keys[..n_signers].iter().position(|k| *k == maker.pubkey());
    let Some(position) = position else {
        let needed: Vec<String> = keys[..n_signers].iter().map(|k| k.to_string()).collect();
        bail!(
            "keypair {} is not a signer of this trade (it needs {}): pass the maker's keypair with --keypair",
            maker.pubkey(),
            needed.join(" and ")
        );
    };
    // The taker's signature must already be valid: never co-sign a forged trade.
    let msg = tx.message_data();
    for (i, sig) in tx.signatures.iter().enumerate() {
        if i != position && !sig.verify(keys[i].as_ref(), &msg) {
            bail!(
                "refusing to sign: the signature of {} is missing or invalid",
                keys[i]
            );
        }
    }
    let data = &tx.message.instructions[0].data[8..];
    let args: backstop::instruction::Trade =
        anchor_lang::AnchorDeserialize::deserialize(&mut &data[..])
            .map_err(|_| anyhow!("refusing to sign: undecodable trade arguments"))?;
    ctx.say(format!(
        "Co-signing a trade as maker {}: taker {} {} {} base atoms at fixed price {}",
        maker.pubkey(),
        keys[0],
        if args.base_qty > 0 { "buys" } else { "sells" },
        args.base_qty.unsigned_abs(),
        args.price
    ));
    let blockhash = tx.message.recent_blockhash;
    tx.try_partial_sign(&[&maker], blockhash)
        .map_err(|e| anyhow!("signing failed: {e}"))?;
    let sig = rpc::send_transaction(&ctx.rpc, &tx).context("trade failed")?;
    ctx.say(format!("Trade confirmed   (signature {sig})"));
    Ok(
        json!({"signature": sig.to_string(), "base_qty": args.base_qty, "price_fixed": args.price, "taker": keys[0].to_string(), "maker": maker.pubkey().to_string()}),
    )
}

fn settle(ctx: &Ctx) -> Result<Value> {
    let owner = ctx.signer()?;
    let snap = ctx.snapshot()?;
    let before = ctx.require_margin_account(&owner.pubkey())?;
    let sig = ctx.send(
        "settlement",
        &owner,
        &[],
        &[ix::settle_pnl(
            &ix::ExchangeKeys::of(ctx.exchange),
            &owner.pubkey(),
            &snap.pairs_for(&before),
        )],
    )?;
    let after = ctx.require_margin_account(&owner.pubkey())?;
    let d = snap.exchange.collateral_decimals;
    ctx.say(format!(
        "Settled: capital {} → {}, unsettled pnl {} → {}   (signature {sig})",
        render::amount(before.capital as i128, d),
        render::amount(after.capital as i128, d),
        render::amount(before.pnl as i128, d),
        render::amount(after.pnl as i128, d),
    ));
    Ok(
        json!({"capital_before": before.capital, "capital": after.capital, "pnl_before": before.pnl, "pnl": after.pnl, "signature": sig}),
    )
}

fn account_show(ctx: &Ctx, address: Option<Pubkey>) -> Result<Value> {
    let snap = ctx.snapshot()?;
    let who = match address {
        Some(a) => a,
        None => ctx.signer()?.pubkey(),
    };
    // Either a margin account address or an owner wallet.
    let (addr, account) = match ctx
        .rpc
        .get_account(&who)
        .ok()
        .filter(|a| a.owner == backstop::ID)
    {
        Some(a) => (
            who,
            decode::margin_account(&a.data)
                .map_err(|_| anyhow!("{who} is a Backstop account but not a margin account"))?,
        ),
        None => {
            let addr = pda::margin_account(&ctx.exchange, &who);
            let acc = ctx.margin_account(&who)?.ok_or_else(|| {
                anyhow!(
                    "no margin account for {who} on exchange {}: check the address, or create one with `backstop account create`",
                    ctx.exchange
                )
            })?;
            (addr, acc)
        }
    };
    if account.exchange != ctx.exchange {
        bail!(
            "margin account {addr} belongs to exchange {}, not {}",
            account.exchange,
            ctx.exchange
        );
    }
    let view = render::account_view(&snap, &addr, &account);
    if ctx.display {
        print!("{}", view.text());
    }
    Ok(serde_json::to_value(view)?)
}

fn exchange_show(ctx: &Ctx) -> Result<Value> {
    let snap = ctx.snapshot()?;
    let view = render::exchange_view(&snap);
    if ctx.display {
        print!("{}", view.text());
    }
    Ok(serde_json::to_value(view)?)
}
