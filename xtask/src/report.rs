//! The side-by-side report: the cases of BENCHMARKS.md, their units and targets, and the
//! table, JSON and ratios built from criterion's and CPython's figures.
//!
//! Ratios are *speed* ratios: how many times faster a row is than the reference (> 1 means
//! faster). For a time figure that is `reference / figure`, for a throughput
//! `figure / reference`; so "≤ 2× the limit's time" is a ratio vs the limit of ≥ 0.5.

use crate::criterion::Measured;
use std::collections::BTreeMap;

pub mod curves;
mod render;
pub use render::{fmt_num, json, markdown, Meta};

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// A time: smaller is faster.
    Lower,
    /// A throughput: larger is faster.
    Higher,
}

/// How criterion's nanoseconds per iteration become the case's figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Convert {
    /// `ns × factor` (a time in another unit).
    Scale(f64),
    /// Operations per second: `1e9 / ns`.
    PerSecond,
    /// MB/s (10⁶ bytes) for this many bytes per iteration: `bytes × 1e3 / ns`.
    MegabytesPerSecond(f64),
}

impl Convert {
    /// The figure for `ns` nanoseconds per iteration.
    pub fn of_ns(self, ns: f64) -> f64 {
        match self {
            Convert::Scale(k) => ns * k,
            Convert::PerSecond => 1e9 / ns,
            Convert::MegabytesPerSecond(bytes) => bytes * 1e3 / ns,
        }
    }
}

/// What the mproc row of a case must reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Speed ratio vs CPython at least this.
    VsCpython(f64),
    /// Speed ratio vs the case's limit at least this.
    VsLimit(f64),
    /// Figure (a time, in the case's unit) at most this.
    AtMost(f64),
    /// Every one of these.
    All(&'static [Target]),
    /// Speed ratio vs the named system of the same case at least this (an
    /// async case against its blocking twin or another runtime's figure).
    VsSystem(&'static str, f64),
}

/// One case of BENCHMARKS.md.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Case id = criterion group name = Python case name.
    pub id: &'static str,
    /// What one operation is.
    pub title: &'static str,
    /// Unit of the figure.
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
    /// From ns per iteration to the figure.
    pub convert: Convert,
    /// The systems the benchmark convention names (function ids), mproc first.
    pub systems: &'static [&'static str],
    /// The function id of the physical limit, if the case has one.
    pub limit: Option<&'static str>,
    /// The target for mproc.
    pub target: Target,
    /// The target as BENCHMARKS.md states it.
    pub target_text: &'static str,
}

const US: Convert = Convert::Scale(1e-3);
const NS: Convert = Convert::Scale(1.0);
const MS: Convert = Convert::Scale(1e-6);

