//! JSON-RPC helpers shared by the CLI, the migrations, the localnet and the keeper
//! (feature `rpc`): the `getProgramAccounts` filters, loading an exchange with its markets
//! and oracles, and turning a failed transaction into a sentence that names the error.

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use backstop::state::{Exchange, MarginAccount};
use solana_rpc_client::rpc_client::RpcClient;
use solana_rpc_client_api::client_error::{Error as ClientError, ErrorKind};
use solana_rpc_client_api::config::{RpcAccountInfoConfig, RpcProgramAccountsConfig};
use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};
use solana_rpc_client_api::request::{RpcError, RpcResponseErrorData};
use solana_rpc_client_api::response::RpcSimulateTransactionResult;
use solana_sdk::instruction::InstructionError;
use solana_sdk::signature::{Keypair, Signature};
use solana_sdk::signer::Signer;
use solana_sdk::transaction::{Transaction, TransactionError};

use crate::decode;
use crate::errors::{describe, failing_program, Described};
use crate::view::{decode_oracle, MarketState};

/// `getProgramAccounts` filters selecting the margin accounts of one exchange.
pub fn margin_account_filters(exchange: &Pubkey) -> Vec<RpcFilterType> {
    vec![
        RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
            0,
            decode::margin_account_discriminator().to_vec(),
        )),
        RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
            decode::MARGIN_ACCOUNT_EXCHANGE_OFFSET,
            exchange.to_bytes().to_vec(),
        )),
    ]
}

/// The full `getProgramAccounts` config for one exchange's margin accounts (base64).
pub fn margin_accounts_config(exchange: &Pubkey) -> RpcProgramAccountsConfig {
    RpcProgramAccountsConfig {
        filters: Some(margin_account_filters(exchange)),
        account_config: RpcAccountInfoConfig {
            encoding: Some(solana_rpc_client_api::config::UiAccountEncoding::Base64),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Every margin account of `exchange`.
pub fn margin_accounts(
    rpc: &RpcClient,
    exchange: &Pubkey,
) -> anyhow::Result<Vec<(Pubkey, MarginAccount)>> {
    let mut out = vec![];
    margin_accounts_streamed(&rpc.url(), rpc.commitment(), exchange, |k, a, _| {
        out.push((k, a))
    })?;
    Ok(out)
}

/// Every margin account of `exchange`, handed to `each` as the `getProgramAccounts`
/// response streams in: the JSON is decoded account by account from the socket, so
/// memory holds the decoded accounts only — not the response text, a JSON tree of it and
/// the decoded copy at once (which took a keeper with 100,000 accounts to 384 MB).
/// `each` also gets the response's context slot when the node sent it before the
/// accounts (agave does), else 0 (the slot is then in the returned [`Streamed`]).
/// Returns how many accounts were read. `commitment` matters: the node's default is
/// `finalized`, ~13 s behind — accounts opened since would be missing.
pub fn margin_accounts_streamed(
    url: &str,
    commitment: solana_commitment_config::CommitmentConfig,
    exchange: &Pubkey,
    mut each: impl FnMut(Pubkey, MarginAccount, u64),
) -> anyhow::Result<Streamed> {
    use anyhow::Context;
    use serde::de::DeserializeSeed;
    let mut config = margin_accounts_config(exchange);
    config.account_config.commitment = Some(commitment);
    // The slot the snapshot was read at, so a reader can tell older updates from newer.
    config.with_context = Some(true);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "getProgramAccounts",
        "params": [backstop::ID.to_string(), config],
    });
    let response = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()?
        .post(url)
        .json(&body)
        .send()
        .with_context(|| format!("getProgramAccounts to {url}"))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("getProgramAccounts to {url}: HTTP {status}");
    }
    let mut count = 0;
    let mut failure: Option<String> = None;
    let mut slot: u64 = 0;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, response);
    let mut de = serde_json::Deserializer::from_reader(&mut reader);
    let mut on_account = |key: &str, data: &str, slot: u64| -> Result<(), String> {
        let key: Pubkey = key.parse().map_err(|_| format!("bad pubkey {key}"))?;
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
            .map_err(|e| format!("account {key}: {e}"))?;
        let account = decode::margin_account(&bytes).map_err(|e| format!("account {key}: {e}"))?;
        each(key, account, slot);
        count += 1;
        Ok(())
    };
    stream::Envelope {
        on_account: &mut on_account,
        error: &mut failure,
        slot: &mut slot,
    }
    .deserialize(&mut de)
    .with_context(|| format!("reading the getProgramAccounts response from {url}"))?;
    if let Some(e) = failure {
        anyhow::bail!("getProgramAccounts: {e}");
    }
    Ok(Streamed { count, slot })
}

