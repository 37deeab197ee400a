//! Reading criterion's results from disk.
//!
//! Criterion stores each benchmark under `<criterion home>/<group>/<function>[/<value>]/new/`:
//! `benchmark.json` names it (`group_id`, `function_id`, `value_str`; directory names are
//! made filesystem-safe, so the names are taken from here, not from the path),
//! `estimates.json` holds the bootstrap estimates in nanoseconds per iteration, and
//! `sample.json` the raw samples (`iters`, `times`).

use serde_json::Value;
use std::path::Path;
use std::time::SystemTime;

/// One benchmark's result: time per iteration, in nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Criterion group id (the case id by the project's convention).
    pub group: String,
    /// Function id (the system), with `/value` appended when the benchmark has one.
    pub function: String,
    /// Median time per iteration.
    pub median_ns: f64,
    /// Lower bound of the median's confidence interval.
    pub lo_ns: f64,
    /// Upper bound of the median's confidence interval.
    pub hi_ns: f64,
    /// Confidence level of that interval (0.95 by default).
    pub confidence: f64,
    /// Number of samples criterion took.
    pub samples: usize,
    /// Total iterations over all samples.
    pub iterations: u64,
}

/// Parses one benchmark's `new/` directory contents.
pub fn parse(benchmark_json: &str, estimates_json: &str, sample_json: Option<&str>) -> Result<Measured, String> {
    let b: Value = serde_json::from_str(benchmark_json).map_err(|e| format!("benchmark.json: {e}"))?;
    let e: Value = serde_json::from_str(estimates_json).map_err(|e| format!("estimates.json: {e}"))?;
    let group = b["group_id"].as_str().ok_or("benchmark.json: no group_id")?.to_owned();
    let function = match (b["function_id"].as_str(), b["value_str"].as_str()) {
        (Some(f), Some(v)) => format!("{f}/{v}"),
        (Some(f), None) => f.to_owned(),
        (None, Some(v)) => v.to_owned(),
        (None, None) => group.clone(),
    };
    let median = &e["median"];
    let num = |v: &Value, what: &str| v.as_f64().ok_or_else(|| format!("estimates.json: no {what}"));
    let median_ns = num(&median["point_estimate"], "median.point_estimate")?;
    let ci = &median["confidence_interval"];
    let lo_ns = num(&ci["lower_bound"], "median.confidence_interval.lower_bound")?;
    let hi_ns = num(&ci["upper_bound"], "median.confidence_interval.upper_bound")?;
    let confidence = ci["confidence_level"].as_f64().unwrap_or(0.95);
    let (samples, iterations) = match sample_json {
        Some(s) => {
            let s: Value = serde_json::from_str(s).map_err(|e| format!("sample.json: {e}"))?;
            let iters = s["iters"].as_array().map(|a| a.as_slice()).unwrap_or(&[]);
            (iters.len(), iters.iter().filter_map(Value::as_f64).sum::<f64>() as u64)
        }
        None => (0, 0),
    };
    if !(median_ns.is_finite() && median_ns > 0.0) {
        return Err(format!("estimates.json: median {median_ns} ns is not a positive time"));
    }
    Ok(Measured { group, function, median_ns, lo_ns, hi_ns, confidence, samples, iterations })
}

