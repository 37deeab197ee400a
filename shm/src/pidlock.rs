//! `PidLock`: a process-local lock that a forked child can always take.
//!
//! A `std::sync::Mutex` held by one thread when another thread forks stays
//! locked forever in the child, where the holding thread does not exist. This
//! lock's word holds the pid of the process whose thread holds it; a child that
//! finds another pid there takes the lock over (no thread of its own holds it)
//! and is told so, since the value may have been left half-updated.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) struct PidLock<T> {
    /// The pid of the process one of whose threads holds the lock; 0: free.
    holder: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a `PidGuard`, which exists only while
// `holder` is ours (taken with Acquire, released with Release).
unsafe impl<T: Send> Sync for PidLock<T> {}

/// Holds a [`PidLock`]; dereferences to its value.
pub(crate) struct PidGuard<'a, T> {
    lock: &'a PidLock<T>,
    /// Not Send: released by the thread that took it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<T> PidLock<T> {
    pub(crate) const fn new(value: T) -> PidLock<T> {
        PidLock { holder: AtomicU32::new(0), value: UnsafeCell::new(value) }
    }

    /// Takes the lock as process `me`. The flag is true when the lock was taken
    /// over from another process (we are a child forked while a parent thread
    /// held it): the value may be half-updated.
    pub(crate) fn lock(&self, me: u32) -> (PidGuard<'_, T>, bool) {
        let guard = || PidGuard { lock: self, _not_send: std::marker::PhantomData };
        let mut spins = 0u32;
        loop {
            match self.holder.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return (guard(), false),
                Err(holder) if holder != 0 && holder != me => {
                    if self.holder.compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                        return (guard(), true);
                    }
                }
                Err(_) => {
                    // Another thread of ours holds it, briefly.
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }
}

impl<T> std::ops::Deref for PidGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for PidGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and is its only guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for PidGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.holder.store(0, Ordering::Release);
    }
}
