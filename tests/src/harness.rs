use std::collections::BTreeMap;

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::error::InstructionError;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::AnchorDeserialize;
use anchor_spl::token::spl_token;
use backstop::error::BackstopError;
use backstop::events::HealthReport;
use backstop::instructions::AddMarketArgs;
use backstop::math::oracle_price::{to_fixed, RawPrice};
use backstop::state::{
    ClawbackPolicy, EpochPhase, Exchange, ExchangeParams, MarginAccount, MarketParams, OracleFeed,
    OracleKind, PerpMarket,
};
use backstop_client::ix::{self, ExchangeKeys};
use backstop_client::{decode, pda};
use litesvm::types::{FailedTransactionMetadata, TransactionMetadata};
use litesvm::LiteSVM;
use solana_sdk::account::Account;
use solana_sdk::clock::Clock;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;
use solana_sdk::transaction::{Transaction, TransactionError};

/// Collateral decimals of the test mint (USDC-like).
pub const COLLATERAL_DECIMALS: u8 = 6;
/// One whole collateral unit in atoms.
pub const USDC: u64 = 1_000_000;
/// Oracle exponent of the test feeds: prices are in micro-units.
pub const ORACLE_EXPO: i32 = -6;
/// Base decimals of the test markets.
pub const BASE_DECIMALS: u8 = 6;
/// One whole base unit in atoms.
pub const BASE: i64 = 1_000_000;
/// Wall-clock start of every test chain.
pub const START_TIME: i64 = 1_750_000_000;

pub fn default_exchange_params() -> ExchangeParams {
    ExchangeParams {
        pnl_warmup_secs: 0,
        min_epoch_secs: 0,
        round_cooldown_secs: 0,
        clawback_rate_cap_bps: 10_000,
        clawback_policy: ClawbackPolicy::ProfitProRata,
        liquidation_buffer_bps: 1_000,
        admin_delay_secs: 0,
        max_pause_secs: 0,
    }
}

pub fn default_market_params() -> MarketParams {
    MarketParams::EXAMPLE
}

/// `add_market` arguments for a "PERP" market priced by an `OracleFeed`.
pub fn feed_market_args(params: MarketParams) -> AddMarketArgs {
    let mut name = [0u8; 16];
    name[..4].copy_from_slice(b"PERP");
    AddMarketArgs {
        name,
        oracle_kind: OracleKind::Feed,
        pyth_feed_id: [0; 32],
        base_decimals: BASE_DECIMALS,
        params,
    }
}

/// A number from the environment (test volumes: `PROPTEST_CASES`, `BACKSTOP_MODEL_*`),
/// or `default`.
pub fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A trader: wallet keypair, collateral token account and margin account.
pub struct User {
    pub key: Keypair,
    pub token: Pubkey,
    pub margin: Pubkey,
}

