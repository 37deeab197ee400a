//! Tests of the report: units, ratios, targets, the table.

use super::render::{summary, table};
use super::*;
use serde_json::Value;

fn m(group: &str, function: &str, ns: f64) -> Measured {
    Measured {
        group: group.into(),
        function: function.into(),
        median_ns: ns,
        lo_ns: ns * 0.9,
        hi_ns: ns * 1.1,
        confidence: 0.95,
        samples: 10,
        iterations: 55,
    }
}

fn python(pairs: &[(&str, f64)]) -> Python {
    Python::Ran {
        version: "CPython 3.11".into(),
        figures: pairs.iter().map(|(c, f)| (c.to_string(), Spread::of(&[*f]))).collect(),
        failures: BTreeMap::new(),
    }
}

fn meta() -> Meta {
    Meta { mode: "quick".into(), criterion_args: vec![], python: "x".into(), notes: vec![] }
}

fn row<'a>(rows: &'a [Row], case: &str, system: &str) -> &'a Row {
    rows.iter().find(|r| r.case == case && r.system == system).unwrap()
}

#[test]
fn unit_conversion() {
    assert_eq!(US.of_ns(2500.0), 2.5);
    assert_eq!(MS.of_ns(3_000_000.0), 3.0);
    assert_eq!(Convert::PerSecond.of_ns(100.0), 1e7);
    // 4096 B in 1000 ns = 4.096 GB/s = 4096 MB/s.
    assert_eq!(Convert::MegabytesPerSecond(4096.0).of_ns(1000.0), 4096.0);
}

#[test]
fn ratios_point_the_right_way() {
    assert_eq!(speed_ratio(Better::Lower, 2.0, 30.0), 15.0);
    assert_eq!(speed_ratio(Better::Higher, 10e6, 250e3), 40.0);
}

fn judge(figure: Option<f64>, vs_cpython: Option<f64>, vs_limit: Option<f64>, target: Target) -> Option<bool> {
    let vs_system = |system: &str| (system == "pipe-rtt").then_some(0.25);
    target_met(target, &Judged { figure, vs_cpython, vs_limit, vs_system: &vs_system })
}

#[test]
fn targets() {
    assert_eq!(judge(Some(1.0), Some(10.0), None, Target::VsCpython(10.0)), Some(true));
    assert_eq!(judge(Some(1.0), Some(9.9), None, Target::VsCpython(10.0)), Some(false));
    assert_eq!(judge(Some(1.0), None, Some(5.0), Target::VsCpython(10.0)), None);
    assert_eq!(judge(Some(1.0), None, Some(0.6), Target::VsLimit(0.5)), Some(true));
    assert_eq!(judge(Some(5.5), None, None, Target::AtMost(5.0)), Some(false));
    assert_eq!(judge(None, None, None, Target::AtMost(5.0)), None);
    let both = Target::All(&[Target::VsCpython(5.0), Target::VsLimit(0.8)]);
    assert_eq!(judge(Some(1.0), Some(6.0), Some(0.9), both), Some(true));
    assert_eq!(judge(Some(1.0), Some(6.0), Some(0.7), both), Some(false));
    assert_eq!(judge(Some(1.0), Some(4.0), Some(0.9), both), Some(false));
    assert_eq!(judge(Some(1.0), None, Some(0.9), both), None);
}

#[test]
fn a_named_system_inside_all_is_judged() {
    // manager_call's shape: ≥ 10× CPython and ≤ 5× the pipe round trip (ratio ≥ 0.2).
    let target = Target::All(&[Target::VsCpython(10.0), Target::VsSystem("pipe-rtt", 0.2)]);
    assert_eq!(judge(Some(1.0), Some(50.0), None, target), Some(true));
    let stricter = Target::All(&[Target::VsCpython(10.0), Target::VsSystem("pipe-rtt", 0.3)]);
    assert_eq!(judge(Some(1.0), Some(50.0), None, stricter), Some(false));
    let absent = Target::All(&[Target::VsCpython(10.0), Target::VsSystem("queue-64b", 0.5)]);
    assert_eq!(judge(Some(1.0), Some(50.0), None, absent), None);
}

