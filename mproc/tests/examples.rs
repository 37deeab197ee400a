//! Runs every example in `mproc/examples/` (the Rust twins of the seed tutorials)
//! and checks what it prints: the content, and the order where the tutorial's
//! order is certain. No timing is asserted.
//!
//! Each example runs as its own process group under a watchdog: if it (or a child
//! it left behind holding its stdout) is still there after [`WATCHDOG`], the whole
//! group is killed and the test fails with the output so far.
//!
//! The binaries live next to this test (`target/<profile>/examples/`). `cargo
//! test` builds them with the package's other targets, but `cargo test --test
//! examples` does not; so the first test to need one runs `cargo build
//! --workspace --examples` once (a no-op when they are up to date), and no stale binary is
//! ever checked.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an example may run, children included.
const WATCHDOG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Finding and running the examples
// ---------------------------------------------------------------------------

/// `target/<profile>/examples`: this test runs from `target/<profile>/deps`.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test binary's directory");
    deps.parent().expect("the profile directory").join("examples")
}

/// The path of example `name`, built (once per test run) if out of date.
fn example(name: &str) -> PathBuf {
    build_examples();
    let path = examples_dir().join(name);
    assert!(path.exists(), "example binary {} not found, even after building the examples", path.display());
    path
}

/// Builds the examples once, in this test's target directory and profile.
fn build_examples() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = examples_dir();
        let profile_dir = dir.parent().expect("profile directory");
        let target_dir = profile_dir.parent().expect("target directory");
        let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let mut cmd = Command::new(env!("CARGO"));
        // `--workspace`, as `cargo test --workspace` and CI's `cargo build
        // --workspace --examples` select: the same features, so nothing is rebuilt.
        cmd.args(["build", "--quiet", "--workspace", "--examples", "--target-dir"]).arg(target_dir);
        // With the feature on, the feature-gated examples (async_pool) too.
        if cfg!(feature = "tokio") {
            cmd.args(["--features", "mproc/tokio"]);
        }
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("run cargo build --examples");
        assert!(status.success(), "cargo build --examples failed: {status}");
    });
}

/// A running example: its stdout arrives line by line.
struct Running {
    name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
    out_reader: JoinHandle<()>,
    err_reader: JoinHandle<String>,
    deadline: Instant,
}

/// What an example printed, and how it ended.
struct Output {
    name: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn start(name: &str, args: &[&str]) -> Running {
    start_command(name, Command::new(example(name)).args(args))
}

/// Runs one of the tutorial's Python scripts shipped in `mproc/examples/python/` with
/// the real `python3` (unbuffered, so lines arrive as printed).
fn start_python(script: &str, args: &[&str]) -> Running {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python").join(script);
    start_command(script, Command::new(mproc_testkit::python3()).arg("-u").arg(path).args(args))
}

fn start_command(name: &str, cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0) // so the watchdog can kill the example and its children
        .spawn()
        .unwrap_or_else(|e| panic!("start example {name}: {e}"));
    let (tx, lines) = mpsc::channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().expect("piped stdout");
    let out_reader = std::thread::spawn({
        let seen = seen.clone();
        move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                seen.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        }
    });
    let mut err = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    Running { name: name.to_owned(), child, lines, seen, out_reader, err_reader, deadline: Instant::now() + WATCHDOG }
}

impl Running {
    /// Kills the example's process group and fails with what it printed.
    fn fail(&mut self, why: &str) -> ! {
        // SAFETY: kill takes a process-group id (the example's pid, its group
        // leader) and a signal; it touches no memory.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
        let seen = self.seen.lock().unwrap().join("\n");
        panic!("example {}: {why}; killed it. stdout so far:\n{seen}", self.name);
    }

