//! Helpers for the cross-process tests: shared atomic counters and a look at
//! whether a child sleeps in the futex (forking and reaping children is
//! `mproc-testkit`'s).

#![allow(dead_code)]

use std::sync::atomic::AtomicU64;

use mproc_shm::Value;

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

/// Whether process `pid` (single-threaded) is inside a `futex(2)` call now:
/// `/proc/PID/syscall` names the system call a blocked task is in, which tells
/// "asleep in the futex" from "about to call it" without sleeping in the test.
pub fn in_futex(pid: libc::pid_t) -> bool {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/syscall: {e}"));
    text.split_whitespace().next().and_then(|n| n.parse::<libc::c_long>().ok()) == Some(libc::SYS_futex)
}
