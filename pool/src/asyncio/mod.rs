//! Awaiting a pool's results (cargo feature `tokio`): [`AsyncResult`] is
//! [`IntoFuture`], and [`Imap`](crate::Imap) / [`ImapUnordered`](crate::ImapUnordered)
//! are `futures_core::Stream`s.
//!
//! Results reach this process on the pool's collector thread, which fills an
//! in-process slot; a future registers its `Waker` beside the slot's condition
//! variable and the collector wakes it with the waiting threads. Nothing here
//! depends on a runtime: the futures run on any executor (tokio's tests are
//! only the ones this crate runs). A wake-up costs the collector one mutex
//! lock and a `Waker::wake`; with no waiter the collector's path is unchanged
//! (the waker list is looked at only when the slot's waiter count is not zero).

use mproc_shm::sys::IgnorePoison;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::result::Slot;
use crate::{AsyncResult, PoolError};

/// The future of an [`AsyncResult`]: resolves to what
/// [`AsyncResult::get`] returns.
///
/// # Cancel safety
/// Cancel safe in the sense that matters: dropping it drops the handle, as
/// dropping an `AsyncResult` does; the task still runs and its result is
/// discarded.
pub struct ResultFuture<T> {
    slot: Arc<Slot<T>>,
    /// This future's key in the slot's waker list, once registered.
    key: Option<u64>,
}

impl<T> std::fmt::Debug for ResultFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultFuture").field("registered", &self.key.is_some()).finish()
    }
}

/// Awaits the result: the async form of [`AsyncResult::get`], with the same
/// output (the value, the task's error, [`PoolError::Terminated`] …).
///
/// ```
/// use mproc_pool::Pool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// assert_eq!(pool.apply_async(square, 7)?.await?, 49);
/// assert_eq!(pool.map_async(square, 1..=4)?.await?, [1, 4, 9, 16]);
/// # Ok::<(), mproc_pool::PoolError>(())
/// # })?;
/// # Ok::<(), mproc_pool::PoolError>(())
/// ```
impl<T> IntoFuture for AsyncResult<T> {
    type Output = Result<T, PoolError>;
    type IntoFuture = ResultFuture<T>;

    fn into_future(self) -> ResultFuture<T> {
        ResultFuture { slot: self.slot.clone(), key: None }
    }
}

// The slot is reached through an `Arc`; nothing is pinned in place.
impl<T> Unpin for ResultFuture<T> {}

impl<T> Future for ResultFuture<T> {
    type Output = Result<T, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        static KEYS: AtomicU64 = AtomicU64::new(0);
        let this = &mut *self;
        let mut v = this.slot.lock();
        if !v.is_empty() {
            let r = v.take().unwrap_or(Err(PoolError::ResultTaken));
            drop(v);
            this.unregister();
            return Poll::Ready(r);
        }
        // Under the slot's lock, so `set` sees the count and the waker together.
        let mut wakers = this.slot.wakers.lock().ignore_poison();
        match this.key {
            Some(key) => match wakers.iter_mut().find(|(k, _)| *k == key) {
                Some((_, w)) => w.clone_from(cx.waker()),
                None => wakers.push((key, cx.waker().clone())),
            },
            None => {
                let key = KEYS.fetch_add(1, Ordering::Relaxed);
                wakers.push((key, cx.waker().clone()));
                this.slot.waiters_add(1);
                this.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl<T> ResultFuture<T> {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            let _v = self.slot.lock();
            self.slot.wakers.lock().ignore_poison().retain(|(k, _)| *k != key);
            self.slot.waiters_add(-1);
        }
    }
}

impl<T> Drop for ResultFuture<T> {
    fn drop(&mut self) {
        self.unregister();
    }
}
