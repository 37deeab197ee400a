//! Helpers shared by the mproc crates' tests and benches (dev-only, never
//! published): fork a child safely under the threaded test harness, reap it
//! with a deadline, watch a test with a watchdog, poll for a condition, and
//! re-run the test binary as a child that runs one test.
//!
//! Every child these helpers make arms a watchdog first (`alarm`), so a hung
//! test never leaves a process behind; every wait has a deadline, after which
//! the child is killed and reaped and the test fails.

use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a waiting helper polls between two looks.
const POLL: Duration = Duration::from_millis(2);

/// Arms this process's watchdog, for a child's first line: `SIGALRM` (whose
/// default action kills) arrives after `secs` seconds, so a hung child never
/// outlives its test.
pub fn arm_watchdog(secs: u32) {
    // SAFETY: alarm only arms a timer; it touches no memory.
    unsafe { libc::alarm(secs) };
}

/// Forks a child that runs `f` under an `alarm(watchdog_secs)` watchdog and
/// `_exit`s with its return value (101 if it panicked). Returns the child's pid.
///
/// The child never returns into the test harness. Only simple work is safe in
/// it — the harness's other threads are gone, and a lock one of them held
/// stays held — so keep `f` to shared memory, sockets and futexes.
pub fn fork(watchdog_secs: u32, f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `f` (see above) and leaves with `_exit`,
    // never returning into the caller.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        arm_watchdog(watchdog_secs);
        let code = catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: ends the child without running the harness's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// The exit code, or −N for signal N (Python's `exitcode`).
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => -s,
        }
    }

    fn from_status(status: libc::c_int) -> Exit {
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else {
            Exit::Signal(libc::WTERMSIG(status))
        }
    }
}

/// Polls our child `pid` with `WNOHANG`: `Some(exit)` once it has ended (and
/// is reaped).
pub fn try_wait(pid: libc::pid_t) -> Option<Exit> {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    assert!(r >= 0, "waitpid({pid}) failed: {}", std::io::Error::last_os_error());
    (r != 0).then(|| Exit::from_status(status))
}

/// Blocks until our child `pid` ends and reaps it, with no deadline of its own:
/// for benches, whose children carry a watchdog (see [`fork`]).
pub fn wait(pid: libc::pid_t) -> Exit {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Exit::from_status(status);
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::EINTR), "waitpid({pid}) failed: {err}");
    }
}

/// Waits up to `timeout` for our child `pid` to end and reaps it; on expiry
/// kills and reaps it, then panics.
pub fn wait_child(pid: libc::pid_t, timeout: Duration) -> Exit {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        if let Some(e) = try_wait(pid) {
            return e;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill_and_reap(pid);
            panic!("child {pid} did not finish within {timeout:?}; killed");
        }
        std::thread::sleep(POLL);
    }
}

/// [`wait_child`]'s exit code: the code, or −N for signal N.
pub fn reap(pid: libc::pid_t, timeout: Duration) -> i32 {
    wait_child(pid, timeout).code()
}

/// Reaps every child, asserting each exited with 0.
pub fn reap_all_ok(pids: &[libc::pid_t], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let codes: Vec<i32> = pids.iter().map(|&p| reap(p, deadline.saturating_duration_since(Instant::now()))).collect();
    assert!(codes.iter().all(|&c| c == 0), "child exit codes: {codes:?}");
}

/// SIGKILLs our child `pid` and reaps it; how it ended (a child that had
/// already exited shows its exit code).
pub fn kill_and_reap(pid: libc::pid_t) -> Exit {
    // SAFETY: our own unreaped child: the pid cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait(pid)
}

/// Whether no process `pid` exists any more (`kill(pid, 0)` fails).
pub fn is_gone(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == -1 }
}

