//! [`Lock::lock_async`] (feature `tokio`): the slow path of `lock.rs`, with
//! the futex wait awaited through the per-process waiter thread.

use mproc_shm::sys::Deadline;

use super::{Acquired, Lock, LockGuard, RawLock, OWNER_POLL, PARKED_BIT};
use crate::asyncio::FutexWait;
use crate::error::Result;
use crate::ident;
use crate::primitive::WaitOutcome;

impl Lock {
    /// Takes the lock, awaiting it as long as it takes: the async form of
    /// [`lock`](Lock::lock), with the same guard. If the holder died, the
    /// guard says so ([`LockGuard::owner_died`]); that is found at the next
    /// owner poll, as for the blocking call.
    ///
    /// Uncontended it costs what `lock` costs (one compare-exchange). A
    /// contended wait is woken by the per-process futex waiter thread (see
    /// the [`asyncio`](crate::asyncio) module).
    ///
    /// # Cancel safety
    /// Cancel safe: the lock is taken only in the poll that returns the guard,
    /// so dropping the future never leaves the lock held; a future dropped
    /// after it was woken passes the wake-up on to the next waiter.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let lock = mproc_sync::Lock::new()?;
    /// let guard = lock.lock_async().await?;
    /// assert!(lock.try_lock().is_err());
    /// drop(guard);
    /// # Ok::<(), mproc_sync::SyncError>(())
    /// # }).unwrap();
    /// ```
    pub async fn lock_async(&self) -> Result<LockGuard<'_>> {
        let raw = self.raw();
        let how = if raw.try_lock() { Acquired::Clean } else { raw.lock_slow_async(self).await };
        Ok(LockGuard { lock: self, how })
    }
}

impl RawLock {
    /// `lock_slow` with no deadline, awaited (see there for the protocol).
    async fn lock_slow_async(&self, lock: &Lock) -> Acquired {
        let me = ident::pid();
        let mut take = me;
        loop {
            let parked = match self.take_or_park(take) {
                Ok(()) => return Acquired::Clean,
                Err(parked) => parked,
            };
            take = me | PARKED_BIT;
            // SAFETY: the lock's place keeps the segment holding the word mapped.
            let wait = unsafe { FutexWait::new(&self.state, parked, lock.place.keep_alive()) };
            if wait.until(Deadline::after(OWNER_POLL)).pass_on_drop().await == WaitOutcome::TimedOut {
                if let Some(how) = self.take_over(parked, take) {
                    return how;
                }
            }
        }
    }
}
