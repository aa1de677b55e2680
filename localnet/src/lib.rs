//! A real agave test validator (the `solana-test-validator` library, in-process) running
//! Backstop, with a collateral mint, funded demo wallets and an exchange deployed by
//! `backstop-migrations`.
//!
//! The program is the SBF `target/deploy/backstop.so` when present; otherwise the native
//! build is injected as a builtin: its account exists at genesis (owned by the native
//! loader, executable) and `Bank::add_builtin` registers the entrypoint on the banks.

pub mod crash;
pub mod keeper_proc;

use std::path::{Path, PathBuf};

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::spl_token;
use anyhow::{Context, Result};
use backstop_migrations::{deploy, send, Config, Report};
use solana_commitment_config::CommitmentConfig;
use solana_net_utils::socket_addr_space::SocketAddrSpace;
use solana_program_runtime::program_cache_entry::ProgramCacheEntry;
use solana_rpc_client::rpc_client::RpcClient;
use solana_sdk::account::{AccountSharedData, WritableAccount};
use solana_sdk::signature::{write_keypair_file, Keypair};
use solana_sdk::signer::Signer;
use solana_test_validator::{TestValidator, TestValidatorGenesis, UpgradeableProgramInfo};

/// Collateral decimals of the localnet mint (USDC-like).
pub const COLLATERAL_DECIMALS: u8 = 6;

#[derive(Debug, Clone)]
pub struct LocalnetConfig {
    /// JSON-RPC port (websocket on the next port). 8899 for the main job; tests pass a free one.
    pub rpc_port: u16,
    /// Ledger directory (created; reset on start).
    pub ledger: PathBuf,
    /// The deploy config (`migrations/localnet.toml`).
    pub deploy_config: PathBuf,
    /// Demo wallets to create, each with SOL and `wallet_usdc` collateral.
    pub demo_wallets: usize,
    pub wallet_usdc: u64,
    /// An SBF build of the program to load instead of the native builtin.
    pub program_so: Option<PathBuf>,
}

pub struct Localnet {
    pub validator: TestValidator,
    /// The genesis mint: holds the cluster's lamports and signs the faucet's airdrops.
    pub faucet: Keypair,
    /// The faucet `requestAirdrop` and `solana airdrop` use (the validator's RPC forwards
    /// airdrop requests to it).
    pub faucet_addr: std::net::SocketAddr,
    pub admin: Keypair,
    pub mint: Pubkey,
    pub mint_authority: Keypair,
    pub wallets: Vec<Keypair>,
    /// Each demo wallet's collateral token account.
    pub wallet_tokens: Vec<Pubkey>,
    pub report: Report,
    /// "native builtin" or the path of the SBF program.
    pub program: String,
}

impl Localnet {
    pub fn rpc_url(&self) -> String {
        self.validator.rpc_url()
    }
    pub fn ws_url(&self) -> String {
        self.validator.rpc_pubsub_url()
    }
    pub fn rpc(&self) -> RpcClient {
        RpcClient::new_with_commitment(self.rpc_url(), CommitmentConfig::confirmed())
    }

    /// Transfers `lamports` from the genesis mint.
    pub fn fund_sol(&self, to: &Pubkey, lamports: u64) -> Result<()> {
        send(
            &self.rpc(),
            &self.faucet,
            &[],
            &[solana_system_interface::instruction::transfer(
                &self.faucet.pubkey(),
                to,
                lamports,
            )],
        )?;
        Ok(())
    }

    /// Creates a collateral token account for `owner` holding `amount` atoms.
    pub fn fund_usdc(&self, owner: &Pubkey, amount: u64) -> Result<Pubkey> {
        create_token_account(
            &self.rpc(),
            &self.faucet,
            &self.mint,
            &self.mint_authority,
            owner,
            amount,
        )
    }

