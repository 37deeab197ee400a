//! Rendering the report: the Markdown tables (summary, every system) and the JSON.

use super::curves::{Curve, Point};
use super::{Better, Case, Row, MPROC_VARIANTS, REFERENCES};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// A figure with about three significant digits.
pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("—".to_owned(), |r| format!("{}×", fmt_num(r)))
}

/// A row's ratio vs the limit; for paired rounds, their median with the rounds' range.
fn fmt_vs_limit(r: &Row) -> String {
    match &r.paired {
        Some(p) => format!(
            "{} (median of {} paired rounds, {}–{})",
            fmt_ratio(Some(p.median)),
            p.runs,
            fmt_num(p.min),
            fmt_ratio(Some(p.max))
        ),
        None => fmt_ratio(r.vs_limit),
    }
}

fn fmt_spread(r: &Row) -> String {
    let n = if r.system == "CPython" {
        if r.runs == 1 {
            "1 run".to_owned()
        } else {
            format!("{} runs", r.runs)
        }
    } else {
        format!("n={}", r.runs)
    };
    match (r.figure, r.range) {
        (Some(f), Some((lo, hi))) => format!("±{:.1} %, {n}", (hi - lo) / 2.0 / f * 100.0),
        (Some(_), None) => n,
        _ => "—".to_owned(),
    }
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| case | system | figure | unit | spread | vs CPython | vs limit | target | met |\n\
         | --- | --- | ---: | --- | ---: | ---: | ---: | --- | --- |\n",
    );
    for r in rows {
        let figure = r.figure.map_or_else(|| r.note.clone(), fmt_num);
        let dir = match r.better {
            Better::Lower => "↓",
            Better::Higher => "↑",
        };
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None if r.target.is_some() => "n/a",
            None => "",
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} {dir} | {} | {} | {} | {} | {met} |",
            r.case,
            r.system,
            figure,
            r.unit,
            fmt_spread(r),
            fmt_ratio(r.vs_cpython),
            fmt_vs_limit(r),
            r.target.as_deref().unwrap_or(""),
        );
    }
    t
}

