//! Live updates over the websocket: `programSubscribe` for the exchange's margin accounts
//! (memcmp filters), `accountSubscribe` for the exchange, every market and oracle, and the
//! clock sysvar. Updates are
//! forwarded to the decision loop; a dropped socket is reported and reconnected with
//! backoff, and the loop resyncs after every reconnection.

use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use backstop_client::rpc::margin_accounts_config;
use solana_commitment_config::CommitmentConfig;
use solana_pubsub_client::pubsub_client::PubsubClient;
use solana_rpc_client_api::config::{RpcAccountInfoConfig, UiAccountEncoding};

/// What the feed tells the decision loop.
#[derive(Debug)]
pub enum Update {
    Account {
        key: Pubkey,
        owner: Pubkey,
        data: Vec<u8>,
        slot: u64,
        seen: Instant,
    },
    /// Subscriptions are (re)established: resync to catch what was missed.
    Connected,
    Disconnected(String),
}

fn account_config() -> RpcAccountInfoConfig {
    RpcAccountInfoConfig {
        encoding: Some(UiAccountEncoding::Base64),
        commitment: Some(CommitmentConfig::confirmed()),
        ..Default::default()
    }
}

/// Runs the feed on its own threads until `stop` is set. `watch` lists the exchange and
/// oracle accounts (re-read on every reconnect so new markets are covered).
pub fn spawn(
    ws_url: String,
    exchange: Pubkey,
    watch: Arc<std::sync::Mutex<Vec<Pubkey>>>,
    out: Sender<Update>,
    stop: Arc<AtomicBool>,
) {
    std::thread::Builder::new()
        .name("ws-feed".into())
        .spawn(move || {
            let mut backoff = Duration::from_millis(250);
            // Forwarders of an older connection stop when the generation moves on.
            let generation = Arc::new(AtomicU64::new(0));
            while !stop.load(Ordering::Relaxed) {
                let g = generation.fetch_add(1, Ordering::SeqCst) + 1;
                let live = Live {
                    generation: generation.clone(),
                    mine: g,
                    stop: stop.clone(),
                };
                // Clone first: a guard in the match scrutinee would live for the whole match.
                let keys = watch.lock().unwrap().clone();
                match connect(&ws_url, &exchange, &keys, &out, &live) {
                    Ok(done) => {
                        backoff = Duration::from_millis(250);
                        let _ = out.send(Update::Connected);
                        // Wait until any subscription ends (socket dropped) or stop.
                        while !stop.load(Ordering::Relaxed) {
                            if let Ok(reason) = done.recv_timeout(Duration::from_millis(200)) {
                                let _ = out.send(Update::Disconnected(reason));
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = out.send(Update::Disconnected(e));
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        })
        .expect("spawn the websocket feed");
}

#[derive(Clone)]
struct Live {
    generation: Arc<AtomicU64>,
    mine: u64,
    stop: Arc<AtomicBool>,
}

impl Live {
    fn current(&self) -> bool {
        self.generation.load(Ordering::SeqCst) == self.mine && !self.stop.load(Ordering::Relaxed)
    }
}

/// Receives until the stream ends or the connection is superseded.
fn next<T>(rx: &crossbeam_channel::Receiver<T>, live: &Live) -> Option<T> {
    loop {
        if !live.current() {
            return None;
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => return Some(m),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Subscribes and starts one forwarding thread per subscription. The returned channel
/// yields the first subscription that ended.
fn connect(
    ws_url: &str,
    exchange: &Pubkey,
    watch: &[Pubkey],
    out: &Sender<Update>,
    live: &Live,
) -> Result<std::sync::mpsc::Receiver<String>, String> {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<String>();
    let mut cfg = margin_accounts_config(exchange);
    cfg.account_config.commitment = Some(CommitmentConfig::confirmed());
    let (sub, rx) = PubsubClient::program_subscribe(ws_url, &backstop::ID, Some(cfg))
        .map_err(|e| format!("programSubscribe: {e}"))?;
    forward(
        sub,
        rx,
        live,
        out,
        &done_tx,
        "margin-account subscription closed".into(),
        |msg| {
            let v = msg.value;
            Some((
                v.pubkey.parse().ok()?,
                v.account.owner.parse().ok()?,
                v.account.data.decode()?,
                msg.context.slot,
            ))
        },
    );
    // The clock at `processed`: the bank a transaction executes in is at least that new,
    // so the keeper's idea of "now" for oracle freshness tracks the chain, not the
    // (possibly lagging or jumping) confirmed clock of the last snapshot.
    let clock_cfg = RpcAccountInfoConfig {
        commitment: Some(CommitmentConfig::processed()),
        ..account_config()
    };
    let subs = watch
        .iter()
        .map(|k| (*k, account_config()))
        .chain(std::iter::once((
            solana_sdk_ids::sysvar::clock::ID,
            clock_cfg,
        )));
    for (key, cfg) in subs {
        let (sub, rx) = PubsubClient::account_subscribe(ws_url, &key, Some(cfg))
            .map_err(|e| format!("accountSubscribe {key}: {e}"))?;
        forward(
            sub,
            rx,
            live,
            out,
            &done_tx,
            format!("subscription to {key} closed"),
            move |msg| {
                Some((
                    key,
                    msg.value.owner.parse().ok()?,
                    msg.value.data.decode()?,
                    msg.context.slot,
                ))
            },
        );
    }
    Ok(done_rx)
}

/// Forwards one subscription's messages as account updates until its stream ends or the
/// connection is superseded, then reports `closed` on `done`. `decode` gives (key, owner,
/// data, slot), or `None` to skip a message.
fn forward<S: Send + 'static, T: Send + 'static>(
    sub: S,
    rx: crossbeam_channel::Receiver<T>,
    live: &Live,
    out: &Sender<Update>,
    done: &std::sync::mpsc::Sender<String>,
    closed: String,
    decode: impl Fn(T) -> Option<(Pubkey, Pubkey, Vec<u8>, u64)> + Send + 'static,
) {
    let (out, done, live) = (out.clone(), done.clone(), live.clone());
    std::thread::spawn(move || {
        while let Some(msg) = next(&rx, &live) {
            let Some((key, owner, data, slot)) = decode(msg) else {
                continue;
            };
            let u = Update::Account {
                key,
                owner,
                data,
                slot,
                seen: Instant::now(),
            };
            if out.send(u).is_err() {
                break;
            }
        }
        let _ = done.send(closed);
        // A dead socket cannot unsubscribe: dropping the subscription could block on it.
        std::mem::forget(sub);
    });
}
