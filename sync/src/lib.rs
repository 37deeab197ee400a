//! Futex-based cross-process synchronisation: Python's `multiprocessing`
//! `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Condition`, `Event`,
//! `Barrier` and `Value(..., lock=True)`.
//!
//! Every primitive is a few atomic words in shared memory (by default carved
//! from `mproc-shm`'s arena, so ten thousand locks need a handful of fds) that
//! processes wait on with `futex(2)` on shared (non-private) words. Handles are
//! cheap clones; move them into a forked child, or send them to a spawned one
//! through [`mproc_shm::Share`].
//!
//! Every blocking call comes in three forms: `x()` blocks as long as it takes,
//! `try_x()` never blocks ([`SyncError::WouldBlock`] when it would), and
//! `x_timeout(d)` gives up after `d` with [`SyncError::Timeout`] — `lock`,
//! `permit`, `acquire`, `wait`, `wait_for`. The primary API is RAII (`lock()` →
//! guard); the Python names (`acquire()`, `release()`, `notify_all`,
//! `get_value`) exist too, with `#[doc(alias)]`es.
//!
//! ```
//! use std::time::Duration;
//! use mproc_sync::{Lock, SyncError};
//!
//! let lock = Lock::new()?;
//! let guard = lock.lock()?; // blocks until held
//! assert!(matches!(lock.try_lock(), Err(SyncError::WouldBlock { .. })));
//! assert!(matches!(lock.lock_timeout(Duration::from_millis(1)), Err(SyncError::Timeout { .. })));
//! drop(guard);
//! # Ok::<(), SyncError>(())
//! ```
//!
//! A process killed while holding a [`Lock`] or [`RLock`] does not hang the
//! others: the next acquirer takes the lock over and is told so (see `lock.rs`).
//!
//! With the cargo feature `tokio` (off by default), `Lock::lock_async`,
//! `Event::wait_async` and `Semaphore::acquire_async` await instead of
//! blocking, through one futex waiter thread per process; the design, its
//! wake-up cost and the cancel safety are in the `asyncio` module (runtime
//! agnostic: no tokio type in it).
//!
//! Linux only.

#[cfg(not(target_os = "linux"))]
compile_error!("mproc-sync supports Linux only: it relies on futex(2) and pidfd_open(2)");

#[cfg(feature = "tokio")]
pub mod asyncio;
mod barrier;
mod condition;
mod error;
mod event;
pub mod futex;
mod ident;
pub mod lock;
pub mod primitive;
mod rlock;
mod semaphore;
mod shared;
mod synchronized;
mod synchronized_array;

pub use barrier::{Barrier, RawBarrier, PARTY_SLOTS};
pub use condition::{CondLock, Condition, RawCondition, Wakeup, WAITER_SLOTS};
pub use error::{Result, SyncError};
pub use event::{Event, RawEvent};
pub use lock::{Acquired, Lock, LockGuard, RawLock};
pub use rlock::{RLock, RLockGuard, RawRLock};
pub use semaphore::{BoundedSemaphore, Permit, RawSemaphore, Semaphore};
pub use shared::PlaceToken;
pub use synchronized::{SyncCell, SyncGuard, Synchronized};
pub use synchronized_array::{ArrayGuard, SynchronizedArray, SynchronizedArrayToken};

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