/// The cases, in BENCHMARKS.md's order; the async cases (feature `tokio`) last.
pub const CASES: &[Case] = &[
    Case {
        id: "pipe_rtt",
        title: "Pipe round trip, 64 B, 2 processes",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "ipc-channel", "socketpair", "limit-pingpong"],
        limit: Some("limit-pingpong"),
        target: Target::All(&[Target::VsCpython(10.0), Target::VsLimit(1.0 / 3.0)]),
        target_text: "≥ 10× CPython, ≤ 3× the spin ping-pong",
    },
    Case {
        id: "pipe_rtt_oversubscribed",
        title: "Pipe round trip, 64 B, 2 processes, a CPU hog on every core",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "socketpair"],
        limit: None,
        target: Target::VsSystem("socketpair", 0.66),
        target_text: "≤ 1.5× the socketpair round trip",
    },
    Case {
        id: "queue_tput",
        title: "Queue, 1 producer → 1 consumer process, 8 B items",
        unit: "msgs/s",
        better: Better::Higher,
        convert: Convert::PerSecond,
        systems: &["mproc", "ipc-channel", "socketpair", "crossbeam"],
        limit: None,
        target: Target::VsCpython(40.0),
        target_text: "≥ 40× CPython",
    },
    Case {
        id: "queue_bytes_tput",
        title: "Queue, 1 → 1 processes, 4 KiB items",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(4096.0),
        systems: &["mproc", "ipc-channel", "socketpair", "limit-xcopy", "ref-memcpy"],
        limit: Some("limit-xcopy"),
        target: Target::VsLimit(0.8),
        target_text: "≥ 80 % of the cross-process copy limit",
    },
    Case {
        id: "queue_large_1m",
        title: "Queue, 1 → 1 processes, 1 MiB items",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(1_048_576.0),
        systems: &["mproc", "ipc-channel", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        target: Target::All(&[Target::VsLimit(0.5), Target::VsCpython(3.0)]),
        target_text: "≥ 50 % of the cross-process copy limit, ≥ 3× CPython",
    },
    Case {
        id: "queue_large_16m",
        title: "Queue, 1 → 1 processes, 16 MiB items",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(16_777_216.0),
        systems: &["mproc", "ipc-channel", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        target: Target::All(&[Target::VsLimit(0.5), Target::VsCpython(3.0)]),
        target_text: "≥ 50 % of the cross-process copy limit, ≥ 3× CPython",
    },
    Case {
        id: "handoff_16mib",
        title: "Hand a 16 MiB buffer to another process and read one byte there (ShmBox through a Queue)",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "queue-64b", "queue-copy"],
        limit: None,
        target: Target::VsSystem("queue-64b", 0.5),
        target_text: "≤ 2× a 64 B queue item",
    },
    Case {
        id: "payload_bytes_4k",
        title: "Queue, 1 → 1 processes, maxsize 64, `Bytes` items of 4 KiB",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(4096.0),
        systems: &["mproc", "bytes-get-with", "vec-u8", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        target: Target::VsLimit(0.8),
        target_text: "≥ 80 % of the cross-process copy limit",
    },
    Case {
        id: "payload_bytes_64k",
        title: "Queue, 1 → 1 processes, maxsize 64, `Bytes` items of 64 KiB",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(65536.0),
        systems: &["mproc", "bytes-get-with", "vec-u8", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        target: Target::All(&[Target::VsCpython(5.0), Target::VsLimit(0.8)]),
        target_text: "≥ 5× CPython, ≥ 80 % of the cross-process copy limit",
    },
    Case {
        id: "payload_bytes_1m",
        title: "Queue, 1 → 1 processes, maxsize 64, `Bytes` items of 1 MiB",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(1_048_576.0),
        systems: &["mproc", "bytes-get-with", "vec-u8", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        target: Target::VsLimit(0.8),
        target_text: "≥ 80 % of the cross-process copy limit",
    },
    Case {
        id: "payload_f64_4k",
        title: "Queue, 1 → 1 processes, maxsize 64, `PodVec<f64>` items of 4 KiB",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(4096.0),
        systems: &["mproc", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        target: Target::VsLimit(0.8),
        target_text: "≥ 80 % of the cross-process copy limit",
    },
    Case {
        id: "payload_f64_64k",
        title: "Queue, 1 → 1 processes, maxsize 64, `PodVec<f64>` items of 64 KiB",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(65536.0),
        systems: &["mproc", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        target: Target::All(&[Target::VsCpython(5.0), Target::VsLimit(0.8)]),
        target_text: "≥ 5× CPython, ≥ 80 % of the cross-process copy limit",
    },
    Case {
        id: "payload_f64_1m",
        title: "Queue, 1 → 1 processes, maxsize 64, `PodVec<f64>` items of 1 MiB",
        unit: "MB/s",
        better: Better::Higher,
        convert: Convert::MegabytesPerSecond(1_048_576.0),
        systems: &["mproc", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        target: Target::VsLimit(0.8),
        target_text: "≥ 80 % of the cross-process copy limit",
    },
    Case {
        id: "lock_uncontended",
        title: "Lock acquire + release, uncontended",
        unit: "ns",
        better: Better::Lower,
        convert: NS,
        systems: &["mproc", "std-mutex", "pthread-shared", "limit-cas"],
        limit: Some("limit-cas"),
        target: Target::VsLimit(0.5),
        target_text: "≤ 2× the CAS + swap pair",
    },
    Case {
        id: "value_contended",
        title: "Locked increment of a shared value, 2 processes",
        unit: "ns",
        better: Better::Lower,
        convert: NS,
        systems: &["mproc", "pthread-shared"],
        limit: None,
        target: Target::VsCpython(5.0),
        target_text: "≥ 5× CPython",
    },
    Case {
        id: "pool_map",
        title: "Pool(2).map(identity), per item",
        unit: "µs/item",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "rayon"],
        limit: None,
        target: Target::VsCpython(3.0),
        target_text: "≥ 3× CPython",
    },
    Case {
        id: "pool_apply_async",
        title: "Pool apply_async + get, per task",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc"],
        limit: None,
        target: Target::VsCpython(10.0),
        target_text: "≥ 10× CPython",
    },
    Case {
        id: "proc_fork",
        title: "Process start + join, fork",
        unit: "ms",
        better: Better::Lower,
        convert: MS,
        systems: &["mproc", "limit-fork-waitpid"],
        limit: Some("limit-fork-waitpid"),
        target: Target::VsLimit(0.5),
        target_text: "≤ 2× fork + waitpid",
    },
    Case {
        id: "proc_spawn",
        title: "Process start + join, spawn",
        unit: "ms",
        better: Better::Lower,
        convert: MS,
        systems: &["mproc", "limit-posix-spawn"],
        limit: Some("limit-posix-spawn"),
        target: Target::AtMost(5.0),
        target_text: "≤ 5 ms",
    },
    Case {
        id: "manager_call",
        title: "Manager proxy call (list.append), local transport (shared-memory pipe)",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "pipe-rtt", "socketpair"],
        limit: None,
        target: Target::All(&[Target::VsCpython(10.0), Target::VsSystem("pipe-rtt", 0.2)]),
        target_text: "≥ 10× CPython, ≤ 5× the pipe round trip of the same run",
    },
    Case {
        id: "manager_call_socket",
        title: "Manager proxy call (list.append) over the Unix socket",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "socketpair"],
        limit: None,
        target: Target::VsCpython(2.0),
        target_text: "≥ 2× CPython",
    },
    Case {
        id: "manager_call_oversubscribed",
        title: "Manager proxy call (list.append), a busy thread on every core",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "mproc-socket"],
        limit: None,
        target: Target::VsSystem("mproc-socket", 1.0),
        target_text: "≤ the socket transport under the same load",
    },
    Case {
        id: "manager_call_py",
        title: "Manager proxy call from a CPython client (list.append)",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc"],
        limit: None,
        target: Target::VsCpython(1.5),
        target_text: "≥ 1.5× CPython's manager",
    },
    Case {
        id: "mpi_pool_map",
        title: "MPI pool map(identity), per item, 2 ranks on this machine (mpiexec -n 2)",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "local-pool"],
        limit: Some("local-pool"),
        target: Target::All(&[Target::VsLimit(0.5), Target::VsCpython(5.0)]),
        target_text: "≤ 2× the local Pool(2), ≥ 5× CPython",
    },
    Case {
        id: "pickle_codec",
        title: "pickle encode + decode, 1 KiB dict",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "mproc-typed", "serde-pickle"],
        limit: None,
        target: Target::VsCpython(1.0),
        target_text: "≥ 1× CPython",
    },
    Case {
        id: "pipe_rtt_async",
        title: "Pipe round trip, 64 B, 2 processes, awaited on tokio (one thread)",
        unit: "µs",
        better: Better::Lower,
        convert: US,
        systems: &["mproc", "mproc-socketpair", "tokio-unixstream"],
        limit: None,
        target: Target::VsSystem("tokio-unixstream", 1.0),
        target_text: "≤ tokio UnixStream",
    },
    Case {
        id: "queue_tput_async",
        title: "Queue, 1 → 1 processes, 8 B items, the consumer awaiting on tokio",
        unit: "msgs/s",
        better: Better::Higher,
        convert: Convert::PerSecond,
        systems: &["mproc", "mproc-blocking"],
        limit: None,
        target: Target::VsSystem("mproc-blocking", 0.5),
        target_text: "≥ 50 % of the blocking queue",
    },
];