    /// Waits for a line of stdout that satisfies `pred`.
    fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool) {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return,
                Ok(_) => {}
                Err(_) => self.fail("the awaited line did not come"),
            }
        }
    }

    /// Waits for the example to exit and for its stdout and stderr to close
    /// (no child of it may keep them open).
    fn finish(mut self) -> Output {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < self.deadline => std::thread::sleep(Duration::from_millis(10)),
                Ok(None) => self.fail(&format!("still running after {WATCHDOG:?}")),
                Err(e) => self.fail(&format!("wait failed: {e}")),
            }
        };
        while !(self.out_reader.is_finished() && self.err_reader.is_finished()) {
            if Instant::now() >= self.deadline {
                self.fail("a child of the example kept its output open");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.out_reader.join().expect("stdout reader");
        let stderr = self.err_reader.join().expect("stderr reader");
        let mut stdout = self.seen.lock().unwrap().join("\n");
        stdout.push('\n');
        Output { name: self.name, status, stdout, stderr }
    }
}

/// Runs example `name` to its end and checks that it succeeded.
fn run(name: &str) -> Output {
    let out = start(name, &[]).finish();
    assert!(
        out.status.success(),
        "example {name} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out
}

// ---------------------------------------------------------------------------
// Checking the output
// ---------------------------------------------------------------------------

impl Output {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn context(&self) -> String {
        format!("example {} printed:\n{}\nstderr:\n{}", self.name, self.stdout, self.stderr)
    }

    /// The index of the first line equal to `line`.
    fn pos(&self, line: &str) -> usize {
        self.lines().iter().position(|l| *l == line).unwrap_or_else(|| panic!("no line {line:?}; {}", self.context()))
    }

    /// The index of the first line starting with `prefix`.
    fn pos_prefix(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?}; {}", self.context()))
    }

    /// Every line of `expected` appears, whole, in this order (others may come
    /// between).
    fn assert_in_order(&self, expected: &[&str]) {
        let lines = self.lines();
        let mut at = 0;
        for want in expected {
            match lines[at..].iter().position(|l| l == want) {
                Some(i) => at += i + 1,
                None => {
                    panic!("line {want:?} missing or out of order (expected order: {expected:?}); {}", self.context())
                }
            }
        }
    }

    /// The output is exactly these lines.
    fn assert_exactly(&self, expected: &[&str]) {
        assert_eq!(self.lines(), expected, "{}", self.context());
    }

    /// How many lines equal `line`.
    fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| **l == line).count()
    }

    /// How many lines start with `prefix`.
    fn count_prefix(&self, prefix: &str) -> usize {
        self.lines().iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// The lines starting with `prefix`, with the prefix removed.
    fn after_prefix(&self, prefix: &str) -> Vec<String> {
        self.lines().iter().filter_map(|l| l.strip_prefix(prefix)).map(str::to_owned).collect()
    }

    fn assert_contains(&self, line: &str) {
        assert!(self.count(line) > 0, "no line {line:?}; {}", self.context());
    }
}

/// The largest number of holders at once, reading `enter` lines as +1 and
/// `leave` lines as −1 (each printed while its process holds the resource).
fn max_concurrency(out: &Output, enter: impl Fn(&str) -> bool, leave: impl Fn(&str) -> bool) -> i32 {
    let (mut now, mut max) = (0, 0);
    for l in out.lines() {
        if enter(l) {
            now += 1;
            max = max.max(now);
        } else if leave(l) {
            now -= 1;
        }
    }
    assert_eq!(now, 0, "every holder left; {}", out.context());
    max
}

fn number(s: &str) -> u64 {
    s.trim().parse().unwrap_or_else(|e| panic!("not a number: {s:?}: {e}"))
}

// ---------------------------------------------------------------------------
// One test per example
// ---------------------------------------------------------------------------

/// Declares one test per example (named after it) and the list of checked
/// examples that `every_example_is_checked` compares with the directory.
macro_rules! examples {
    ($($name:ident => $check:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let out = run(stringify!($name));
                let check: fn(&Output) = $check;
                check(&out);
            }
        )*
        const CHECKED: &[&str] = &[$(stringify!($name)),*];
    };
}

/// Examples checked by hand-written tests below rather than by the macro
/// (`async_pool` only exists with the `tokio` feature).
const CHECKED_ELSEWHERE: &[&str] = &["task_master", "task_worker", "async_pool"];

