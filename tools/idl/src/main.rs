//! `backstop-idl [--check] [PATH]` — builds the IDL of `programs/backstop` with Anchor's
//! `idl-build` mechanism (the program compiled with `--features idl-build`, its
//! `__anchor_private_print_idl` tests printing each piece) and writes it to PATH
//! (default `idl/backstop.json`). With `--check`, compares instead and exits 1 on drift.

use std::path::PathBuf;
use std::process::ExitCode;

/// Builds the Anchor IDL of programs/backstop and writes it to PATH (default
/// idl/backstop.json); with --check, compares instead and fails when they differ.
#[derive(clap::Parser, Debug)]
#[command(name = "backstop-idl", version)]
struct Args {
    /// Compare with PATH instead of writing it; exit 1 on drift.
    #[arg(long, env = "BACKSTOP_IDL_CHECK")]
    check: bool,
    /// Where the IDL lives (default: idl/backstop.json in the workspace).
    #[arg(env = "BACKSTOP_IDL_PATH")]
    path: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    let check = args.check;
    // The workspace this run belongs to: `cargo run` sets CARGO_MANIFEST_DIR for the
    // process; the compile-time value is only a fallback (a binary reused from a build in
    // another checkout would otherwise write into that checkout).
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = manifest.join("../..");
    let out = args.path.unwrap_or_else(|| root.join("idl/backstop.json"));
    // anchor-lang-idl 0.1.4 passes the literal argument "+{toolchain}" to cargo when
    // RUSTUP_TOOLCHAIN is set (as `cargo run` does); the toolchain is already selected.
    std::env::remove_var("RUSTUP_TOOLCHAIN");
    let idl = match anchor_lang_idl::build::IdlBuilder::new()
        .program_path(root.join("programs/backstop"))
        .build()
    {
        Ok(idl) => idl,
        Err(e) => {
            eprintln!("backstop-idl: building the IDL failed: {e:#}\nRe-run with ANCHOR_LOG=1 to see the compiler output.");
            return ExitCode::FAILURE;
        }
    };
    let fresh = serde_json::to_string_pretty(&idl).expect("IDL serializes") + "\n";
    if check {
        let committed = std::fs::read_to_string(&out).unwrap_or_default();
        if committed == fresh {
            println!("backstop-idl: {} is up to date", out.display());
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "backstop-idl: {} differs from the IDL the program builds.\n\
                 The program's interface changed: run `cargo run -p backstop-idl` and commit the result.",
                out.display()
            );
            ExitCode::FAILURE
        }
    } else {
        std::fs::write(&out, &fresh).expect("write IDL");
        println!(
            "backstop-idl: wrote {} ({} instructions)",
            out.display(),
            idl.instructions.len()
        );
        ExitCode::SUCCESS
    }
}
