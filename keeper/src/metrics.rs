//! Prometheus metrics in the text exposition format, served with `/healthz` by a small
//! HTTP server on its own thread.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Latency buckets (seconds) for price change → confirmed liquidation.
const BUCKETS: [f64; 10] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0];

#[derive(Debug, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Debug)]
pub struct Metrics {
    pub liquidations: AtomicU64,
    pub bankruptcies: AtomicU64,
    pub rounds_begun: AtomicU64,
    pub tallies: AtomicU64,
    /// Account writes dropped because the book already held a newer slot's state.
    pub stale_writes: AtomicU64,
    /// Accounts in confirmed tally transactions.
    pub tallied_accounts: AtomicU64,
    /// Addresses in the keeper's usable lookup tables.
    pub lookup_table_addresses: AtomicU64,
    pub clawback_charges: AtomicU64,
    pub clawback_charged_atoms: AtomicU64,
    pub transactions: AtomicU64,
    pub benign_races: AtomicU64,
    pub skipped_keeper_margin: AtomicU64,
    pub resyncs: AtomicU64,
    pub ws_reconnects: AtomicU64,
    pub rpc_retries: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub latency: Mutex<Histogram>,
    pub accounts: AtomicU64,
    pub liquidatable: AtomicU64,
    pub deficit: AtomicU64,
    pub health_recompute_micros: AtomicU64,
    /// Set after the first full snapshot.
    pub ready: AtomicBool,
    /// Unix millis of the last successful data refresh (snapshot or websocket update).
    pub last_data_ms: AtomicI64,
    /// Data older than this makes /healthz fail.
    pub stale_after: Duration,
    pub started: Instant,
}

impl Metrics {
    pub fn new(stale_after: Duration) -> Arc<Self> {
        Arc::new(Metrics {
            liquidations: AtomicU64::new(0),
            bankruptcies: AtomicU64::new(0),
            rounds_begun: AtomicU64::new(0),
            tallies: AtomicU64::new(0),
            stale_writes: AtomicU64::new(0),
            tallied_accounts: AtomicU64::new(0),
            lookup_table_addresses: AtomicU64::new(0),
            clawback_charges: AtomicU64::new(0),
            clawback_charged_atoms: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            benign_races: AtomicU64::new(0),
            skipped_keeper_margin: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            ws_reconnects: AtomicU64::new(0),
            rpc_retries: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(Histogram::default()),
            accounts: AtomicU64::new(0),
            liquidatable: AtomicU64::new(0),
            deficit: AtomicU64::new(0),
            health_recompute_micros: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            last_data_ms: AtomicI64::new(0),
            stale_after,
            started: Instant::now(),
        })
    }

    pub fn error(&self, kind: &str) {
        *self
            .errors
            .lock()
            .unwrap()
            .entry(kind.to_string())
            .or_default() += 1;
    }

    pub fn fresh_data(&self) {
        self.last_data_ms.store(unix_ms(), Ordering::Relaxed);
    }

