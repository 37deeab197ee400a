//! `cargo xtask bench [--quick | --full] [--case NAME]`: the side-by-side comparison.
//!
//! 1. CPython: runs `xtask/python/mp_bench.py` once per case (when `python3` is present),
//!    each under a timeout; `--full` takes the median of several runs.
//! 2. mproc, its Rust peers and the physical limits: runs every criterion bench target of
//!    the workspace (`<crate>/benches/*.rs`) with settings for the mode, results kept under
//!    `<target>/mproc-bench/criterion`. By convention the group is the case id, the function
//!    id the system, one iteration one operation.
//! 3. Reads criterion's estimates of this run, builds the rows of every case (a system that
//!    reported nothing is listed as not measured) and the points of every cost curve, and
//!    writes `report.md`, `report.json` and one SVG chart per case and per curve to
//!    `<target>/mproc-bench/`; the report also goes to stdout.
//!
//! Progress goes to stderr, the table to stdout.
//!
//! For bench authors: the mode's `--warm-up-time/--measurement-time/--sample-size` reach
//! criterion on the command line, which overrides a `criterion_group! { config = … }` but
//! *not* settings made on a `BenchmarkGroup` (`g.sample_size(…)` and the like win over the
//! command line). Put timing in the `config`, or read `MPROC_BENCH_MODE` (`quick`,
//! `default`, `full`), which xtask sets for every bench it runs; likewise shrink expensive
//! setup (e.g. the ≥100k items of `pool_map`) when it is `quick`.

use crate::criterion;
use crate::report::curves::{self, Curve, CURVES};
use crate::report::{self, Case, Meta, Python, Spread, CASES};
use crate::svg;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long and how carefully to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// About a minute of measuring: the CI smoke run.
    Quick,
    /// The default: a few minutes on 2 cores.
    Default,
    /// Long criterion runs and repeated CPython runs.
    Full,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Default => "default",
            Mode::Full => "full",
        }
    }

    /// Criterion's command-line settings for this mode.
    pub fn criterion_args(self) -> Vec<String> {
        let args: &[&str] = match self {
            Mode::Quick => {
                &["--warm-up-time", "0.2", "--measurement-time", "0.5", "--sample-size", "10", "--nresamples", "1000"]
            }
            Mode::Default => {
                &["--warm-up-time", "1", "--measurement-time", "3", "--sample-size", "20", "--nresamples", "20000"]
            }
            Mode::Full => &["--warm-up-time", "3", "--measurement-time", "10", "--sample-size", "100"],
        };
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.push("--noplot".into());
        v
    }

    /// Paired rounds run after the main measurement for each case judged against its
    /// limit (`report::judged_on_limit`), and criterion's settings for one round: short,
    /// so that mproc and the limit of one round run seconds apart.
    fn paired_rounds(self) -> (usize, &'static [&'static str]) {
        match self {
            Mode::Quick => (0, &[]),
            Mode::Default => (4, &["--warm-up-time", "0.5", "--measurement-time", "1.5", "--sample-size", "10"]),
            Mode::Full => (8, &["--warm-up-time", "1", "--measurement-time", "3", "--sample-size", "20"]),
        }
    }

    fn python_runs(self) -> usize {
        if self == Mode::Full {
            5
        } else {
            1
        }
    }

    fn python_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Mode::Quick => 60,
            Mode::Default => 180,
            Mode::Full => 600,
        })
    }

    fn bench_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Mode::Quick => 600,
            Mode::Default => 1800,
            Mode::Full => 4 * 3600,
        })
    }
}

/// Parsed `bench` arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Measuring mode.
    pub mode: Mode,
    /// Only this case.
    pub case: Option<String>,
}

