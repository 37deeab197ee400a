//! `std::sync` locks taken without caring about poisoning.
//!
//! mproc's process-local mutexes guard tables whose every update is a single
//! step (insert, remove, replace), so a thread that panicked while holding one
//! left the data as it was, or as it would have been: poisoning carries no
//! information here, and propagating it would turn one panic into many.

use std::sync::{LockResult, Mutex, MutexGuard};

/// Takes the guard out of a [`LockResult`] whether or not the lock was poisoned.
/// Works for `Mutex::lock`, `Condvar::wait`, `Condvar::wait_timeout`,
/// `Mutex::get_mut` and the `RwLock` calls alike.
///
/// ```
/// use std::sync::{Condvar, Mutex};
/// use std::time::Duration;
/// use mproc_shm::sys::IgnorePoison;
///
/// let (m, cv) = (Mutex::new(0), Condvar::new());
/// let g = m.lock().ignore_poison();
/// let (g, _timed_out) = cv.wait_timeout(g, Duration::ZERO).ignore_poison();
/// assert_eq!(*g, 0);
/// ```
pub trait IgnorePoison<G> {
    /// The guard (or value) inside, poisoned or not.
    fn ignore_poison(self) -> G;
}

impl<G> IgnorePoison<G> for LockResult<G> {
    #[inline]
    fn ignore_poison(self) -> G {
        self.unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Locks `m`, ignoring poisoning (see the module docs for why that is right here).
///
/// ```
/// let m = std::sync::Mutex::new(1);
/// *mproc_shm::sys::lock(&m) += 1;
/// assert_eq!(*mproc_shm::sys::lock(&m), 2);
/// ```
#[inline]
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().ignore_poison()
}
