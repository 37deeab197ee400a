//! Cost curves: one cost measured at several points (message sizes, process counts) for
//! each system, shown as a table and drawn as log-log lines (`crate::svg::curve_chart`).
//!
//! Criterion reports a point as function id `<system>/<x>` of the curve's group (e.g.
//! `pipe_rtt_curve` / `mproc/4096`); `mp_bench.py` prints CPython's as `<curve>/<x>`.

use super::{fmt_num, speed_ratio, Better, Convert, Python, US};
use crate::criterion::Measured;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// What the x axis counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Message or item size in bytes.
    Bytes,
    /// `n` producer and `n` consumer processes.
    Processes,
}

/// How criterion's nanoseconds per iteration become the figure at a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PerPoint {
    /// The same conversion at every point.
    Fixed(Convert),
    /// MB/s (10⁶ bytes) of `x`-byte items.
    MegabytesPerSecondOfX,
}

impl PerPoint {
    /// The figure for `ns` per iteration at point `x`.
    pub fn of_ns(self, x: u64, ns: f64) -> f64 {
        match self {
            PerPoint::Fixed(c) => c.of_ns(ns),
            PerPoint::MegabytesPerSecondOfX => Convert::MegabytesPerSecond(x as f64).of_ns(ns),
        }
    }
}

/// One curve of BENCHMARKS.md.
#[derive(Debug, Clone, Copy)]
pub struct Curve {
    /// Curve id = criterion group name = Python case name.
    pub id: &'static str,
    /// What one operation is.
    pub title: &'static str,
    /// Unit of the figures.
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
    /// What x counts.
    pub axis: Axis,
    /// The points, ascending.
    pub xs: &'static [u64],
    /// From ns per iteration to the figure.
    pub per_point: PerPoint,
    /// The systems criterion measures (function ids before the `/x`), mproc first.
    pub systems: &'static [&'static str],
    /// The system that is the limit, if the curve has one.
    pub limit: Option<&'static str>,
    /// What the report says under the table.
    pub note: &'static str,
}

/// The sizes of the size curves: 64 B, 1 KiB, 4 KiB, 64 KiB, 1 MiB, 16 MiB.
pub const SIZES: &[u64] = &[64, 1 << 10, 4 << 10, 64 << 10, 1 << 20, 16 << 20];

/// The curves, in BENCHMARKS.md's order.
pub const CURVES: &[Curve] = &[
    Curve {
        id: "pipe_rtt_curve",
        title: "Pipe round trip, 2 processes, by message size",
        unit: "µs",
        better: Better::Lower,
        axis: Axis::Bytes,
        xs: SIZES,
        per_point: PerPoint::Fixed(US),
        systems: &["mproc", "ipc-channel", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        note: "`limit-xcopy`: the message copied into shared memory and out again, each way, by \
               two processes taking turns (four copies and two hand-offs per round trip).",
    },
    Curve {
        id: "queue_curve",
        title: "Queue throughput, 1 → 1 processes, `Bytes` items, by item size",
        unit: "MB/s",
        better: Better::Higher,
        axis: Axis::Bytes,
        xs: SIZES,
        per_point: PerPoint::MegabytesPerSecondOfX,
        systems: &["mproc", "ipc-channel", "limit-xcopy"],
        limit: Some("limit-xcopy"),
        note: "`maxsize` min(64, 64 MiB / item size) for mproc and CPython alike; `limit-xcopy`: \
               two processes moving the items through an SPSC ring in shared memory, one `memcpy` \
               in and one out into a buffer allocated per item (as `get` allocates).",
    },
    Curve {
        id: "queue_procs",
        title: "Queue throughput, n producer → n consumer processes, 8 B items",
        unit: "msgs/s",
        better: Better::Higher,
        axis: Axis::Processes,
        xs: &[1, 2, 4],
        per_point: PerPoint::Fixed(Convert::PerSecond),
        systems: &["mproc"],
        limit: None,
        note: "n → n runs 2n busy processes: where that is more than the machine's CPUs (on 2 \
               cores: 2 → 2 and, twice over, 4 → 4) the point is oversubscribed, and shows what \
               sharing cores costs rather than what the queue can do.",
    },
];

/// The curve with this id.
pub fn curve(id: &str) -> Option<&'static Curve> {
    CURVES.iter().find(|c| c.id == id)
}

/// One measured point of a curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Curve id.
    pub curve: String,
    /// System: as in [`Curve::systems`], or `CPython`.
    pub system: String,
    /// Where on the x axis.
    pub x: u64,
    /// The figure in the curve's unit.
    pub figure: f64,
    /// Criterion's CI of the median, or the min–max of the CPython runs.
    pub range: Option<(f64, f64)>,
}

impl Curve {
    /// The columns of the curve's table and the lines of its chart: the measured
    /// systems but the limit, CPython, the limit.
    pub fn columns(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.systems.iter().copied().filter(|s| Some(*s) != self.limit).collect();
        v.push("CPython");
        v.extend(self.limit);
        v
    }