impl User {
    pub fn pubkey(&self) -> Pubkey {
        self.key.pubkey()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MarketHandle {
    pub index: u16,
    pub pubkey: Pubkey,
    pub oracle: Pubkey,
}

/// Why a transaction failed.
#[derive(Debug)]
pub struct TxFailure {
    pub err: TransactionError,
    pub logs: Vec<String>,
}

impl TxFailure {
    /// The custom error code of the failing instruction, if any.
    pub fn custom_code(&self) -> Option<u32> {
        match &self.err {
            TransactionError::InstructionError(_, InstructionError::Custom(c)) => Some(*c),
            _ => None,
        }
    }
}

pub type TxResult = Result<TransactionMetadata, TxFailure>;

/// Asserts `res` failed with custom error code `want` (`what` names it in the message).
#[track_caller]
fn assert_code(res: TxResult, want: u32, what: &dyn std::fmt::Debug) {
    match res {
        Ok(_) => panic!("expected {what:?}, but the transaction succeeded"),
        Err(f) => assert_eq!(
            f.custom_code(),
            Some(want),
            "expected {what:?} ({want}), got {:?}\nlogs:\n{}",
            f.err,
            f.logs.join("\n")
        ),
    }
}

/// Asserts `res` failed with Backstop error `e`.
#[track_caller]
pub fn assert_backstop_err(res: TxResult, e: BackstopError) {
    assert_code(res, anchor_lang::error::ERROR_CODE_OFFSET + e as u32, &e);
}

/// Asserts `res` failed with Anchor framework error `e` (constraint, ownership, …).
#[track_caller]
pub fn assert_anchor_err(res: TxResult, e: anchor_lang::error::ErrorCode) {
    assert_code(res, e as u32, &e);
}

/// Asserts `res` failed at all (for failures outside the program: missing signature,
/// token program errors).
#[track_caller]
pub fn assert_failed(res: TxResult) -> TxFailure {
    match res {
        Ok(_) => panic!("expected a failure, but the transaction succeeded"),
        Err(f) => f,
    }
}

/// One exchange in a fresh LiteSVM, with a funded payer, a collateral mint and markets
/// priced by `OracleFeed`s the admin controls.
pub struct TestExchange {
    pub svm: LiteSVM,
    pub payer: Keypair,
    pub admin: Keypair,
    pub mint_authority: Keypair,
    pub mint: Pubkey,
    pub keys: ExchangeKeys,
    pub markets: Vec<MarketHandle>,
    /// Every margin account the harness knows of (for invariant sums).
    pub accounts: Vec<Pubkey>,
    /// Token accounts the harness created (for I5 snapshots).
    pub token_accounts: Vec<Pubkey>,
    /// Last price set per market (raw, expo ORACLE_EXPO), to refresh after time moves.
    pub last_raw_prices: Vec<i64>,
    /// Whether vault balances must equal the books exactly (off after a direct donation).
    pub exact_vaults: bool,
    /// Transactions sent (successful and failed).
    pub tx_count: u64,
    /// Transactions accepted through `send`.
    pub ok_count: u64,
}

impl TestExchange {
    /// An exchange with default parameters and one market at $100.
    pub fn new() -> Self {
        Self::with_params(
            default_exchange_params(),
            &[default_market_params()],
            &[100.0],
        )
    }

    /// [`TestExchange::new`] without the taker fee, so balances are round numbers.
    pub fn fee_free() -> Self {
        let market = MarketParams {
            taker_fee_bps: 0,
            ..default_market_params()
        };
        Self::with_params(default_exchange_params(), &[market], &[100.0])
    }

    /// An exchange with `params` and one market per entry of `markets` at `prices`.
    pub fn with_params(params: ExchangeParams, markets: &[MarketParams], prices: &[f64]) -> Self {
        let mut svm = LiteSVM::new();
        svm.add_builtin(backstop::ID, backstop_native::builtin());
        let mut clock: Clock = svm.get_sysvar();
        clock.unix_timestamp = START_TIME;
        clock.slot = 1_000;
        svm.set_sysvar(&clock);

        let payer = Keypair::new();
        let admin = Keypair::new();
        let mint_authority = Keypair::new();
        for k in [&payer, &admin] {
            svm.airdrop(&k.pubkey(), 1_000_000_000_000)
                .expect("airdrop");
        }
        let mut ex = TestExchange {
            svm,
            payer,
            admin,
            mint_authority,
            mint: Pubkey::default(),
            keys: ExchangeKeys::new(&Pubkey::default(), 0),
            markets: vec![],
            accounts: vec![],
            token_accounts: vec![],
            last_raw_prices: vec![],
            exact_vaults: true,
            tx_count: 0,
            ok_count: 0,
        };
        ex.mint = ex.create_mint();
        ex.keys = ExchangeKeys::new(&ex.admin.pubkey(), 0);
        let admin = ex.admin.insecure_clone();
        ex.send(
            &[ix::initialize_exchange(
                &admin.pubkey(),
                0,
                &ex.mint,
                params,
            )],
            &[&admin],
        )
        .expect("initialize_exchange");
        for (i, (mp, price)) in markets.iter().zip(prices).enumerate() {
            ex.add_feed_market(i as u16, *mp, *price);
        }
        ex
    }

    pub fn exchange_key(&self) -> Pubkey {
        self.keys.exchange
    }

    fn create_mint(&mut self) -> Pubkey {
        let mint = Keypair::new();
        let rent = self
            .svm
            .minimum_balance_for_rent_exemption(spl_token::state::Mint::LEN);
        let ixs = backstop_client::token::create_mint(
            &self.payer.pubkey(),
            &mint.pubkey(),
            rent,
            &self.mint_authority.pubkey(),
            COLLATERAL_DECIMALS,
        );
        self.send_raw(&ixs, &[&mint]).expect("create mint");
        mint.pubkey()
    }

    /// Creates a token account of `mint` owned by `owner`, funded with `amount`.
    pub fn create_token_account(&mut self, mint: &Pubkey, owner: &Pubkey, amount: u64) -> Pubkey {
        let acct = Keypair::new();
        let rent = self
            .svm
            .minimum_balance_for_rent_exemption(spl_token::state::Account::LEN);
        let ixs = backstop_client::token::create_token_account(
            &self.payer.pubkey(),
            &acct.pubkey(),
            rent,
            mint,
            owner,
            &self.mint_authority.pubkey(),
            amount,
        );
        let auth = self.mint_authority.insecure_clone();
        let signers: Vec<&Keypair> = if amount > 0 {
            vec![&acct, &auth]
        } else {
            vec![&acct]
        };
        self.send_raw(&ixs, &signers).expect("create token account");
        self.token_accounts.push(acct.pubkey());
        acct.pubkey()
    }

    /// Mints more collateral to a token account.
    pub fn mint_to(&mut self, token: &Pubkey, amount: u64) {
        let ix = spl_token::instruction::mint_to(
            &spl_token::ID,
            &self.mint,
            token,
            &self.mint_authority.pubkey(),
            &[],
            amount,
        )
        .unwrap();
        let auth = self.mint_authority.insecure_clone();
        self.send_raw(&[ix], &[&auth]).expect("mint_to");
    }

    /// Adds market `index` priced by a new `OracleFeed` at `price` (whole quote units).
    pub fn add_feed_market(
        &mut self,
        index: u16,
        params: MarketParams,
        price: f64,
    ) -> MarketHandle {
        let admin = self.admin.insecure_clone();
        let ex_key = self.exchange_key();
        let feed_index = self.exchange().num_oracle_feeds;
        let feed = pda::oracle_feed(&ex_key, feed_index);
        let raw = raw_price(price);
        self.send(
            &[ix::create_oracle_feed(
                &admin.pubkey(),
                &ex_key,
                feed_index,
                &admin.pubkey(),
                ORACLE_EXPO,
                raw,
                0,
            )],
            &[&admin],
        )
        .expect("create_oracle_feed");
        let args = feed_market_args(params);
        self.send(
            &[ix::add_market(&admin.pubkey(), &ex_key, index, &feed, args)],
            &[&admin],
        )
        .expect("add_market");
        let handle = MarketHandle {
            index,
            pubkey: pda::market(&ex_key, index),
            oracle: feed,
        };
        self.markets.push(handle);
        self.last_raw_prices.push(raw);
        handle
    }

    // ---------------------------------------------------------------- sending

    /// Sends without invariant checks (setup of mints and token accounts).
    pub fn send_raw(&mut self, ixs: &[Instruction], signers: &[&Keypair]) -> TxResult {
        let mut all: Vec<&Keypair> = vec![&self.payer];
        all.extend_from_slice(signers);
        let tx = Transaction::new_signed_with_payer(
            ixs,
            Some(&self.payer.pubkey()),
            &all,
            self.svm.latest_blockhash(),
        );
        self.tx_count += 1;
        let res = self.svm.send_transaction(tx);
        self.svm.expire_blockhash();
        res.map_err(|FailedTransactionMetadata { err, meta }| TxFailure {
            err,
            logs: meta.logs,
        })
    }

    /// Sends a transaction signed by the payer and `signers`. A success must leave I1–I4
    /// intact against the token balances; a failure must leave every tracked account
    /// byte-for-byte unchanged (I5).
    pub fn send(&mut self, ixs: &[Instruction], signers: &[&Keypair]) -> TxResult {
        let before = self.snapshot();
        let res = self.send_raw(ixs, signers);
        match &res {
            Ok(_) => {
                self.ok_count += 1;
                self.assert_invariants();
            }
            Err(_) => {
                let after = self.snapshot();
                for (k, v) in &before {
                    assert_eq!(
                        Some(v),
                        after.get(k),
                        "I5: rejected transaction changed {k}"
                    );
                }
                assert_eq!(
                    before.len(),
                    after.len(),
                    "I5: rejected transaction created accounts"
                );
            }
        }
        res
    }

    /// Every tracked account's full state.
    pub fn snapshot(&self) -> BTreeMap<Pubkey, Account> {
        let mut keys = vec![
            self.keys.exchange,
            self.keys.vault,
            self.keys.insurance_vault,
        ];
        for m in &self.markets {
            keys.push(m.pubkey);
            keys.push(m.oracle);
        }
        keys.extend(self.accounts.iter().copied());
        keys.extend(self.token_accounts.iter().copied());
        keys.into_iter()
            .filter_map(|k| self.svm.get_account(&k).map(|a| (k, a)))
            .collect()
    }

    // ---------------------------------------------------------------- reading

    pub fn exchange(&self) -> Exchange {
        decode::exchange(&self.svm.get_account(&self.keys.exchange).unwrap().data).unwrap()
    }

    pub fn market(&self, index: u16) -> PerpMarket {
        let m = self.markets[index as usize];
        decode::market(&self.svm.get_account(&m.pubkey).unwrap().data).unwrap()
    }

    pub fn feed(&self, index: u16) -> OracleFeed {
        let m = self.markets[index as usize];
        decode::oracle_feed(&self.svm.get_account(&m.oracle).unwrap().data).unwrap()
    }

    pub fn account(&self, user: &User) -> MarginAccount {
        self.account_at(&user.margin)
    }

    pub fn account_at(&self, key: &Pubkey) -> MarginAccount {
        decode::margin_account(&self.svm.get_account(key).expect("margin account").data).unwrap()
    }

    pub fn token_balance(&self, token: &Pubkey) -> u64 {
        let a = self.svm.get_account(token).expect("token account");
        spl_token::state::Account::unpack(&a.data).unwrap().amount
    }

    pub fn vault_balance(&self) -> u64 {
        self.token_balance(&self.keys.vault)
    }

    pub fn insurance_balance(&self) -> u64 {
        self.token_balance(&self.keys.insurance_vault)
    }

    pub fn now(&self) -> i64 {
        self.svm.get_sysvar::<Clock>().unix_timestamp
    }

    /// Fixed-point price of market `index` for a price in whole quote units.
    /// The price last published on market `index`'s feed, in whole quote units.
    pub fn price(&self, index: u16) -> f64 {
        self.last_raw_prices[index as usize] as f64 / 1e6
    }

    pub fn fixed(&self, price: f64) -> u64 {
        to_fixed(
            &RawPrice {
                price: raw_price(price),
                conf: 0,
                expo: ORACLE_EXPO,
                publish_time: 0,
            },
            COLLATERAL_DECIMALS,
            BASE_DECIMALS,
        )
        .unwrap()
        .price
    }

    /// (market, oracle) pairs for every market.
    pub fn all_pairs(&self) -> Vec<(Pubkey, Pubkey)> {
        self.markets.iter().map(|m| (m.pubkey, m.oracle)).collect()
    }

    /// (market, oracle) pairs for the markets `account` holds, excluding `except`.
    pub fn pairs_for(&self, account: &Pubkey, except: Option<u16>) -> Vec<(Pubkey, Pubkey)> {
        let Some(a) = self.svm.get_account(account) else {
            return vec![];
        };
        let Ok(acct) = decode::margin_account(&a.data) else {
            return vec![];
        };
        acct.positions
            .iter()
            .filter(|p| p.active && Some(p.market_index) != except)
            .map(|p| {
                let m = self.markets[p.market_index as usize];
                (m.pubkey, m.oracle)
            })
            .collect()
    }

    pub fn union_pairs(&self, accounts: &[&Pubkey], except: Option<u16>) -> Vec<(Pubkey, Pubkey)> {
        let mut out: Vec<(Pubkey, Pubkey)> = vec![];
        for a in accounts {
            for p in self.pairs_for(a, except) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    // ---------------------------------------------------------------- invariants

    /// I1–I4 against the real token balances and a full scan of the known accounts.
    #[track_caller]
    pub fn assert_invariants(&self) {
        let ex = self.exchange();
        let vault = self.vault_balance();
        let insurance = self.insurance_balance();
        let (mut cap, mut pnl, mut basis) = (0i128, 0i128, 0i128);
        let mut net_base: BTreeMap<u16, (i128, u64, u64)> = BTreeMap::new();
        for key in &self.accounts {
            let Some(a) = self.svm.get_account(key) else {
                continue;
            };
            if a.lamports == 0 {
                continue;
            }
            let m = decode::margin_account(&a.data).unwrap();
            cap += m.capital as i128;
            pnl += m.pnl as i128;
            for p in m.positions.iter().filter(|p| p.active) {
                assert_ne!(
                    p.base_qty, 0,
                    "an active position with zero base must be freed"
                );
                basis += p.quote_basis as i128;
                let e = net_base.entry(p.market_index).or_default();
                e.0 += p.base_qty as i128;
                if p.base_qty > 0 {
                    e.1 += p.base_qty as u64;
                } else {
                    e.2 += p.base_qty.unsigned_abs();
                }
            }
        }
        // Aggregates equal the sums over accounts.
        assert_eq!(ex.books.total_capital as i128, cap, "Σ capital aggregate");
        assert_eq!(ex.books.total_pnl, pnl, "Σ pnl aggregate");
        assert_eq!(ex.books.total_basis, basis, "Σ basis aggregate");
        // I1 on the books; with exact vaults (no donations) the books' vault balance is the
        // token balance, so this is I1 against the real token balance.
        assert_eq!(
            ex.books.vault_balance as i128 + ex.books.deficit as i128,
            cap + pnl - basis,
            "I1: vault {} + deficit {} != capital {cap} + pnl {pnl} - basis {basis}",
            ex.books.vault_balance,
            ex.books.deficit
        );
        if self.exact_vaults {
            assert_eq!(
                vault, ex.books.vault_balance,
                "vault token balance == books"
            );
            assert_eq!(
                insurance, ex.books.insurance_balance,
                "I3: insurance vault == recorded"
            );
        } else {
            assert!(vault >= ex.books.vault_balance && insurance >= ex.books.insurance_balance);
        }
        // I2 per market.
        for (i, _) in self.markets.iter().enumerate() {
            let m = self.market(i as u16);
            let (net, long, short) = net_base.get(&(i as u16)).copied().unwrap_or_default();
            assert_eq!(net, 0, "I2: Σ base in market {i}");
            assert_eq!(
                (m.long_open_interest, m.short_open_interest),
                (long, short),
                "OI of market {i}"
            );
        }
        // I4: the phase agrees with the deficit.
        match ex.epoch.phase {
            EpochPhase::Normal => assert_eq!(ex.books.deficit, 0, "I4: Normal with a deficit"),
            EpochPhase::BadDebt | EpochPhase::Tallying => {
                assert!(
                    ex.books.deficit > 0,
                    "I4: {:?} without a deficit",
                    ex.epoch.phase
                )
            }
            EpochPhase::Applying => {}
        }
    }

    // ---------------------------------------------------------------- time & prices

    /// Moves the clock forward `secs` seconds (and slots accordingly).
    pub fn advance(&mut self, secs: i64) {
        let mut c: Clock = self.svm.get_sysvar();
        c.unix_timestamp += secs;
        c.slot += (secs.max(0) as u64) * 2 + 1;
        self.svm.set_sysvar(&c);
        self.svm.expire_blockhash();
    }

    /// Publishes `price` (whole quote units) on market `index`'s feed.
    pub fn set_price(&mut self, index: u16, price: f64) {
        self.set_raw_price(index, raw_price(price), 0)
            .expect("set_oracle_price");
    }

    pub fn set_raw_price(&mut self, index: u16, raw: i64, conf: u64) -> TxResult {
        let feed = self.markets[index as usize].oracle;
        let admin = self.admin.insecure_clone();
        let res = self.send(
            &[ix::set_oracle_price(&admin.pubkey(), &feed, raw, conf)],
            &[&admin],
        );
        if res.is_ok() {
            self.last_raw_prices[index as usize] = raw;
        }
        res
    }

    /// Re-publishes every market's last price (after `advance`).
    pub fn refresh_prices(&mut self) {
        for i in 0..self.markets.len() {
            let raw = self.last_raw_prices[i];
            self.set_raw_price(i as u16, raw, 0).expect("refresh");
        }
    }

    // ---------------------------------------------------------------- users

    /// A new trader with `tokens` collateral in their wallet and a margin account.
    pub fn user(&mut self, tokens: u64) -> User {
        let user = self.wallet_user(tokens);
        self.create_account(&user).expect("create_margin_account");
        user
    }

    /// A new trader with `tokens` collateral in their wallet and no margin account yet
    /// (its address is tracked, so the invariants cover it once created).
    pub fn wallet_user(&mut self, tokens: u64) -> User {
        let key = Keypair::new();
        self.svm
            .airdrop(&key.pubkey(), 10_000_000_000)
            .expect("airdrop");
        let token = self.create_token_account(&self.mint.clone(), &key.pubkey(), tokens);
        let margin = pda::margin_account(&self.exchange_key(), &key.pubkey());
        self.accounts.push(margin);
        User { key, token, margin }
    }

    /// A trader with `deposit` already deposited (and nothing left in the wallet).
    pub fn funded_user(&mut self, deposit: u64) -> User {
        let u = self.user(deposit);
        self.deposit(&u, deposit).expect("deposit");
        u
    }

    pub fn create_account(&mut self, user: &User) -> TxResult {
        let ex = self.exchange_key();
        self.send(
            &[ix::create_margin_account(&user.pubkey(), &ex)],
            &[&user.key],
        )
    }

    pub fn close_account(&mut self, user: &User) -> TxResult {
        let ex = self.exchange_key();
        self.send(
            &[ix::close_margin_account(&user.pubkey(), &ex)],
            &[&user.key],
        )
    }

    pub fn deposit(&mut self, user: &User, amount: u64) -> TxResult {
        let k = self.keys;
        self.send(
            &[ix::deposit(&k, &user.pubkey(), &user.token, amount)],
            &[&user.key],
        )
    }

    pub fn withdraw(&mut self, user: &User, amount: u64) -> TxResult {
        let k = self.keys;
        let pairs = self.pairs_for(&user.margin, None);
        self.send(
            &[ix::withdraw(
                &k,
                &user.pubkey(),
                &user.token,
                amount,
                &pairs,
            )],
            &[&user.key],
        )
    }

    /// `taker` trades `base_qty` (signed, taker side) with `maker` in market `index` at
    /// `price` (whole quote units).
    pub fn trade(
        &mut self,
        taker: &User,
        maker: &User,
        index: u16,
        base_qty: i64,
        price: f64,
    ) -> TxResult {
        let px = self.fixed(price);
        self.trade_fixed(taker, maker, index, base_qty, px)
    }

    pub fn trade_fixed(
        &mut self,
        taker: &User,
        maker: &User,
        index: u16,
        base_qty: i64,
        price: u64,
    ) -> TxResult {
        let k = self.keys;
        let m = self.markets[index as usize];
        let pairs = self.union_pairs(&[&taker.margin, &maker.margin], Some(index));
        self.send(
            &[ix::trade(
                &k,
                &taker.pubkey(),
                &maker.pubkey(),
                &m.pubkey,
                &m.oracle,
                base_qty,
                price,
                &pairs,
            )],
            &[&taker.key, &maker.key],
        )
    }

    pub fn settle(&mut self, user: &User) -> TxResult {
        let k = self.keys;
        let pairs = self.pairs_for(&user.margin, None);
        self.send(&[ix::settle_pnl(&k, &user.pubkey(), &pairs)], &[&user.key])
    }

    pub fn contribute_insurance(&mut self, user: &User, amount: u64) -> TxResult {
        let k = self.keys;
        self.send(
            &[ix::contribute_insurance(
                &k,
                &user.pubkey(),
                &user.token,
                amount,
            )],
            &[&user.key],
        )
    }

    /// The health report the program returns for `user` (through return data).
    pub fn health(&mut self, margin: &Pubkey) -> Result<HealthReport, TxFailure> {
        let ex = self.exchange_key();
        let pairs = self.pairs_for(margin, None);
        let meta = self.send(&[ix::health(&ex, margin, &pairs)], &[])?;
        Ok(HealthReport::deserialize(&mut &meta.return_data.data[..]).expect("health report"))
    }

    pub fn liquidate(
        &mut self,
        liquidator: &User,
        liquidatee: &Pubkey,
        index: u16,
        max_base: u64,
    ) -> TxResult {
        let k = self.keys;
        let m = self.markets[index as usize];
        let pairs = self.union_pairs(&[&liquidator.margin, liquidatee], Some(index));
        self.send(
            &[ix::liquidate(
                &k,
                &liquidator.pubkey(),
                liquidatee,
                &m.pubkey,
                &m.oracle,
                max_base,
                &pairs,
            )],
            &[&liquidator.key],
        )
    }

    pub fn resolve_bankruptcy(&mut self, account: &Pubkey) -> TxResult {
        let k = self.keys;
        self.send(&[ix::resolve_bankruptcy(&k, account)], &[])
    }

    pub fn begin_clawback(&mut self) -> TxResult {
        let ex = self.exchange_key();
        let pairs = self.all_pairs();
        self.send(&[ix::begin_clawback(&ex, &pairs)], &[])
    }

    pub fn tally(&mut self, accounts: &[Pubkey]) -> TxResult {
        let ex = self.exchange_key();
        self.send(&[ix::tally(&ex, accounts)], &[])
    }

    pub fn finalize_tally(&mut self) -> TxResult {
        let ex = self.exchange_key();
        self.send(&[ix::finalize_tally(&ex)], &[])
    }

    pub fn clawback(&mut self, accounts: &[Pubkey]) -> TxResult {
        let k = self.keys;
        self.send(&[ix::clawback(&k, accounts)], &[])
    }

    pub fn cover_deficit(&mut self, payer: &User, amount: u64) -> TxResult {
        let k = self.keys;
        self.send(
            &[ix::cover_deficit(&k, &payer.pubkey(), &payer.token, amount)],
            &[&payer.key],
        )
    }

    /// Live margin accounts (not closed).
    pub fn live_accounts(&self) -> Vec<Pubkey> {
        self.accounts
            .iter()
            .copied()
            .filter(|k| self.svm.get_account(k).is_some_and(|a| a.lamports > 0))
            .collect()
    }

    /// Runs one whole clawback round in batches of `batch`: begin, tally everything,
    /// finalize, claw back every account with weight in the round's basis.
    pub fn run_round(&mut self, batch: usize) {
        self.begin_clawback().expect("begin_clawback");
        self.run_round_from_tallying(batch);
    }

    /// Completes a round already in `Tallying`: tallies every account not tallied yet (by
    /// the crank or touch first), finalizes and charges.
    pub fn run_round_from_tallying(&mut self, batch: usize) {
        let all = self.live_accounts();
        let due: Vec<Pubkey> = all
            .iter()
            .copied()
            .filter(|k| {
                self.exchange()
                    .epoch
                    .due_for_tally(&self.account_at(k).clawback)
            })
            .collect();
        for chunk in due.chunks(batch) {
            self.tally(chunk).expect("tally");
        }
        self.finalize_tally().expect("finalize_tally");
        let ex = self.exchange();
        if ex.epoch.phase != EpochPhase::Applying {
            return;
        }
        let weighted: Vec<Pubkey> = all
            .into_iter()
            .filter(|k| ex.epoch.due_for_clawback(&self.account_at(k).clawback))
            .collect();
        for chunk in weighted.chunks(batch) {
            self.clawback(chunk).expect("clawback");
        }
    }
}

impl Default for TestExchange {
    fn default() -> Self {
        Self::new()
    }
}

/// A price in whole quote units as the feeds publish it (expo −6).
pub fn raw_price(price: f64) -> i64 {
    (price * 1e6).round() as i64
}

/// Replaces every occurrence of account `old` in `ix` by `new` (for attack tests).
pub fn swap_account(mut ix: Instruction, old: &Pubkey, new: &Pubkey) -> Instruction {
    let mut found = false;
    for m in ix.accounts.iter_mut() {
        if m.pubkey == *old {
            m.pubkey = *new;
            found = true;
        }
    }
    assert!(found, "account {old} not in instruction");
    ix
}

impl TestExchange {
    /// Overwrites an account's data in place (forging states a real instruction refuses
    /// to write, e.g. a negative oracle price).
    pub fn overwrite<T: anchor_lang::AccountSerialize>(&mut self, key: &Pubkey, value: &T) {
        let mut acc = self.svm.get_account(key).expect("account");
        let mut data = Vec::with_capacity(acc.data.len());
        value.try_serialize(&mut data).unwrap();
        data.resize(acc.data.len(), 0);
        acc.data = data;
        self.svm.set_account(*key, acc).unwrap();
    }

    /// Creates an arbitrary account (owner, data) at a new address.
    pub fn put_account(&mut self, owner: &Pubkey, data: Vec<u8>) -> Pubkey {
        let key = Pubkey::new_unique();
        let lamports = self.svm.minimum_balance_for_rent_exemption(data.len());
        self.svm
            .set_account(
                key,
                Account {
                    lamports,
                    data,
                    owner: *owner,
                    executable: false,
                    rent_epoch: 0,
                },
            )
            .unwrap();
        key
    }

    /// Sends `amount` collateral straight to a token account (outside Backstop), as a
    /// donor or an attacker could; vault balances may then exceed the books.
    pub fn donate(&mut self, from: &User, to: &Pubkey, amount: u64) {
        let ix = spl_token::instruction::transfer(
            &spl_token::ID,
            &from.token,
            to,
            &from.pubkey(),
            &[],
            amount,
        )
        .unwrap();
        self.exact_vaults = false;
        self.send_raw(&[ix], &[&from.key]).expect("donation");
    }
}

/// The accounts of [`TestExchange::open_bad_debt`].
pub struct BadDebt {
    pub loser: User,
    pub winner: User,
    pub keeper: User,
}

impl TestExchange {
    /// A bad-debt epoch: loser L (1,100) long 100 at $100 from winner W (10,000); an
    /// insurance fund of 100; at $85 keeper K liquidates L, who is bankrupt beyond the
    /// fund, and L is resolved.
    pub fn open_bad_debt(&mut self) -> BadDebt {
        let donor = self.user(100 * USDC);
        self.contribute_insurance(&donor, 100 * USDC).unwrap();
        let loser = self.funded_user(1_100 * USDC);
        let winner = self.funded_user(10_000 * USDC);
        let keeper = self.funded_user(100_000 * USDC);
        self.trade(&loser, &winner, 0, 100 * BASE, 100.0).unwrap();
        self.set_price(0, 85.0);
        // The liquidation leaves L flat and negative and resolves it in the same
        // instruction: the epoch opens with it.
        self.liquidate(&keeper, &loser.margin, 0, u64::MAX).unwrap();
        assert_eq!(self.exchange().epoch.phase, EpochPhase::BadDebt);
        BadDebt {
            loser,
            winner,
            keeper,
        }
    }
}

impl TestExchange {
    /// An account that a profit-basis clawback charge leaves flat with negative equity —
    /// the one way an account becomes bankrupt without being resolved in the same
    /// instruction (liquidations and trades resolve theirs). A loser long 100 from $100
    /// is liquidated at a price low enough that its loss exceeds the insurance fund,
    /// opening an epoch; V goes long 1,000 at that price P against C; the round's snapshot
    /// is taken at P + 10 (V weighs +10,000); back at P, V closes flat at the oracle and
    /// withdraws all but its hold-back; its charge, its share of the deficit at the
    /// snapshot weights, then exceeds what it has left. Returns V, with
    /// `unresolved_bankruptcies == 1` and the round over. Market 0; any fund below 8,000.
    pub fn bankrupt_by_clawback(&mut self) -> User {
        self.set_price(0, 100.0);
        let l = self.funded_user(1_100 * USDC);
        let w = self.funded_user(50_000 * USDC);
        let kp = self.funded_user(100_000 * USDC);
        self.trade(&l, &w, 0, 100 * BASE, 100.0).unwrap();
        let fund = self.insurance_balance() / USDC;
        let p = 100.0 - ((fund + 1_500) / 100) as f64;
        self.set_price(0, p);
        self.liquidate(&kp, &l.margin, 0, u64::MAX).unwrap();
        assert!(
            self.exchange().books.deficit > 0,
            "the loss exceeds the fund"
        );
        let v = self.funded_user(10_000 * USDC);
        let c = self.funded_user(100_000 * USDC);
        // C takes both trades (and pays the taker fees).
        self.trade(&c, &v, 0, -1_000 * BASE, p).unwrap();
        self.set_price(0, p + 10.0);
        self.begin_clawback().unwrap();
        self.set_price(0, p);
        // Closing at the oracle tallies V first, at the snapshot: +10,000 of weight.
        self.trade(&c, &v, 0, 1_000 * BASE, p).unwrap();
        assert_eq!(
            self.account(&v).clawback.profit_weight,
            10_000 * USDC as u128
        );
        self.settle(&v).unwrap();
        let a = self.account(&v);
        let mut amount = a.capital;
        while amount > 0 && self.withdraw(&v, amount).is_err() {
            amount -= amount.div_ceil(100).max(1);
        }
        self.run_round_from_tallying(27);
        assert!(self.account(&v).is_bankrupt(), "the charge left V bankrupt");
        assert_eq!(self.exchange().unresolved_bankruptcies, 1);
        v
    }
}
