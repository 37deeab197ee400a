//! Plain SVG bar charts of one case: one horizontal bar per system, on a log scale when the
//! figures span more than a factor of 20. Written by hand: no plotting crate to compile.

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
        _ => "#37b24d",
    }
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
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{W}" height="{h}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="10" y="22" font-size="16" font-weight="bold">{}</text>"#, escape(case.id));
    let _ = writeln!(
        s,
        r##"<text x="10" y="42" fill="#555">{} — {}, {better}, {scale}; target: {}</text>"##,
        escape(case.title),
        escape(case.unit),
        escape(case.target_text)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{build_rows, case, PyFigure, Python};
    use std::collections::BTreeMap;

    /// A small well-formedness check: tags balance, attributes are quoted, text has no raw `<`/`&`.
    fn well_formed(xml: &str) -> Result<(), String> {
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
            figures: [("pipe_rtt".to_owned(), PyFigure::of(&[31.6]))].into_iter().collect(),
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
        let rows = build_rows(&[c], &measured, &py, "not measured (bench <missing> & co)");
        let svg = chart(c, &rows);
        well_formed(&svg).unwrap();
        assert!(svg.contains("log scale"), "31.6 µs vs 0.15 µs spans > 20×");
        assert!(svg.contains("&lt;missing&gt; &amp; co"));
        assert_eq!(svg.matches("<rect").count(), 3, "background + two bars");
        assert_eq!(svg.matches("<line").count(), 3, "decades 0.1, 1 and 10 µs");

        let empty = build_rows(&[c], &[], &Python::Skipped("skipped".into()), "missing");
        let svg = chart(c, &empty);
        well_formed(&svg).unwrap();
        assert!(svg.contains("not measured"));
    }

    #[test]
    fn linear_scale_when_figures_are_close() {
        let c = case("proc_fork").unwrap();
        let py = Python::Ran {
            version: "v".into(),
            figures: [("proc_fork".to_owned(), PyFigure::of(&[3.7]))].into_iter().collect(),
            failures: BTreeMap::new(),
        };
        let svg = chart(c, &build_rows(&[c], &[], &py, "missing"));
        assert!(svg.contains("linear scale"));
        well_formed(&svg).unwrap();
    }
}
#[cfg(test)]
mod tmp_probe {
    #[test]
    fn dump() {
        use crate::report::*;
        let c = case("lock_uncontended").unwrap();
        let ms = |f: &str, ns: f64| crate::criterion::Measured {
            group: c.id.into(),
            function: f.into(),
            median_ns: ns,
            lo_ns: ns * 0.9,
            hi_ns: ns * 1.1,
            confidence: 0.95,
            samples: 10,
            iterations: 10,
        };
        let py = Python::Ran {
            version: "v".into(),
            figures: [("lock_uncontended".to_owned(), PyFigure::of(&[131.0]))].into_iter().collect(),
            failures: Default::default(),
        };
        let rows = build_rows(
            &[c],
            &[ms("mproc", 8.0), ms("std-mutex", 15.0), ms("limit-cas", 6.0)],
            &py,
            "not measured (bench missing)",
        );
        std::fs::write("/tmp/xb-lock.svg", super::chart(c, &rows)).unwrap();
    }
}
