//! The futex: wait on a shared 32-bit word until another process changes it.
//!
//! `futex(2)` with `FUTEX_WAIT` / `FUTEX_WAKE` on **shared** words: mproc never
//! sets `FUTEX_PRIVATE_FLAG`, because the waiters of a word in a `MAP_SHARED`
//! segment live in other processes, and the kernel keys a shared futex by the
//! page and offset, not by the virtual address (each process maps the segment at
//! its own address).
//!
//! This module is public so that other mproc crates (the ipc rings) can sleep on
//! their own words. The platform code sits behind the small [`Futex`] trait: the
//! Linux backend (`futex/linux.rs`) calls `rustix::thread::futex`; under
//! `cfg(loom)` the model backend (`futex/model.rs`) builds the same contract
//! from loom's `Mutex` and `Condvar` so that lock code is model-checked as is.
//!
//! The contract, as the kernel's: [`wait`] returns at once if the word is not
//! `expected` (checked atomically with going to sleep, so a [`wake`] issued
//! after the word changed is never lost), and may return spuriously; callers
//! loop on their own condition.
//!
//! # References
//! `futex(2)`; Ulrich Drepper, "Futexes Are Tricky" (2011).

use std::time::Duration;

use crate::primitive::AtomicU32;

#[cfg(not(loom))]
mod linux;
#[cfg(loom)]
mod model;

/// Why [`wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Woken by [`wake`], or the word was not `expected`, or a signal or a
    /// spurious wake-up: re-check the word.
    Woken,
    /// The timeout elapsed.
    TimedOut,
}

/// A futex implementation: the kernel's, or loom's model of it.
pub trait Futex {
    /// Sleeps while `*word == expected`, at most `timeout`.
    fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome;
    /// Wakes up to `n` sleepers on `word`; returns how many were woken (the
    /// model backend may over-report).
    fn wake(word: &AtomicU32, n: u32) -> usize;
}

#[cfg(not(loom))]
type Backend = linux::Linux;
#[cfg(loom)]
type Backend = model::Model;

/// Sleeps while `*word == expected`, for at most `timeout` (`None`: no limit).
///
/// `FUTEX_WAIT` on a shared word. Returns [`WaitOutcome::Woken`] when woken,
/// when the word already differed (`EAGAIN`) or on a signal (`EINTR`), and
/// [`WaitOutcome::TimedOut`] on `ETIMEDOUT`. Spurious returns happen: loop.
#[doc(alias = "FUTEX_WAIT")]
#[inline]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
    Backend::wait(word, expected, timeout)
}

/// Wakes up to `n` processes or threads sleeping on `word`.
///
/// `FUTEX_WAKE` on a shared word. Returns the number woken.
#[doc(alias = "FUTEX_WAKE")]
#[inline]
pub fn wake(word: &AtomicU32, n: u32) -> usize {
    Backend::wake(word, n)
}

/// Wakes every sleeper on `word`.
#[inline]
pub fn wake_all(word: &AtomicU32) -> usize {
    Backend::wake(word, i32::MAX as u32)
}