/// What [`margin_accounts_streamed`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    pub count: usize,
    /// The context slot of the response (0 if the node did not give one).
    pub slot: u64,
}

/// A JSON-RPC envelope whose `result` is an array of `{pubkey, account: {data: [b64, _]}}`
/// — or, with `withContext`, `{context: {slot}, value: [...]}` — visited element by
/// element.
mod stream {
    use serde::de::{DeserializeSeed, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    /// (pubkey, base64 data, the context slot read so far: 0 before `context`).
    pub type OnAccount<'a> = dyn FnMut(&str, &str, u64) -> Result<(), String> + 'a;

    pub struct Envelope<'a, 'b> {
        pub on_account: &'a mut OnAccount<'b>,
        pub error: &'a mut Option<String>,
        pub slot: &'a mut u64,
    }

    #[derive(Deserialize)]
    struct Keyed {
        pubkey: String,
        account: Data,
    }

    #[derive(Deserialize)]
    struct Data {
        data: (String, String),
    }

    impl<'de> DeserializeSeed<'de> for Envelope<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Envelope<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON-RPC response")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "result" => map.next_value_seed(Result_ {
                        on_account: &mut *self.on_account,
                        slot: &mut *self.slot,
                    })?,
                    "error" => {
                        let e: serde_json::Value = map.next_value()?;
                        *self.error = Some(e.to_string());
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    /// `result`: the bare array, or `{context: {slot}, value: array}`.
    struct Result_<'a, 'b> {
        on_account: &'a mut OnAccount<'b>,
        slot: &'a mut u64,
    }

    #[derive(Deserialize)]
    struct Context {
        slot: u64,
    }

    impl<'de> DeserializeSeed<'de> for Result_<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Result_<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of keyed accounts, or one with its context")
        }
        fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<(), S::Error> {
            Accounts(self.on_account, 0).visit_seq(seq)
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "context" => *self.slot = map.next_value::<Context>()?.slot,
                    "value" => map.next_value_seed(Accounts(&mut *self.on_account, *self.slot))?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    /// The accounts array, and the context slot when it came first (else 0).
    struct Accounts<'a, 'b>(&'a mut OnAccount<'b>, u64);

    impl<'de> DeserializeSeed<'de> for Accounts<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Accounts<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of keyed accounts")
        }
        fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
            while let Some(k) = seq.next_element::<Keyed>()? {
                (self.0)(&k.pubkey, &k.account.data.0, self.1).map_err(S::Error::custom)?;
            }
            Ok(())
        }
    }
}

/// An exchange with its markets and their oracles, read in two RPC round trips.
#[derive(Debug, Clone)]
pub struct ExchangeSnapshot {
    pub address: Pubkey,
    pub exchange: Exchange,
    pub markets: Vec<MarketState>,
    /// Cluster time (the clock sysvar) when read.
    pub now: i64,
    /// The context slot each account was read at: the exchange, the markets, the oracles.
    pub read_at: Vec<(Pubkey, u64)>,
}

impl ExchangeSnapshot {
    pub fn market(&self, index: u16) -> Option<&MarketState> {
        self.markets.iter().find(|m| m.market.index == index)
    }