    /// `Ok` when ready and fresh, else the reason.
    pub fn health(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::Relaxed) {
            return Err("waiting for the first snapshot".into());
        }
        let age = unix_ms() - self.last_data_ms.load(Ordering::Relaxed);
        if age > self.stale_after.as_millis() as i64 {
            return Err(format!("data is stale: last refresh {} ms ago", age));
        }
        Ok(())
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            o.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        };
        let gauge = |o: &mut String, name: &str, help: &str, v: u64| {
            o.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
            ));
        };
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut o,
            "backstop_keeper_liquidations_total",
            "Confirmed liquidations sent by this keeper.",
            l(&self.liquidations),
        );
        counter(
            &mut o,
            "backstop_keeper_bankruptcies_total",
            "Confirmed resolve_bankruptcy transactions (a liquidation resolves the bankruptcy it creates itself; these are the others).",
            l(&self.bankruptcies),
        );
        counter(
            &mut o,
            "backstop_keeper_clawback_rounds_begun_total",
            "Confirmed begin_clawback transactions.",
            l(&self.rounds_begun),
        );
        counter(
            &mut o,
            "backstop_keeper_tallies_total",
            "Confirmed tally transactions.",
            l(&self.tallies),
        );
        counter(
            &mut o,
            "backstop_keeper_tallied_accounts_total",
            "Accounts in confirmed tally transactions (over tallies_total: accounts per batch).",
            l(&self.tallied_accounts),
        );
        gauge(
            &mut o,
            "backstop_keeper_lookup_table_addresses",
            "Margin accounts in this keeper's usable address lookup tables (round batches name them by index in v0 transactions).",
            l(&self.lookup_table_addresses),
        );
        counter(
            &mut o,
            "backstop_keeper_clawback_charges_total",
            "Accounts charged by confirmed clawback transactions.",
            l(&self.clawback_charges),
        );
        counter(
            &mut o,
            "backstop_keeper_clawback_charged_atoms_total",
            "Collateral atoms charged by confirmed clawbacks.",
            l(&self.clawback_charged_atoms),
        );
        counter(
            &mut o,
            "backstop_keeper_transactions_total",
            "Confirmed transactions.",
            l(&self.transactions),
        );
        counter(
            &mut o,
            "backstop_keeper_benign_races_total",
            "Transactions another keeper made unnecessary.",
            l(&self.benign_races),
        );
        counter(
            &mut o,
            "backstop_keeper_skipped_keeper_margin_total",
            "Liquidations skipped: the keeper's margin cannot take the position.",
            l(&self.skipped_keeper_margin),
        );
        counter(
            &mut o,
            "backstop_keeper_stale_writes_dropped_total",
            "Account updates dropped because the book already held state from a newer slot.",
            l(&self.stale_writes),
        );
        counter(
            &mut o,
            "backstop_keeper_resyncs_total",
            "Full getProgramAccounts resyncs.",
            l(&self.resyncs),
        );
        counter(
            &mut o,
            "backstop_keeper_ws_reconnects_total",
            "Websocket reconnections.",
            l(&self.ws_reconnects),
        );
        counter(
            &mut o,
            "backstop_keeper_rpc_retries_total",
            "Send attempts retried after RPC errors, expired blockhashes or timeouts.",
            l(&self.rpc_retries),
        );
        o.push_str("# HELP backstop_keeper_errors_total Errors by kind.\n# TYPE backstop_keeper_errors_total counter\n");
        for (k, v) in self.errors.lock().unwrap().iter() {
            o.push_str(&format!(
                "backstop_keeper_errors_total{{kind=\"{k}\"}} {v}\n"
            ));
        }
        gauge(
            &mut o,
            "backstop_keeper_accounts",
            "Margin accounts cached.",
            l(&self.accounts),
        );
        gauge(
            &mut o,
            "backstop_keeper_liquidatable_accounts",
            "Accounts below maintenance margin at the last tick.",
            l(&self.liquidatable),
        );
        gauge(
            &mut o,
            "backstop_keeper_deficit_atoms",
            "The exchange's deficit.",
            l(&self.deficit),
        );
        gauge(
            &mut o,
            "backstop_keeper_health_recompute_microseconds",
            "Last full health recomputation.",
            l(&self.health_recompute_micros),
        );
        let h = self.latency.lock().unwrap();
        let name = "backstop_keeper_price_to_liquidation_seconds";
        o.push_str(&format!("# HELP {name} From seeing the price change to the confirmed liquidation.\n# TYPE {name} histogram\n"));
        for (i, b) in BUCKETS.iter().enumerate() {
            o.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {}\n", h.counts[i]));
        }
        o.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}\n",
            h.count, h.sum, h.count
        ));
        o
    }
}

pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Serves `/metrics` and `/healthz` on `addr` until the process exits. Returns the bound
/// address (port 0 picks a free one).
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let m = metrics.clone();
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = match path.as_str() {
                    "/metrics" => ("200 OK", m.render()),
                    "/healthz" => match m.health() {
                        Ok(()) => ("200 OK", "ok\n".to_string()),
                        Err(e) => ("503 Service Unavailable", format!("{e}\n")),
                    },
                    _ => ("404 Not Found", "try /metrics or /healthz\n".to_string()),
                };
                let mut s = &stream;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })?;
    Ok(bound)
}