#[test]
fn rows_combine_criterion_and_cpython() {
    let measured = [
        m("pipe_rtt", "mproc", 2_000.0),
        m("pipe_rtt", "limit-pingpong", 1_000.0),
        m("pipe_rtt", "ipc-channel", 8_000.0),
        m("pipe_rtt", "socketpair", 4_000.0),
        m("queue_bytes_tput", "mproc", 1_000.0),
        m("queue_bytes_tput", "limit-xcopy", 800.0),
        m("queue_bytes_tput", "ref-memcpy", 100.0),
    ];
    let cases: Vec<&Case> = ["pipe_rtt", "queue_bytes_tput", "proc_spawn"].iter().map(|c| case(c).unwrap()).collect();
    let rows = build_rows(
        &cases,
        &measured,
        &python(&[("pipe_rtt", 30.0), ("queue_bytes_tput", 700.0)]),
        "missing",
        &BTreeMap::new(),
    );

    let s = summary(&cases, &rows);
    assert!(
        s.contains(
            "| pipe_rtt | µs ↓ | 2.00 | 30.0 | 15.0× | 1.00 (limit-pingpong) | 0.500× | 2.00× (socketpair) | ≥ 10× CPython, ≤ 3× the spin ping-pong | yes |"
        ),
        "{s}"
    );
    let pipe = row(&rows, "pipe_rtt", "mproc");
    assert_eq!(pipe.figure, Some(2.0));
    assert_eq!(pipe.vs_cpython, Some(15.0));
    assert_eq!(pipe.vs_limit, Some(0.5), "within 3× the spin ping-pong");
    assert_eq!(pipe.met, Some(true));
    assert_eq!(pipe.range, Some((1.8, 2.2)));
    assert_eq!(pipe.vs_best_peer, Some(("socketpair".to_owned(), 2.0)), "the faster of the two peers");
    // Expected peers without results are still listed.
    assert_eq!(row(&rows, "queue_bytes_tput", "ipc-channel").note, "missing");
    // Order: mproc, peers, CPython, limits.
    let order: Vec<&str> = rows.iter().filter(|r| r.case == "pipe_rtt").map(|r| r.system.as_str()).collect();
    assert_eq!(order, ["mproc", "ipc-channel", "socketpair", "CPython", "limit-pingpong"]);

    let bytes = row(&rows, "queue_bytes_tput", "mproc");
    assert_eq!(bytes.figure, Some(4096.0));
    assert_eq!(bytes.vs_limit, Some(0.8), "against the cross-process copy limit, not the in-process memcpy");
    assert_eq!(bytes.met, Some(true), "80 % of limit-xcopy meets ≥ 80 %");
    assert_eq!(bytes.vs_best_peer, None, "a reference row is no rival");
    // The in-process memcpy comes last, as a reference: compared, never the limit.
    let order: Vec<&str> = rows.iter().filter(|r| r.case == "queue_bytes_tput").map(|r| r.system.as_str()).collect();
    assert_eq!(order, ["mproc", "ipc-channel", "socketpair", "CPython", "limit-xcopy", "ref-memcpy"]);
    assert_eq!(row(&rows, "queue_bytes_tput", "ref-memcpy").vs_limit, Some(8.0));
    let md = markdown(&meta(), &cases, &rows, &[], &[], &[]);
    assert!(md.contains("`ref-memcpy` is an in-process `memcpy`"), "{md}");
    assert!(md.contains("| queue_bytes_tput | MB/s ↑ | 4096 | 700 | 5.85× | 5120 (limit-xcopy) | 0.800× |"), "{md}");
    let (lo, hi) = bytes.range.unwrap();
    assert!(lo < 4096.0 && hi > 4096.0, "bounds swap for a throughput");

    let spawn = row(&rows, "proc_spawn", "mproc");
    assert_eq!((spawn.figure, spawn.met, spawn.note.as_str()), (None, None, "missing"));
    assert_eq!(row(&rows, "proc_spawn", "CPython").note, "not measured (not run)");
}

#[test]
fn unmet_target_and_skipped_python() {
    let cases = [case("lock_uncontended").unwrap()];
    let measured = [
        m("lock_uncontended", "mproc", 20.0),
        m("lock_uncontended", "limit-cas", 5.0),
        m("lock_uncontended", "std-mutex", 15.0),
    ];
    let rows = build_rows(
        &cases,
        &measured,
        &Python::Skipped("skipped: python3 not found".into()),
        "missing",
        &BTreeMap::new(),
    );
    let lock = row(&rows, "lock_uncontended", "mproc");
    assert_eq!((lock.vs_limit, lock.met, lock.vs_cpython), (Some(0.25), Some(false), None));
    assert_eq!(lock.vs_best_peer, None, "std-mutex is an in-process bound, not a rival");
    assert_eq!(row(&rows, "lock_uncontended", "CPython").note, "skipped: python3 not found");
    let t = table(&rows);
    assert!(
        t.contains(
            "| lock_uncontended | mproc | 20.0 | ns ↓ | ±10.0 %, n=10 | — | 0.250× | ≤ 2× the CAS + swap pair | **no** |"
        ),
        "{t}"
    );
}