/// The case with this id.
pub fn case(id: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.id == id)
}

/// Every id `cargo xtask bench` knows: the cases, then the curves.
pub fn ids() -> impl Iterator<Item = &'static str> {
    CASES.iter().map(|c| c.id).chain(curves::CURVES.iter().map(|c| c.id))
}

/// How many times faster `figure` is than `reference` (> 1: faster).
pub fn speed_ratio(better: Better, figure: f64, reference: f64) -> f64 {
    match better {
        Better::Lower => reference / figure,
        Better::Higher => figure / reference,
    }
}

/// What a target is judged on: the mproc figure and its speed ratios.
#[derive(Clone, Copy)]
pub struct Judged<'a> {
    /// The mproc figure, in the case's unit.
    pub figure: Option<f64>,
    /// Speed ratio vs CPython's figure.
    pub vs_cpython: Option<f64>,
    /// Speed ratio vs the case's limit.
    pub vs_limit: Option<f64>,
    /// Speed ratio vs another system of the same case, by name.
    pub vs_system: &'a dyn Fn(&str) -> Option<f64>,
}

/// Whether `target` is met by `judged`; `None` when a figure it needs is missing.
pub fn target_met(target: Target, judged: &Judged<'_>) -> Option<bool> {
    match target {
        Target::VsCpython(k) => judged.vs_cpython.map(|r| r >= k),
        Target::VsLimit(k) => judged.vs_limit.map(|r| r >= k),
        Target::AtMost(x) => judged.figure.map(|f| f <= x),
        Target::VsSystem(system, k) => (judged.vs_system)(system).map(|r| r >= k),
        Target::All(all) => {
            let mut met = Some(true);
            for &t in all {
                match target_met(t, judged) {
                    Some(false) => return Some(false),
                    None => met = None,
                    Some(true) => {}
                }
            }
            met
        }
    }
}