/// Every benchmark under `home` whose `new/benchmark.json` was written at or after `since`
/// (results of earlier runs are not this run's figures). Unreadable entries are reported
/// in the second list.
pub fn read_all(home: &Path, since: Option<SystemTime>) -> (Vec<Measured>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            if e.file_name() != "new" {
                stack.push(path);
                continue;
            }
            let bench = path.join("benchmark.json");
            let Ok(meta) = std::fs::metadata(&bench) else { continue };
            if let (Some(since), Ok(modified)) = (since, meta.modified()) {
                if modified < since {
                    continue;
                }
            }
            let read = |name: &str| std::fs::read_to_string(path.join(name));
            let result = match (read("benchmark.json"), read("estimates.json")) {
                (Ok(b), Ok(est)) => parse(&b, &est, read("sample.json").ok().as_deref()),
                (Err(err), _) | (_, Err(err)) => Err(err.to_string()),
            };
            match result {
                Ok(m) => found.push(m),
                Err(err) => errors.push(format!("{}: {err}", path.display())),
            }
        }
    }
    found.sort_by(|a, b| (&a.group, &a.function).cmp(&(&b.group, &b.function)));
    (found, errors)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `benchmark.json` as criterion 0.5 writes it.
    pub fn benchmark_json(group: &str, function: Option<&str>) -> String {
        let f = function.map_or("null".to_owned(), |f| format!("\"{f}\""));
        format!(
            r#"{{"group_id":"{group}","function_id":{f},"value_str":null,"throughput":null,"full_id":"{group}/x","directory_name":"{group}/x","title":"{group}/x"}}"#
        )
    }

    /// An `estimates.json` as criterion 0.5 writes it, with the given median and CI.
    pub fn estimates_json(median: f64, lo: f64, hi: f64) -> String {
        let est = |p: f64, l: f64, h: f64| {
            format!(
                r#"{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{l},"upper_bound":{h}}},"point_estimate":{p},"standard_error":0.5}}"#
            )
        };
        format!(
            r#"{{"mean":{},"median":{},"median_abs_dev":{},"slope":{},"std_dev":{}}}"#,
            est(median * 1.01, lo, hi),
            est(median, lo, hi),
            est(1.0, 0.5, 1.5),
            est(median, lo, hi),
            est(2.0, 1.0, 3.0)
        )
    }

    /// Writes a fabricated criterion tree entry.
    pub fn fabricate(home: &Path, group: &str, function: &str, median: f64, lo: f64, hi: f64) {
        let dir = home.join(group).join(function.replace('/', "_")).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("benchmark.json"), benchmark_json(group, Some(function))).unwrap();
        std::fs::write(dir.join("estimates.json"), estimates_json(median, lo, hi)).unwrap();
        std::fs::write(
            dir.join("sample.json"),
            r#"{"sampling_mode":"Linear","iters":[1.0,2.0,3.0],"times":[10.0,20.0,30.0]}"#,
        )
        .unwrap();
        // Criterion also keeps the previous run in `base/` and a `report/` directory.
        let base = home.join(group).join(function.replace('/', "_")).join("base");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("estimates.json"), "not json").unwrap();
    }

    /// A fresh empty directory under the system temp dir.
    pub fn tempdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn parses_median_and_interval() {
        let m = parse(&benchmark_json("pipe_rtt", Some("mproc")), &estimates_json(812.5, 800.0, 830.0), None).unwrap();
        assert_eq!((m.group.as_str(), m.function.as_str()), ("pipe_rtt", "mproc"));
        assert_eq!((m.median_ns, m.lo_ns, m.hi_ns, m.confidence), (812.5, 800.0, 830.0, 0.95));
    }

    #[test]
    fn value_str_is_appended_and_missing_function_falls_back_to_group() {
        let b = r#"{"group_id":"spsc","function_id":"mproc","value_str":"64"}"#;
        assert_eq!(parse(b, &estimates_json(1.0, 1.0, 1.0), None).unwrap().function, "mproc/64");
        let b = r#"{"group_id":"solo","function_id":null,"value_str":null}"#;
        assert_eq!(parse(b, &estimates_json(1.0, 1.0, 1.0), None).unwrap().function, "solo");
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(parse("{", "{}", None).is_err());
        assert!(parse(&benchmark_json("g", Some("f")), r#"{"median":{}}"#, None).is_err());
        assert!(parse(&benchmark_json("g", Some("f")), &estimates_json(0.0, 0.0, 0.0), None).is_err());
    }

    #[test]
    fn reads_a_tree_and_skips_old_results() {
        let home = tempdir("tree");
        fabricate(&home, "pipe_rtt", "mproc", 900.0, 850.0, 950.0);
        fabricate(&home, "pipe_rtt", "limit-pingpong", 200.0, 190.0, 210.0);
        let (found, errors) = read_all(&home, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].function, "limit-pingpong");
        assert_eq!((found[1].samples, found[1].iterations), (3, 6));
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(read_all(&home, Some(later)).0.is_empty());
        std::fs::remove_dir_all(&home).unwrap();
    }
}