#[cfg(feature = "tokio")]
#[test]
fn async_pool() {
    let out = run("async_pool");
    out.assert_contains("the runtime is free while the work runs");
    assert_eq!(out.after_prefix("apply_async: "), ["2262"], "{}", out.context());
    assert_eq!(out.after_prefix("map_async: "), ["[4, 25, 168, 1229]"], "{}", out.context());
    assert_eq!(out.after_prefix("imap: "), ["15", "95", "669"], "{}", out.context());
    assert_eq!(out.after_prefix("worker 0: "), ["3245"], "{}", out.context());
    assert_eq!(out.after_prefix("worker 1: "), ["4203"], "{}", out.context());
    out.assert_contains("workers joined");
}

examples! {
    fork_pids => |out| {
        let me = out.after_prefix("My process is ");
        let son = out.after_prefix("I have a son process, pid is ");
        assert_eq!((me.len(), son.len()), (1, 1), "{}", out.context());
        out.assert_contains(&format!("pid is {} My father is {}", son[0], me[0]));
        assert_ne!(me[0], son[0]);
    };
    serial_vs_processes => |out| {
        // §1.1, serially: f1, f2, then the cost.
        assert_eq!(out.lines()[..2], ["this is f1", "this is f2"], "{}", out.context());
        assert!(out.lines()[2].starts_with("Cost time "), "{}", out.context());
        assert!(number(out.lines()[3]) >= 1, "cpu_count; {}", out.context());
        // §1.2: both children started, each printed its line once (in any order,
        // possibly before the parent listed them), then the parent's cost.
        for name in ["Process-1", "Process-2"] {
            assert!(out.lines().iter().any(|l| l.contains(&format!(" {name} "))), "{name} started; {}", out.context());
        }
        assert_eq!(out.count_prefix("active children: ["), 1, "{}", out.context());
        assert_eq!((out.count("this is f1"), out.count("this is f2")), (2, 2), "{}", out.context());
        assert!(out.lines().last().unwrap().starts_with("cost time "), "{}", out.context());
    };
    custom_process => |out| {
        let names: BTreeSet<String> = out.after_prefix("This is ").into_iter().collect();
        let want: BTreeSet<String> = (1..=5).map(|i| format!("Worker-{i}")).collect();
        assert_eq!(names, want, "{}", out.context());
        assert_eq!(out.pos_prefix("Cost Time "), 5, "{}", out.context());
    };
    daemon => |out| {
        let daemon = out.after_prefix("Starting: daemon ");
        assert_eq!(daemon.len(), 1, "{}", out.context());
        let n = out.after_prefix("Starting: non_daemon ");
        out.assert_in_order(&[&format!("Starting: daemon {}", daemon[0]), &format!("Starting: non_daemon {}", n[0]), &format!("Exiting: non_daemon {}", n[0])]);
        assert_eq!(out.count_prefix("Exiting: daemon"), 0, "the daemon must not finish its 100 s nap; {}", out.context());
        // The daemon dies with the example. Its stdout closes as it dies, a
        // moment before it is gone: poll its state until then (at most a zombie
        // awaiting its new parent; a reused pid runs another program).
        let pid = &daemon[0];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()).unwrap_or("gone");
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let same_program = String::from_utf8_lossy(&cmdline).contains("daemon");
            if matches!(state, "gone" | "Z" | "X") || !same_program {
                break;
            }
            assert!(Instant::now() < deadline, "the daemon {pid} outlived the example (state {state})");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    terminate => |out| {
        // The child may or may not print "process begin.." before the signal.
        let l: Vec<&str> = out.lines().into_iter().filter(|l| *l != "process begin..").collect();
        assert_eq!(l.len(), 5, "{}", out.context());
        assert!(l[0].starts_with("begin: ") && l[0].contains("\"initial\"") && l[0].ends_with(" false"), "{}", out.context());
        assert!(l[1].starts_with("during ") && l[1].contains("\"started\"") && l[1].ends_with(" true"), "{}", out.context());
        assert!(l[2].starts_with("terminate "), "{}", out.context());
        assert!(l[3].starts_with("after: ") && l[3].contains("stopped[-15]") && l[3].ends_with(" false"), "{}", out.context());
        assert_eq!(l[4], "exitcode: Some(-15)");
        assert_eq!(out.count("process end..."), 0, "terminated before its end; {}", out.context());
    };
    exit_codes => |out| {
        out.assert_exactly(&[
            "Starting process exit_error",
            "Starting process exit_ok",
            "Starting process return_value",
            "Starting process raise_error",
            "Starting process terminated",
            "process_name: exit_error, exit_code: 1",
            "process_name: exit_ok, exit_code: 0",
            "process_name: return_value, exit_code: 0",
            "process_name: raise_error, exit_code: 1",
            "process_name: terminated, exit_code: -15",
        ]);
        assert!(out.stderr.contains("sdfsdfsdf"), "the panic message goes to stderr; {}", out.context());
    };
    lock_output => |out| {
        assert_eq!(out.lines().len(), 10, "{}", out.context());
        assert_eq!((out.count("hello!!!"), out.count("world")), (5, 5), "whole lines only; {}", out.context());
    };
    lock_file => |out| {
        assert_eq!(out.lines()[0], "end");
        let body: Vec<&str> = out.lines().into_iter().skip(2).collect();
        assert_eq!(body.len(), 18, "{}", out.context());
        let (a, b) = body.split_at(9);
        assert!(a.iter().all(|l| *l == a[0]) && b.iter().all(|l| *l == b[0]) && a[0] != b[0], "each writer's nine lines form one block; {}", out.context());
        let mut two = [a[0], b[0]];
        two.sort();
        assert_eq!(two, ["Lock acquired directly", "Lock acquired via with"]);
    };
    pool_apply_async => |out| {
        let msgs = out.after_prefix("msg: ");
        assert_eq!(msgs.len(), 4, "{}", out.context());
        let hellos: BTreeSet<String> = msgs.iter().map(|m| m.split_once(' ').expect("pid msg").1.to_owned()).collect();
        assert_eq!(hellos, (0..4).map(|i| format!("hello {i}")).collect(), "{}", out.context());
        let pids: HashSet<&str> = msgs.iter().map(|m| m.split_once(' ').expect("pid msg").0).collect();
        assert!(pids.len() <= 3, "a pool of 3 runs in at most 3 processes: {pids:?}");
        assert_eq!(out.count("end"), 4);
        assert_eq!(out.count("mark!mark!mark!"), 1);
        let done = out.pos("sub-process done!");
        assert_eq!(out.lines()[done + 1..], ["return msg hello 0", "return msg hello 1", "return msg hello 2", "return msg hello 3"]);
        assert!(out.pos_prefix("msg: ") < done && out.lines()[..done].iter().filter(|l| **l == "end").count() == 4);
    };
    pool_long_time_task => |out| {
        assert_eq!(out.pos_prefix("Parent Process is "), 0);
        out.assert_contains("Waiting for all subprocess done");
        assert_eq!(*out.lines().last().unwrap(), "All subprocesses done");
        let mut pids = HashSet::new();
        for i in 0..5 {
            let run = out.pos_prefix(&format!("Run task {i} ("));
            let took = out.pos_prefix(&format!("Task {i} runs "));
            assert!(run < took, "task {i} runs before it reports; {}", out.context());
            pids.insert(out.lines()[run].split(['(', ')']).nth(1).unwrap().to_owned());
        }
        assert!(pids.len() <= 4, "a pool of 4 uses at most 4 processes: {pids:?}");
    };
    semaphore => |out| {
        assert_eq!(out.count_prefix("hello: this is "), 4, "{}", out.context());
        for j in 0..4 {
            assert_eq!(out.count_prefix(&format!("hello: this is {j} ")), 1);
        }
        let max = max_concurrency(out, |l| l.starts_with("hello: "), |l| l == "end!");
        assert!((1..=2).contains(&max), "Semaphore(2) let {max} in at once; {}", out.context());
        let max = max_concurrency(out, |l| l.ends_with(" acquire"), |l| l.ends_with(" release"));
        assert!((1..=2).contains(&max), "Semaphore(2) let {max} in at once; {}", out.context());
        for i in 1..=5 {
            out.assert_in_order(&[&format!("Process-{i} acquire"), &format!("Process-{i} release")]);
        }
    };
    independent_memory => |out| {
        assert_eq!(out.count("processing start.."), 3);
        assert_eq!(out.count("processing end.. 1"), 3, "each child sees only its own item; {}", out.context());
        assert_eq!(*out.lines().last().unwrap(), "[] 0", "the parent's list stays empty");
    };
    manager_list => |out| {
        assert_eq!(out.count("processing start.."), 3);
        assert_eq!(out.count_prefix("processing end.. "), 3);
        let last = *out.lines().last().unwrap();
        let (list, len) = last.rsplit_once(' ').unwrap();
        assert_eq!(len, "3", "{}", out.context());
        let mut items: Vec<u32> = list.trim_matches(['[', ']']).split(", ").map(|s| number(s) as u32).collect();
        items.sort_unstable();
        assert_eq!(items, [0, 1, 2], "every child's item reached the shared list; {}", out.context());
    };
    manager_pool => |out| {
        let workers = out.after_prefix("written by ");
        assert_eq!(workers.len(), 1, "{}", out.context());
        out.assert_exactly(&[
            "all tasks ok: true",
            "[(0, 0), (1, 1), (2, 4), (3, 9), (4, 16), (5, 25)]",
            &format!("written by {}", workers[0]),
        ]);
        let (n, rest) = workers[0].split_once(' ').unwrap();
        assert!((1..=2).contains(&number(n)), "at most the pool's 2 workers; {}", out.context());
        assert!(rest.ends_with("not the parent: true"), "{}", out.context());
    };
    pipe_eof => |out| {
        assert_eq!(out.lines()[0], "1");
        assert!(out.lines()[1].starts_with("EOFError: "), "{}", out.context());
    };
    pipe_processes => |out| {
        assert!(out.lines()[0].starts_with("(Connection"), "{}", out.context());
        out.assert_in_order(&["send: 0", "send: 1", "send: 2"]);
        out.assert_in_order(&["proc2 rev: 0", "proc2 rev: 1", "proc2 rev: 2"]);
        for i in 0..3 {
            assert!(out.pos(&format!("send: {i}")) < out.pos(&format!("proc2 rev: {i}")));
        }
        assert_eq!(out.lines().len(), 7, "{}", out.context());
    };
    queue_writer_reader => |out| {
        out.assert_in_order(&["Send 0", "Send 1", "Send 2"]);
        out.assert_in_order(&["Receiver msg: 0", "Receiver msg: 1", "Receiver msg: 2"]);
        for i in 0..3 {
            assert!(out.pos(&format!("Send {i}")) < out.pos(&format!("Receiver msg: {i}")), "{}", out.context());
        }
        assert_eq!(out.lines().len(), 7, "{}", out.context());
        assert_eq!(*out.lines().last().unwrap(), "1", "seed 004's item went through; {}", out.context());
    };
    queue_abc => |out| {
        assert_eq!(out.count_prefix("Process to write: "), 1);
        assert_eq!(out.count_prefix("Process to read: "), 1);
        out.assert_in_order(&["Put A to queue...", "Put B to queue...", "Put C to queue..."]);
        out.assert_in_order(&["Get A from queue.", "Get B from queue.", "Get C from queue."]);
        for x in ["A", "B", "C"] {
            assert!(out.pos(&format!("Put {x} to queue...")) < out.pos(&format!("Get {x} from queue.")));
        }
        assert_eq!(out.lines().len(), 8, "{}", out.context());
    };
    logging_queue => |out| {
        assert!(out.lines()[0].starts_with("201 processes, the first Process"), "{}", out.context());
        let info = out.lines().iter().filter(|l| l.ends_with(" multiprocess-log INFO ok")).count();
        let error = out.lines().iter().filter(|l| l.ends_with(" multiprocess-log ERROR division by zero")).count();
        assert_eq!((info, error), (100, 100), "every record was logged once; {}", out.context());
        assert!(out.lines().iter().any(|l| l.ends_with(" has 200 lines")), "the log file too; {}", out.context());
    };
    joinable_queue => |out| {
        for i in 0..10 {
            let task = format!("{i} * {i}");
            assert_eq!(out.count(&format!("{task} next_task")), 1, "{}", out.context());
            assert_eq!(out.count(&task), 1, "{}", out.context());
            assert!(out.pos(&format!("{task} next_task")) < out.pos(&task));
        }
        assert_eq!((out.count("None next_task"), out.count("None: Exiting")), (4, 4), "{}", out.context());
        let l = out.lines();
        assert_eq!(l.len(), 38, "{}", out.context());
        let results: BTreeSet<&str> = l[28..].iter().copied().collect();
        let want: Vec<String> = (0..10).map(|i| format!("{i} * {i} = {}", i * i)).collect();
        assert_eq!(results, want.iter().map(String::as_str).collect(), "the results come after tasks.join(); {}", out.context());
    };
    condition => |out| {
        let l = out.lines();
        assert_eq!(l.len(), 15, "{}", out.context());
        let pid = |line: &str| line.split(' ').nth(1).unwrap().to_owned();
        let (a, b) = (pid(l[0]), pid(l[6]));
        assert_ne!(a, b);
        let mut want: Vec<String> = (0..6).map(|i| format!("process-id: {a} {i} go11")).collect();
        want.extend((0..7).map(|i| format!("process-id: {b} {i}")));
        want.extend((6..8).map(|i| format!("process-id: {a} {i} go11")));
        assert_eq!(l, want, "go1 to 5, go2 to 6, go1 to 7; {}", out.context());
    };
    event_breakfast => |out| {
        out.assert_in_order(&[
            "customer: ready to buy breakfast: false",
            "customer: got breakfast: true",
            "customer: enjoying it: true",
            "customer: paying, delicious...",
            "customer: 4",
            "customer: 5",
        ]);
        out.assert_in_order(&[
            "vendor: cooking...",
            "vendor: selling...",
            "vendor: breakfast is ready, waiting for the customer",
            "vendor: 1",
            "vendor: 2 (paid: true)",
            "vendor: 3",
            "vendor: thank you, come again",
        ]);
        out.assert_in_order(&["vendor: breakfast is ready, waiting for the customer", "customer: got breakfast: true"]);
        out.assert_in_order(&["customer: paying, delicious...", "vendor: 2 (paid: true)"]);
        assert_eq!(out.lines().len(), 13, "{}", out.context());
    };
    event_timer => |out| {
        out.assert_in_order(&["[F] child unblocked", "[F] child blocked", "[F] started again", "[F] stopped again"]);
        let ticks_before_block = out.lines()[..out.pos("[F] child blocked")].iter().filter(|l| l.starts_with("[S] ")).count();
        assert!(ticks_before_block >= 3, "the worker ticked while the event was set; {}", out.context());
        let ticks_before_stop = out.lines()[..out.pos("[F] stopped again")].iter().filter(|l| l.starts_with("[S] ")).count();
        assert!(ticks_before_stop >= 6, "{}", out.context());
        assert_eq!(out.count_prefix("[S] this is my timed task! "), out.count_prefix("[S] "));
    };
    value_array => |out| {
        out.assert_exactly(&["3.141592653589793", "[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]", "counter: 4000"]);
    };
    clock_process => |out| {
        out.assert_in_order(&["p.name: Process-1"]);
        assert_eq!(out.count_prefix("p.pid: "), 1);
        assert_eq!(out.count_prefix("The time is "), 5);
        assert_eq!(out.count_prefix("the time is "), 5);
        let last_target = out.lines().iter().rposition(|l| l.starts_with("The time is ")).unwrap();
        assert!(last_target < out.pos_prefix("the time is "), "the second child starts after the first is joined");
    };
    process_basics => |out| {
        let parent = out.after_prefix("Parent process ")[0].trim_end_matches('.').to_owned();
        out.assert_in_order(&["Child process will start", "Child process end."]);
        let run = out.pos_prefix("Run child process test (");
        assert!(out.pos("Child process will start") < run && run < out.pos("Child process end."));
        out.assert_in_order(&["This is son_one"]);
        out.assert_in_order(&["This is son_two"]);
        assert_eq!(out.after_prefix("son_one:")[0].split_once("  father:").unwrap().1, parent);
        assert_eq!(out.after_prefix("son_two:")[0].split_once("  father:").unwrap().1, parent);
        assert!(out.after_prefix("son:")[0].starts_with(&parent));
        out.assert_in_order(&["My name is Jack", "This is func_one", "I am main process"]);
        out.assert_in_order(&["My name is Jack", "This is func_one", "My name is Mick", "This is func_two"]);
    };
    thread_loop => |out| {
        out.assert_exactly(&[
            "thread main is running...",
            "thread LoopThread is running...",
            "thread LoopThread >>> 1",
            "thread LoopThread >>> 2",
            "thread LoopThread >>> 3",
            "thread LoopThread >>> 4",
            "thread LoopThread >>> 5",
            "thread LoopThread ended.",
            "thread main ended.",
        ]);
    };
    thread_lock_balance => |out| out.assert_exactly(&["0"]);
    thread_local => |out| out.assert_exactly(&["Hello, Alice (in Thread-A)", "Hello, Bob (in Thread-B)"]);
    thread_basics => |out| {
        let l = out.lines();
        let squares = |a: u64, b: u64, sep: char| -> Vec<String> { (a..b).map(|i| format!("{}{sep}", i * i)).collect() };
        for block in [&l[0..10], &l[10..20]] {
            let got: BTreeSet<&str> = block.iter().copied().collect();
            let mut want: Vec<String> = squares(1, 6, ':');
            want.extend(squares(16, 21, ':'));
            assert_eq!(got, want.iter().map(String::as_str).collect(), "{}", out.context());
        }
        let mut chain = squares(1, 6, ';');
        chain.extend(squares(16, 19, ';'));
        assert_eq!(l[20..28], chain, "tb's lines come after all of ta's; {}", out.context());
        out.assert_in_order(&["start....", "end...."]);
    };
    thread_rlock => |out| {
        assert_eq!(out.lines()[..6], ["30", "60", "90", "120", "150", "without a lock:"], "{}", out.context());
        assert_eq!(out.count("---"), 5);
        assert_eq!(out.lines().len(), 16);
    };
    thread_event_talk => |out| {
        out.assert_in_order(&["Smith :Good Morning", "John :Good morning"]);
        out.assert_contains("Smith :How are you?");
        out.assert_contains("John :I am fine, thank you");
        assert_eq!(out.lines().len(), 4);
    };
    subprocess => |out| {
        out.assert_in_order(&["$ uname -s", "Exit code: 0", "$ lookup", "> set q=mx", "> python.org", "Exit code: 0"]);
        assert_eq!(out.count("> exit"), 0, "the child stops at `exit`");
        out.assert_in_order(&[
            "call() test: 0",
            "check_call() test: 0",
            "getstatusoutput() test: (0, \"Hello world\")",
            "getoutput() test: Hello world",
            "check_output() test: \"Hello world\\n\"",
            "STDOUT:",
            "42 strings are from stdin.",
            "STDERR:",
            "1 bouquet of flowers!",
            "2 bouquet of flowers!",
            "3 bouquet of flowers!",
            "4 bouquet of flowers!",
            "5 bouquet of flowers!",
            "Sum of Processes : 5",
        ]);
        assert_eq!(out.count("Hello world"), 2, "call and check_call let the child print; {}", out.context());
    };
    logging_file => |out| {
        out.assert_in_order(&["200 processes started", "log lines: 200 (INFO hello: 100, ERROR division by zero: 100)"]);
    };
}

