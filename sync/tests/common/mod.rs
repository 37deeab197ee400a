//! Helpers for the cross-process tests: fork with a watchdog, reap with a
//! deadline, and shared atomic counters.

#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use mproc_shm::Value;

/// Forks a child that runs `f` under an `alarm(secs)` watchdog and `_exit`s with
/// its return value (101 if it panicked). The child never returns into the
/// test harness.
pub fn fork(secs: u32, f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: fork in a threaded test harness: the child only runs `f` (simple
    // work on shared memory and futexes: no locks the harness may hold, apart
    // from the allocator, which `f` uses sparingly) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm only arms a timer; SIGALRM's default action kills the child.
        unsafe { libc::alarm(secs) };
        let code = catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: ends the child without running the harness's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for `pid` until `deadline`; kills it (SIGKILL) on expiry. Returns the
/// exit code, or `-signal` if it was killed by a signal.
pub fn reap(pid: libc::pid_t, deadline: Instant) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid({pid}) failed: {}", std::io::Error::last_os_error());
        if r == pid {
            return if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
        }
        if Instant::now() > deadline {
            // SAFETY: our own unreaped child: the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above; blocks until the killed child is gone.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("child {pid} did not finish in time; killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reaps every child, asserting each exited with 0.
pub fn reap_all_ok(pids: &[libc::pid_t], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let codes: Vec<i32> = pids.iter().map(|&p| reap(p, deadline)).collect();
    assert!(codes.iter().all(|&c| c == 0), "child exit codes: {codes:?}");
}

/// A u64 counter in shared memory, used atomically.
#[derive(Clone)]
pub struct Counter(Value<u64>);

impl Counter {
    pub fn new() -> Counter {
        Counter(Value::new(0).unwrap())
    }

    pub fn atomic(&self) -> &AtomicU64 {
        // SAFETY: the value is 8-aligned shared memory that lives as long as
        // `self`; AtomicU64 has the layout of u64.
        unsafe { &*(self.0.as_ptr() as *const AtomicU64) }
    }

    pub fn get(&self) -> u64 {
        self.atomic().load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn add(&self, n: u64) -> u64 {
        self.atomic().fetch_add(n, std::sync::atomic::Ordering::SeqCst)
    }

    pub fn sub(&self, n: u64) -> u64 {
        self.atomic().fetch_sub(n, std::sync::atomic::Ordering::SeqCst)
    }

    /// Raises the value to at least `n`.
    pub fn max(&self, n: u64) {
        self.atomic().fetch_max(n, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// Whether process `pid` (single-threaded) is inside a `futex(2)` call now:
/// `/proc/PID/syscall` names the system call a blocked task is in, which tells
/// "asleep in the futex" from "about to call it" without sleeping in the test.
pub fn in_futex(pid: libc::pid_t) -> bool {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/syscall: {e}"));
    text.split_whitespace().next().and_then(|n| n.parse::<libc::c_long>().ok()) == Some(libc::SYS_futex)
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

/// SIGKILLs our child `pid` and reaps it, asserting it died of the signal.
pub fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: our own unreaped child: the pid cannot have been reused.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert_eq!(reap(pid, Instant::now() + Duration::from_secs(10)), -libc::SIGKILL);
}
