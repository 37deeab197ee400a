//! The codemap check of `cargo xtask audit`: `ARCHITECTURE.md` names every source file and
//! every crate edge of the workspace, and nothing that is not there.
//!
//! - Files: every `.rs` file under a member's `src/` must be named in backticks in the
//!   `## Codemap` section. A full name starts with the member's directory
//!   (`` `shm/src/segment.rs` ``); a short name (`` `pidlock.rs` ``, `` `objects/queue.rs` ``)
//!   is read relative to the directory of the last full name before it in the same bullet.
//!   A named file that does not exist fails the check too, so the map cannot drift either way.
//! - Edges: the `### Crate edges` list has one bullet per member,
//!   `` - `ipc` → `shm`, `sync` `` (or `` - `shm` → nothing ``): the members it depends on
//!   in `[dependencies]` (optional ones included; dev-dependencies are not edges). A missing
//!   or extra edge fails the check.
//! - Benches: every case of `xtask/src/report.rs` is described in `BENCHMARKS.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What the check found wrong, one line each; empty when the map and the tree agree.
pub fn check(root: &Path) -> crate::Result<Vec<String>> {
    let arch_path = root.join("ARCHITECTURE.md");
    let arch = std::fs::read_to_string(&arch_path).map_err(|e| format!("{}: {e}", arch_path.display()))?;
    let members = members(root);
    let mut problems = Vec::new();

    let named = named_files(&section(&arch, "## Codemap"), &members);
    let mut actual = BTreeSet::new();
    for dir in members.keys() {
        for path in crate::tree::rust_files(&root.join(dir).join("src")) {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            actual.insert(rel);
        }
    }
    for f in actual.difference(&named) {
        problems.push(format!("ARCHITECTURE.md codemap does not name {f}"));
    }
    for f in named.difference(&actual) {
        problems.push(format!("ARCHITECTURE.md codemap names {f}, which does not exist"));
    }

    let stated = stated_edges(&section(&arch, "### Crate edges"));
    let package_dirs: BTreeMap<&str, &str> = members.iter().map(|(d, p)| (p.as_str(), d.as_str())).collect();
    for dir in members.keys() {
        let toml = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap_or_default();
        let real: BTreeSet<String> = dependencies(&toml)
            .into_iter()
            .filter_map(|p| package_dirs.get(p.as_str()).map(|d| d.to_string()))
            .collect();
        match stated.get(dir) {
            None => problems.push(format!("ARCHITECTURE.md crate edges have no line for `{dir}`")),
            Some(said) => {
                for d in real.difference(said) {
                    problems.push(format!("ARCHITECTURE.md crate edges miss `{dir}` → `{d}`"));
                }
                for d in said.difference(&real) {
                    problems.push(format!("ARCHITECTURE.md crate edges state `{dir}` → `{d}`, which Cargo.toml lacks"));
                }
            }
        }
    }
    for dir in stated.keys() {
        if !members.contains_key(dir) {
            problems.push(format!("ARCHITECTURE.md crate edges name `{dir}`, which is not a workspace member"));
        }
    }
    let bench_path = root.join("BENCHMARKS.md");
    let benchmarks = std::fs::read_to_string(&bench_path).unwrap_or_default();
    for id in crate::report::ids() {
        if !benchmarks.contains(&format!("`{id}`")) {
            problems.push(format!("BENCHMARKS.md does not describe the bench case `{id}`"));
        }
    }
    Ok(problems)
}

/// Member directory → package name, for every top-level directory with a `[package]`.
fn members(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(root) else { return out };
    for e in entries.flatten() {
        let Ok(toml) = std::fs::read_to_string(e.path().join("Cargo.toml")) else { continue };
        if let Some(pkg) = crate::bench::package_name(&toml) {
            out.insert(e.file_name().to_string_lossy().into_owned(), pkg);
        }
    }
    out
}

