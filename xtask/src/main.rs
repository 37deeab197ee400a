//! `cargo xtask`: the project's own automation.
//!
//! Subcommands (the first argument):
//! - `bench [--quick | --full] [--case NAME]`: the side-by-side comparison of BENCHMARKS.md.
//!   Runs CPython's `multiprocessing` through `xtask/python/mp_bench.py` (when `python3` is
//!   present) and every criterion bench of the workspace, then prints a table of figures,
//!   ratios against CPython and against the physical limit, and whether each target is met;
//!   writes `target/mproc-bench/report.md`, `report.json` and one SVG chart per case and
//!   per cost curve (`$CARGO_TARGET_DIR` is honoured). Default ≤ 10 minutes on 2 cores; `--quick` is the
//!   one-minute CI smoke run; `--full` measures long and repeats the CPython runs.
//!   Benches follow one convention: criterion group = case id, function id = system
//!   (`mproc`, a peer, `limit-*`, `ref-*`), one iteration = one operation ([`report::CASES`]);
//!   a cost curve's points are `<system>/<x>` ([`report::curves::CURVES`]);
//!   timing belongs in the `criterion_group!` config, not on the group (see [`mod@bench`]).
//! - `audit [--root DIR]`: every `unsafe` block/impl/fn with its SAFETY justification, and
//!   the loom / proptest / kill-test coverage of each primitive; writes
//!   `target/mproc-audit.md` and fails on a missing comment or an uncovered primitive.
//! - `loom [--quick]`: runs every crate's loom models (`*/tests/loom_*.rs`) in
//!   release mode with `--cfg loom`.
//! - `ci`: the gates `.ci/run` calls after the README's test command: fmt,
//!   clippy with warnings as errors, the rustdoc build with warnings as errors, clippy
//!   and the tests of each optional feature (`FEATURE_GATES`: `tokio` on sync, ipc, process,
//!   pool, manager and the facade; `mpi` on mproc-mpi; `.ci/run` installs what `mpi`
//!   needs), the CPython interop tests again under every other CPython ≥ 3.12 found
//!   ([`interop`]), loom with quick settings, the examples, `bench --quick` and `audit`.
//!
//! Cargo is invoked through `$CARGO`, so the toolchain that runs xtask runs
//! everything else. xtask depends on `serde_json` only (to read criterion's estimates and
//! write the JSON report); the charts are plain SVG written by hand.

mod audit;
mod bench;
mod codemap;
mod criterion;
mod interop;
mod lex;
mod report;
mod svg;
mod tree;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "bench" => bench::parse_args(rest).and_then(|opts| bench::run(&root(), &opts)),
        "audit" => audit_cmd(rest),
        "loom" => loom(rest.iter().any(|a| a == "--quick")),
        "ci" => ci(),
        _ => {
            eprintln!(
                "usage: cargo xtask <bench [--quick | --full] [--case NAME] | audit [--root DIR] | loom [--quick] | ci>"
            );
            return ExitCode::from(if cmd == "help" { 0 } else { 2 });
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(what: &str, mut cmd: Command) -> Result {
    eprintln!("==> {what}");
    let status = cmd.status().map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what}: {status}"))
    }
}

/// Every `<crate>/tests/loom_*.rs` as (package, test name), over every workspace member.
fn loom_models() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root()) else { return out };
    let mut dirs: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.join("Cargo.toml").is_file()).collect();
    dirs.sort();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join("tests")) else { continue };
        let Some(pkg) = std::fs::read_to_string(dir.join("Cargo.toml")).ok().and_then(|t| bench::package_name(&t))
        else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("loom_") && n.ends_with(".rs"))
            .map(|n| n.trim_end_matches(".rs").to_owned())
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| (pkg.clone(), n)));
    }
    out
}

