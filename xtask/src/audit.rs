//! `cargo xtask audit`: the unsafe surface and the test coverage of each primitive.
//!
//! Two checks, both on a token-level scan of every `.rs` file of the workspace
//! ([`crate::lex`]; `target/` and hidden directories are skipped):
//!
//! 1. Every `unsafe { … }` block and `unsafe impl` carries a `// SAFETY:` comment on the
//!    lines just above it (blank lines, attributes and the earlier lines of the same
//!    statement may stand between), and every `unsafe fn` has a `# Safety` section in its
//!    doc comment. A missing one fails the audit.
//! 2. For each primitive of the project, the loom models (`*/tests/loom_*.rs`), proptest
//!    files (`proptest!`) and kill tests (`SIGKILL`) that mention its type. A primitive
//!    with none fails the audit; one whose type is not in the tree yet is reported as
//!    "not built yet" and does not fail, so the audit tightens as crates land.
//!
//! Prints a summary and writes `target/mproc-audit.md`.

use crate::lex::{self, Line};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A primitive whose coverage the audit checks.
pub struct Primitive {
    /// How the report names it.
    pub name: &'static str,
    /// Type names whose definition (`struct`/`enum`/`type`/`trait`) means it exists.
    pub types: &'static [&'static str],
    /// Words whose presence in a test file counts as covering it.
    pub mentions: &'static [&'static str],
}

const fn p(name: &'static str, types: &'static [&'static str], mentions: &'static [&'static str]) -> Primitive {
    Primitive { name, types, mentions }
}

/// Every primitive the project promises (the crate table of README.md).
pub const PRIMITIVES: &[Primitive] = &[
    p("SpscRing", &["SpscRing"], &["SpscRing"]),
    p("MpmcRing", &["MpmcRing"], &["MpmcRing"]),
    // The sync handles are thin wrappers over their `Raw*` shared-memory bodies, which
    // the loom models drive directly; `Semaphore` types come out of a macro.
    p("Lock", &["Lock", "RawLock"], &["Lock", "RawLock"]),
    p("RLock", &["RLock", "RawRLock"], &["RLock", "RawRLock"]),
    p("Semaphore", &["Semaphore", "RawSemaphore"], &["Semaphore", "RawSemaphore"]),
    p("BoundedSemaphore", &["BoundedSemaphore", "RawSemaphore"], &["BoundedSemaphore", "RawSemaphore"]),
    p("Condition", &["Condition", "RawCondition"], &["Condition", "RawCondition"]),
    p("Event", &["Event", "RawEvent"], &["Event", "RawEvent"]),
    p("Barrier", &["Barrier", "RawBarrier"], &["Barrier", "RawBarrier"]),
    // The queues' models also reach them through the builder (`build_heap` in loom).
    p("Queue", &["Queue"], &["Queue", "build_heap"]),
    p("JoinableQueue", &["JoinableQueue"], &["JoinableQueue", "build_joinable", "build_joinable_heap"]),
    p("SimpleQueue", &["SimpleQueue"], &["SimpleQueue", "build_simple", "build_simple_heap"]),
    // `pipe`'s loom model drives its wake-up protocol, `doorbell::Bell`, over a ring directly.
    p("Connection/Pipe", &["Connection"], &["Connection", "Pipe", "pipe", "Bell"]),
    p("Pool", &["Pool"], &["Pool"]),
    p("Manager", &["Manager", "SyncManager", "BaseManager"], &["Manager", "SyncManager", "BaseManager"]),
];

/// What kind of `unsafe` a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `unsafe { … }`.
    Block,
    /// `unsafe impl …`.
    Impl,
    /// `unsafe fn …` (a declaration, not a fn-pointer type).
    Fn,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Impl => "impl",
            Kind::Fn => "fn",
        }
    }
}

