//! `cargo xtask ci`'s interop step: the tests that talk to a real CPython run once under
//! `python3` in `cargo test --workspace`; this runs them again under every other CPython
//! from 3.12 on that the machine has, so a change in a newer pickle or manager protocol
//! shows up. The tests take their interpreter from `MPROC_TEST_PYTHON`
//! (`mproc_testkit::python3`).
//!
//! Where an interpreter is looked for: `python3.N` on `PATH`, then pyenv's versions
//! (`$PYENV_ROOT`, else `~/.pyenv`), newest patch release first. A candidate counts only
//! if it runs and reports the minor version it was found under.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::{cargo, run, Result};

/// The interop tests: package, test target, and a name filter (`None`: all of it).
const INTEROP_TESTS: &[(&str, &str, Option<&str>)] = &[
    ("mproc-pickle", "cpython", None),
    ("mproc-pickle", "managed", None),
    ("mproc-ipc", "cpython", None),
    ("mproc-ipc", "pickle_cpython", None),
    ("mproc-manager", "python", None),
    ("mproc", "examples", Some("python")),
];

/// Runs [`INTEROP_TESTS`] under each CPython ≥ 3.12 other than `python3`'s own version.
pub fn run_other_pythons() -> Result {
    let own = minor_of("python3");
    let found: Vec<(u32, String)> =
        (12..=20).filter(|&m| Some(m) != own).filter_map(|m| find(m).map(|p| (m, p))).collect();
    if found.is_empty() {
        eprintln!("==> interop: no CPython 3.12 or later besides python3 (3.{}) here", own.unwrap_or(0));
        return Ok(());
    }
    for (minor, py) in found {
        for (pkg, test, filter) in INTEROP_TESTS {
            let mut c = cargo();
            c.args(["test", "-p", pkg, "--test", test]).env("MPROC_TEST_PYTHON", &py);
            if let Some(f) = filter {
                c.args(["--", f]);
            }
            run(&format!("interop with CPython 3.{minor}: cargo test -p {pkg} --test {test}"), c)?;
        }
    }
    Ok(())
}

/// An interpreter of CPython 3.`minor`, if the machine has one.
fn find(minor: u32) -> Option<String> {
    let on_path = format!("python3.{minor}");
    if minor_of(&on_path) == Some(minor) {
        return Some(on_path);
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))?;
    let prefix = format!("3.{minor}.");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let patch = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((patch, e.path().join("bin/python3")))
        })
        .collect();
    versions.sort();
    versions.into_iter().rev().map(|(_, p)| p.to_string_lossy().into_owned()).find(|p| minor_of(p) == Some(minor))
}

/// The minor version `python` reports, if it runs and is CPython 3.
fn minor_of(python: &str) -> Option<u32> {
    let out = Command::new(python)
        .args(["-c", "import sys, platform; print(platform.python_implementation(), *sys.version_info[:2])"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        ["CPython", "3", minor] if out.status.success() => minor.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_minor_version_of_a_cpython_and_nothing_of_other_commands() {
        // Every machine this project runs on has python3 (the interop tests need it).
        assert!(minor_of("python3").is_some_and(|m| m >= 8));
        assert_eq!(minor_of("true"), None);
        assert_eq!(minor_of("no-such-python-3.99"), None);
    }

    #[test]
    fn finds_only_interpreters_of_the_asked_version() {
        for minor in 12..=14 {
            if let Some(py) = find(minor) {
                assert_eq!(minor_of(&py), Some(minor), "{py}");
            }
        }
        assert_eq!(find(99), None);
    }
}