    /// Writes the addresses the keeper and the CLI need, and the demo keypairs, into `dir`.
    /// Every path written is absolute, so the file works from any directory.
    pub fn write_addresses(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let dir = &dir.canonicalize()?;
        let admin_path = dir.join("admin.json");
        write_keypair_file(&self.admin, &admin_path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut wallets = vec![];
        for (i, w) in self.wallets.iter().enumerate() {
            let p = dir.join(format!("wallet-{i}.json"));
            write_keypair_file(w, &p).map_err(|e| anyhow::anyhow!("{e}"))?;
            wallets.push(serde_json::json!({"pubkey": w.pubkey().to_string(), "keypair": p, "token_account": self.wallet_tokens[i].to_string()}));
        }
        let markets: Vec<_> = self
            .report
            .markets
            .iter()
            .enumerate()
            .map(|(i, (name, m, o))| serde_json::json!({"index": i, "name": name, "market": m.to_string(), "oracle": o.to_string()}))
            .collect();
        let doc = serde_json::json!({
            "rpc_url": self.rpc_url(),
            "ws_url": self.ws_url(),
            "faucet": self.faucet_addr.to_string(),
            "program_id": backstop::ID.to_string(),
            "program": self.program,
            "exchange": self.report.exchange.to_string(),
            "collateral_mint": self.mint.to_string(),
            "collateral_decimals": COLLATERAL_DECIMALS,
            "admin": {"pubkey": self.admin.pubkey().to_string(), "keypair": admin_path},
            "markets": markets,
            "wallets": wallets,
        });
        let path = dir.join("localnet.json");
        std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")?;
        Ok(path)
    }
}

fn create_token_account(
    rpc: &RpcClient,
    payer: &Keypair,
    mint: &Pubkey,
    mint_authority: &Keypair,
    owner: &Pubkey,
    amount: u64,
) -> Result<Pubkey> {
    let acct = Keypair::new();
    let rent = rpc.get_minimum_balance_for_rent_exemption(spl_token::state::Account::LEN)?;
    let ixs = backstop_client::token::create_token_account(
        &payer.pubkey(),
        &acct.pubkey(),
        rent,
        mint,
        owner,
        &mint_authority.pubkey(),
        amount,
    );
    let mut signers = vec![&acct];
    if amount > 0 {
        signers.push(mint_authority);
    }
    send(rpc, payer, &signers, &ixs).context("creating a token account")?;
    Ok(acct.pubkey())
}

/// Starts the validator with Backstop loaded, creates the collateral mint, deploys the
/// exchange from `cfg.deploy_config` and funds the demo wallets.
pub fn start(cfg: &LocalnetConfig) -> Result<Localnet> {
    start_with(cfg, Keypair::new(), vec![])
}

/// [`start`] with a given admin (so exchange addresses are known before the validator
/// runs) and extra accounts written into genesis — the benchmarks seed 100,000 margin
/// accounts this way instead of sending 100,000 transactions.
pub fn start_with(
    cfg: &LocalnetConfig,
    admin: Keypair,
    genesis_accounts: Vec<(Pubkey, AccountSharedData)>,
) -> Result<Localnet> {
    let deploy_config = Config::load(&cfg.deploy_config)?;
    if cfg.ledger.exists() {
        std::fs::remove_dir_all(&cfg.ledger)
            .with_context(|| format!("resetting ledger {}", cfg.ledger.display()))?;
    }
    let faucet = Keypair::new();
    // A faucet on a free port, signing with the genesis mint, as `solana-test-validator`
    // runs one: `requestAirdrop` and `solana airdrop` work against this localnet.
    let faucet_addr =
        solana_faucet::faucet::run_local_faucet_for_tests(faucet.insecure_clone(), None, 0);
    let mut genesis = TestValidatorGenesis::default();
    genesis
        .ledger_path(&cfg.ledger)
        .rpc_port(cfg.rpc_port)
        .rpc_config(solana_rpc::rpc::JsonRpcConfig {
            // getTransaction / getSignaturesForAddress: clients read landed transactions'
            // logs, events and errors, as on a cluster.
            enable_rpc_transaction_history: true,
            enable_extended_tx_metadata_storage: true,
            faucet_addr: Some(faucet_addr),
            ..solana_rpc::rpc::JsonRpcConfig::default_for_test()
        })
        .add_accounts(genesis_accounts);
    // Room for seeded accounts (the default 10 MB genesis limit holds ~25k margin accounts).
    genesis.max_genesis_archive_unpacked_size = Some(1 << 30);
    let program = match &cfg.program_so {
        Some(so) if so.exists() => {
            genesis.add_upgradeable_programs_with_path(&[UpgradeableProgramInfo {
                program_id: backstop::ID,
                loader: solana_sdk_ids::bpf_loader_upgradeable::id(),
                upgrade_authority: Pubkey::default(),
                program_path: so.clone(),
            }]);
            so.display().to_string()
        }
        _ => {
            let mut account = AccountSharedData::new(1, 0, &solana_sdk_ids::native_loader::id());
            account.set_executable(true);
            genesis.add_account(backstop::ID, account);
            "native builtin".to_string()
        }
    };
    let validator = genesis
        .start_with_mint_address(faucet.pubkey(), SocketAddrSpace::Unspecified)
        .map_err(|e| anyhow::anyhow!("the test validator failed to start: {e}"))?;
    if program == "native builtin" {
        // Register on every bank, including children forked from a parent before it was
        // registered: keep sweeping until no new unregistered bank appeared for a while
        // (a single pass raced with bank creation and left "Unsupported program id").
        let forks = validator.bank_forks();
        let mut done = std::collections::HashSet::new();
        let mut quiet_since = std::time::Instant::now();
        let started = std::time::Instant::now();
        while quiet_since.elapsed() < std::time::Duration::from_millis(1_500)
            && started.elapsed() < std::time::Duration::from_secs(10)
        {
            let forks = forks.read().unwrap();
            for bank in forks.banks().values() {
                if done.insert(bank.slot()) {
                    bank.add_builtin(
                        backstop::ID,
                        "backstop",
                        ProgramCacheEntry::new_builtin(0, 0, backstop_native::builtin()),
                    );
                    quiet_since = std::time::Instant::now();
                }
            }
            drop(forks);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let rpc = RpcClient::new_with_commitment(validator.rpc_url(), CommitmentConfig::confirmed());

    // Collateral mint and the admin.
    let mint_authority = Keypair::new();
    let mint = Keypair::new();
    send(
        &rpc,
        &faucet,
        &[],
        &[solana_system_interface::instruction::transfer(
            &faucet.pubkey(),
            &admin.pubkey(),
            100_000_000_000,
        )],
    )?;
    let rent = rpc.get_minimum_balance_for_rent_exemption(spl_token::state::Mint::LEN)?;
    send(
        &rpc,
        &faucet,
        &[&mint],
        &backstop_client::token::create_mint(
            &faucet.pubkey(),
            &mint.pubkey(),
            rent,
            &mint_authority.pubkey(),
            COLLATERAL_DECIMALS,
        ),
    )
    .context("creating the collateral mint")?;
    let report = deploy(&rpc, &admin, &mint.pubkey(), &deploy_config)?;

    let mut net = Localnet {
        validator,
        faucet,
        faucet_addr,
        admin,
        mint: mint.pubkey(),
        mint_authority,
        wallets: vec![],
        wallet_tokens: vec![],
        report,
        program,
    };
    for _ in 0..cfg.demo_wallets {
        let w = Keypair::new();
        net.fund_sol(&w.pubkey(), 10_000_000_000)?;
        let token = net.fund_usdc(&w.pubkey(), cfg.wallet_usdc)?;
        net.wallets.push(w);
        net.wallet_tokens.push(token);
    }
    Ok(net)
}

/// Sends `n` independent transactions at once (`build(i, blockhash)` signs the i-th) and
/// waits until every one is confirmed; those not seen within a minute are signed again
/// with a fresh blockhash (twice at most), but only once the previous blockhash has
/// expired and the transaction history confirms they did not land. Fails on the first transaction error.
/// Sent in waves of 64.
/// For bulk set-up (benchmarks), where one confirmation round trip per transaction would
/// dominate.
pub fn land_all(
    rpc: &RpcClient,
    n: usize,
    build: impl Fn(usize, solana_sdk::hash::Hash) -> solana_sdk::transaction::Transaction,
) -> Result<()> {
    // Waves of at most 64: a thousand transactions write-locking one account at once
    // stalled the (debug-built) validator's scheduler for minutes; waves keep it busy
    // without a backlog.
    for start in (0..n).step_by(64) {
        let end = (start + 64).min(n);
        land_wave(rpc, start..end, &build)?;
    }
    Ok(())
}

fn land_wave(
    rpc: &RpcClient,
    range: std::ops::Range<usize>,
    build: &impl Fn(usize, solana_sdk::hash::Hash) -> solana_sdk::transaction::Transaction,
) -> Result<()> {
    use solana_rpc_client_api::config::RpcSendTransactionConfig;
    let n = range.len();
    // Every signature sent for each transaction: a wave that landed but was not seen
    // confirmed in time is found again here instead of being sent a second time (which
    // failed account creation with "already in use").
    let mut sent: Vec<(usize, Vec<solana_sdk::signature::Signature>)> =
        range.map(|i| (i, vec![])).collect();
    let mut last_blockhash: Option<solana_sdk::hash::Hash> = None;
    for _attempt in 0..3 {
        // A transaction can land until its blockhash expires: never sign a second one
        // before that (both could land).
        if let Some(h) = last_blockhash {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(180);
            while rpc.is_blockhash_valid(&h, CommitmentConfig::processed())?
                && std::time::Instant::now() < until
            {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        // Re-check what the earlier attempts landed, in the transaction history too.
        let groups: Vec<Vec<solana_sdk::signature::Signature>> =
            sent.iter().map(|(_, sigs)| sigs.clone()).collect();
        let seen = landed(rpc, &groups, true)?;
        let resend: Vec<usize> = sent
            .iter()
            .zip(&seen)
            .filter(|((_, sigs), st)| sigs.is_empty() || st.is_none())
            .map(|((i, _), _)| *i)
            .collect();
        let blockhash = rpc.get_latest_blockhash()?;
        last_blockhash = Some(blockhash);
        for i in resend {
            let tx = build(i, blockhash);
            let sig = tx.signatures[0];
            rpc.send_transaction_with_config(
                &tx,
                RpcSendTransactionConfig {
                    skip_preflight: true,
                    ..Default::default()
                },
            )
            .with_context(|| format!("sending transaction {i}"))?;
            if let Some(entry) = sent.iter_mut().find(|(j, _)| *j == i) {
                entry.1.push(sig);
            }
        }
        // Poll every pending signature in one call (the status cache: no history search).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !sent.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(400));
            let groups: Vec<Vec<solana_sdk::signature::Signature>> =
                sent.iter().map(|(_, sigs)| sigs.clone()).collect();
            let statuses = landed(rpc, &groups, false)?;
            let mut still = vec![];
            for ((i, sigs), st) in std::mem::take(&mut sent).into_iter().zip(statuses) {
                match st {
                    Some((true, Some(err))) => {
                        anyhow::bail!("transaction {i} ({}) failed: {err}", sigs[0]);
                    }
                    Some((true, None)) => {}
                    _ => still.push((i, sigs)),
                }
            }
            sent = still;
        }
        if sent.is_empty() {
            return Ok(());
        }
    }
    let pending: Vec<usize> = sent.iter().map(|(i, _)| *i).collect();
    // Say why, when a simulation can tell.
    let why = rpc
        .simulate_transaction(&build(pending[0], rpc.get_latest_blockhash()?))
        .map(|r| match r.value.err {
            Some(e) => format!(
                "simulating one of them fails: {e}; logs: {:?}",
                r.value.logs.unwrap_or_default()
            ),
            None => "a simulation of one succeeds".into(),
        })
        .unwrap_or_else(|e| format!("simulateTransaction: {e}"));
    anyhow::bail!(
        "{} of {n} transactions did not land after three attempts ({why}); is the validator overloaded?",
        pending.len()
    )
}

/// A loopback port that is free now, with the next one (the websocket) free too.
pub fn free_rpc_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = l.local_addr().expect("addr").port();
        if port < 65_000 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// Token balance of an SPL token account over RPC.
pub fn token_balance(rpc: &RpcClient, account: &Pubkey) -> Result<u64> {
    let data = rpc.get_account_data(account)?;
    Ok(spl_token::state::Account::unpack(&data)?.amount)
}

/// I1 and I3 over RPC: vault + deficit == Σ capital + Σ pnl − Σ basis over every margin
/// account of `exchange` (found with the client's getProgramAccounts filters), the vault's
/// and the insurance vault's token balances equal the books.
pub fn check_conservation(rpc: &RpcClient, exchange: &Pubkey) -> Result<()> {
    let accounts = backstop_client::rpc::margin_accounts(rpc, exchange)?;
    let ex = backstop_client::decode::exchange(&rpc.get_account_data(exchange)?)?;
    let (mut cap, mut pnl, mut basis) = (0i128, 0i128, 0i128);
    for (_, m) in &accounts {
        cap += m.capital as i128;
        pnl += m.pnl as i128;
        basis += m
            .positions
            .iter()
            .filter(|p| p.active)
            .map(|p| p.quote_basis as i128)
            .sum::<i128>();
    }
    let vault = token_balance(rpc, &ex.vault)?;
    anyhow::ensure!(
        vault == ex.books.vault_balance,
        "vault tokens {vault} != books {}",
        ex.books.vault_balance
    );
    anyhow::ensure!(
        vault as i128 + ex.books.deficit as i128 == cap + pnl - basis,
        "I1: vault {vault} + deficit {} != capital {cap} + pnl {pnl} - basis {basis}",
        ex.books.deficit
    );
    let ins = token_balance(rpc, &ex.insurance_vault)?;
    anyhow::ensure!(
        ins == ex.books.insurance_balance,
        "I3: insurance tokens {ins} != books {}",
        ex.books.insurance_balance
    );
    Ok(())
}

/// Whether a transaction is confirmed, and its error if it failed.
type Landed = (bool, Option<String>);

/// For each group of signatures (the attempts at one transaction), whether the cluster has
/// seen any of them: `None` when none, else whether one is confirmed and its error. One
/// `getSignatureStatuses` call per 256 signatures; `history` searches the transaction
/// history too (costly: only before re-sending).
fn landed(
    rpc: &RpcClient,
    groups: &[Vec<solana_sdk::signature::Signature>],
    history: bool,
) -> Result<Vec<Option<Landed>>> {
    let all: Vec<solana_sdk::signature::Signature> = groups.iter().flatten().copied().collect();
    let mut statuses = Vec::with_capacity(all.len());
    for chunk in all.chunks(256) {
        let r = if history {
            rpc.get_signature_statuses_with_history(chunk)?
        } else {
            rpc.get_signature_statuses(chunk)?
        };
        statuses.extend(r.value);
    }
    let mut statuses = statuses.into_iter();
    Ok(groups
        .iter()
        .map(|g| {
            statuses
                .by_ref()
                .take(g.len())
                .flatten()
                .map(|st| {
                    (
                        st.satisfies_commitment(CommitmentConfig::confirmed()),
                        st.err.map(|e| e.to_string()),
                    )
                })
                // A confirmed success wins over anything else (a later attempt's "already in
                // use" must not hide an earlier attempt that landed).
                .max_by_key(|(confirmed, err)| (*confirmed && err.is_none(), *confirmed))
        })
        .collect())
}