/// One `unsafe` site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// File, relative to the workspace root.
    pub file: String,
    /// 1-based line of the `unsafe` keyword.
    pub line: usize,
    /// Block, impl or fn.
    pub kind: Kind,
    /// The justification found: the SAFETY comment (blocks, impls) or the `# Safety` doc
    /// (fns), joined into one line; `None` when it is missing.
    pub justification: Option<String>,
}

/// Finds the `unsafe` sites of one file.
pub fn scan_unsafe(file: &str, src: &str) -> Vec<Site> {
    let lines = lex::lines(src);
    let mut out = Vec::new();
    for (idx, line) in lines.iter().enumerate() {
        for col in lex::find_word(&line.code, "unsafe") {
            let Some(kind) = classify(&lines, idx, col + "unsafe".len()) else { continue };
            let justification = match kind {
                Kind::Block | Kind::Impl => safety_comment(&lines, idx),
                Kind::Fn => safety_doc(&lines, idx),
            };
            out.push(Site { file: file.to_owned(), line: idx + 1, kind, justification });
        }
    }
    out
}

/// The code tokens after position (`idx`, `col`), across lines: the next few words/puncts.
fn next_tokens(lines: &[Line], idx: usize, col: usize, n: usize) -> Vec<String> {
    let mut toks = Vec::new();
    let mut rest = lines[idx].code[col..].to_owned();
    let mut i = idx;
    loop {
        let mut chars = rest.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            if c.is_whitespace() {
                continue;
            }
            if c.is_alphanumeric() || c == '_' {
                let mut w = String::from(c);
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        w.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                toks.push(w);
            } else {
                toks.push(c.to_string());
            }
            if toks.len() >= n {
                return toks;
            }
        }
        i += 1;
        match lines.get(i) {
            Some(l) => rest = l.code.clone(),
            None => return toks,
        }
    }
}

