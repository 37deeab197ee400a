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

/// Re-runs this test binary as a child that runs only the test `entry`, with `token`
/// (postcard, hex) in the environment variable `env` and the fds of `exports` kept
/// open across `exec`: the spawn path of `Share`, without the process crate.
pub fn spawn_entry<T: serde::Serialize>(
    entry: &str,
    env: &str,
    token: &T,
    exports: &mproc_shm::Exports,
) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let hex: String = postcard::to_allocvec(token).unwrap().iter().map(|b| format!("{b:02x}")).collect();
    let fds = exports.fds().to_vec();
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