/// The systems `target` compares with by name: reference rows, not peers.
fn named_systems(target: Target) -> Vec<&'static str> {
    match target {
        Target::VsSystem(system, _) => vec![system],
        Target::All(all) => all.iter().flat_map(|&t| named_systems(t)).collect(),
        _ => Vec::new(),
    }
}

/// A median and its range over several runs: CPython's figure for one case, or the
/// ratios of a case's paired rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// Median over the runs.
    pub median: f64,
    /// Smallest figure over the runs.
    pub min: f64,
    /// Largest figure over the runs.
    pub max: f64,
    /// Number of runs.
    pub runs: usize,
}

impl Spread {
    /// The median, min and max of `figures` (not empty).
    pub fn of(figures: &[f64]) -> Spread {
        let mut v = figures.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[n - 1], runs: n }
    }
}

/// What the CPython side produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Python {
    /// Not run, and why (e.g. `python3` absent).
    Skipped(String),
    /// Ran: interpreter description, figures per case, and failures per case.
    Ran {
        /// e.g. "CPython 3.11.7, start method fork".
        version: String,
        /// Case id → figure.
        figures: BTreeMap<String, Spread>,
        /// Case id → why it has no figure.
        failures: BTreeMap<String, String>,
    },
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Case id.
    pub case: String,
    /// System: `mproc`, a peer, a `limit-*`, or `CPython`.
    pub system: String,
    /// The figure in `unit`; `None` when not measured.
    pub figure: Option<f64>,
    /// Spread: the figure's low and high bound (criterion's CI of the median, or the
    /// min–max of the CPython runs).
    pub range: Option<(f64, f64)>,
    /// Criterion samples, or CPython runs, behind the figure (0 when not measured).
    pub runs: usize,
    /// Unit of the figure.
    pub unit: String,
    /// Which way is better.
    pub better: Better,
    /// How the figure was obtained, or why it is missing.
    pub note: String,
    /// Speed ratio vs CPython.
    pub vs_cpython: Option<f64>,
    /// Speed ratio vs the case's limit.
    pub vs_limit: Option<f64>,
    /// The target (mproc rows only).
    pub target: Option<String>,
    /// Whether the target is met (mproc rows with the figures it needs).
    pub met: Option<bool>,
    /// mproc rows: the fastest cross-process Rust peer and mproc's speed ratio against it.
    pub vs_best_peer: Option<(String, f64)>,
    /// mproc rows of a case measured in paired rounds: the speed ratio vs the limit of
    /// each round (mproc, then the limit, seconds apart); `vs_limit` is their median.
    pub paired: Option<Spread>,
}

/// Peers that run in one process: bounds to look at, not rivals to beat.
pub const IN_PROCESS: &[&str] = &["crossbeam", "rayon", "std-mutex", "std-mpsc"];