fn classify(lines: &[Line], idx: usize, col: usize) -> Option<Kind> {
    let toks = next_tokens(lines, idx, col, 6);
    let is_name =
        |t: Option<&String>| t.is_some_and(|t| t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_'));
    match toks.first().map(String::as_str) {
        Some("{") => Some(Kind::Block),
        Some("impl") => Some(Kind::Impl),
        Some("fn") if is_name(toks.get(1)) => Some(Kind::Fn),
        Some("extern") => {
            // `unsafe extern "C" fn name` (declaration) or `unsafe extern "C" {` (a block
            // of foreign items: it needs its own justification like a block).
            let after_abi = if toks.get(1).map(String::as_str) == Some("\"") { 3 } else { 1 };
            match toks.get(after_abi).map(String::as_str) {
                Some("fn") if is_name(toks.get(after_abi + 1)) => Some(Kind::Fn),
                Some("{") => Some(Kind::Block),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_attribute(code: &str) -> bool {
    let t = code.trim_start();
    t.starts_with("#[") || t.starts_with("#![")
}

/// The `// SAFETY:` comment for the `unsafe` on line `idx`: on that line before it, or in the
/// comment lines above, walking up past blank lines, attributes, and earlier lines of the
/// same statement (a line that does not end in `;`, `{` or `}`).
fn safety_comment(lines: &[Line], idx: usize) -> Option<String> {
    if has_safety(&lines[idx].comment) {
        return Some(from_safety(&[&lines[idx]]));
    }
    let mut j = idx;
    while j > 0 {
        j -= 1;
        let l = &lines[j];
        if l.is_blank() || is_attribute(&l.code) {
            if has_safety(&l.comment) {
                return Some(from_safety(&[l]));
            }
            continue;
        }
        if l.is_comment_only() {
            // The contiguous comment block ending here.
            let mut start = j;
            while start > 0 && (lines[start - 1].is_comment_only() || lines[start - 1].is_blank()) {
                start -= 1;
            }
            let block: Vec<&Line> = lines[start..=j].iter().collect();
            return block.iter().any(|l| has_safety(&l.comment)).then(|| from_safety(&block));
        }
        if has_safety(&l.comment) {
            return Some(from_safety(&[l]));
        }
        let code = l.code.trim_end();
        if code.ends_with(';') || code.ends_with('{') || code.ends_with('}') {
            return None;
        }
    }
    None
}

/// The `# Safety` section of the doc comment above the `unsafe fn` on line `idx`.
fn safety_doc(lines: &[Line], idx: usize) -> Option<String> {
    let mut j = idx;
    let mut docs: Vec<&Line> = Vec::new();
    while j > 0 {
        j -= 1;
        let l = &lines[j];
        if l.is_comment_only() || is_attribute(&l.code) {
            docs.push(l);
        } else if !l.is_blank() {
            break;
        }
    }
    docs.reverse();
    let pos = docs.iter().position(|l| l.comment.contains("# Safety"))?;
    let text: Vec<&str> = docs[pos + 1..]
        .iter()
        .map(|l| l.comment.trim_start_matches('/').trim())
        .filter(|t| !t.is_empty() && !t.starts_with('#'))
        .collect();
    Some(if text.is_empty() { "# Safety".to_owned() } else { text.join(" ") })
}

fn has_safety(comment: &str) -> bool {
    comment.to_ascii_uppercase().contains("SAFETY:")
}

/// The comment text from the first `SAFETY:` on, joined into one line.
fn from_safety(block: &[&Line]) -> String {
    let mut parts = Vec::new();
    let mut seen = false;
    for l in block {
        seen |= has_safety(&l.comment);
        if seen {
            let t = l.comment.trim().trim_start_matches('/').trim_start_matches('*').trim().trim_end_matches("*/");
            if !t.is_empty() {
                parts.push(t.trim().to_owned());
            }
        }
    }
    parts.join(" ")
}

/// One scanned file, what the coverage check needs of it.
pub struct FileFacts {
    /// Path relative to the workspace root.
    pub file: String,
    /// Code of the test part: the whole file under `tests/`, or what follows the first
    /// `#[cfg(test)]` in a source file.
    pub test_code: String,
    /// Code of the non-test part (where types are defined).
    pub lib_code: String,
    /// Whether this is a kill test: it sends SIGKILL itself, or calls a `kill…` helper of a
    /// test module that does (set by [`mark_kill_tests`]).
    pub kill: bool,
}

impl FileFacts {
    /// Splits a file into its library and test parts.
    pub fn new(file: &str, src: &str) -> FileFacts {
        let lines = lex::lines(src);
        // A `tests.rs` module file is compiled under the `#[cfg(test)] mod tests;` of its parent.
        let is_test_file =
            file.split('/').any(|c| c == "tests" || c == "benches" || c == "examples") || file.ends_with("/tests.rs");
        let mut lib_code = String::new();
        let mut test_code = String::new();
        let mut in_test = is_test_file;
        for l in &lines {
            if !in_test && l.code.contains("#[cfg(test)]") {
                in_test = true;
            }
            let dst = if in_test { &mut test_code } else { &mut lib_code };
            dst.push_str(&l.code);
            dst.push('\n');
        }
        if is_test_file {
            lib_code.clear();
        }
        let mut f = FileFacts { file: file.to_owned(), test_code, lib_code, kill: false };
        f.kill = f.sends_sigkill();
        f
    }

    fn is_loom(&self) -> bool {
        let name = self.file.rsplit('/').next().unwrap_or("");
        self.file.contains("/tests/") && name.starts_with("loom_") && name.ends_with(".rs")
    }

    fn is_proptest(&self) -> bool {
        lex::find_word(&self.test_code, "proptest")
            .iter()
            .any(|&i| self.test_code[i + "proptest".len()..].trim_start().starts_with('!'))
    }

    /// The `mod name;` declarations of this file.
    fn declared_mods(&self) -> Vec<String> {
        lex::find_word(&self.test_code, "mod")
            .into_iter()
            .filter_map(|i| {
                let rest = self.test_code[i + 3..].trim_start();
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                (!name.is_empty() && rest[name.len()..].trim_start().starts_with(';')).then_some(name)
            })
            .collect()
    }

    fn sends_sigkill(&self) -> bool {
        // `Process::kill` and `std::process::Child::kill` send SIGKILL.
        self.test_code.contains(".kill()")
            || ["SIGKILL", "KILL", "Kill"].iter().any(|w| {
                lex::find_word(&self.test_code, w)
                    .iter()
                    .any(|&i| *w == "SIGKILL" || self.test_code[..i].trim_end().ends_with("Signal::"))
            })
    }

    fn mentions(&self, p: &Primitive) -> bool {
        p.mentions.iter().any(|m| lex::has_word(&self.test_code, m))
    }

    fn defines(&self, p: &Primitive) -> bool {
        p.types.iter().any(|t| {
            lex::find_word(&self.lib_code, t).iter().any(|&i| {
                let before = self.lib_code[..i].trim_end();
                ["struct", "enum", "type", "trait"].iter().any(|k| before.ends_with(k))
            })
        })
    }
}

/// Marks as kill tests the test files that declare a helper module (`mod common;`) which
/// sends SIGKILL, and call something named `…kill…` (e.g. `common::kill_and_reap`).
pub fn mark_kill_tests(files: &mut [FileFacts]) {
    let senders: std::collections::HashSet<String> =
        files.iter().filter(|f| f.sends_sigkill()).map(|f| f.file.clone()).collect();
    for f in files.iter_mut().filter(|f| !f.kill) {
        let Some(dir) = f.file.rsplit_once('/').map(|(d, _)| d.to_owned()) else { continue };
        let helper_kills = f
            .declared_mods()
            .iter()
            .any(|m| senders.contains(&format!("{dir}/{m}.rs")) || senders.contains(&format!("{dir}/{m}/mod.rs")));
        let calls_kill = f
            .test_code
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w.to_ascii_lowercase().contains("kill"));
        f.kill = helper_kills && calls_kill;
    }
}

/// Coverage of one primitive.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Whether its type is defined in the tree.
    pub exists: bool,
    /// Loom model files mentioning it.
    pub loom: Vec<String>,
    /// Proptest files mentioning it.
    pub proptest: Vec<String>,
    /// Kill-test files mentioning it.
    pub kill: Vec<String>,
}

impl Coverage {
    /// Fails the audit: built, and no test of any of the three kinds covers it.
    pub fn uncovered(&self) -> bool {
        self.exists && self.loom.is_empty() && self.proptest.is_empty() && self.kill.is_empty()
    }
}

/// Coverage of `prim` across `files`.
pub fn coverage(prim: &Primitive, files: &[FileFacts]) -> Coverage {
    let mut c = Coverage { exists: files.iter().any(|f| f.defines(prim)), ..Coverage::default() };
    for f in files.iter().filter(|f| f.mentions(prim)) {
        if f.is_loom() {
            c.loom.push(f.file.clone());
        }
        if f.is_proptest() {
            c.proptest.push(f.file.clone());
        }
        if f.kill {
            c.kill.push(f.file.clone());
        }
    }
    c
}

/// Every `.rs` file under `root`, skipping `target/` and hidden directories; sorted.
pub fn rust_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ty) = e.file_type() else { continue };
            if ty.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, out);
                }
            } else if ty.is_file() && name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

