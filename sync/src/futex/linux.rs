//! The Linux futex backend: `rustix::thread::futex` on shared words.

use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex::{self, Flags};

use super::{Futex, WaitOutcome};
use crate::primitive::AtomicU32;

/// The kernel's futex.
pub(crate) struct Linux;

impl Futex for Linux {
    fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
        // FUTEX_WAIT takes a relative timeout (CLOCK_MONOTONIC).
        let ts = timeout.map(mproc_shm::sys::timespec);
        // Flags::empty(): a shared futex, never FUTEX_PRIVATE_FLAG (see the module doc).
        match futex::wait(word, Flags::empty(), expected, ts.as_ref()) {
            Ok(()) => WaitOutcome::Woken,
            Err(Errno::TIMEDOUT) => WaitOutcome::TimedOut,
            // EAGAIN: the word was not `expected`; EINTR: a signal arrived.
            Err(Errno::AGAIN) | Err(Errno::INTR) => WaitOutcome::Woken,
            Err(e) => {
                // EFAULT / EINVAL would be a bug in the caller (a word outside any
                // mapping, a misaligned word); ENOSYS a kernel without futex.
                debug_assert!(false, "futex wait failed: {e}");
                WaitOutcome::Woken
            }
        }
    }

    fn wake(word: &AtomicU32, n: u32) -> usize {
        match futex::wake(word, Flags::empty(), n.min(i32::MAX as u32)) {
            Ok(woken) => woken,
            Err(e) => {
                debug_assert!(false, "futex wake failed: {e}");
                0
            }
        }
    }
}