#[test]
fn every_case_appears_even_with_nothing_measured() {
    let cases: Vec<&Case> = CASES.iter().collect();
    let rows = build_rows(&cases, &[], &python(&[]), "not measured (bench missing)", &BTreeMap::new());
    for c in CASES {
        assert!(rows.iter().any(|r| r.case == c.id && r.system == "mproc" && r.target.is_some()));
        assert!(rows.iter().any(|r| r.case == c.id && r.system == "CPython"));
    }
    let md = markdown(&meta(), &cases, &rows, &[], &[], &[]);
    assert_eq!(md.lines().filter(|l| l.split(" | ").nth(1) == Some("mproc")).count(), CASES.len());
    let summary = summary(&cases, &rows);
    assert_eq!(summary.lines().count(), 2 + CASES.len());
    assert!(
        summary.contains("| proc_spawn | ms ↓ | — | — | — | — (limit-posix-spawn) | — | — | ≤ 5 ms | n/a |"),
        "{summary}"
    );
}

#[test]
fn json_rows_carry_every_field() {
    let cases = [case("pipe_rtt").unwrap()];
    let rows = build_rows(
        &cases,
        &[m("pipe_rtt", "mproc", 3_000.0), m("pipe_rtt", "limit-pingpong", 1_000.0)],
        &python(&[("pipe_rtt", 30.0)]),
        "missing",
        &BTreeMap::new(),
    );
    let meta = Meta {
        mode: "quick".into(),
        criterion_args: vec!["--sample-size".into(), "10".into()],
        python: "p".into(),
        notes: vec![],
    };
    let v: Value =
        serde_json::from_str(&json(&meta, &rows, &[], &[], &extra_rows(&[m("spsc_64", "mproc", 7.0)])).to_string())
            .unwrap();
    let r = &v["rows"][0];
    for key in ["case", "system", "figure", "unit", "ratio_vs_cpython", "ratio_vs_limit", "target", "met"] {
        assert!(r.get(key).is_some(), "missing {key}");
    }
    assert_eq!(r["figure"], 3.0);
    assert_eq!(r["ratio_vs_cpython"], 10.0);
    assert_eq!(r["met"], true);
    assert_eq!(v["extra_groups"][0]["case"], "spsc_64");
    assert!(v["rows"].as_array().unwrap().iter().any(|r| r["figure"].is_null()));
}

#[test]
fn python_median() {
    let f = Spread::of(&[3.0, 1.0, 2.0, 10.0, 4.0]);
    assert_eq!((f.median, f.min, f.max, f.runs), (3.0, 1.0, 10.0, 5));
    assert_eq!(Spread::of(&[1.0, 2.0]).median, 1.5);
}

#[test]
fn numbers_format_to_about_three_digits() {
    assert_eq!(fmt_num(258_000.4), "258000");
    assert_eq!(fmt_num(31.64), "31.6");
    assert_eq!(fmt_num(5.3), "5.30");
    assert_eq!(fmt_num(0.135), "0.135");
}

fn curve_python(pairs: &[(&str, f64)]) -> Python {
    python(pairs)
}

#[test]
fn curve_points_and_table() {
    let c = curves::curve("queue_curve").unwrap();
    let measured = [
        m("queue_curve", "mproc/64", 100.0),
        m("queue_curve", "mproc/4096", 1_000.0),
        m("queue_curve", "limit-xcopy/4096", 800.0),
        m("queue_curve", "mproc/999", 1.0),
        m("queue_curve", "mproc", 1.0),
        m("queue_tput", "mproc/64", 1.0),
    ];
    let py = curve_python(&[("queue_curve/4096", 300.0), ("queue_curve", 1.0)]);
    let points = curves::points(&[c], &measured, &py);
    assert_eq!(points.len(), 4, "not a point: a size off the curve, no size, another group: {points:?}");
    // MB/s of each point's own item size.
    assert_eq!(curves::figure(&points, "queue_curve", "mproc", 64), Some(640.0));
    assert_eq!(curves::figure(&points, "queue_curve", "mproc", 4096), Some(4096.0));
    assert_eq!(curves::figure(&points, "queue_curve", "CPython", 4096), Some(300.0));
    let p = points.iter().find(|p| p.system == "mproc" && p.x == 64).unwrap();
    let (lo, hi) = p.range.unwrap();
    assert!(lo < 640.0 && hi > 640.0, "bounds swap for a throughput");

    let md = curves::markdown(&[c], &points, 2);
    assert!(md.contains("![queue_curve](queue_curve.svg)"), "{md}");
    assert!(
        md.contains(
            "| message size | mproc | ipc-channel | CPython | limit-xcopy | mproc vs CPython | mproc vs limit-xcopy |"
        ),
        "{md}"
    );
    assert!(md.contains("| 4 KiB | 4096 | — | 300 | 5120 | 13.7× | 0.800× |"), "{md}");
    assert!(md.contains("| 16 MiB | — | — | — | — | — | — |"), "{md}");
    // A header, a separator and one line per size.
    assert_eq!(md.lines().filter(|l| l.starts_with('|')).count(), 2 + curves::SIZES.len());
    // Curve groups are not "other criterion groups".
    assert!(extra_rows(&measured).iter().all(|r| r.case != "queue_curve"));

    let v = curves::json(&[c], &points);
    assert_eq!(v[0]["curve"], "queue_curve");
    assert_eq!(v[0]["points"].as_array().unwrap().len(), 4);
}