/// The lines of the section that starts with `heading`, up to the next heading of the same
/// or a higher level.
fn section(doc: &str, heading: &str) -> String {
    let level = heading.bytes().take_while(|&b| b == b'#').count();
    let mut out = String::new();
    let mut inside = false;
    for line in doc.lines() {
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        if hashes > 0 && line.as_bytes().get(hashes) == Some(&b' ') {
            if inside && hashes <= level {
                break;
            }
            if line.trim_end() == heading {
                inside = true;
                continue;
            }
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The backticked `.rs` names of a codemap, resolved to paths from the root.
fn named_files(codemap: &str, members: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for bullet in bullets(codemap) {
        let mut dir: Option<String> = None;
        for token in backticked(&bullet) {
            let first = token.split('/').next().unwrap_or("");
            let full = token.contains('/') && members.contains_key(first);
            let path = if full {
                token.to_owned()
            } else if let Some(d) = &dir {
                format!("{d}/{token}")
            } else {
                continue;
            };
            if full {
                let parent = if token.ends_with('/') { token.trim_end_matches('/') } else { parent_of(token) };
                dir = Some(parent.to_owned());
            }
            // Only sources are checked; a named test or bench file is context.
            let is_source = path.split('/').nth(1) == Some("src");
            if path.ends_with(".rs") && is_source && !path.contains('*') {
                out.insert(path);
            }
        }
    }
    out
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// A Markdown list's items, each with its continuation lines joined.
fn bullets(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("- ") {
            out.push(line.to_owned());
        } else if let Some(last) = out.last_mut() {
            if line.starts_with(' ') && !line.trim().is_empty() {
                last.push(' ');
                last.push_str(line.trim());
            }
        }
    }
    out
}

/// The contents of every `` `…` `` span of a line that looks like a path.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.is_empty() && !t.contains(' ') && (t.ends_with(".rs") || t.ends_with('/')))
        .collect()
}

/// `crate → deps` from the `### Crate edges` bullets.
fn stated_edges(list: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for bullet in bullets(list) {
        let Some((from, to)) = bullet.trim_start_matches("- ").split_once('→') else { continue };
        let from = from.trim().trim_matches('`').to_owned();
        let deps: BTreeSet<String> = to
            .split(',')
            .map(|d| d.split_whitespace().next().unwrap_or("").trim_matches('`').to_owned())
            .filter(|d| !d.is_empty() && d != "nothing")
            .collect();
        out.insert(from, deps);
    }
    out
}

/// The package names under `[dependencies]` and `[target.*.dependencies]` of a Cargo.toml.
fn dependencies(toml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t == "[dependencies]" || (t.starts_with("[target.") && t.ends_with(".dependencies]"));
            continue;
        }
        if !in_deps || t.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = t.split_once('=') {
            let key = key.trim().trim_end_matches(".workspace").trim_end_matches(".path").trim();
            // `foo = { package = "mproc-x", … }` renames; the package is what counts.
            let pkg = value
                .split("package")
                .nth(1)
                .and_then(|rest| rest.split('"').nth(1))
                .map_or_else(|| key.to_owned(), str::to_owned);
            out.push(pkg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> BTreeMap<String, String> {
        [("shm", "mproc-shm"), ("ipc", "mproc-ipc")].into_iter().map(|(a, b)| (a.into(), b.into())).collect()
    }

    #[test]
    fn short_names_resolve_against_the_last_full_name_of_the_bullet() {
        let map = "- `shm/src/tracker.rs` — the tracker. `pidlock.rs` — its lock.\n  `ring/mpmc.rs` too.\n- `ipc.rs` alone names nothing.\n- `ipc/src/queue/` — `raw.rs`, `mod.rs`; `ipc/tests/loom_queue.rs`, `loom_*.rs`.\n";
        let named: Vec<String> = named_files(map, &members()).into_iter().collect();
        assert_eq!(
            named,
            [
                "ipc/src/queue/mod.rs",
                "ipc/src/queue/raw.rs",
                "shm/src/pidlock.rs",
                "shm/src/ring/mpmc.rs",
                "shm/src/tracker.rs"
            ]
        );
    }

    #[test]
    fn sections_stop_at_the_next_heading_of_their_level() {
        let doc = "# A\n## Codemap\nx\n### Crate edges\ny\n## Invariants\nz\n";
        assert_eq!(section(doc, "## Codemap"), "x\n### Crate edges\ny\n");
        assert_eq!(section(doc, "### Crate edges"), "y\n");
    }

    #[test]
    fn edges_parse_with_nothing_and_lists() {
        let e = stated_edges("- `shm` → nothing\n- `ipc` → `shm`, `sync` (futex words)\n");
        assert!(e["shm"].is_empty());
        assert_eq!(e["ipc"].iter().collect::<Vec<_>>(), ["shm", "sync"]);
    }

    #[test]
    fn dependencies_skip_dev_dependencies_and_follow_renames() {
        let toml = "[package]\nname = \"x\"\n[dependencies]\nmproc-shm.workspace = true\nmpi = { package = \"mproc-mpi\", optional = true }\n[dev-dependencies]\nmproc-ipc.workspace = true\n";
        assert_eq!(dependencies(toml), ["mproc-shm", "mproc-mpi"]);
    }
}
