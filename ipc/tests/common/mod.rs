//! Helpers shared by the integration tests: forking a child safely under the
//! threaded test harness, and reaping it with a deadline.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Forks; the child runs `f` under a 20 s `alarm` watchdog and `_exit`s with
/// its return value (101 if it panicked). Returns the child's pid.
pub fn fork_child(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `f` (simple socket work in these tests) and
    // leaves with `_exit`, never returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm and _exit are async-signal-safe.
        unsafe { libc::alarm(20) };
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: see above.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits up to `timeout` for `pid` to exit and returns its exit code
/// (128 + N for signal N); kills and reaps it on expiry and panics.
pub fn reap(pid: libc::pid_t, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid failed: {}", std::io::Error::last_os_error());
        if r == pid {
            return if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
        }
        if Instant::now() >= deadline {
            // SAFETY: kill and a blocking waitpid on our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("child {pid} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