/// Polls `cond` until it holds or `timeout` passes; whether it held.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// The CPython the interoperability tests talk to: the interpreter
/// `MPROC_TEST_PYTHON` names (a command or a path, e.g. a 3.13 build; `cargo xtask ci`
/// runs the interop tests again under every other CPython ≥ 3.12 it finds), else
/// `python3`. Panics, naming it, when it does not run: these tests exist to talk to a
/// real CPython and prove nothing without one.
pub fn python3() -> String {
    static CHECKED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let py = std::env::var("MPROC_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
            let runs = std::process::Command::new(&py)
                .args(["-c", "import multiprocessing, pickle"])
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(runs, "the interop tests need CPython: `{py}` does not run (set MPROC_TEST_PYTHON)");
            py
        })
        .clone()
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process, so times
/// taken in a child and in the parent can be subtracted.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// This process's CPU time so far, user and system, all threads (a runtime's
/// and a futex waiter thread's share count): what the "no busy loop" tests
/// measure, in a forked child so that other tests' threads do not count.
pub fn cpu_time() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// The calling thread's CPU time so far, user and system.
pub fn thread_cpu_time() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let ru = unsafe {
        let mut ru = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(who, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Aborts the whole test binary if the test holding it runs longer than its
/// limit: a hang becomes a failure with a message, never a stuck CI job.
#[must_use = "the watchdog stops watching when dropped"]
pub struct Watchdog(Option<mpsc::Sender<()>>);

/// Starts a [`Watchdog`] of `secs` seconds; drop it at the end of the test.
pub fn watchdog(secs: u64) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
            eprintln!("watchdog: test still running after {secs} s, aborting");
            std::process::abort();
        }
    });
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// Re-runs this test binary as a child that runs only the test `entry`, with
/// `token` (postcard, hex) in the environment variable `env` and the fds `keep`
/// left open across `exec`: the spawn path of a shared handle, without the
/// process crate. The child's stdout is discarded.
pub fn spawn_entry<T: serde::Serialize>(entry: &str, env: &str, token: &T, keep: &[RawFd]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let hex: String = postcard::to_allocvec(token).unwrap().iter().map(|b| format!("{b:02x}")).collect();
    let fds = keep.to_vec();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", entry, "--test-threads=1", "--quiet"]).env(env, hex).stdout(std::process::Stdio::null());
    // SAFETY: only fcntl, which is async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

/// In a child made by [`spawn_entry`]: the token it was given; `None` when this
/// process is the ordinary test run (the entry test then does nothing).
pub fn token_from_env<T: serde::de::DeserializeOwned>(env: &str) -> Option<T> {
    let hex = std::env::var(env).ok()?;
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    Some(postcard::from_bytes(&bytes).unwrap())
}

/// Helpers over `mproc_process::Process` (feature `process`).
#[cfg(feature = "process")]
mod process {
    use std::time::Duration;

    use mproc_process::Process;

    /// Joins `p` within `timeout` and returns its exit code; on expiry kills
    /// and reaps it, then panics.
    pub fn finish(p: &mut Process, timeout: Duration) -> i32 {
        if let Err(e) = p.join_timeout(timeout) {
            assert!(matches!(e, mproc_process::ProcessError::Timeout { .. }), "join_timeout: {e}");
            let _ = p.kill();
            let _ = p.join_timeout(timeout);
            panic!("process {} ({:?}) did not end within {timeout:?}; killed", p.name(), p.pid());
        }
        p.exitcode().expect("an ended process has an exit code")
    }

    /// Starts a forked [`Process`] that runs `body` under an `alarm(secs)`
    /// watchdog and `_exit`s with its return value.
    pub fn fork_process(secs: u32, body: impl FnOnce() -> i32 + Send + 'static) -> Process {
        let mut p = Process::new(move || {
            super::arm_watchdog(secs);
            let code = body();
            // SAFETY: _exit ends the child at once, without the clean-up a
            // fork target must avoid.
            unsafe { libc::_exit(code) }
        });
        p.start().expect("fork");
        p
    }
}

#[cfg(feature = "process")]
pub use process::{finish, fork_process};

/// A value whose `Deserialize` refuses what its `Serialize` wrote (a `u64`), as
/// a type changed between the two ends would: for tests of decode errors.
#[derive(Debug)]
pub struct Undecodable(pub u64);

impl serde::Serialize for Undecodable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Undecodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("this type refuses to decode"))
    }
}

/// `x` as an [`Undecodable`]: a pool task whose results never decode.
pub fn undecodable(x: u64) -> Undecodable {
    Undecodable(x)
}