/// The audit's findings.
pub struct Audit {
    /// Every unsafe site.
    pub sites: Vec<Site>,
    /// Coverage per primitive, in [`PRIMITIVES`] order.
    pub coverage: Vec<(&'static str, Coverage)>,
}

impl Audit {
    /// Runs both checks over `(relative path, source)` pairs.
    pub fn of(sources: &[(String, String)]) -> Audit {
        let sites = sources.iter().flat_map(|(f, s)| scan_unsafe(f, s)).collect();
        // xtask's own tables name the primitives; they are not the primitives.
        let mut facts: Vec<FileFacts> =
            sources.iter().filter(|(f, _)| !f.starts_with("xtask/")).map(|(f, s)| FileFacts::new(f, s)).collect();
        mark_kill_tests(&mut facts);
        let coverage = PRIMITIVES.iter().map(|p| (p.name, coverage(p, &facts))).collect();
        Audit { sites, coverage }
    }

    /// The failures, one line each; empty when the audit passes.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.sites.iter().filter(|s| s.justification.is_none()) {
            let what = match s.kind {
                Kind::Fn => "unsafe fn without a `# Safety` doc section",
                Kind::Block => "unsafe block without a `// SAFETY:` comment",
                Kind::Impl => "unsafe impl without a `// SAFETY:` comment",
            };
            out.push(format!("{}:{}: {what}", s.file, s.line));
        }
        for (name, c) in &self.coverage {
            if c.uncovered() {
                out.push(format!("{name}: no loom model, proptest or kill test mentions it"));
            }
        }
        out
    }

    /// The primitive summary table (Markdown).
    pub fn coverage_table(&self) -> String {
        let mut t = String::from(
            "| primitive | status | loom models | proptests | kill tests |\n| --- | --- | --- | --- | --- |\n",
        );
        let list = |v: &[String]| if v.is_empty() { "—".to_owned() } else { v.join(", ") };
        for (name, c) in &self.coverage {
            let status = if !c.exists {
                "not built yet"
            } else if c.uncovered() {
                "**NOT COVERED**"
            } else {
                "covered"
            };
            let _ =
                writeln!(t, "| {name} | {status} | {} | {} | {} |", list(&c.loom), list(&c.proptest), list(&c.kill));
        }
        t
    }

    /// The whole report (Markdown).
    pub fn markdown(&self) -> String {
        let mut md = String::from("# mproc audit\n\n");
        let count = |k: Kind| self.sites.iter().filter(|s| s.kind == k).count();
        let _ = writeln!(
            md,
            "{} unsafe blocks, {} unsafe impls, {} unsafe fns.\n",
            count(Kind::Block),
            count(Kind::Impl),
            count(Kind::Fn)
        );
        let failures = self.failures();
        if failures.is_empty() {
            md.push_str("Result: **pass**.\n\n");
        } else {
            let _ = writeln!(md, "Result: **FAIL** ({} problems):\n", failures.len());
            for f in &failures {
                let _ = writeln!(md, "- {f}");
            }
            md.push('\n');
        }
        md.push_str("## Coverage of each primitive\n\n");
        md.push_str(&self.coverage_table());
        md.push_str("\n## Unsafe sites\n\n| site | kind | justification |\n| --- | --- | --- |\n");
        for s in &self.sites {
            let j = s.justification.as_deref().map_or("**MISSING**".to_owned(), |j| j.replace('|', "\\|"));
            let _ = writeln!(md, "| {}:{} | {} | {} |", s.file, s.line, s.kind.label(), j);
        }
        md
    }
}

