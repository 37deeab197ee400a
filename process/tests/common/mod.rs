//! Helpers shared by the process tests: watchdogs, deadlines, clocks.
#![allow(dead_code)]

use std::time::Duration;

use mproc_process::{Process, ProcessError};

/// The longest any test waits for a child before killing it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Called first thing in a child: SIGALRM ends it if the test hangs.
pub fn watchdog() {
    // SAFETY: alarm only arms a timer.
    unsafe { libc::alarm(30) };
}

/// Joins with the deadline; kills (and reaps) the child if it runs past it.
pub fn finish(p: &mut Process) -> i32 {
    if let Err(e) = p.join_timeout(DEADLINE) {
        assert!(matches!(e, ProcessError::Timeout { .. }), "join_timeout: {e}");
        p.kill().expect("kill");
        p.join_timeout(DEADLINE).expect("join after kill");
        panic!("process {} did not end within {DEADLINE:?}", p.name());
    }
    p.exitcode().expect("an ended process has an exit code")
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the machine.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// True if `pid` still has a /proc entry (running or a zombie).
pub fn proc_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The state letter of `pid` from /proc/<pid>/stat (`Z` for a zombie).
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// The pids of this process's children that are zombies.
pub fn my_zombies() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let mut f = stat[close + 2..].split(' ');
        let state = f.next();
        let ppid = f.next().and_then(|s| s.parse::<u32>().ok());
        if state == Some("Z") && ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}

/// Polls `cond` every millisecond until it holds or `DEADLINE` passes.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}