#[test]
fn curve_chart_draws_log_log_lines_with_gaps() {
    let c = curves::curve("pipe_rtt_curve").unwrap();
    // mproc at every size but 64 KiB; CPython at two neighbouring sizes; the limit at one.
    let mut measured: Vec<Measured> = curves::SIZES
        .iter()
        .filter(|&&x| x != 64 << 10)
        .map(|&x| m("pipe_rtt_curve", &format!("mproc/{x}"), 500.0 + x as f64))
        .collect();
    measured.push(m("pipe_rtt_curve", "limit-xcopy/1024", 200.0));
    let py = curve_python(&[("pipe_rtt_curve/64", 60.0), ("pipe_rtt_curve/1024", 20_000.0)]);
    let points = curves::points(&[c], &measured, &py);
    assert_eq!(points.len(), 5 + 2 + 1);
    let svg = crate::svg::curve_chart(c, &points, 2);
    crate::svg::well_formed(&svg).unwrap();
    assert!(svg.contains("log-log"));
    assert_eq!(svg.matches("<circle").count(), points.len(), "one marker per point");
    // mproc: 64 B–4 KiB and 1–16 MiB (the gap at 64 KiB splits it); CPython: one line;
    // the limit's single point has no line.
    assert_eq!(svg.matches("<polyline").count(), 3, "{svg}");
    for label in ["64 B", "1 KiB", "4 KiB", "64 KiB", "1 MiB", "16 MiB", "message size"] {
        assert!(svg.contains(&format!(">{label}<")), "missing label {label}");
    }
    // Figures from 0.2 µs to 16.8 ms: decades 0.1 µs … 100 ms, each a grid line, plus one
    // legend line per system.
    assert_eq!(svg.matches("<line").count(), 7 + c.columns().len(), "{svg}");
    assert_eq!(svg.matches("stroke-dasharray").count(), 1, "the limit's legend (its one point has no line)");
    for decade in [">0.1<", ">1<", ">1000<", ">100000<"] {
        assert!(svg.contains(decade), "grid label {decade}");
    }
    for system in ["mproc", "ipc-channel", "CPython", "limit-xcopy"] {
        assert!(svg.contains(&format!(">{system}</text>")), "legend lacks {system}");
    }

    let empty = crate::svg::curve_chart(c, &[], 2);
    crate::svg::well_formed(&empty).unwrap();
    assert!(empty.contains("not measured"));
    assert_eq!(empty.matches("<circle").count(), 0);
}

#[test]
fn process_curve_marks_oversubscribed_points() {
    let c = curves::curve("queue_procs").unwrap();
    let measured: Vec<Measured> =
        [1, 2, 4].iter().map(|n| m("queue_procs", &format!("mproc/{n}"), 100.0 * *n as f64)).collect();
    let points = curves::points(&[c], &measured, &python(&[]));
    assert_eq!(curves::figure(&points, "queue_procs", "mproc", 2), Some(5e6));
    // On 2 CPUs, 2 → 2 and 4 → 4 run more busy processes than there are cores.
    let md = curves::markdown(&[c], &points, 2);
    assert!(md.contains("| 1 → 1 | 10000000 | — | — |"), "{md}");
    assert!(md.contains("| 4 → 4 (oversubscribed) |"), "{md}");
    assert_eq!(md.matches("(oversubscribed)").count(), 2, "{md}");
    assert_eq!(curves::markdown(&[c], &points, 8).matches("(oversubscribed)").count(), 0);
    let svg = crate::svg::curve_chart(c, &points, 2);
    crate::svg::well_formed(&svg).unwrap();
    assert_eq!(svg.matches("(oversubscribed)").count(), 2);
    assert!(svg.contains(">4 → 4<"));
    assert_eq!(svg.matches("<polyline").count(), 1);
}