/// One line per case: mproc against CPython and against the limit, and the target.
pub fn summary(cases: &[&Case], rows: &[Row]) -> String {
    let mut t = String::from(
        "| case | unit | mproc | CPython | mproc vs CPython | limit | mproc vs limit | mproc vs best Rust peer | target | met |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
    );
    for case in cases {
        let find = |system: &str| rows.iter().find(|r| r.case == case.id && r.system == system);
        let fig = |r: Option<&Row>| r.and_then(|r| r.figure).map_or("—".to_owned(), fmt_num);
        let mproc = find("mproc");
        let limit = case.limit.map_or("—".to_owned(), |l| format!("{} ({l})", fig(find(l))));
        let met = match mproc.and_then(|r| r.met) {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let dir = match case.better {
            Better::Lower => "↓",
            Better::Higher => "↑",
        };
        let _ = writeln!(
            t,
            "| {} | {} {dir} | {} | {} | {} | {limit} | {} | {} | {} | {met} |",
            case.id,
            case.unit,
            fig(mproc),
            fig(find("CPython")),
            fmt_ratio(mproc.and_then(|r| r.vs_cpython)),
            mproc.map_or("—".to_owned(), fmt_vs_limit),
            mproc
                .and_then(|r| r.vs_best_peer.as_ref())
                .map_or("—".to_owned(), |(peer, ratio)| format!("{} ({peer})", fmt_ratio(Some(*ratio)))),
            case.target_text,
        );
    }
    t
}

/// Everything the report says besides the rows.
pub struct Meta {
    /// `quick`, `default` or `full`.
    pub mode: String,
    /// Criterion arguments used.
    pub criterion_args: Vec<String>,
    /// CPython description or why it was skipped.
    pub python: String,
    /// Free-form notes (failed benches, unreadable results).
    pub notes: Vec<String>,
}

/// The Markdown report.
pub fn markdown(
    meta: &Meta,
    cases: &[&Case],
    rows: &[Row],
    curves: &[&Curve],
    points: &[Point],
    extra: &[Row],
) -> String {
    let mut md = String::from("# mproc side-by-side benchmark\n\n");
    let _ = writeln!(md, "Mode `{}`; criterion `{}`.", meta.mode, meta.criterion_args.join(" "));
    let _ = writeln!(md, "CPython: {}.", meta.python);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(md, "Machine: {cpus} CPUs available; all figures from this one run.\n");
    md.push_str(
        "Figures: mproc, peers and limits are criterion medians (spread = half the confidence \
         interval of the median, relative; n = criterion samples); CPython figures come from `xtask/python/mp_bench.py` \
         (one run, or the median of several with `--full`; spread = half the min–max range). \
         ↓ lower is better, ↑ higher is better. Ratios are speed ratios: how many times faster \
         than CPython, the limit or the fastest cross-process Rust peer (> 1 = faster; crossbeam, rayon \
         and std are in-process bounds, not rivals). A limit (`limit-*`) is what a cross-process \
         design could reach on this machine; a reference (`ref-*`) is an in-process figure shown \
         for scale, never a target. A case judged against its limit is measured again in short \
         paired rounds (mproc, then the limit, seconds apart); its ratio vs the limit is the \
         median over the rounds (this run's main measurement included), given with the \
         rounds' range.\n\n## Summary\n\n",
    );
    if cases.is_empty() {
        md.push_str("No case in this run.\n");
    } else {
        md.push_str(&summary(cases, rows));
        md.push_str("\n## Every system\n\n");
        md.push_str(&table(rows));
    }
    let variants: Vec<&str> = MPROC_VARIANTS
        .iter()
        .chain(REFERENCES)
        .filter(|(v, _)| rows.iter().any(|r| r.system == *v))
        .map(|(_, note)| *note)
        .collect();
    if !variants.is_empty() {
        md.push('\n');
        for note in variants {
            let _ = writeln!(md, "- {note}");
        }
    }
    md.push_str(&super::curves::markdown(curves, points, cpus));
    if !extra.is_empty() {
        md.push_str("\n## Other criterion groups\n\n");
        md.push_str(&table(extra));
    }
    if !meta.notes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for n in &meta.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}

fn row_json(r: &Row) -> Value {
    json!({
        "case": r.case,
        "system": r.system,
        "figure": r.figure,
        "unit": r.unit,
        "better": match r.better { Better::Lower => "lower", Better::Higher => "higher" },
        "low": r.range.map(|x| x.0),
        "high": r.range.map(|x| x.1),
        "runs": r.runs,
        "note": r.note,
        "ratio_vs_cpython": r.vs_cpython,
        "ratio_vs_limit": r.vs_limit,
        "paired_vs_limit": r.paired.as_ref().map(|p| json!({"median": p.median, "min": p.min, "max": p.max, "rounds": p.runs})),
        "target": r.target,
        "met": r.met,
        "best_peer": r.vs_best_peer.as_ref().map(|x| x.0.clone()),
        "ratio_vs_best_peer": r.vs_best_peer.as_ref().map(|x| x.1),
    })
}

/// The machine-readable report.
pub fn json(meta: &Meta, rows: &[Row], curves: &[&Curve], points: &[Point], extra: &[Row]) -> Value {
    json!({
        "mode": meta.mode,
        "criterion_args": meta.criterion_args,
        "python": meta.python,
        "ratio": "speed ratio: times faster than the reference (> 1 = faster)",
        "rows": rows.iter().map(row_json).collect::<Vec<_>>(),
        "curves": super::curves::json(curves, points),
        "extra_groups": extra.iter().map(row_json).collect::<Vec<_>>(),
        "notes": meta.notes,
    })
}