/// `task_master` and `task_worker` (seed 003 "分布式进程"): the master serves
/// its queues on a free TCP port; once it waits for results, the worker
/// connects, and every task the master put comes back squared.
#[test]
fn task_master_and_task_worker() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut master = start("task_master", &[&addr]);
    master.wait_for_line(|l| l == "Try get results...");
    let worker = start("task_worker", &[&addr]).finish();
    let master = master.finish();
    for out in [&master, &worker] {
        assert!(out.status.success(), "{} failed: {}; {}", out.name, out.status, out.context());
    }
    let tasks: Vec<u64> = master.after_prefix("Put task ").iter().map(|s| number(s.trim_end_matches("..."))).collect();
    assert_eq!(tasks.len(), 10, "{}", master.context());
    let mut results = master.after_prefix("Result: ");
    let mut want: Vec<String> = tasks.iter().map(|n| format!("{n} * {n} = {}", n * n)).collect();
    results.sort();
    want.sort();
    assert_eq!(results, want, "{}", master.context());
    assert_eq!(*master.lines().last().unwrap(), "master exit.");
    worker.assert_in_order(&[&format!("Connect to server {addr}..."), "worker exit"]);
    assert_eq!(worker.count_prefix("run task "), 10, "{}", worker.context());
}

/// Checks a master's and a worker's output of the distributed tutorial: ten tasks,
/// each comes back squared.
fn check_task_run(master: &Output, worker: &Output) {
    for out in [master, worker] {
        assert!(out.status.success(), "{} failed: {}; {}", out.name, out.status, out.context());
    }
    let tasks: Vec<u64> = master.after_prefix("Put task ").iter().map(|s| number(s.trim_end_matches("..."))).collect();
    assert_eq!(tasks.len(), 10, "{}", master.context());
    let mut results = master.after_prefix("Result: ");
    let mut want: Vec<String> = tasks.iter().map(|n| format!("{n} * {n} = {}", n * n)).collect();
    results.sort();
    want.sort();
    assert_eq!(results, want, "{}", master.context());
    assert_eq!(*master.lines().last().unwrap(), "master exit.");
    assert_eq!(worker.count_prefix("run task "), 10, "{}", worker.context());
    assert_eq!(*worker.lines().last().unwrap(), "worker exit");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The tutorial's `task_master.py` (CPython's `BaseManager` server) and the Rust
