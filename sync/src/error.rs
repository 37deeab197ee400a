//! The error type of `mproc-sync`.

use std::time::Duration;

use mproc_shm::ShmError;

/// A `Result` whose error is [`SyncError`].
pub type Result<T, E = SyncError> = std::result::Result<T, E>;

/// What can go wrong with a synchronisation primitive. Each variant names the
/// primitive and the value involved, like CPython's messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// `release()` of a lock (or semaphore-backed lock) that is not held.
    #[error("release of an unlocked {what}")]
    NotHeld {
        /// The primitive, e.g. `"Lock"`.
        what: &'static str,
    },
    /// An `RLock` released, or a `Condition` waited on or notified, by a thread
    /// that does not own the lock.
    #[error("{what}: the lock is not owned by this thread (pid {pid}, tid {tid}); owner pid is {owner_pid}")]
    NotOwner {
        /// The primitive and operation, e.g. `"RLock.release"`.
        what: &'static str,
        /// The caller's pid.
        pid: u32,
        /// The caller's tid.
        tid: u32,
        /// The holder's pid (0: not held at all).
        owner_pid: u32,
    },
    /// A `BoundedSemaphore` released more times than it was acquired.
    #[error("BoundedSemaphore released too many times: value {value} is already at its bound {bound}")]
    OverRelease {
        /// The value before the release.
        value: u32,
        /// The initial value, which the value may not exceed.
        bound: u32,
    },
    /// A counter would overflow (a semaphore past its maximum, an `RLock`
    /// recursion deeper than `u32::MAX`).
    #[error("{what} would overflow its maximum {max}")]
    Overflow {
        /// The counter.
        what: &'static str,
        /// The maximum.
        max: u64,
    },
    /// `try_lock` (or another non-blocking call) found the primitive busy.
    #[error("{what} is held elsewhere")]
    WouldBlock {
        /// The primitive.
        what: &'static str,
    },
    /// A timed call ran out of time.
    #[error("{what}: timed out after {after:?}")]
    Timeout {
        /// The primitive.
        what: &'static str,
        /// The timeout given.
        after: Duration,
    },
    /// The barrier was broken (by a timeout, `abort`, `reset` or a failed
    /// action) while this process was waiting on it, or before it arrived.
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// The barrier's action panicked; the barrier is now broken.
    #[error("the barrier's action panicked: {message}")]
    BarrierAction {
        /// The panic message.
        message: String,
    },
    /// An argument out of range, e.g. `Barrier::new(0)`.
    #[error("{what}: invalid value {value}: {expected}")]
    InvalidArgument {
        /// The argument, e.g. `"Barrier parties"`.
        what: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A shared-memory error: placement out of bounds, misaligned, a layout
    /// mismatch on attach, a bad spawn token.
    #[error(transparent)]
    Shm(#[from] ShmError),
}

impl From<SyncError> for ShmError {
    fn from(e: SyncError) -> ShmError {
        match e {
            SyncError::Shm(e) => e,
            other => ShmError::BadToken { what: "sync primitive", detail: other.to_string() },
        }
    }
}
