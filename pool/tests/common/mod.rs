//! Helpers shared by the pool's integration tests.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::mpsc;
use std::time::Duration;

/// The timeout of every blocking call in the tests.
pub const T: Duration = Duration::from_secs(30);

/// Aborts the process if the test is still running when it is dropped late.
pub struct Watchdog(Option<mpsc::Sender<()>>);

/// Aborts the test binary if the test is still running after `secs`.
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

/// Whether no process `pid` exists any more (a zombie still exists).
pub fn is_gone(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(pid as i32, 0) == -1 }
}
