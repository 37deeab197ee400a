//! Plain SVG charts: per case one horizontal bar per system, on a log scale when the
//! figures span more than a factor of 20; per cost curve one line per system on log-log
//! axes. Written by hand: no plotting crate to compile.

use crate::report::curves::{Curve, Point};
use crate::report::{fmt_num, Better, Case, Row};
use std::fmt::Write as _;

/// Escapes text for an SVG text node or attribute.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn colour(system: &str) -> &'static str {
    match system {
        "mproc" => "#d9480f",
        "CPython" => "#1c7ed6",
        s if s.starts_with("limit-") => "#868e96",
        s if s.starts_with("ref-") => "#ced4da",
        _ => "#37b24d",
    }
}

/// The opening of a `w` × `h` chart: white ground, `title` in bold, `subtitle` below.
fn header(w: f64, h: f64, title: &str, subtitle: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="10" y="22" font-size="16" font-weight="bold">{}</text>"#, escape(title));
    let _ = writeln!(s, r##"<text x="10" y="42" fill="#555">{}</text>"##, escape(subtitle));
    s
}

/// The chart for `case` from its rows (rows of other cases are ignored).
pub fn chart(case: &Case, rows: &[Row]) -> String {
    const W: f64 = 720.0;
    const LABEL: f64 = 170.0;
    const BAR_H: f64 = 22.0;
    const GAP: f64 = 8.0;
    const TOP: f64 = 58.0;
    let rows: Vec<&Row> = rows.iter().filter(|r| r.case == case.id).collect();
    let h = TOP + rows.len().max(1) as f64 * (BAR_H + GAP) + 30.0;
    let figures: Vec<f64> = rows.iter().filter_map(|r| r.figure).filter(|f| *f > 0.0).collect();
    let max = figures.iter().copied().fold(0.0_f64, f64::max);
    let min = figures.iter().copied().fold(f64::INFINITY, f64::min);
    let log = !figures.is_empty() && max / min > 20.0;
    let span = W - LABEL - 110.0;
    let length = |f: f64| -> f64 {
        if log {
            // The smallest bar keeps a tenth of a decade so it stays visible.
            let floor = (min.log10() - 0.1).floor();
            span * (f.log10() - floor) / (max.log10() - floor)
        } else {
            span * f / max
        }
    };
    let better = match case.better {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
    };
    let scale = if log { "log scale" } else { "linear scale" };
    let mut s = header(
        W,
        h,
        case.id,
        &format!("{} — {}, {better}, {scale}; target: {}", case.title, case.unit, case.target_text),
    );
    if log {
        // Decade grid lines, labelled, so the log scale reads as one.
        let floor = (min.log10() - 0.1).floor();
        let bottom = h - 24.0;
        let mut d = floor;
        while d <= max.log10() {
            let x = LABEL + length(10f64.powf(d));
            let _ = writeln!(s, r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/>"##, TOP - 4.0);
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{}" fill="#777" font-size="11" text-anchor="middle">{}</text>"##,
                bottom + 14.0,
                fmt_num(10f64.powf(d))
            );
            d += 1.0;
        }
    }
    if figures.is_empty() {
        let _ = writeln!(s, r#"<text x="10" y="{}">not measured</text>"#, TOP + 16.0);
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + i as f64 * (BAR_H + GAP);
        let ty = y + BAR_H * 0.7;
        let _ = writeln!(s, r#"<text x="{}" y="{ty}" text-anchor="end">{}</text>"#, LABEL - 8.0, escape(&r.system));
        match r.figure {
            Some(f) if f > 0.0 => {
                let len = length(f).max(1.0);
                let _ = writeln!(
                    s,
                    r#"<rect x="{LABEL}" y="{y}" width="{len:.1}" height="{BAR_H}" fill="{}"/>"#,
                    colour(&r.system)
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{ty}">{} {}</text>"#,
                    LABEL + len + 6.0,
                    fmt_num(f),
                    escape(case.unit)
                );
            }
            _ => {
                let _ = writeln!(s, r##"<text x="{LABEL}" y="{ty}" fill="#999">{}</text>"##, escape(&r.note));
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The log-log line chart of `curve`: one line per system through its points (a point
/// not measured breaks the line), a decade grid, the points labelled on the x axis
/// (`cpus` marks oversubscribed process counts). Points of other curves are ignored.
pub fn curve_chart(curve: &Curve, points: &[Point], cpus: usize) -> String {
    const W: f64 = 720.0;
    const H: f64 = 400.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 560.0;
    const TOP: f64 = 60.0;
    const BOTTOM: f64 = 330.0;
    let points: Vec<&Point> = points.iter().filter(|p| p.curve == curve.id && p.figure > 0.0).collect();
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), p| (lo.min(p.figure), hi.max(p.figure)));
    // Whole decades around the figures, at least one.
    let (d0, d1) = if points.is_empty() { (0.0, 1.0) } else { (lo.log10().floor(), hi.log10().ceil()) };
    let d1 = if d1 <= d0 { d0 + 1.0 } else { d1 };
    let y = |f: f64| BOTTOM - (BOTTOM - TOP) * (f.log10() - d0) / (d1 - d0);
    let (x0, x1) = (curve.xs[0] as f64, curve.xs[curve.xs.len() - 1] as f64);
    let x = |v: u64| {
        if x1 > x0 {
            LEFT + 20.0 + (RIGHT - LEFT - 40.0) * ((v as f64).ln() - x0.ln()) / (x1.ln() - x0.ln())
        } else {
            (LEFT + RIGHT) / 2.0
        }
    };
    let better = match curve.better {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
    };
    let title = curve.title.replace('`', "");
    let mut s = header(W, H, curve.id, &format!("{title} — {}, {better}, log-log", curve.unit));
    let mut d = d0;
    while d <= d1 {
        let gy = y(10f64.powf(d));
        let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{RIGHT}" y2="{gy:.1}" stroke="#ddd"/>"##);
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{:.1}" fill="#777" font-size="11" text-anchor="end">{}</text>"##,
            LEFT - 6.0,
            gy + 4.0,
            decade(d)
        );
        d += 1.0;
    }
    for &v in curve.xs {
        let label = curve.x_label(v, cpus);
        let (first, second) = label.split_once(" (").map_or((label.as_str(), None), |(a, b)| (a, Some(b)));
        let tx = x(v);
        let _ = writeln!(
            s,
            r##"<text x="{tx:.1}" y="{}" fill="#555" font-size="11" text-anchor="middle">{}</text>"##,
            BOTTOM + 16.0,
            escape(first)
        );
        if let Some(rest) = second {
            let _ = writeln!(
                s,
                r##"<text x="{tx:.1}" y="{}" fill="#c92a2a" font-size="11" text-anchor="middle">({}</text>"##,
                BOTTOM + 30.0,
                escape(rest)
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" fill="#555" text-anchor="middle">{}</text>"##,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 52.0,
        escape(curve.axis_title())
    );
    if points.is_empty() {
        let _ = writeln!(s, r#"<text x="{}" y="{}">not measured</text>"#, LEFT + 20.0, (TOP + BOTTOM) / 2.0);
    }
    for (i, system) in curve.columns().iter().enumerate() {
        let colour = colour(system);
        let dash = if system.starts_with("limit-") { r#" stroke-dasharray="6 4""# } else { "" };
        // Runs of consecutive measured points, each one polyline.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &v in curve.xs {
            match points.iter().find(|p| p.system == *system && p.x == v) {
                Some(p) => runs.last_mut().expect("never empty").push((x(v), y(p.figure))),
                None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
                None => {}
            }
        }
        for run in runs.iter().filter(|r| r.len() > 1) {
            let coords: Vec<String> = run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
                coords.join(" ")
            );
        }
        for &(cx, cy) in runs.iter().flatten() {
            let _ = writeln!(s, r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3.5" fill="{colour}"/>"#);
        }
        let ly = TOP + 10.0 + i as f64 * 22.0;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            RIGHT + 15.0,
            RIGHT + 40.0
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, RIGHT + 46.0, ly + 4.0, escape(system));
    }
    s.push_str("</svg>\n");
    s
}

/// The label of decade `d` (10^d): `0.01`, `1`, `1000`; `1e7` beyond a million.
fn decade(d: f64) -> String {
    match d {
        d if (-3.0..0.0).contains(&d) => format!("{:.*}", -d as usize, 10f64.powf(d)),
        d if (0.0..=6.0).contains(&d) => format!("{:.0}", 10f64.powf(d)),
        d => format!("1e{d}"),
    }
}

/// A small well-formedness check for the tests: tags balance, attributes are quoted,
/// text has no raw `<`/`&`.
#[cfg(test)]
pub(crate) fn well_formed(xml: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        if text.contains('>')
            || text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").replace("&quot;", "").contains('&')
        {
            return Err(format!("bad text: {text:?}"));
        }
        let gt = rest[lt..].find('>').ok_or("unclosed tag")? + lt;
        let tag = &rest[lt + 1..gt];
        if tag.matches('"').count() & 1 == 1 {
            return Err(format!("unbalanced quotes in <{tag}>"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name) {
                return Err(format!("unexpected </{name}>"));
            }
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or("").to_owned());
        }
        rest = &rest[gt + 1..];
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{build_rows, case, Python, Spread};
    use std::collections::BTreeMap;

    #[test]
    fn checker_catches_broken_xml() {
        assert!(well_formed("<svg><text>a</text></svg>").is_ok());
        assert!(well_formed("<svg><text>a</svg>").is_err());
        assert!(well_formed("<svg><text>a & b</text></svg>").is_err());
    }

    #[test]
    fn charts_are_well_formed_with_and_without_figures() {
        let c = case("pipe_rtt").unwrap();
        let py = Python::Ran {
            version: "v".into(),
            figures: [("pipe_rtt".to_owned(), Spread::of(&[31.6]))].into_iter().collect(),
            failures: BTreeMap::new(),
        };
        let measured = [crate::criterion::Measured {
            group: "pipe_rtt".into(),
            function: "limit-pingpong".into(),
            median_ns: 150.0,
            lo_ns: 140.0,
            hi_ns: 160.0,
            confidence: 0.95,
            samples: 10,
            iterations: 10,
        }];
        let rows = build_rows(&[c], &measured, &py, "not measured (bench <missing> & co)", &BTreeMap::new());
        let svg = chart(c, &rows);
        well_formed(&svg).unwrap();
        assert!(svg.contains("log scale"), "31.6 µs vs 0.15 µs spans > 20×");
        assert!(svg.contains("&lt;missing&gt; &amp; co"));
        assert_eq!(svg.matches("<rect").count(), 3, "background + two bars");
        assert_eq!(svg.matches("<line").count(), 3, "decades 0.1, 1 and 10 µs");

        let empty = build_rows(&[c], &[], &Python::Skipped("skipped".into()), "missing", &BTreeMap::new());
        let svg = chart(c, &empty);
        well_formed(&svg).unwrap();
        assert!(svg.contains("not measured"));
    }

    #[test]
    fn linear_scale_when_figures_are_close() {
        let c = case("proc_fork").unwrap();
        let py = Python::Ran {
            version: "v".into(),
            figures: [("proc_fork".to_owned(), Spread::of(&[3.7]))].into_iter().collect(),
            failures: BTreeMap::new(),
        };
        let svg = chart(c, &build_rows(&[c], &[], &py, "missing", &BTreeMap::new()));
        assert!(svg.contains("linear scale"));
        well_formed(&svg).unwrap();
    }
}