    /// A market by name (case-insensitive) or index.
    pub fn find_market(&self, name_or_index: &str) -> Option<&MarketState> {
        self.markets.iter().find(|m| {
            m.name().eq_ignore_ascii_case(name_or_index)
                || name_or_index.parse::<u16>().ok() == Some(m.market.index)
        })
    }

    /// (market, oracle) pairs for every market `account` holds a position in.
    pub fn pairs_for(&self, account: &MarginAccount) -> Vec<(Pubkey, Pubkey)> {
        crate::view::pairs_for(&self.markets, account)
    }
}

/// Reads an exchange, its markets and their oracle accounts.
pub fn load_exchange(rpc: &RpcClient, address: &Pubkey) -> anyhow::Result<ExchangeSnapshot> {
    let mut read_at = vec![];
    let ex_data = match rpc.get_account_with_commitment(address, rpc.commitment()) {
        Ok(r) if r.value.is_some() => {
            read_at.push((*address, r.context.slot));
            r.value.expect("checked")
        }
        Ok(_) => anyhow::bail!(
            "no exchange at {address} on {}: check --exchange and --url",
            rpc.url()
        ),
        Err(e) => anyhow::bail!(
            "no exchange at {address} on {} ({}): check --exchange and --url",
            rpc.url(),
            short(&e)
        ),
    };
    if ex_data.owner != backstop::ID {
        anyhow::bail!(
            "{address} is owned by {}, not the Backstop program {}",
            ex_data.owner,
            backstop::ID
        );
    }
    let exchange = decode::exchange(&ex_data.data)
        .map_err(|_| anyhow::anyhow!("{address} is a Backstop account but not an exchange"))?;
    let market_keys: Vec<Pubkey> = (0..exchange.num_markets)
        .map(|i| crate::pda::market(address, i))
        .collect();
    let mut keys = market_keys.clone();
    keys.push(solana_sdk_ids::sysvar::clock::ID);
    let r = rpc.get_multiple_accounts_with_commitment(&keys, rpc.commitment())?;
    read_at.extend(market_keys.iter().map(|k| (*k, r.context.slot)));
    let accounts = r.value;
    let clock: solana_sdk::clock::Clock = accounts
        .last()
        .and_then(|a| a.as_ref())
        .and_then(|a| bincode::deserialize(&a.data).ok())
        .ok_or_else(|| anyhow::anyhow!("cannot read the clock sysvar"))?;
    let mut markets = vec![];
    for (k, a) in market_keys.iter().zip(&accounts) {
        let a = a
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("market {k} is missing"))?;
        markets.push(decode::market(&a.data)?);
    }
    let oracle_keys: Vec<Pubkey> = markets.iter().map(|m| m.oracle).collect();
    let oracles = if oracle_keys.is_empty() {
        vec![]
    } else {
        let r = rpc.get_multiple_accounts_with_commitment(&oracle_keys, rpc.commitment())?;
        read_at.extend(oracle_keys.iter().map(|k| (*k, r.context.slot)));
        r.value
    };
    let markets = markets
        .into_iter()
        .zip(market_keys)
        .zip(oracles)
        .map(|((market, address), oracle)| {
            let oracle = match oracle {
                Some(o) => decode_oracle(&market, &o.owner, &o.data),
                None => Err(format!("oracle account {} does not exist", market.oracle)),
            };
            MarketState {
                address,
                market,
                oracle,
            }
        })
        .collect();
    Ok(ExchangeSnapshot {
        address: *address,
        exchange,
        markets,
        now: clock.unix_timestamp,
        read_at,
    })
}

/// Why a transaction failed, decoded: the custom error's name and message when the
/// program returned one, and the program logs of the simulation.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub error: Option<Described>,
    /// The runtime's error text when no custom code applies.
    pub runtime: Option<String>,
    pub logs: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.error, &self.runtime) {
            (Some(d), _) => write!(f, "{} (error {}): {}", d.name, d.code, d.message),
            (None, Some(r)) => write!(f, "{r}"),
            (None, None) => write!(f, "transaction failed"),
        }
    }
}