/// `task_worker`: the worker speaks CPython's manager protocol, gets the ints the
/// master put as `u64` and puts `String`s, which the master gets as `str`. A worker
/// with the wrong authkey fails with `Authentication` first, and the master keeps
/// serving.
#[test]
fn python_task_master_and_rust_task_worker() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // Built before the master starts, whose result.get waits only 10 s.
    example("task_worker");
    let mut master = start_python("task_master.py", &[&port.to_string()]);
    master.wait_for_line(|l| l == "Try get results...");
    let wrong = start("task_worker", &[&addr, "wrong"]).finish();
    assert!(!wrong.status.success(), "{}", wrong.context());
    assert!(wrong.stderr.contains("Authentication"), "{}", wrong.context());
    let worker = start("task_worker", &[&addr]).finish();
    check_task_run(&master.finish(), &worker);
}

/// The Rust `task_master` and the tutorial's `task_worker.py` (CPython's `BaseManager`
/// client): the Rust server speaks CPython's manager protocol to it. A Python worker
/// with the wrong authkey gets CPython's `AuthenticationError`, and the master keeps
/// serving.
#[test]
fn rust_task_master_and_python_task_worker() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut master = start("task_master", &[&addr]);
    master.wait_for_line(|l| l == "Try get results...");
    let wrong = start_python("task_worker.py", &[&addr, "wrong"]).finish();
    assert!(!wrong.status.success(), "{}", wrong.context());
    assert!(wrong.stderr.contains("AuthenticationError"), "{}", wrong.context());
    let worker = start_python("task_worker.py", &[&addr]).finish();
    check_task_run(&master.finish(), &worker);
}

/// Every example has a test here, so none is forgotten.
#[test]
fn every_example_is_checked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("read mproc/examples")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let checked: BTreeSet<String> = CHECKED.iter().chain(CHECKED_ELSEWHERE).map(|s| s.to_string()).collect();
    let unchecked: Vec<_> = on_disk.difference(&checked).collect();
    let missing: Vec<_> = checked.difference(&on_disk).collect();
    assert!(unchecked.is_empty(), "examples without a check in tests/examples.rs: {unchecked:?}");
    assert!(missing.is_empty(), "checks for examples that do not exist: {missing:?}");
}
