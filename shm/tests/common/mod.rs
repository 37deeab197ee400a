//! Helpers shared by the ring tests: forking children safely inside the
//! threaded test harness, and self-checking messages.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Forks a child that runs `f` and `_exit`s with its result (101 if it panics).
/// The child arms `alarm(watchdog_secs)` first, so it can never outlive a hung test.
/// In the child only simple work is safe: the harness's other threads are gone.
pub fn fork_child(watchdog_secs: u32, f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `f` (plain memory work on inherited mappings)
    // and then `_exit`s; it never returns into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm and _exit are async-signal-safe.
        unsafe { libc::alarm(watchdog_secs) };
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: as above; no destructors or atexit handlers run in the child.
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

/// Polls `pid` with `WNOHANG`: `Some(exit)` once it has ended (and is reaped).
pub fn try_wait(pid: libc::pid_t) -> Option<Exit> {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    assert!(r >= 0, "waitpid({pid}) failed: {}", std::io::Error::last_os_error());
    if r == 0 {
        return None;
    }
    if libc::WIFEXITED(status) {
        Some(Exit::Code(libc::WEXITSTATUS(status)))
    } else {
        Some(Exit::Signal(libc::WTERMSIG(status)))
    }
}

/// Waits for `pid` up to `timeout`; on expiry kills and reaps it, then panics.
pub fn wait_child(pid: libc::pid_t, timeout: Duration) -> Exit {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(e) = try_wait(pid) {
            return e;
        }
        if Instant::now() > deadline {
            kill_and_reap(pid);
            panic!("child {pid} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILLs and reaps `pid`.
pub fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: signalling and reaping our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

fn mix(x: u64) -> u64 {
    let x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// Smallest message `make_msg` makes.
pub const MSG_MIN: usize = 16;

/// The length of message `seq` of `producer`, in `MSG_MIN..=max`.
pub fn msg_len(producer: u32, seq: u64, max: usize) -> usize {
    MSG_MIN + (mix(seq ^ ((producer as u64) << 40)) as usize) % (max - MSG_MIN + 1)
}

/// A self-checking message: `[producer u32][seq u64][filler][fnv1a u32]`.
pub fn make_msg(producer: u32, seq: u64, len: usize) -> Vec<u8> {
    assert!(len >= MSG_MIN);
    let mut m = Vec::with_capacity(len);
    fill_msg(producer, seq, len, &mut m);
    m
}

/// As `make_msg`, into `m`.
pub fn fill_msg(producer: u32, seq: u64, len: usize, m: &mut Vec<u8>) {
    m.clear();
    m.extend_from_slice(&producer.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    let seed = mix(seq.wrapping_add(producer as u64));
    m.extend((0..len - MSG_MIN).map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8));
    let sum = fnv1a(m);
    m.extend_from_slice(&sum.to_le_bytes());
}

/// Checks a message: `Some((producer, seq))` if intact.
pub fn check_msg(m: &[u8]) -> Option<(u32, u64)> {
    if m.len() < MSG_MIN {
        return None;
    }
    let (body, sum) = m.split_at(m.len() - 4);
    if fnv1a(body) != u32::from_le_bytes(sum.try_into().unwrap()) {
        return None;
    }
    let producer = u32::from_le_bytes(body[..4].try_into().unwrap());
    let seq = u64::from_le_bytes(body[4..12].try_into().unwrap());
    (make_msg(producer, seq, m.len()) == m).then_some((producer, seq))
}
