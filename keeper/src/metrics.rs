//! Prometheus metrics (the `prometheus` crate) served with `/healthz` by `tiny_http` on its
//! own thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Latency buckets (seconds) for price change → confirmed liquidation.
const BUCKETS: [f64; 10] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0];

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub liquidations: IntCounter,
    pub bankruptcies: IntCounter,
    pub rounds_begun: IntCounter,
    pub tallies: IntCounter,
    /// Account writes dropped because the book already held a newer slot's state.
    pub stale_writes: IntCounter,
    /// Accounts in confirmed tally transactions.
    pub tallied_accounts: IntCounter,
    /// Addresses in the keeper's usable lookup tables.
    pub lookup_table_addresses: IntGauge,
    pub clawback_charges: IntCounter,
    pub clawback_charged_atoms: IntCounter,
    pub transactions: IntCounter,
    pub benign_races: IntCounter,
    pub skipped_keeper_margin: IntCounter,
    pub resyncs: IntCounter,
    pub ws_reconnects: IntCounter,
    pub rpc_retries: IntCounter,
    /// Errors by kind (`rpc`, `websocket`, a program error's name, …).
    pub errors: IntCounterVec,
    /// Price change seen → liquidation confirmed, seconds.
    pub latency: Histogram,
    /// Transactions sent and not yet confirmed or given up.
    pub in_flight: IntGauge,
    /// Compute-unit limit requested by the last transaction sent.
    pub compute_unit_limit: IntGauge,
    pub accounts: IntGauge,
    pub liquidatable: IntGauge,
    pub deficit: IntGauge,
    pub health_recompute_micros: IntGauge,
    /// Set after the first full snapshot.
    pub ready: AtomicBool,
    /// Unix millis of the last successful data refresh (snapshot or websocket update).
    pub last_data_ms: AtomicI64,
    /// Data older than this makes /healthz fail.
    pub stale_after: Duration,
    pub started: Instant,
}

/// Registers and returns a metric; the names are literals, so a failure is a bug.
fn reg<M: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: M) -> M {
    r.register(Box::new(m.clone()))
        .expect("metric names are unique literals");
    m
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    reg(
        r,
        IntCounter::with_opts(Opts::new(name, help)).expect("valid metric"),
    )
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    reg(
        r,
        IntGauge::with_opts(Opts::new(name, help)).expect("valid metric"),
    )
}

impl Metrics {
    pub fn new(stale_after: Duration) -> Arc<Self> {
        let r = Registry::new();
        let p = "backstop_keeper_";
        let c = |n: &str, h: &str| counter(&r, &format!("{p}{n}"), h);
        let g = |n: &str, h: &str| gauge(&r, &format!("{p}{n}"), h);
        Arc::new(Metrics {
            liquidations: c("liquidations_total", "Confirmed liquidations sent by this keeper."),
            bankruptcies: c(
                "bankruptcies_total",
                "Confirmed resolve_bankruptcy transactions (a liquidation resolves the bankruptcy it creates itself; these are the others).",
            ),
            rounds_begun: c("clawback_rounds_begun_total", "Confirmed begin_clawback transactions."),
            tallies: c("tallies_total", "Confirmed tally transactions."),
            stale_writes: c(
                "stale_writes_dropped_total",
                "Account updates dropped because the book already held state from a newer slot.",
            ),
            tallied_accounts: c(
                "tallied_accounts_total",
                "Accounts in confirmed tally transactions (over tallies_total: accounts per batch).",
            ),
            lookup_table_addresses: g(
                "lookup_table_addresses",
                "Margin accounts in this keeper's usable address lookup tables (round batches name them by index in v0 transactions).",
            ),
            clawback_charges: c(
                "clawback_charges_total",
                "Accounts charged by confirmed clawback transactions.",
            ),
            clawback_charged_atoms: c(
                "clawback_charged_atoms_total",
                "Collateral atoms charged by confirmed clawbacks.",
            ),
            transactions: c("transactions_total", "Confirmed transactions."),
            benign_races: c(
                "benign_races_total",
                "Transactions another keeper made unnecessary.",
            ),
            skipped_keeper_margin: c(
                "skipped_keeper_margin_total",
                "Liquidations skipped: the keeper's margin cannot take the position.",
            ),
            resyncs: c("resyncs_total", "Full getProgramAccounts resyncs."),
            ws_reconnects: c("ws_reconnects_total", "Websocket reconnections."),
            rpc_retries: c(
                "rpc_retries_total",
                "Sends retried after RPC errors, expired blockhashes or confirmation timeouts.",
            ),
            errors: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(format!("{p}errors_total"), "Errors by kind."),
                    &["kind"],
                )
                .expect("valid metric"),
            ),
            latency: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        format!("{p}price_to_liquidation_seconds"),
                        "From seeing the price change to the confirmed liquidation.",
                    )
                    .buckets(BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            in_flight: g(
                "in_flight_transactions",
                "Transactions sent and awaiting confirmation.",
            ),
            compute_unit_limit: g(
                "compute_unit_limit",
                "Compute-unit limit of the last transaction sent (sized from its simulation, or the per-action fallback).",
            ),
            accounts: g("accounts", "Margin accounts cached."),
            liquidatable: g(
                "liquidatable_accounts",
                "Accounts below maintenance margin at the last tick.",
            ),
            deficit: g("deficit_atoms", "The exchange's deficit."),
            health_recompute_micros: g(
                "health_recompute_microseconds",
                "Last health pass over the book.",
            ),
            registry: r,
            ready: AtomicBool::new(false),
            last_data_ms: AtomicI64::new(0),
            stale_after,
            started: Instant::now(),
        })
    }

    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
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
            return Err(format!("data is stale: last refresh {age} ms ago"));
        }
        Ok(())
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = vec![];
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
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
    let server = tiny_http::Server::http(addr).map_err(std::io::Error::other)?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("metrics server is not on an IP address"))?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            let text = tiny_http::Header::from_bytes("Content-Type", prometheus::TEXT_FORMAT)
                .expect("static header");
            for request in server.incoming_requests() {
                let path = request.url().split('?').next().unwrap_or("/").to_string();
                let (status, body) = match path.as_str() {
                    "/metrics" => (200, metrics.render()),
                    "/healthz" => match metrics.health() {
                        Ok(()) => (200, "ok\n".to_string()),
                        Err(e) => (503, format!("{e}\n")),
                    },
                    _ => (404, "try /metrics or /healthz\n".to_string()),
                };
                let response = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(text.clone());
                let _ = request.respond(response);
            }
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_and_healthz_over_http() {
        let m = Metrics::new(Duration::from_secs(60));
        m.liquidations.inc();
        m.error("rpc");
        m.error("rpc");
        m.latency.observe(0.3);
        let addr = serve("127.0.0.1:0".parse().unwrap(), m.clone()).unwrap();
        let get = |path: &str| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let body = get("/metrics");
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(
            body.contains("backstop_keeper_liquidations_total 1"),
            "{body}"
        );
        assert!(
            body.contains("backstop_keeper_errors_total{kind=\"rpc\"} 2"),
            "{body}"
        );
        assert!(
            body.contains("backstop_keeper_price_to_liquidation_seconds_bucket{le=\"0.5\"} 1"),
            "{body}"
        );
        let h = get("/healthz");
        assert!(h.starts_with("HTTP/1.1 503"), "{h}");
        assert!(h.contains("waiting for the first snapshot"), "{h}");
        m.ready.store(true, Ordering::Relaxed);
        m.fresh_data();
        assert!(get("/healthz").starts_with("HTTP/1.1 200"));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }
}