/// Other ways of using mproc itself, shown beside the `mproc` row (not rivals), with what
/// the report says about each.
pub const MPROC_VARIANTS: &[(&str, &str)] = &[
    (
        "vec-u8",
        "`vec-u8` is `Queue<Vec<u8>>`, shown as it is: serde encodes a `Vec<u8>` byte by byte \
         (about 1.7 ns per byte). Send byte payloads as `mproc::Bytes` (the `mproc` row), \
         numeric arrays as `mproc::PodVec`.",
    ),
    (
        "queue-copy",
        "`queue-copy` (in `handoff_16mib`) is the same 16 MiB passed as a `Bytes` item, copied \
         into the queue and out: what the hand-off of a `ShmBox` saves.",
    ),
    (
        "bytes-get-with",
        "`bytes-get-with` is `Queue<Bytes>::get_with`: the consumer reads each item where it \
         lies in shared memory instead of copying it into a new `Bytes`.",
    ),
];

/// Reference rows (`ref-*`): figures no cross-process design reaches, shown after the limits
/// for scale (never a target, a limit or a rival), with what the report says about each.
pub const REFERENCES: &[(&str, &str)] = &[(
    "ref-memcpy",
    "`ref-memcpy` is an in-process `memcpy` of each item into a rotating buffer the size of \
     the queue's ring: a reference for scale, not a target. No cross-process queue reaches \
     it; the limit is `limit-xcopy`, two processes copying through a shared-memory ring \
     (the consumer allocating each item's buffer, as a queue's `get` does).",
)];

/// Order of systems within a case: mproc, the peers (in the case's order, then any others
/// alphabetically), CPython, the limits, the references.
fn system_rank(case: &Case, system: &str) -> (u8, usize, String) {
    let rank = match system {
        "mproc" => 0,
        "CPython" => 2,
        s if s.starts_with("limit-") => 3,
        s if s.starts_with("ref-") => 4,
        _ => 1,
    };
    let pos = case.systems.iter().position(|s| *s == system).unwrap_or(usize::MAX);
    (rank, pos, system.to_owned())
}

/// Whether `case` is judged against its limit: then `cargo xtask bench` measures it in
/// paired rounds (see [`build_rows`]).
pub fn judged_on_limit(case: &Case) -> bool {
    fn on_limit(t: Target) -> bool {
        match t {
            Target::VsLimit(_) => true,
            Target::All(all) => all.iter().any(|&t| on_limit(t)),
            _ => false,
        }
    }
    case.limit.is_some() && on_limit(case.target)
}

/// The speed ratio of `mproc` vs the case's limit in one set of criterion results, if
/// both were measured there.
pub fn ratio_vs_limit(case: &Case, measured: &[Measured]) -> Option<f64> {
    let ns = |system: &str| measured.iter().find(|m| m.group == case.id && m.function == system).map(|m| m.median_ns);
    let (mproc, limit) = (ns("mproc")?, ns(case.limit?)?);
    Some(speed_ratio(case.better, case.convert.of_ns(mproc), case.convert.of_ns(limit)))
}

