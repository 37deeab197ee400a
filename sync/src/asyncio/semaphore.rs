//! [`Semaphore::acquire_async`] and [`Semaphore::permit_async`] (and the same
//! on [`BoundedSemaphore`]; feature `tokio`): the slow path of
//! `semaphore.rs`, the futex wait awaited through the per-process waiter
//! thread.

use super::{BoundedSemaphore, Permit, RawSemaphore, Semaphore, WAITERS_BIT};
use crate::asyncio::{FutexWait, KeepAlive};
use crate::error::Result;

impl RawSemaphore {
    /// `acquire(None)`, awaited; `keep` keeps the word mapped.
    async fn acquire_async(&self, keep: KeepAlive) {
        if self.try_acquire() {
            return;
        }
        while !self.take_or_announce() {
            // SAFETY: `keep` (the semaphore's place) keeps the word mapped.
            unsafe { FutexWait::new(&self.state, WAITERS_BIT, keep.clone()) }.pass_on_drop().await;
        }
    }
}

macro_rules! async_semaphore {
    ($ty:ident) => {
        impl $ty {
            /// Takes a unit, awaiting one as long as it takes: the async form of
            /// [`permit`](Self::permit); the permit returns the unit on drop.
            ///
            /// A unit that is free costs one compare-exchange, as `permit`. A
            /// wait is woken by the per-process futex waiter thread (see the
            /// [`asyncio`](crate::asyncio) module).
            ///
            /// # Cancel safety
            /// Cancel safe: a unit is taken only in the poll that returns the
            /// permit, so dropping the future never loses one; a future dropped
            /// after it was woken passes the wake-up on to the next waiter.
            pub async fn permit_async(&self) -> Result<Permit<'_>> {
                self.raw().acquire_async(self.place.keep_alive()).await;
                Ok(Permit { sem: self.raw() })
            }

            /// Python's `acquire()`, awaited: takes a unit as long as it takes.
            /// The caller must [`release`](Self::release) it;
            /// [`permit_async`](Self::permit_async) does that for you.
            ///
            /// # Cancel safety
            /// Cancel safe, as [`permit_async`](Self::permit_async): a dropped
            /// future has taken no unit.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
            #[doc = concat!("let sem = mproc_sync::", stringify!($ty), "::new(1)?;")]
            /// sem.acquire_async().await?;
            /// assert_eq!(sem.value(), 0);
            /// sem.release()?;
            /// # Ok::<(), mproc_sync::SyncError>(())
            /// # }).unwrap();
            /// ```
            pub async fn acquire_async(&self) -> Result<()> {
                self.raw().acquire_async(self.place.keep_alive()).await;
                Ok(())
            }
        }
    };
}

async_semaphore!(Semaphore);
async_semaphore!(BoundedSemaphore);
