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
//! The primary API is RAII (`lock()` → guard, `try_lock`, `lock_timeout`); the
//! Python names (`acquire(block, timeout) -> bool`, `release()`, `notify_all`,
//! `get_value`) exist too, with `#[doc(alias)]`es.
//!
//! A process killed while holding a [`Lock`] or [`RLock`] does not hang the
//! others: the next acquirer takes the lock over and is told so (see `lock.rs`).
//!
//! Linux only.

#[cfg(not(target_os = "linux"))]
compile_error!("mproc-sync supports Linux only: it relies on futex(2) and pidfd_open(2)");

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