    /// The label of point `x` (with `cpus` CPUs: a process count beyond them is marked).
    pub fn x_label(&self, x: u64, cpus: usize) -> String {
        match self.axis {
            Axis::Bytes => fmt_bytes(x),
            Axis::Processes if 2 * x > cpus as u64 => format!("{x} → {x} (oversubscribed)"),
            Axis::Processes => format!("{x} → {x}"),
        }
    }

    /// What the x axis is, for the chart.
    pub fn axis_title(&self) -> &'static str {
        match self.axis {
            Axis::Bytes => "message size",
            Axis::Processes => "producers → consumers",
        }
    }
}

/// `n` bytes as `64 B`, `4 KiB`, `16 MiB` (exact powers of 1024; otherwise bytes).
pub fn fmt_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// The points of `curves` from criterion's results and CPython's figures (keyed
/// `<curve>/<x>`). A function id that is not `<system>/<x>` with a point of the curve
/// is not a point (and not reported).
pub fn points(curves: &[&Curve], measured: &[Measured], python: &Python) -> Vec<Point> {
    let mut out = Vec::new();
    for c in curves {
        for m in measured.iter().filter(|m| m.group == c.id) {
            let Some((system, x)) = m.function.rsplit_once('/') else { continue };
            let Some(x) = x.parse::<u64>().ok().filter(|x| c.xs.contains(x)) else { continue };
            let (a, b) = (c.per_point.of_ns(x, m.lo_ns), c.per_point.of_ns(x, m.hi_ns));
            out.push(Point {
                curve: c.id.to_owned(),
                system: system.to_owned(),
                x,
                figure: c.per_point.of_ns(x, m.median_ns),
                range: Some((a.min(b), a.max(b))),
            });
        }
        if let Python::Ran { figures, .. } = python {
            for &x in c.xs {
                if let Some(f) = figures.get(&format!("{}/{x}", c.id)) {
                    out.push(Point {
                        curve: c.id.to_owned(),
                        system: "CPython".to_owned(),
                        x,
                        figure: f.median,
                        range: (f.runs > 1).then_some((f.min, f.max)),
                    });
                }
            }
        }
    }
    out
}

/// The figure of `system` at `x` on `curve`, if measured.
pub fn figure(points: &[Point], curve: &str, system: &str, x: u64) -> Option<f64> {
    points.iter().find(|p| p.curve == curve && p.system == system && p.x == x).map(|p| p.figure)
}

/// The curves' section of the Markdown report: per curve its chart, a table with one
/// line per point and mproc's speed ratios, and its note.
pub fn markdown(curves: &[&Curve], points: &[Point], cpus: usize) -> String {
    let mut md = String::new();
    if curves.is_empty() {
        return md;
    }
    md.push_str(
        "\n## Cost curves\n\nHow each cost grows with the message size or the number of processes \
         (charts: log-log; a gap is a point not measured).\n",
    );
    for c in curves {
        let dir = match c.better {
            Better::Lower => "↓",
            Better::Higher => "↑",
        };
        let _ = write!(md, "\n### `{}`: {} ({} {dir})\n\n![{0}]({0}.svg)\n\n", c.id, c.title, c.unit);
        let columns = c.columns();
        let _ = write!(md, "| {} | {} | mproc vs CPython |", c.axis_title(), columns.join(" | "));
        if let Some(l) = c.limit {
            let _ = write!(md, " mproc vs {l} |");
        }
        md.push_str("\n| --- |");
        md.push_str(&" ---: |".repeat(columns.len() + 1 + usize::from(c.limit.is_some())));
        md.push('\n');
        for &x in c.xs {
            let fig = |s: &str| figure(points, c.id, s, x);
            let _ = write!(md, "| {} |", c.x_label(x, cpus));
            for s in &columns {
                let _ = write!(md, " {} |", fig(s).map_or("—".to_owned(), fmt_num));
            }
            let ratio = |reference: Option<f64>| match (fig("mproc"), reference) {
                (Some(m), Some(r)) => format!("{}×", fmt_num(speed_ratio(c.better, m, r))),
                _ => "—".to_owned(),
            };
            let _ = write!(md, " {} |", ratio(fig("CPython")));
            if let Some(l) = c.limit {
                let _ = write!(md, " {} |", ratio(fig(l)));
            }
            md.push('\n');
        }
        let _ = writeln!(md, "\n{}", c.note);
    }
    md
}

/// The curves for the machine-readable report.
pub fn json(curves: &[&Curve], points: &[Point]) -> Value {
    Value::Array(
        curves
            .iter()
            .map(|c| {
                json!({
                    "curve": c.id,
                    "title": c.title,
                    "unit": c.unit,
                    "better": match c.better { Better::Lower => "lower", Better::Higher => "higher" },
                    "axis": match c.axis { Axis::Bytes => "bytes", Axis::Processes => "processes" },
                    "limit": c.limit,
                    "points": points.iter().filter(|p| p.curve == c.id).map(|p| json!({
                        "system": p.system,
                        "x": p.x,
                        "figure": p.figure,
                        "low": p.range.map(|r| r.0),
                        "high": p.range.map(|r| r.1),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