/// Parses `[--quick | --full] [--case NAME]`.
pub fn parse_args(args: &[String]) -> crate::Result<Options> {
    let mut opts = Options { mode: Mode::Default, case: None };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.mode = Mode::Quick,
            "--full" => opts.mode = Mode::Full,
            "--case" => {
                let name = it.next().ok_or("--case needs a case name")?;
                if report::ids().all(|id| id != name) {
                    let known: Vec<&str> = report::ids().collect();
                    return Err(format!("unknown case `{name}`; the cases are: {}", known.join(", ")));
                }
                opts.case = Some(name.clone());
            }
            other => return Err(format!("unknown argument `{other}` (expected --quick, --full, --case NAME)")),
        }
    }
    Ok(opts)
}

/// The cargo target directory: `$CARGO_TARGET_DIR` or `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
}

/// Every bench target in the workspace: (package name, bench name), from `*/benches/*.rs`.
pub fn discover_benches(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else { return out };
    let mut dirs: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.join("Cargo.toml").is_file()).collect();
    dirs.sort();
    for dir in dirs {
        let Ok(files) = std::fs::read_dir(dir.join("benches")) else { continue };
        let Some(pkg) = std::fs::read_to_string(dir.join("Cargo.toml")).ok().and_then(|t| package_name(&t)) else {
            continue;
        };
        let mut names: Vec<String> = files
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".rs").map(str::to_owned))
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| (pkg.clone(), n)));
    }
    out
}

/// The `required-features` of bench `bench` in a package's Cargo.toml (`[[bench]]` blocks).
pub fn bench_features(toml: &str, bench: &str) -> Vec<String> {
    let mut in_bench = false;
    let mut name = None;
    let mut features = Vec::new();
    let mut found = Vec::new();
    let mut flush = |name: &mut Option<String>, features: &mut Vec<String>| {
        if name.as_deref() == Some(bench) {
            found = std::mem::take(features);
        }
        *name = None;
        features.clear();
    };
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            if in_bench {
                flush(&mut name, &mut features);
            }
            in_bench = t == "[[bench]]";
            continue;
        }
        if !in_bench {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            match k.trim() {
                "name" => name = Some(v.trim().trim_matches('"').to_owned()),
                "required-features" => {
                    features = v.split('"').skip(1).step_by(2).map(str::to_owned).collect();
                }
                _ => {}
            }
        }
    }
    if in_bench {
        flush(&mut name, &mut features);
    }
    found
}

/// Why a bench that needs `feature` cannot run on this machine, if it cannot: the `mpi`
/// feature needs MPICH's `mpiexec` on the PATH.
fn feature_unavailable(feature: &str) -> Option<String> {
    if feature != "mpi" {
        return None;
    }
    let found =
        Command::new("sh").args(["-c", "command -v mpiexec"]).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    (!found).then(|| "needs `mpiexec` (MPICH: apt-get install mpich libmpich-dev libclang-dev)".to_owned())
}

/// The features to build and run `bench` of `pkg` with, or why it is skipped.
fn features_for(root: &Path, pkg: &str, bench: &str) -> Result<Vec<String>, String> {
    let toml =
        package_dir(root, pkg).and_then(|d| std::fs::read_to_string(d.join("Cargo.toml")).ok()).unwrap_or_default();
    let features = bench_features(&toml, bench);
    for f in &features {
        if let Some(why) = feature_unavailable(f) {
            return Err(format!("feature `{f}` {why}"));
        }
    }
    Ok(features)
}

/// The directory of workspace member `pkg`.
fn package_dir(root: &Path, pkg: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    entries.flatten().map(|e| e.path()).find(|d| {
        std::fs::read_to_string(d.join("Cargo.toml")).ok().and_then(|t| package_name(&t)).as_deref() == Some(pkg)
    })
}

/// The `name` of the `[package]` section of a Cargo.toml.
pub fn package_name(toml: &str) -> Option<String> {
    let mut in_package = false;
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[package]";
        } else if in_package {
            if let Some(v) = t.strip_prefix("name") {
                let v = v.trim_start().strip_prefix('=')?.trim();
                return Some(v.trim_matches('"').to_owned());
            }
        }
    }
    None
}

/// Runs `cmd` in its own process group; kills the group if it outlives `timeout`.
/// Returns the exit status and, when stdout is piped, what it printed.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<(ExitStatus, String), String> {
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let reader = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // The whole group: python's worker processes and criterion's children too.
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s (killed)", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    let out = reader.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
    Ok((status, out))
}