/// Builds the rows of every case in `cases` from criterion's results and CPython's.
/// `missing_note` explains an expected system criterion did not report. `paired` holds,
/// per case id, the speed ratios vs the limit of paired rounds (the main run's included):
/// where there are two or more, the mproc row's ratio vs the limit, and the verdict on
/// it, is their median. On a machine whose speed drifts over seconds (a VM whose host
/// moves its CPUs), one mproc row and one limit row measured apart can land in different
/// regimes; rounds that each measure both, close together, compare like with like.
pub fn build_rows(
    cases: &[&Case],
    measured: &[Measured],
    python: &Python,
    missing_note: &str,
    paired: &BTreeMap<String, Vec<f64>>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for case in cases {
        let mut case_rows: Vec<Row> = Vec::new();
        let blank = |system: &str, note: String| Row {
            case: case.id.to_owned(),
            system: system.to_owned(),
            figure: None,
            range: None,
            runs: 0,
            unit: case.unit.to_owned(),
            better: case.better,
            note,
            vs_cpython: None,
            vs_limit: None,
            target: None,
            met: None,
            vs_best_peer: None,
            paired: None,
        };
        for m in measured.iter().filter(|m| m.group == case.id) {
            let (a, b) = (case.convert.of_ns(m.lo_ns), case.convert.of_ns(m.hi_ns));
            let mut row = blank(
                &m.function,
                format!("criterion: median of {} samples, {:.0} % CI", m.samples, m.confidence * 100.0),
            );
            row.figure = Some(case.convert.of_ns(m.median_ns));
            row.range = Some((a.min(b), a.max(b)));
            row.runs = m.samples;
            case_rows.push(row);
        }
        for system in case.systems {
            if !case_rows.iter().any(|r| r.system == *system) {
                case_rows.push(blank(system, missing_note.to_owned()));
            }
        }
        let python_row = match python {
            Python::Skipped(why) => blank("CPython", why.clone()),
            Python::Ran { figures, failures, .. } => match figures.get(case.id) {
                Some(f) => {
                    let mut row = blank(
                        "CPython",
                        if f.runs == 1 {
                            "python3 mp_bench.py: 1 run".to_owned()
                        } else {
                            format!("median of {} runs", f.runs)
                        },
                    );
                    row.figure = Some(f.median);
                    row.range = (f.runs > 1).then_some((f.min, f.max));
                    row.runs = f.runs;
                    row
                }
                None => blank(
                    "CPython",
                    failures.get(case.id).cloned().unwrap_or_else(|| "not measured (not run)".to_owned()),
                ),
            },
        };
        case_rows.push(python_row);
        case_rows.sort_by_key(|r| system_rank(case, &r.system));
        let cpython = case_rows.iter().find(|r| r.system == "CPython").and_then(|r| r.figure);
        let limit = case.limit.and_then(|l| case_rows.iter().find(|r| r.system == l)).and_then(|r| r.figure);
        for r in &mut case_rows {
            let Some(f) = r.figure else { continue };
            r.vs_cpython = cpython.map(|c| speed_ratio(case.better, f, c));
            r.vs_limit = limit.map(|l| speed_ratio(case.better, f, l));
        }
        let named = named_systems(case.target);
        let best_peer = case_rows
            .iter()
            .filter(|r| system_rank(case, &r.system).0 == 1 && !IN_PROCESS.contains(&r.system.as_str()))
            .filter(|r| MPROC_VARIANTS.iter().all(|(v, _)| *v != r.system))
            .filter(|r| !named.contains(&r.system.as_str()))
            .filter_map(|r| Some((r.system.clone(), r.figure?)))
            .max_by(|a, b| speed_ratio(case.better, a.1, b.1).total_cmp(&1.0));
        let figures: Vec<(String, f64)> =
            case_rows.iter().filter_map(|r| Some((r.system.clone(), r.figure?))).collect();
        for r in case_rows.iter_mut().filter(|r| r.system == "mproc") {
            if let Some(rounds) = paired.get(case.id).filter(|v| v.len() >= 2 && r.figure.is_some()) {
                let spread = Spread::of(rounds);
                r.vs_limit = Some(spread.median);
                r.paired = Some(spread);
            }
            r.target = Some(case.target_text.to_owned());
            let figure = r.figure;
            let vs_system = |system: &str| {
                let (_, other) = figures.iter().find(|(s, _)| s == system)?;
                Some(speed_ratio(case.better, figure?, *other))
            };
            let judged = Judged { figure, vs_cpython: r.vs_cpython, vs_limit: r.vs_limit, vs_system: &vs_system };
            r.met = target_met(case.target, &judged);
            if let (Some(f), Some((peer, p))) = (r.figure, &best_peer) {
                r.vs_best_peer = Some((peer.clone(), speed_ratio(case.better, f, *p)));
            }
        }
        rows.extend(case_rows);
    }
    rows
}

/// Rows for criterion groups that are neither cases nor curves (e.g. `spsc_64`): ns per
/// iteration.
pub fn extra_rows(measured: &[Measured]) -> Vec<Row> {
    measured
        .iter()
        .filter(|m| case(&m.group).is_none() && curves::curve(&m.group).is_none())
        .map(|m| Row {
            case: m.group.clone(),
            system: m.function.clone(),
            figure: Some(m.median_ns),
            range: Some((m.lo_ns, m.hi_ns)),
            runs: m.samples,
            unit: "ns/iter".to_owned(),
            better: Better::Lower,
            note: format!("criterion: median of {} samples", m.samples),
            vs_cpython: None,
            vs_limit: None,
            target: None,
            met: None,
            vs_best_peer: None,
            paired: None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