/// Decodes a failed send into a [`Failure`]; `None` when the error is not a transaction
/// failure (network, timeout, …).
pub fn failure(err: &ClientError) -> Option<Failure> {
    let (tx_err, logs): (Option<TransactionError>, Vec<String>) = match err.kind() {
        ErrorKind::RpcError(RpcError::RpcResponseError {
            data: RpcResponseErrorData::SendTransactionPreflightFailure(sim),
            ..
        }) => {
            let RpcSimulateTransactionResult { err, logs, .. } = sim;
            (
                err.clone().map(Into::into),
                logs.clone().unwrap_or_default(),
            )
        }
        ErrorKind::TransactionError(e) => (Some(e.clone()), vec![]),
        _ => return None,
    };
    let tx_err = tx_err?;
    Some(failure_of(&tx_err, logs))
}

/// A [`Failure`] from a transaction error and the transaction's logs.
pub fn failure_of(tx_err: &TransactionError, logs: Vec<String>) -> Failure {
    let mut f = Failure {
        logs,
        ..Default::default()
    };
    match tx_err {
        TransactionError::InstructionError(_, InstructionError::Custom(code)) => {
            let program = failing_program(&f.logs).unwrap_or(backstop::ID);
            f.error = describe(&program, *code);
            if f.error.is_none() {
                f.runtime = Some(format!("program {program} failed with custom error {code}"));
            }
        }
        TransactionError::InstructionError(i, e) => {
            f.runtime = Some(format!("instruction {i} failed: {e}"))
        }
        e => f.runtime = Some(e.to_string()),
    }
    f
}

/// One line for a client error: the decoded failure when there is one, else the error.
pub fn explain(err: &ClientError) -> String {
    match failure(err) {
        Some(f) => f.to_string(),
        None => short(err),
    }
}

fn short(err: &ClientError) -> String {
    let s = err.to_string();
    match s.find("error sending request") {
        Some(_) => "the RPC endpoint did not answer; is the validator running?".to_string(),
        None => s,
    }
}

/// An error from [`send`]: a decoded program failure, or a transport problem.
#[derive(Debug)]
pub enum SendError {
    Failed(Failure),
    Rpc(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Failed(x) => write!(f, "{x}"),
            SendError::Rpc(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for SendError {}

impl SendError {
    /// The custom error's name, when the program returned one.
    pub fn error_name(&self) -> Option<&str> {
        match self {
            SendError::Failed(f) => f.error.as_ref().map(|d| d.name.as_str()),
            SendError::Rpc(_) => None,
        }
    }
}

/// Signs with `payer` (fee payer) and `signers`, sends with preflight and waits for
/// confirmation at the client's commitment.
pub fn send(
    rpc: &RpcClient,
    payer: &Keypair,
    signers: &[&Keypair],
    ixs: &[Instruction],
) -> Result<Signature, SendError> {
    let mut all: Vec<&Keypair> = vec![payer];
    all.extend_from_slice(signers);
    let blockhash = rpc
        .get_latest_blockhash()
        .map_err(|e| SendError::Rpc(short(&e)))?;
    let tx = Transaction::new_signed_with_payer(ixs, Some(&payer.pubkey()), &all, blockhash);
    send_transaction(rpc, &tx)
}

/// Sends a fully signed transaction and waits for confirmation.
pub fn send_transaction(rpc: &RpcClient, tx: &Transaction) -> Result<Signature, SendError> {
    rpc.send_and_confirm_transaction(tx)
        .map_err(|e| match failure(&e) {
            Some(f) => SendError::Failed(f),
            None => SendError::Rpc(short(&e)),
        })
}

/// Where a running localnet (`backstop-localnet`) writes its addresses.
pub const LOCALNET_INFO: &str = "test-ledger/backstop/localnet.json";

/// Solana CLI conventions: `~/` expands to `$HOME`.
pub fn expand_tilde(p: &str) -> std::path::PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|h| std::path::PathBuf::from(h).join(rest))
            .unwrap_or_else(|| std::path::PathBuf::from(p)),
        None => std::path::PathBuf::from(p),
    }
}

