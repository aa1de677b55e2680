//! The official Anchor TypeScript client (`@anchor-lang/core` from npm) against a real
//! localnet validator, with nothing but the committed IDL: `tests/ts/e2e.ts` (issue 16).
//! This test starts the localnet, writes its `localnet.json`, runs the script with Node
//! and then checks the books over RPC from Rust as well.
//!
//! Needs `npm ci --prefix tests/ts` (the README's test command runs it).

use std::path::PathBuf;
use std::process::Command;

use backstop_localnet::{check_conservation, free_rpc_port, start, LocalnetConfig};

#[test]
fn the_anchor_typescript_client_drives_the_localnet_from_the_idl_alone() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let ts = root.join("tests/ts");
    let tsx = ts.join("node_modules/.bin/tsx");
    assert!(
        tsx.exists(),
        "{} is missing: run `npm ci --prefix tests/ts` (./scripts/test.sh does)",
        tsx.display()
    );
    let cfg = LocalnetConfig {
        rpc_port: free_rpc_port(),
        ledger: std::env::temp_dir().join(format!("backstop-ts-{}", std::process::id())),
        deploy_config: root.join("migrations/localnet.toml"),
        demo_wallets: 3,
        wallet_usdc: 10_000_000_000,
        program_so: None,
    };
    let net = start(&cfg).expect("localnet");
    let info = net
        .write_addresses(&cfg.ledger.join("backstop"))
        .expect("localnet.json");

    let out = Command::new(&tsx)
        .arg("e2e.ts")
        .arg(&info)
        .current_dir(&ts)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "tests/ts/e2e.ts failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("ok: the Anchor TypeScript client"),
        "{stdout}"
    );

    // What the script did, checked independently over RPC from Rust.
    let rpc = net.rpc();
    check_conservation(&rpc, &net.report.exchange).expect("conservation");
    let ex = backstop_client::decode::exchange(
        &rpc.get_account_data(&net.report.exchange)
            .expect("exchange account"),
    )
    .expect("exchange");
    assert_eq!(ex.epoch.phase, backstop::state::EpochPhase::Normal);
    assert!(
        ex.epoch.last_closed.deficit_opened > 0,
        "an epoch opened and closed"
    );
    assert_eq!(ex.books.deficit, 0);
    drop(net);
    let _ = std::fs::remove_dir_all(&cfg.ledger);
}