fn loom(quick: bool) -> Result {
    let models = loom_models();
    if models.is_empty() {
        eprintln!("no loom models found");
        return Ok(());
    }
    for (pkg, test) in models {
        let mut c = cargo();
        c.args(["test", "--release", "-p", &pkg, "--test", &test, "--target-dir"])
            .arg(root().join("target/loom"))
            .env("RUSTFLAGS", "--cfg loom")
            .env("LOOM_MAX_PREEMPTIONS", if quick { "2" } else { "3" });
        if quick {
            c.env("MPROC_LOOM_QUICK", "1");
        }
        run(&format!("loom {pkg} {test}"), c)?;
    }
    Ok(())
}

/// What the test suite must not leave behind (ARCHITECTURE.md, reliability): `/dev/shm`
/// entries of the project and manager socket directories. `.ci/run` runs this
/// right after `cargo test --workspace`, on a machine where nothing else of
/// mproc runs.
fn leaks() -> Result {
    eprintln!("==> leak check: /dev/shm/mproc*, $TMPDIR/mproc-manager-*");
    let tmp = std::env::temp_dir();
    let mut left = Vec::new();
    for (dir, prefix) in [(PathBuf::from("/dev/shm"), "mproc"), (tmp, "mproc-manager-")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                left.push(e.path().display().to_string());
            }
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("left behind by the tests: {}", left.join(", ")))
    }
}

fn ci() -> Result {
    leaks()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run("cargo fmt --all --check", fmt)?;
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    run("cargo clippy --workspace --all-targets -- -D warnings", clippy)?;
    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings");
    run("RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps", doc)?;
    feature_gates()?;
    interop::run_other_pythons()?;
    loom(true)?;
    let mut ex = cargo();
    ex.args(["build", "--workspace", "--examples"]);
    run("cargo build --workspace --examples", ex)?;
    eprintln!("==> cargo xtask bench --quick");
    bench::run(&root(), &bench::Options { mode: bench::Mode::Quick, case: None })?;
    eprintln!("==> cargo xtask audit");
    audit::run(&root(), &bench::target_dir(&root()))
}

/// One optional feature's gate in `ci`: `package` linted with `feature` on, then tested
/// with it (`test`: the arguments after `cargo test -p PACKAGE --features FEATURE`; `None`:
/// lint only). `cargo test --workspace` builds none of these features; `.ci/run` installs
/// what the `mpi` feature needs.
struct Gate {
    package: &'static str,
    feature: &'static str,
    test: Option<&'static [&'static str]>,
}

const FEATURE_GATES: &[Gate] = &[
    // The async code lives in sync, ipc, process, pool and the manager's client; the
    // facade runs the example that needs it.
    Gate { package: "mproc-sync", feature: "tokio", test: Some(&[]) },
    Gate { package: "mproc-ipc", feature: "tokio", test: Some(&[]) },
    Gate { package: "mproc-process", feature: "tokio", test: Some(&[]) },
    Gate { package: "mproc-pool", feature: "tokio", test: Some(&[]) },
    Gate {
        package: "mproc",
        feature: "tokio",
        test: Some(&["--test", "examples", "--", "async_pool", "every_example_is_checked"]),
    },
    Gate { package: "mproc-manager", feature: "tokio", test: Some(&["--test", "async_client"]) },
    Gate { package: "mproc-mpi", feature: "mpi", test: Some(&[]) },
];

fn feature_gates() -> Result {
    for g in FEATURE_GATES {
        let mut clippy = cargo();
        clippy.args(["clippy", "-p", g.package, "--features", g.feature, "--all-targets", "--", "-D", "warnings"]);
        run(&format!("cargo clippy -p {} --features {} --all-targets -- -D warnings", g.package, g.feature), clippy)?;
        if let Some(args) = g.test {
            let mut test = cargo();
            test.args(["test", "-p", g.package, "--features", g.feature]).args(args);
            run(&format!("cargo test -p {} --features {} {}", g.package, g.feature, args.join(" ")), test)?;
        }
    }
    leaks()
}

fn audit_cmd(args: &[String]) -> Result {
    let root = match args {
        [] => root(),
        [flag, dir] if flag == "--root" => PathBuf::from(dir),
        _ => return Err("usage: cargo xtask audit [--root DIR]".into()),
    };
    audit::run(&root, &bench::target_dir(&root))
}