/// The endpoints and signer a command talks to, resolved the Solana CLI's way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// JSON-RPC URL.
    pub url: String,
    /// Websocket URL.
    pub ws_url: String,
    /// Signing keypair file (`~` expanded).
    pub keypair: std::path::PathBuf,
    /// The Solana CLI config file the URL came from, when it did (say so: a default CLI
    /// config points at mainnet-beta).
    pub url_from: Option<String>,
}

/// What a command uses when nothing names a cluster: the local test validator.
pub const LOCALNET_URL: &str = "http://127.0.0.1:8899";

impl Cluster {
    /// Resolves `url`, `ws_url` and `keypair` as the Solana CLI does, through
    /// `solana-cli-config`: an explicit value first, then the Solana CLI's config file
    /// (`~/.config/solana/cli/config.yml`, when it exists), then the defaults: the
    /// localnet (not the CLI's mainnet-beta: a Backstop tool pointed nowhere in particular
    /// should touch nothing real), and `~/.config/solana/id.json`. URL monikers are the
    /// CLI's (`mainnet-beta`, `testnet`, `devnet`, `localhost` or `m`/`t`/`d`/`l`), plus
    /// `localnet`; the websocket URL is derived from the RPC URL (ws/wss, port + 1) unless
    /// given.
    /// Fails when the Solana CLI config file exists but cannot be read.
    pub fn resolve(
        url: Option<&str>,
        ws_url: Option<&str>,
        keypair: Option<&str>,
    ) -> anyhow::Result<Cluster> {
        let path = solana_cli_config::CONFIG_FILE
            .as_ref()
            .filter(|p| std::path::Path::new(p).exists());
        let file = match path {
            Some(p) => Some(solana_cli_config::Config::load(p).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the Solana CLI config {p}: {e}; fix it (solana config get), or pass the URL and keypair explicitly"
                )
            })?),
            None => None,
        };
        let mut c = Self::resolve_with(url, ws_url, keypair, file.as_ref());
        if url.is_none() && file.is_some() {
            c.url_from = path.cloned();
        }
        Ok(c)
    }

    /// [`Cluster::resolve`] with the Solana CLI config given (`None`: no config file).
    pub fn resolve_with(
        url: Option<&str>,
        ws_url: Option<&str>,
        keypair: Option<&str>,
        file: Option<&solana_cli_config::Config>,
    ) -> Cluster {
        use solana_cli_config::ConfigInput;
        let moniker = |u: &str| match u {
            "localnet" => LOCALNET_URL.to_string(),
            other => other.to_string(),
        };
        let url_given = url.is_some();
        let cmd_url = moniker(url.unwrap_or(""));
        // Never the CLI's own fallback (mainnet-beta): a file without a URL means localnet.
        let cfg_url = moniker(
            file.map(|f| f.json_rpc_url.as_str())
                .filter(|u| !u.is_empty())
                .unwrap_or(LOCALNET_URL),
        );
        let (_, url) = ConfigInput::compute_json_rpc_url_setting(&cmd_url, &cfg_url);
        // The file's websocket URL goes with the file's RPC URL: an RPC URL given here
        // derives its own (the Solana CLI would pair `-u devnet` with the file's websocket).
        let file_ws = match file {
            Some(f) if !url_given => f.websocket_url.as_str(),
            _ => "",
        };
        let (_, ws_url) = ConfigInput::compute_websocket_url_setting(
            ws_url.unwrap_or(""),
            file_ws,
            &cmd_url,
            &cfg_url,
        );
        let (_, keypair) = ConfigInput::compute_keypair_path_setting(
            keypair.unwrap_or(""),
            file.map_or("", |f| f.keypair_path.as_str()),
        );
        Cluster {
            url,
            ws_url,
            keypair: expand_tilde(&keypair),
            url_from: None,
        }
    }
}