/// Parses the script's output: `#key<TAB>value` metadata and `case<TAB>figure<TAB>unit` lines.
pub fn parse_python(out: &str) -> (BTreeMap<String, String>, BTreeMap<String, f64>) {
    let mut meta = BTreeMap::new();
    let mut figures = BTreeMap::new();
    for line in out.lines() {
        let mut parts = line.split('\t');
        let (Some(a), Some(b)) = (parts.next(), parts.next()) else { continue };
        if let Some(key) = a.strip_prefix('#') {
            meta.insert(key.to_owned(), b.to_owned());
        } else if let Ok(f) = b.trim().parse::<f64>() {
            if f.is_finite() && f > 0.0 {
                figures.insert(a.to_owned(), f);
            }
        }
    }
    (meta, figures)
}

/// CPython's figures for the cases and curves `ids` (id, unit): per case its figure, per
/// curve one figure per point (keyed `<curve>/<x>`).
fn run_python(root: &Path, mode: Mode, ids: &[(&str, &str)]) -> Python {
    let script = root.join("xtask/python/mp_bench.py");
    let present = Command::new("python3")
        .args(["-c", "import multiprocessing"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        eprintln!("==> CPython: skipped, python3 (with multiprocessing) not found");
        return Python::Skipped("skipped: python3 not found".into());
    }
    let runs = mode.python_runs();
    // Cases with no CPython counterpart (the async ones) are not in the script's `CASES`.
    let script_src = std::fs::read_to_string(&script).unwrap_or_default();
    let mut version = String::from("CPython");
    let mut figures = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for &(id, unit) in ids {
        if !script_src.contains(&format!("\"{id}\":")) {
            eprintln!("==> CPython {id}: no CPython counterpart in mp_bench.py");
            continue;
        }
        // Figure name (the id, or `<id>/<x>` for a curve's point) → the figure of each run.
        let mut got: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for run in 1..=runs {
            let mut cmd = Command::new("python3");
            cmd.arg(&script).current_dir(root).stdout(Stdio::piped());
            if mode == Mode::Quick {
                cmd.arg("--quick");
            }
            cmd.arg(id);
            let result = run_with_timeout(cmd, mode.python_timeout());
            match result {
                Ok((status, out)) if status.success() => {
                    let (meta, figs) = parse_python(&out);
                    if let (Some(v), Some(m)) = (meta.get("python"), meta.get("start_method")) {
                        version = format!("{v}, default start method {m}");
                    }
                    let ours: Vec<(String, f64)> = figs
                        .into_iter()
                        .filter(|(name, _)| name == id || name.strip_prefix(id).is_some_and(|x| x.starts_with('/')))
                        .collect();
                    if ours.is_empty() {
                        failures.insert(id.to_owned(), "not measured (no figure in the output)".to_owned());
                    }
                    for (name, f) in ours {
                        eprintln!("==> CPython {name} (run {run}/{runs}): {} {unit}", report::fmt_num(f));
                        got.entry(name).or_default().push(f);
                    }
                }
                Ok((status, _)) => {
                    eprintln!("==> CPython {id}: failed ({status})");
                    failures.insert(id.to_owned(), format!("not measured (mp_bench.py {status})"));
                }
                Err(e) => {
                    eprintln!("==> CPython {id}: {e}");
                    failures.insert(id.to_owned(), format!("not measured (mp_bench.py {e})"));
                }
            }
        }
        if !got.is_empty() {
            failures.remove(id);
        }
        for (name, figs) in got {
            figures.insert(name, Spread::of(&figs));
        }
    }
    Python::Ran { version, figures, failures }
}

/// `cargo bench` of one bench target with criterion's `args` (and `filter`), its results
/// under `home`.
fn bench_command(
    pkg: &str,
    bench: &str,
    features: &[String],
    args: &[String],
    filter: Option<&str>,
    home: &Path,
    mode: Mode,
) -> Command {
    let mut cmd = crate::cargo();
    cmd.args(["bench", "-p", pkg, "--bench", bench]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd.arg("--").args(args);
    if let Some(f) = filter {
        cmd.arg(f);
    }
    cmd.env("CRITERION_HOME", home).env("MPROC_BENCH_MODE", mode.name()).stdout(std::io::stderr());
    cmd
}

/// Cases whose limit changes regime within seconds as the VM's vCPUs move between
/// host cores (`pipe_rtt`'s ping-pong reads 30, 70 or 450 ns in different seconds of
/// one run): after the paired rounds they get [`BRIEF_ROUNDS`] more, with [`BRIEF`]
/// settings, so that the `mproc` and limit rows of a round run under a second apart.
const FLIPPING: &[&str] = &["pipe_rtt"];
/// Brief paired rounds per flipping case (in modes with paired rounds).
const BRIEF_ROUNDS: usize = 16;
/// Criterion's settings for one brief round.
const BRIEF: &[&str] = &["--warm-up-time", "0.1", "--measurement-time", "0.3", "--sample-size", "10"];

/// Runs one paired round: per bench target, only the `mproc` and limit rows of its
/// cases, with `args` (and `--nresamples 1000 --noplot`), into the criterion home
/// `home` (emptied first); adds each case's speed ratio vs its limit to `ratios`. A
/// failure becomes a note.
fn run_round(
    by_target: &BTreeMap<&(String, String, Vec<String>), Vec<&Case>>,
    args: &[&str],
    home: &Path,
    mode: Mode,
    what: &str,
    ratios: &mut BTreeMap<String, Vec<f64>>,
    notes: &mut Vec<String>,
) {
    let args: Vec<String> = args.iter().chain(&["--nresamples", "1000", "--noplot"]).map(|s| s.to_string()).collect();
    let _ = std::fs::remove_dir_all(home);
    for ((pkg, bench, feats), cases) in by_target {
        let ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
        let mut systems: Vec<&str> = cases.iter().filter_map(|c| c.limit).collect();
        systems.push("mproc");
        systems.sort();
        systems.dedup();
        let filter = format!("^({})/({})$", ids.join("|"), systems.join("|"));
        eprintln!("==> {what}: {pkg} --bench {bench} {filter}");
        let cmd = bench_command(pkg, bench, feats, &args, Some(&filter), home, mode);
        match run_with_timeout(cmd, mode.bench_timeout()) {
            Ok((status, _)) if status.success() => {}
            Ok((status, _)) => notes.push(format!("{what} of `{pkg}` bench `{bench}` failed: {status}")),
            Err(e) => notes.push(format!("{what} of `{pkg}` bench `{bench}`: {e}")),
        }
    }
    let (measured, _) = criterion::read_all(home, None);
    for case in by_target.values().flatten() {
        if let Some(r) = report::ratio_vs_limit(case, &measured) {
            ratios.entry(case.id.to_owned()).or_default().push(r);
        }
    }
}

/// Measures every case of `cases` judged against its limit again in the mode's paired
/// rounds: each round runs, per bench target, only the `mproc` and limit rows of those
/// cases, with short settings, into a criterion home of its own. Returns, per case, the
/// speed ratio vs the limit of the main run (`measured`) and of every round.
fn paired_rounds(
    cases: &[&Case],
    measured: &[criterion::Measured],
    holder: &BTreeMap<String, (String, String, Vec<String>)>,
    out_dir: &Path,
    mode: Mode,
    notes: &mut Vec<String>,
) -> BTreeMap<String, Vec<f64>> {
    let mut ratios: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let (rounds, settings) = mode.paired_rounds();
    let paired: Vec<&Case> = cases.iter().copied().filter(|c| report::judged_on_limit(c)).collect();
    for case in &paired {
        if let Some(r) = report::ratio_vs_limit(case, measured) {
            ratios.entry(case.id.to_owned()).or_default().push(r);
        }
    }
    // Bench target → the paired cases it holds, as one filter.
    let mut by_target: BTreeMap<&(String, String, Vec<String>), Vec<&Case>> = BTreeMap::new();
    for case in paired.iter().filter(|c| ratios.contains_key(c.id)) {
        if let Some(t) = holder.get(case.id) {
            by_target.entry(t).or_default().push(case);
        }
    }
    if rounds == 0 || by_target.is_empty() {
        return ratios;
    }
    for round in 1..=rounds {
        let home = out_dir.join(format!("paired/{round}"));
        run_round(&by_target, settings, &home, mode, &format!("paired round {round}/{rounds}"), &mut ratios, notes);
    }
    notes.push(format!(
        "paired rounds: {rounds} after the main run, criterion `{}`, for {}",
        settings.join(" "),
        paired.iter().map(|c| format!("`{}`", c.id)).collect::<Vec<_>>().join(", ")
    ));
    // The brief rounds of the cases whose limit flips regime within seconds.
    let flipping: BTreeMap<_, Vec<&Case>> = by_target
        .iter()
        .map(|(t, cases)| (*t, cases.iter().copied().filter(|c| FLIPPING.contains(&c.id)).collect::<Vec<_>>()))
        .filter(|(_, cases)| !cases.is_empty())
        .collect();
    if !flipping.is_empty() {
        for round in 1..=BRIEF_ROUNDS {
            let home = out_dir.join(format!("paired/brief-{round}"));
            let what = format!("brief round {round}/{BRIEF_ROUNDS}");
            run_round(&flipping, BRIEF, &home, mode, &what, &mut ratios, notes);
        }
        notes.push(format!(
            "brief paired rounds: {BRIEF_ROUNDS} more, criterion `{}`, for {} (a limit that changes regime \
             within seconds: mproc and the limit of a brief round run under a second apart)",
            BRIEF.join(" "),
            flipping.values().flatten().map(|c| format!("`{}`", c.id)).collect::<Vec<_>>().join(", ")
        ));
    }
    ratios
}

/// `cargo xtask bench`.
pub fn run(root: &Path, opts: &Options) -> crate::Result {
    let started = Instant::now();
    let since = SystemTime::now() - Duration::from_secs(2);
    let out_dir = target_dir(root).join("mproc-bench");
    let home = out_dir.join("criterion");
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let cases: Vec<&Case> = CASES.iter().filter(|c| opts.case.as_deref().is_none_or(|id| id == c.id)).collect();
    let curves: Vec<&Curve> = CURVES.iter().filter(|c| opts.case.as_deref().is_none_or(|id| id == c.id)).collect();
    let criterion_args = opts.mode.criterion_args();
    let mut notes = Vec::new();
    let mut failed = Vec::new();

    eprintln!("==> mproc bench, mode {}, {} case(s), {} curve(s)", opts.mode.name(), cases.len(), curves.len());
    let ids: Vec<(&str, &str)> =
        cases.iter().map(|c| (c.id, c.unit)).chain(curves.iter().map(|c| (c.id, c.unit))).collect();
    let python = run_python(root, opts.mode, &ids);

    let benches = discover_benches(root);
    // Which bench target (package, bench, features) reported each criterion group.
    let mut holder: BTreeMap<String, (String, String, Vec<String>)> = BTreeMap::new();
    if benches.is_empty() {
        notes.push("no criterion bench targets (`*/benches/*.rs`) in the tree yet".to_owned());
        eprintln!("==> no criterion benches in the tree yet");
    } else {
        // One build per package, with the same package selection as the runs below, so
        // features resolve the same way and `cargo bench --bench` finds everything built.
        let mut pkgs: Vec<&String> = benches.iter().map(|(p, _)| p).collect();
        pkgs.dedup();
        let mut unbuilt = Vec::new();
        // A bench with `required-features` runs with them, or is skipped with a note when
        // the machine lacks what a feature needs.
        let mut features: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (pkg, bench) in &benches {
            match features_for(root, pkg, bench) {
                Ok(f) => {
                    features.insert((pkg.clone(), bench.clone()), f);
                }
                Err(why) => notes.push(format!("`{pkg}` bench `{bench}` skipped: {why}")),
            }
        }
        for p in pkgs {
            let mut wanted: Vec<String> =
                features.iter().filter(|((q, _), _)| q == p).flat_map(|(_, f)| f.iter().cloned()).collect();
            wanted.sort();
            wanted.dedup();
            let mut build = crate::cargo();
            build.args(["bench", "--no-run", "--benches", "-p", p]).stdout(std::io::stderr());
            if !wanted.is_empty() {
                build.args(["--features", &wanted.join(",")]);
            }
            if let Err(e) = crate::run(&format!("build the criterion benches of {p}"), build) {
                notes.push(format!("the benches of {p} did not build: {e}"));
                failed.push(format!("{p} (build)"));
                unbuilt.push(p.clone());
            }
        }
        for (pkg, bench) in benches.iter().filter(|(p, _)| !unbuilt.contains(p)) {
            let Some(feats) = features.get(&(pkg.clone(), bench.clone())) else { continue };
            eprintln!("==> criterion {pkg} --bench {bench}");
            let filter = opts.case.as_ref().map(|case| format!("^{case}/"));
            // No slack here (unlike `since`): the previous target's results are seconds old.
            let bench_since = SystemTime::now();
            let cmd = bench_command(pkg, bench, feats, &criterion_args, filter.as_deref(), &home, opts.mode);
            let problem = match run_with_timeout(cmd, opts.mode.bench_timeout()) {
                Ok((status, _)) if status.success() => {
                    for m in criterion::read_all(&home, Some(bench_since)).0 {
                        holder.insert(m.group, (pkg.clone(), bench.clone(), feats.clone()));
                    }
                    continue;
                }
                Ok((status, _)) => format!("failed: {status}"),
                Err(e) => e,
            };
            notes.push(format!("`cargo bench -p {pkg} --bench {bench}` {problem}"));
            failed.push(format!("{pkg}/{bench}"));
        }
    }

    let (measured, errors) = criterion::read_all(&home, Some(since));
    let paired = paired_rounds(&cases, &measured, &holder, &out_dir, opts.mode, &mut notes);
    notes.extend(errors.into_iter().map(|e| format!("unreadable criterion result: {e}")));
    let measured: Vec<_> = measured.into_iter().filter(|m| opts.case.as_deref().is_none_or(|c| c == m.group)).collect();
    let missing = if failed.is_empty() {
        "not measured (bench missing)"
    } else {
        "not measured (bench missing or failed, see notes)"
    };
    let rows = report::build_rows(&cases, &measured, &python, missing, &paired);
    let extra = report::extra_rows(&measured);
    let points = curves::points(&curves, &measured, &python);
    if let Python::Ran { failures, .. } = &python {
        for c in &curves {
            if let Some(why) = failures.get(c.id) {
                notes.push(format!("CPython's `{}` curve: {why}", c.id));
            }
        }
    }
    let python_desc = match &python {
        Python::Skipped(why) => why.clone(),
        Python::Ran { version, .. } => {
            let runs = opts.mode.python_runs();
            let how =
                if runs == 1 { "run once per case".to_owned() } else { format!("median of {runs} runs per case") };
            let size = if opts.mode == Mode::Quick { ", --quick (a tenth of the operations)" } else { "" };
            format!("{version}; {how}{size}")
        }
    };
    notes.push(format!("wall time of this run: {:.0} s", started.elapsed().as_secs_f64()));
    let meta = Meta { mode: opts.mode.name().to_owned(), criterion_args, python: python_desc, notes };

    let write = |name: &str, text: &str| -> crate::Result {
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let md = report::markdown(&meta, &cases, &rows, &curves, &points, &extra);
    write("report.md", &md)?;
    let json = serde_json::to_string_pretty(&report::json(&meta, &rows, &curves, &points, &extra))
        .map_err(|e| e.to_string())?;
    write("report.json", &json)?;
    for case in &cases {
        write(&format!("{}.svg", case.id), &svg::chart(case, &rows))?;
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    for curve in &curves {
        write(&format!("{}.svg", curve.id), &svg::curve_chart(curve, &points, cpus))?;
    }
    println!("{md}");
    println!("Written: {0}/report.md, {0}/report.json, {0}/<case>.svg", out_dir.display());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("report written, but these failed: {}", failed.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&[]).unwrap(), Options { mode: Mode::Default, case: None });
        assert_eq!(
            parse_args(&args(&["--quick", "--case", "pipe_rtt"])).unwrap(),
            Options { mode: Mode::Quick, case: Some("pipe_rtt".into()) }
        );
        assert_eq!(parse_args(&args(&["--full"])).unwrap().mode, Mode::Full);
        assert_eq!(parse_args(&args(&["--case", "queue_procs"])).unwrap().case.as_deref(), Some("queue_procs"));
        assert!(parse_args(&args(&["--case"])).is_err());
        assert!(parse_args(&args(&["--case", "nope"])).unwrap_err().contains("pipe_rtt"));
        assert!(parse_args(&args(&["--fast"])).is_err());
    }

    #[test]
    fn quick_mode_is_short() {
        let a = Mode::Quick.criterion_args();
        let val = |k: &str| a[a.iter().position(|x| x == k).unwrap() + 1].parse::<f64>().unwrap();
        // ≈ 35 benchmarks × (warm-up + measurement) must stay around a minute.
        assert!(35.0 * (val("--warm-up-time") + val("--measurement-time")) <= 60.0);
        assert_eq!(val("--sample-size"), 10.0, "criterion's minimum");
    }

    #[test]
    fn python_output() {
        let out = "#python\tCPython 3.11.7\n#start_method\tfork\npipe_rtt\t55.8759\tus/round-trip (64 B bytes)\nbad line\nx\tnan\tu\n";
        let (meta, figs) = parse_python(out);
        assert_eq!(meta["python"], "CPython 3.11.7");
        assert_eq!(figs.len(), 1);
        assert_eq!(figs["pipe_rtt"], 55.8759);
    }

    #[test]
    fn bench_required_features() {
        let toml = "[package]\nname = \"m\"\n[[bench]]\nname = \"a\"\nharness = false\n[[bench]]\nname = \"b\"\nrequired-features = [\"mpi\", \"x\"]\n[lints]\n";
        assert!(bench_features(toml, "a").is_empty());
        assert_eq!(bench_features(toml, "b"), ["mpi", "x"]);
        assert!(bench_features(toml, "c").is_empty());
    }

    #[test]
    fn package_names() {
        let toml = "[package]\nname = \"mproc-ipc\"\nversion = \"0.1.0\"\n\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(toml).as_deref(), Some("mproc-ipc"));
        assert_eq!(package_name("[workspace]\nmembers = []\n"), None);
    }

    #[test]
    fn discovers_bench_files() {
        let root = crate::criterion::tests::tempdir("discover");
        std::fs::create_dir_all(root.join("ipc/benches")).unwrap();
        std::fs::write(root.join("ipc/Cargo.toml"), "[package]\nname = \"mproc-ipc\"\n").unwrap();
        std::fs::write(root.join("ipc/benches/queue.rs"), "").unwrap();
        std::fs::write(root.join("ipc/benches/pipe.rs"), "").unwrap();
        std::fs::create_dir_all(root.join("shm")).unwrap();
        std::fs::write(root.join("shm/Cargo.toml"), "[package]\nname = \"mproc-shm\"\n").unwrap();
        assert_eq!(
            discover_benches(&root),
            vec![("mproc-ipc".to_owned(), "pipe".to_owned()), ("mproc-ipc".to_owned(), "queue".to_owned())]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let mut cmd = Command::new("sh");
        // The grandchild would outlive a kill of `sh` alone and hold the pipe open.
        cmd.args(["-c", "sleep 30 & sleep 30"]).stdout(Stdio::piped());
        let t = Instant::now();
        let err = run_with_timeout(cmd, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(10));
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo hi"]).stdout(Stdio::piped());
        let (status, out) = run_with_timeout(ok, Duration::from_secs(10)).unwrap();
        assert!(status.success());
        assert_eq!(out, "hi\n");
    }
}