/// `cargo xtask audit [--root DIR]`.
pub fn run(root: &Path, out_dir: &Path) -> crate::Result {
    let mut sources = Vec::new();
    for path in rust_files(root) {
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        let src = std::fs::read_to_string(&path).map_err(|e| format!("{rel}: {e}"))?;
        sources.push((rel, src));
    }
    let audit = Audit::of(&sources);
    println!("Unsafe sites ({} files scanned):", sources.len());
    for s in &audit.sites {
        let j = s.justification.as_deref().unwrap_or("MISSING");
        let short: String = j.chars().take(100).collect();
        let ell = if j.chars().count() > 100 { "…" } else { "" };
        println!("  {}:{} [{}] {short}{ell}", s.file, s.line, s.kind.label());
    }
    if audit.sites.is_empty() {
        println!("  (none)");
    }
    println!("\nCoverage of each primitive:\n{}", audit.coverage_table());
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let md_path = out_dir.join("mproc-audit.md");
    std::fs::write(&md_path, audit.markdown()).map_err(|e| format!("{}: {e}", md_path.display()))?;
    println!("report: {}", md_path.display());
    let mut failures = audit.failures();
    let codemap = crate::codemap::check(root)?;
    println!("\nCodemap (ARCHITECTURE.md against the tree): {}", if codemap.is_empty() { "agrees" } else { "DRIFTED" });
    failures.extend(codemap);
    if failures.is_empty() {
        println!("audit: pass");
        Ok(())
    } else {
        for f in &failures {
            println!("FAIL {f}");
        }
        Err(format!("{} problem(s); see {}", failures.len(), md_path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(src: &str) -> Vec<(usize, Kind, bool)> {
        scan_unsafe("f.rs", src).into_iter().map(|s| (s.line, s.kind, s.justification.is_some())).collect()
    }

    #[test]
    fn block_with_safety_comment_above_passes() {
        let src = "fn f() {\n    // SAFETY: [1] the pointer is valid\n    //         [2] and aligned\n    unsafe { g() }\n}\n";
        let s = scan_unsafe("f.rs", src);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].line, 4);
        assert_eq!(s[0].kind, Kind::Block);
        assert_eq!(s[0].justification.as_deref(), Some("SAFETY: [1] the pointer is valid [2] and aligned"));
    }

    #[test]
    fn block_without_comment_fails() {
        assert_eq!(sites("fn f() {\n    let x = 1;\n    unsafe { g() }\n}\n"), vec![(3, Kind::Block, false)]);
        // A comment that is not a SAFETY comment does not count.
        assert_eq!(sites("fn f() {\n    // call g\n    unsafe { g() }\n}\n"), vec![(3, Kind::Block, false)]);
        // A SAFETY comment for an earlier statement does not cover this one.
        let src = "fn f() {\n    // SAFETY: ok\n    unsafe { g() };\n    unsafe { h() }\n}\n";
        assert_eq!(sites(src), vec![(3, Kind::Block, true), (4, Kind::Block, false)]);
    }

    #[test]
    fn comment_above_the_statement_covers_a_nested_block() {
        let src = "// SAFETY: fd is open\nlet seg = Segment::from_fd(\n    a,\n    unsafe { OwnedFd::from_raw_fd(fd) },\n);\n";
        assert_eq!(sites(src), vec![(4, Kind::Block, true)]);
        let src = "// SAFETY: fine\n\nlet x = unsafe { y() };\n";
        assert_eq!(sites(src), vec![(3, Kind::Block, true)]);
    }

    #[test]
    fn impl_accepts_comment_above_attributes() {
        let src = "// SAFETY: the ring is only touched through atomics\n#[cfg(not(loom))]\nunsafe impl Send for Ring {}\nunsafe impl Sync for Ring {}\n";
        assert_eq!(sites(src), vec![(3, Kind::Impl, true), (4, Kind::Impl, false)]);
    }

    #[test]
    fn unsafe_fn_needs_a_safety_doc_section() {
        let src = "/// Reads.\n///\n/// # Safety\n/// `p` must be valid.\n#[inline]\npub unsafe fn read(p: *const u8) {}\n/// No section.\nunsafe fn bad() {}\n";
        let s = scan_unsafe("f.rs", src);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].line, s[0].kind), (6, Kind::Fn));
        assert_eq!(s[0].justification.as_deref(), Some("`p` must be valid."));
        assert_eq!((s[1].line, s[1].justification.is_none()), (8, true));
    }

    #[test]
    fn unsafe_in_comments_strings_types_and_lints_is_ignored() {
        let src = "// unsafe { }\nlet s = \"unsafe { }\";\ntype F = unsafe fn(u8);\n#![deny(unsafe_op_in_unsafe_fn)]\n#[allow(unsafe_code)]\nlet c = 'u';\n";
        assert_eq!(sites(src), vec![]);
    }

    #[test]
    fn extern_blocks_and_fns() {
        let src = "// SAFETY: libc's declaration\nunsafe extern \"C\" {\n}\n/// # Safety\n/// none\nunsafe extern \"C\" fn cb() {}\n";
        assert_eq!(sites(src), vec![(2, Kind::Block, true), (6, Kind::Fn, true)]);
    }

    fn facts(files: &[(&str, &str)]) -> Vec<FileFacts> {
        files.iter().map(|(f, s)| FileFacts::new(f, s)).collect()
    }

    #[test]
    fn coverage_counts_loom_proptest_and_kill_files() {
        let files = facts(&[
            ("sync/src/lock.rs", "pub struct Lock;\npub struct RLock;\n#[cfg(test)]\nmod tests { proptest! { fn p(x in 0..1) { RLock::new(); } } }\n"),
            ("sync/tests/loom_lock.rs", "use mproc_sync::Lock;\n"),
            ("sync/tests/kill.rs", "fn t() { let l = Lock::new(); kill(pid, Signal::KILL); }\n"),
            ("sync/tests/other.rs", "// Lock in a comment only, and SIGKILL\nfn t() {}\n"),
        ]);
        let lock = coverage(&PRIMITIVES[2], &files);
        assert!(lock.exists);
        assert_eq!(lock.loom, vec!["sync/tests/loom_lock.rs"]);
        assert!(lock.proptest.is_empty(), "the proptest names RLock, not Lock");
        assert_eq!(lock.kill, vec!["sync/tests/kill.rs"]);
        let rlock = coverage(&PRIMITIVES[3], &files);
        assert_eq!(rlock.proptest, vec!["sync/src/lock.rs"]);
        assert!(!rlock.uncovered());
    }

    #[test]
    fn kill_tests_through_a_helper_module() {
        let mut files = facts(&[
            ("shm/tests/common/mod.rs", "pub fn kill_and_reap(pid: i32) { libc::kill(pid, libc::SIGKILL); }\n"),
            (
                "shm/tests/ring_kill.rs",
                "mod common;\nuse common::kill_and_reap;\nfn t() { SpscRing::new(); kill_and_reap(1); }\n",
            ),
            ("shm/tests/ring_smoke.rs", "mod common;\nfn t() { SpscRing::new(); }\n"),
            ("shm/tests/other.rs", "mod helpers;\nfn t() { SpscRing::new(); kill_and_reap(1); }\n"),
        ]);
        mark_kill_tests(&mut files);
        let c = coverage(&PRIMITIVES[0], &files);
        assert_eq!(c.kill, vec!["shm/tests/ring_kill.rs"], "the smoke test kills nothing; `helpers` sends no SIGKILL");
    }

    #[test]
    fn missing_types_are_not_built_yet_and_do_not_fail() {
        let files = facts(&[
            ("shm/src/ring.rs", "pub struct SpscRing;\n"),
            ("shm/tests/t.rs", "fn f() { MpmcRing::new(); }\n"),
        ]);
        let spsc = coverage(&PRIMITIVES[0], &files);
        assert!(spsc.exists && spsc.uncovered());
        let mpmc = coverage(&PRIMITIVES[1], &files);
        assert!(!mpmc.exists && !mpmc.uncovered(), "a test mention does not make the type exist");
    }

    #[test]
    fn audit_fails_on_missing_comment_or_coverage() {
        let sources = vec![
            ("shm/src/ring.rs".to_owned(), "pub struct SpscRing;\nfn f() { unsafe { g() } }\n".to_owned()),
            ("xtask/src/audit.rs".to_owned(), "pub struct Pool;\n".to_owned()),
        ];
        let a = Audit::of(&sources);
        let f = a.failures();
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].starts_with("shm/src/ring.rs:2: unsafe block"));
        assert!(f[1].starts_with("SpscRing:"));
        assert!(a.markdown().contains("| Pool | not built yet |"), "xtask's own files define nothing");
    }
}