/// The running localnet's exchange, from [`LOCALNET_INFO`]; `how_to_pass` completes the
/// error when there is none ("pass --exchange ADDRESS or set …").
pub fn localnet_exchange(how_to_pass: &str) -> anyhow::Result<Pubkey> {
    let text = std::fs::read_to_string(LOCALNET_INFO).map_err(|_| {
        anyhow::anyhow!(
            "no exchange given: {how_to_pass} (a running ./scripts/localnet.sh writes it to {LOCALNET_INFO})"
        )
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("reading {LOCALNET_INFO}: {e}"))?;
    v["exchange"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{LOCALNET_INFO} has no exchange address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_resolve_the_solana_cli_way() {
        let home = std::env::var("HOME").unwrap_or_default();
        let c = Cluster::resolve_with(None, None, None, None);
        assert_eq!(c.url, LOCALNET_URL);
        assert_eq!(c.ws_url, "ws://127.0.0.1:8900/");
        assert!(c.keypair.ends_with(".config/solana/id.json"), "{c:?}");
        for (moniker, url, ws) in [
            (
                "devnet",
                "https://api.devnet.solana.com",
                "wss://api.devnet.solana.com/",
            ),
            (
                "t",
                "https://api.testnet.solana.com",
                "wss://api.testnet.solana.com/",
            ),
            (
                "testnet",
                "https://api.testnet.solana.com",
                "wss://api.testnet.solana.com/",
            ),
            (
                "m",
                "https://api.mainnet-beta.solana.com",
                "wss://api.mainnet-beta.solana.com/",
            ),
            ("localnet", LOCALNET_URL, "ws://127.0.0.1:8900/"),
            ("http://h:1000", "http://h:1000", "ws://h:1001/"),
        ] {
            let c = Cluster::resolve_with(Some(moniker), None, Some("~/k.json"), None);
            assert_eq!((c.url.as_str(), c.ws_url.as_str()), (url, ws), "{moniker}");
            assert_eq!(c.keypair, std::path::PathBuf::from(&home).join("k.json"));
        }
        // The Solana CLI's config file comes after explicit values, before the defaults.
        let file = solana_cli_config::Config {
            json_rpc_url: "https://rpc.example:8899".into(),
            websocket_url: "wss://ws.example/".into(),
            keypair_path: "/keys/cli.json".into(),
            ..Default::default()
        };
        let c = Cluster::resolve_with(None, None, None, Some(&file));
        assert_eq!(c.url, "https://rpc.example:8899");
        assert_eq!(c.ws_url, "wss://ws.example/");
        assert_eq!(c.keypair, std::path::PathBuf::from("/keys/cli.json"));
        let c = Cluster::resolve_with(Some("d"), Some("ws://mine:1"), Some("/k"), Some(&file));
        assert_eq!(c.url, "https://api.devnet.solana.com");
        assert_eq!(c.ws_url, "ws://mine:1");
        assert_eq!(c.keypair, std::path::PathBuf::from("/k"));
        let c = Cluster::resolve_with(Some("d"), None, None, Some(&file));
        assert_eq!(c.ws_url, "wss://api.devnet.solana.com/");
        assert_eq!(c.keypair, std::path::PathBuf::from("/keys/cli.json"));
        // A config file without a URL means the localnet, not the CLI's mainnet-beta.
        let empty = solana_cli_config::Config {
            json_rpc_url: String::new(),
            ..Default::default()
        };
        let c = Cluster::resolve_with(None, None, None, Some(&empty));
        assert_eq!(c.url, LOCALNET_URL);
    }
}
