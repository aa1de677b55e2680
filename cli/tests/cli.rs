//! The real `backstop` binary against the real localnet validator over JSON-RPC: the happy
//! paths (create, deposit, trade with both keypairs and partially signed, price move,
//! settle, show, withdraw) with balances read back over RPC, and bad input (unknown
//! account, insufficient funds, wrong keypair) that must fail with a clear message and a
//! non-zero exit and change nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anchor_lang::prelude::Pubkey;
use backstop_client::{ix, pda};
use backstop_localnet::{
    check_conservation, free_rpc_port, start, token_balance, Localnet, LocalnetConfig,
};
use backstop_migrations::send;
use serde_json::Value;
use solana_sdk::signature::{write_keypair_file, Keypair};
use solana_sdk::signer::Signer;

const USDC: u64 = 1_000_000;

struct Cli<'a> {
    net: &'a Localnet,
    dir: PathBuf,
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

impl Cli<'_> {
    fn keypair(&self, i: usize) -> String {
        self.dir
            .join(format!("wallet-{i}.json"))
            .display()
            .to_string()
    }

    fn run(&self, keypair: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_backstop"));
        cmd.args(["--url", &self.net.rpc_url()])
            .args(["--keypair", keypair])
            .env_remove("BACKSTOP_URL");
        if !args.contains(&"--exchange") {
            cmd.args(["--exchange", &self.net.report.exchange.to_string()]);
        }
        let out = cmd.args(args).output().expect("run backstop");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, wallet: usize, args: &[&str]) -> Run {
        let r = self.run(&self.keypair(wallet), args);
        assert!(
            r.ok,
            "backstop {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// Runs a command that must fail; returns its stderr. Asserts that nothing changed.
    fn refused(&self, keypair: &str, args: &[&str]) -> String {
        let before = self.state();
        let r = self.run(keypair, args);
        assert!(!r.ok, "backstop {args:?} should have failed:\n{}", r.stdout);
        assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
        assert_eq!(self.state(), before, "a refused command changed state");
        r.stderr
    }

    /// Every margin account, the exchange and every wallet's token balance.
    fn state(&self) -> Vec<Vec<u8>> {
        let rpc = self.net.rpc();
        let ex = self.net.report.exchange;
        let mut keys = vec![ex];
        for w in &self.net.wallets {
            keys.push(pda::margin_account(&ex, &w.pubkey()));
        }
        keys.extend(self.net.wallet_tokens.iter().copied());
        rpc.get_multiple_accounts(&keys)
            .unwrap()
            .into_iter()
            .map(|a| a.map(|a| a.data).unwrap_or_default())
            .collect()
    }
}

#[test]
fn cli_against_the_localnet_validator() {
    let ledger = std::env::temp_dir().join(format!("backstop-cli-{}", std::process::id()));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = LocalnetConfig {
        rpc_port: free_rpc_port(),
        ledger: ledger.clone(),
        deploy_config: root.join("migrations/localnet.toml"),
        demo_wallets: 3,
        wallet_usdc: 10_000 * USDC,
        program_so: None,
    };
    let net = start(&cfg).expect("localnet");
    let dir = ledger.join("backstop");
    net.write_addresses(&dir).unwrap();
    let cli = Cli { net: &net, dir };
    happy_paths(&cli);
    bad_input_fails_clearly_and_changes_nothing(&cli);
    drop(net);
    let _ = std::fs::remove_dir_all(&ledger);
}

fn set_price(net: &Localnet, ui: u64) {
    let oracle = net.report.markets[0].2;
    send(
        &net.rpc(),
        &net.admin,
        &[],
        &[ix::set_oracle_price(
            &net.admin.pubkey(),
            &oracle,
            (ui * USDC) as i64,
            0,
        )],
    )
    .unwrap();
}

fn happy_paths(cli: &Cli) {
    let net = cli.net;
    let rpc = net.rpc();
    set_price(net, 150);
    for w in 0..2 {
        let r = cli.ok(w, &["account", "create"]);
        assert!(r.stdout.contains("Created margin account"), "{}", r.stdout);
        let r = cli.ok(w, &["deposit", "1000"]);
        assert!(r.stdout.contains("Deposited 1000.000000"), "{}", r.stdout);
        assert_eq!(
            token_balance(&rpc, &net.wallet_tokens[w]).unwrap(),
            9_000 * USDC
        );
    }
    // Wallet 0 buys 2 SOL from wallet 1 at the oracle price ($150, the default), both
    // keypairs at hand.
    let r = cli.ok(
        0,
        &[
            "trade",
            "--market",
            "SOL-PERP",
            "--side",
            "buy",
            "--size",
            "2",
            "--maker-keypair",
            &cli.keypair(1),
        ],
    );
    assert!(
        r.stdout.contains("Traded: bought 2 SOL-PERP at 150.0000"),
        "{}",
        r.stdout
    );

    let show = cli.ok(0, &["--output", "json", "account", "show"]).json();
    let fee = 300 * USDC / 1_000;
    assert_eq!(show["capital"], 1_000 * USDC);
    assert_eq!(show["pnl"], -((fee) as i64), "the fee is pnl until settled");
    assert_eq!(show["positions"][0]["side"], "long");
    assert_eq!(show["positions"][0]["size"], "2.000000000");
    assert_eq!(show["positions"][0]["entry_price"], "150.0000");
    assert_eq!(show["health"]["status"], "healthy");
    // IM 10% and MM 5% of 300 USDC notional.
    assert_eq!(show["health"]["initial_margin"], 30 * USDC);
    assert_eq!(show["health"]["maintenance_margin"], 15 * USDC);
    // Equity 999.7 + 2(p − 150) < 0.1·p ⇔ 1.9 p < −699.7: no positive price liquidates.
    assert!(
        show["positions"][0]["liquidation_price"].is_null(),
        "{show}"
    );
    // The margin rules in force for this position (localnet.toml: a size premium and a
    // profit weight, no smoothed price; 2 SOL is far below the premium's threshold, so
    // the base rates).
    assert_eq!(show["positions"][0]["initial_margin_bps"], 1_000);
    assert_eq!(show["positions"][0]["maintenance_margin_bps"], 500);
    assert_eq!(show["positions"][0]["unrealized_weight_bps"], 8_000);
    assert!(show["positions"][0]["smoothed_price"].is_null());
    assert_eq!(show["positions"][0]["degraded_price"], false);

    let text = cli.ok(0, &["account", "show"]).stdout;
    for needle in [
        "capital",
        "equity",
        "maintenance margin",
        "SOL-PERP",
        "long",
        "LIQ. PRICE",
        "PROFIT WEIGHT IM",
        "80.00%",
        "Clawback receipts: none",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }

    let ex = cli.ok(0, &["--output", "json", "exchange", "show"]).json();
    assert_eq!(ex["insurance_fund"], fee);
    assert_eq!(ex["vault"], 2_000 * USDC - fee);
    assert_eq!(ex["deficit"], 0);
    assert_eq!(ex["epoch"]["phase"], "Normal");
    assert_eq!(ex["markets"][0]["name"], "SOL-PERP");
    assert_eq!(ex["markets"][0]["oracle_price"], "150.0000");
    assert_eq!(ex["markets"][0]["long_open_interest"], "2.000000000");
    assert_eq!(ex["markets"][0]["short_open_interest"], "2.000000000");
    let text = cli.ok(0, &["exchange", "show"]).stdout;
    assert!(
        text.contains("insurance fund") && text.contains("BTC-PERP"),
        "{text}"
    );

    // $165: wallet 0 is up 30, wallet 1 down 30; settle both.
    set_price(net, 165);
    for w in 0..2 {
        assert!(cli.ok(w, &["settle"]).stdout.starts_with("Settled"));
    }
    // No smoothed price on the localnet: settlement realizes at the oracle.
    let show0 = cli.ok(0, &["--output", "json", "account", "show"]).json();
    assert_eq!(show0["capital"], 1_000 * USDC - fee + 30 * USDC);
    let show1 = cli.ok(1, &["--output", "json", "account", "show"]).json();
    assert_eq!(show1["capital"], 1_000 * USDC - 30 * USDC);

    // Partially signed: wallet 1 (taker) sells 2 SOL back to wallet 0 (maker) at $165.
    let prepared = cli
        .ok(
            1,
            &[
                "--output",
                "json",
                "trade",
                "--market",
                "SOL-PERP",
                "--side",
                "buy",
                "--size",
                "2",
                "--price",
                "165",
                "--maker",
                &net.wallets[0].pubkey().to_string(),
                "--sign-only",
            ],
        )
        .json();
    let tx = prepared["transaction"].as_str().unwrap().to_string();
    // Nothing happened yet.
    let still = cli.ok(1, &["--output", "json", "account", "show"]).json();
    assert_eq!(still["positions"][0]["side"], "short");
    let r = cli.ok(0, &["cosign", &tx]);
    assert!(r.stdout.contains("Trade confirmed"), "{}", r.stdout);
    let fee2 = 330 * USDC / 1_000;
    for w in 0..2 {
        let v = cli.ok(w, &["--output", "json", "account", "show"]).json();
        assert!(v["positions"].as_array().unwrap().is_empty(), "{v}");
        cli.ok(w, &["settle"]);
        cli.ok(w, &["withdraw", "all"]);
    }
    assert_eq!(
        token_balance(&rpc, &net.wallet_tokens[0]).unwrap(),
        10_000 * USDC + 30 * USDC - fee
    );
    assert_eq!(
        token_balance(&rpc, &net.wallet_tokens[1]).unwrap(),
        10_000 * USDC - 30 * USDC - fee2
    );
    let ex = cli.ok(0, &["--output", "json", "exchange", "show"]).json();
    assert_eq!(ex["vault"], 0);
    assert_eq!(ex["insurance_fund"], fee + fee2);

    // Redeposit for the refusal scenarios.
    cli.ok(0, &["deposit", "100"]);
    check_conservation(&rpc, &net.report.exchange).unwrap();

    // The admin's bounded powers: the localnet's zero delay is shown; a change is queued
    // by the admin, listed, and applied by anyone; a stranger cannot queue; a jump
    // beyond one step is refused by name.
    let admin = cli.dir.join("admin.json").display().to_string();
    let text = cli.ok(0, &["exchange", "show"]).stdout;
    assert!(text.contains("ZERO"), "{text}");
    let r = cli.run(
        &admin,
        &[
            "admin",
            "queue-market-params",
            "--market",
            "SOL-PERP",
            "--oracle-max-conf-bps",
            "250",
        ],
    );
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let ex = cli.ok(0, &["--output", "json", "exchange", "show"]).json();
    assert_eq!(ex["queued_changes"].as_array().unwrap().len(), 1, "{ex}");
    cli.ok(1, &["admin", "apply-market-params", "--market", "SOL-PERP"]);
    let ex = cli.ok(0, &["--output", "json", "exchange", "show"]).json();
    assert!(ex["queued_changes"].as_array().unwrap().is_empty(), "{ex}");
    let k0 = cli.keypair(0);
    let e = cli.refused(
        &k0,
        &[
            "admin",
            "queue-market-params",
            "--market",
            "SOL-PERP",
            "--taker-fee-bps",
            "11",
        ],
    );
    assert!(e.contains("NotAdmin"), "{e}");
    let r = cli.run(
        &admin,
        &[
            "admin",
            "queue-market-params",
            "--market",
            "SOL-PERP",
            "--initial-margin-bps",
            "3000",
        ],
    );
    assert!(!r.ok && r.stderr.contains("StepTooLarge"), "{}", r.stderr);
}

fn bad_input_fails_clearly_and_changes_nothing(cli: &Cli) {
    let net = cli.net;
    let k0 = cli.keypair(0);
    let k2 = cli.keypair(2);

    // Unknown accounts.
    let stranger = Pubkey::new_unique().to_string();
    let e = cli.refused(&k0, &["account", "show", &stranger]);
    assert!(
        e.contains("no margin account for") && e.contains("backstop account create"),
        "{e}"
    );
    let e = cli.refused(&k2, &["deposit", "10"]);
    assert!(
        e.contains("has no margin account") && e.contains("backstop account create"),
        "{e}"
    );
    let e = cli.refused(&k0, &["--exchange", &stranger, "exchange", "show"]);
    assert!(e.contains("no exchange at"), "{e}");
    let e = cli.refused(
        &k0,
        &[
            "trade",
            "--market",
            "DOGE-PERP",
            "--side",
            "buy",
            "--size",
            "1",
            "--price",
            "1",
            "--maker-keypair",
            &cli.keypair(1),
        ],
    );
    assert!(
        e.contains("no market \"DOGE-PERP\"") && e.contains("SOL-PERP"),
        "{e}"
    );

    // Insufficient funds: the program's error comes back by name, with a hint.
    let e = cli.refused(&k0, &["withdraw", "100.000001"]);
    assert!(e.contains("InsufficientCapital (error 6020)"), "{e}");
    assert!(
        e.contains("hint: withdraw at most the account's capital"),
        "{e}"
    );
    let r = cli.run(&k0, &["--output", "json", "withdraw", "5000"]);
    assert!(!r.ok);
    assert_eq!(r.json()["error_name"], "InsufficientCapital");
    let e = cli.refused(&k0, &["deposit", "1000000"]);
    assert!(
        e.contains("insufficient funds: token account") && e.contains("holds"),
        "{e}"
    );
    let e = cli.refused(&k0, &["deposit", "0.0000001"]);
    assert!(e.contains("more than 6 decimal places"), "{e}");

    // Wrong keypair: someone else's token account, a non-signer co-signing, no file.
    let other_token = net.wallet_tokens[1].to_string();
    let e = cli.refused(&k0, &["deposit", "10", "--from", &other_token]);
    assert!(e.contains("OwnerMismatch"), "{e}");
    let e = cli.refused(
        &k0,
        &["withdraw", "10", "--to", &Pubkey::new_unique().to_string()],
    );
    assert!(e.contains("withdrawal failed"), "{e}");
    set_price(net, 165);
    cli.ok(2, &["account", "create"]);
    cli.ok(2, &["deposit", "100"]);
    let prepared = cli
        .ok(
            0,
            &[
                "--output",
                "json",
                "trade",
                "--market",
                "SOL-PERP",
                "--side",
                "buy",
                "--size",
                "0.1",
                "--price",
                "165",
                "--maker",
                &net.wallets[2].pubkey().to_string(),
                "--sign-only",
            ],
        )
        .json();
    let tx = prepared["transaction"].as_str().unwrap();
    let e = cli.refused(&cli.keypair(1), &["cosign", tx]);
    assert!(e.contains("is not a signer of this trade"), "{e}");
    let e = cli.refused(&k2, &["cosign", "bm90IGEgdHJhbnNhY3Rpb24="]);
    assert!(e.contains("does not decode to a transaction"), "{e}");
    let missing = write_missing_keypair_path(&cli.dir);
    let e = cli.refused(&missing, &["account", "create"]);
    assert!(
        e.contains("cannot read keypair") && e.contains("--keypair"),
        "{e}"
    );
    // A keypair that is not the margin account's owner has nothing to close.
    let fresh = cli.dir.join("fresh.json");
    write_keypair_file(&Keypair::new(), &fresh).unwrap();
    let e = cli.refused(fresh.to_str().unwrap(), &["account", "close"]);
    assert!(e.contains("has no margin account"), "{e}");
    // The prepared trade still works with the right maker.
    assert!(cli
        .ok(2, &["cosign", tx])
        .stdout
        .contains("Trade confirmed"));
}

fn write_missing_keypair_path(dir: &Path) -> String {
    dir.join("no-such-keypair.json").display().to_string()
}