#[test]
fn every_curve_is_a_known_id() {
    for c in curves::CURVES {
        assert!(ids().any(|id| id == c.id));
        assert!(case(c.id).is_none(), "{} is a case and a curve", c.id);
        assert!(c.xs.windows(2).all(|w| w[0] < w[1]), "{}: points ascend", c.id);
        assert_eq!(c.systems[0], "mproc");
    }
    assert_eq!(curves::fmt_bytes(64), "64 B");
    assert_eq!(curves::fmt_bytes(16 << 20), "16 MiB");
    assert_eq!(curves::fmt_bytes(1536), "1536 B");
}

#[test]
fn a_pipe_round_trip_beyond_3x_the_spin_ping_pong_misses_even_when_far_ahead_of_cpython() {
    let cases = [case("pipe_rtt").unwrap()];
    let measured = [m("pipe_rtt", "mproc", 2_000.0), m("pipe_rtt", "limit-pingpong", 500.0)];
    let rows = build_rows(&cases, &measured, &python(&[("pipe_rtt", 300.0)]), "missing", &BTreeMap::new());
    let pipe = row(&rows, "pipe_rtt", "mproc");
    assert_eq!(pipe.vs_cpython, Some(150.0));
    assert_eq!(pipe.met, Some(false), "4× the ping-pong limit");
}

#[test]
fn paired_rounds_decide_the_ratio_vs_the_limit() {
    let cases = [case("queue_bytes_tput").unwrap(), case("proc_spawn").unwrap()];
    assert!(judged_on_limit(cases[0]));
    assert!(!judged_on_limit(cases[1]), "no limit target: no paired rounds");
    // The main run caught the limit in a slow spell: 2× the limit by its rows alone.
    let measured = [m("queue_bytes_tput", "mproc", 1_000.0), m("queue_bytes_tput", "limit-xcopy", 2_000.0)];
    assert_eq!(ratio_vs_limit(cases[0], &measured), Some(2.0));
    assert_eq!(ratio_vs_limit(cases[1], &measured), None);
    let paired: BTreeMap<String, Vec<f64>> = [("queue_bytes_tput".to_owned(), vec![2.0, 0.7, 0.75, 0.6, 0.9])].into();
    let rows = build_rows(&cases, &measured, &python(&[]), "missing", &paired);
    let q = row(&rows, "queue_bytes_tput", "mproc");
    assert_eq!(q.figure, Some(4.096 * 1e3 / 1.0), "the figure stays the main run's");
    assert_eq!(q.vs_limit, Some(0.75), "the median of the rounds");
    assert_eq!(q.met, Some(false), "judged on the median: below 80 %");
    assert_eq!(q.paired.as_ref().map(|p| (p.min, p.max, p.runs)), Some((0.6, 2.0, 5)));
    assert!(table(&rows).contains("0.750× (median of 5 paired rounds, 0.600–2.00×)"), "{}", table(&rows));
    // One round is no pairing: the rows decide.
    let one: BTreeMap<String, Vec<f64>> = [("queue_bytes_tput".to_owned(), vec![2.0])].into();
    let rows = build_rows(&cases, &measured, &python(&[]), "missing", &one);
    assert_eq!(row(&rows, "queue_bytes_tput", "mproc").vs_limit, Some(2.0));
    assert_eq!(row(&rows, "queue_bytes_tput", "mproc").paired, None);
}

#[test]
fn mproc_variants_are_no_rivals() {
    let cases = [case("handoff_16mib").unwrap()];
    let measured = [
        m("handoff_16mib", "mproc", 500.0),
        m("handoff_16mib", "queue-64b", 400.0),
        m("handoff_16mib", "queue-copy", 9_000.0),
    ];
    let rows = build_rows(&cases, &measured, &python(&[]), "missing", &BTreeMap::new());
    let h = row(&rows, "handoff_16mib", "mproc");
    assert_eq!(h.vs_best_peer, None, "queue-copy is mproc copying, queue-64b the named reference");
    assert_eq!(h.met, Some(true), "500 ns is within 2× the 64 B item's 400");
    assert!(table(&rows).contains("| handoff_16mib | queue-copy |"));
}
