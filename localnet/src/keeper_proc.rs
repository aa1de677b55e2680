//! The real `backstop-keeper` binary as a child process against a [`Localnet`]: the e2e
//! tests and the localnet benchmark drive it through this, reading its `/metrics` and
//! `/healthz` like an operator's scraper would. Test/bench helper: failures panic with the
//! keeper's log attached.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use solana_sdk::signature::{write_keypair_file, Keypair};

use crate::Localnet;

pub struct KeeperProc {
    child: Child,
    metrics: String,
    log: PathBuf,
}

impl KeeperProc {
    /// Starts `bin` against `net` for `exchange`, signing with `keypair`; `tag` names the
    /// keypair and log files. Defaults suit tests (resync every 2 s, confirm timeout 10 s);
    /// `extra` flag/value pairs override or add to them (`("--flag", "")` for a bare flag).
    pub fn start(
        bin: &Path,
        net: &Localnet,
        exchange: &Pubkey,
        keypair: &Keypair,
        tag: &str,
        extra: &[&str],
    ) -> KeeperProc {
        let dir = std::env::temp_dir().join(format!("backstop-keeper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kp = dir.join(format!("{tag}.json"));
        write_keypair_file(keypair, &kp).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("{tag}.log"));
        let mut args: Vec<String> = vec![
            "--url".into(),
            net.rpc_url(),
            "--ws-url".into(),
            net.ws_url(),
            "--keypair".into(),
            kp.display().to_string(),
            "--exchange".into(),
            exchange.to_string(),
            "--metrics-addr".into(),
            format!("127.0.0.1:{port}"),
            "--resync-secs".into(),
            "2".into(),
            "--confirm-timeout-secs".into(),
            "10".into(),
        ];
        // Later flags override (tests pass --url / --ws-url through proxies); a pair with an
        // empty value adds a bare flag.
        for pair in extra.chunks(2) {
            if pair[1].is_empty() {
                args.push(pair[0].to_string());
            } else if let Some(i) = args.iter().position(|a| a == pair[0]) {
                args[i + 1] = pair[1].to_string();
            } else {
                args.extend(pair.iter().map(|s| s.to_string()));
            }
        }
        let child = Command::new(bin)
            .args(&args)
            .env("BACKSTOP_KEEPER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        KeeperProc {
            child,
            metrics: format!("127.0.0.1:{port}"),
            log,
        }
    }

    /// GET on the metrics server: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(&self.metrics).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        // HTTP/1.1 keeps the connection open unless asked not to; the body ends at close.
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let code = out.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, out.split("\r\n\r\n").nth(1).unwrap_or("").to_string()))
    }

    /// One unlabelled sample of `/metrics` (0 when absent).
    pub fn metric(&self, name: &str) -> u64 {
        let (_, body) = self.get("/metrics").expect("metrics endpoint");
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The `backstop_keeper_errors_total{kind=…}` lines.
    pub fn errors(&self) -> Vec<String> {
        let (_, body) = self.get("/metrics").expect("metrics endpoint");
        body.lines()
            .filter(|l| l.starts_with("backstop_keeper_errors_total{"))
            .map(str::to_string)
            .collect()
    }

    /// Waits (up to `timeout`) for `/healthz` to answer 200: the first snapshot is in.
    pub fn wait_ready_within(&self, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some((200, _)) = self.get("/healthz") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("keeper never became healthy:\n{}", self.logs());
    }

    pub fn wait_ready(&self) {
        self.wait_ready_within(Duration::from_secs(60));
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// (resident, peak resident) memory in KiB, from /proc (Linux).
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("keeper ignored SIGTERM:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for KeeperProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
