//! The `backstop-sim` binary: reproducible JSON, charts written, clear errors.

use std::process::Command;

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_backstop-sim"))
        .args(args)
        .output()
        .expect("run backstop-sim")
}

#[test]
fn same_seed_byte_identical_json_and_charts() {
    let dir = std::env::temp_dir().join(format!("backstop-sim-{}", std::process::id()));
    let d = dir.display().to_string();
    let args = [
        "--accounts",
        "2000",
        "--seed",
        "5",
        "--output",
        "json",
        "--svg-dir",
        &d,
    ];
    let a = sim(&args);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let charts = std::fs::read(dir.join("charges.svg")).unwrap();
    assert!(std::fs::read_to_string(dir.join("waterfall.svg"))
        .unwrap()
        .starts_with("<svg"));
    let b = sim(&args);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(charts, std::fs::read(dir.join("charges.svg")).unwrap());
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["policies"].as_array().unwrap().len(), 7);
    assert!(
        v["deficit"].as_u64().unwrap() > 0,
        "the default scenario leaves a deficit"
    );
    let other = sim(&["--accounts", "2000", "--seed", "6", "--output", "json"]);
    assert_ne!(a.stdout, other.stdout);
}

#[test]
fn the_table_and_errors() {
    let t = sim(&["--accounts", "500", "--scenario", "crash-30"]);
    let out = String::from_utf8_lossy(&t.stdout);
    assert!(t.status.success());
    for p in [
        "backstop ",
        "backstop-cap-10pct",
        "adl-queue",
        "oi-socialization",
        "deposit-haircut",
        "okex-clawback",
    ] {
        assert!(out.contains(p), "{p} missing:\n{out}");
    }
    let bad = sim(&["--scenario", "meteor"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.starts_with("error: unknown scenario \"meteor\"") && err.contains("gap-20"),
        "{err}"
    );
    let missing = sim(&["--population", "/nonexistent.csv"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading /nonexistent.csv"));
}
