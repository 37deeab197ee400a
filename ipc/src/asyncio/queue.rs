//! `get_async`, `put_async`, `join_async` on the queues (feature `tokio`;
//! runtime-agnostic): the queue's own futex words, armed as a blocking wait
//! arms them, awaited through `mproc_sync`'s per-process futex waiter thread
//! ([`FutexWait`]), the one the sync primitives' async waits use too. Its
//! look at every word each [`LOOK_EVERY`](mproc_sync::asyncio::LOOK_EVERY)
//! (25 ms, as [`WAIT_CAP`](crate::queue::WAIT_CAP)) bounds what a peer killed
//! between its change of a word and its wake costs a task.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{JoinableQueue, PutError, Queue, QueueError, SimpleQueue, Typed, Until};
use mproc_sync::asyncio::FutexWait;

const NOT_EMPTY: usize = 0;
const NOT_FULL: usize = 1;
const UNFINISHED: usize = 2;

impl<T: Serialize + DeserializeOwned> Typed<T> {
    async fn get_async(&self) -> Result<T, QueueError> {
        loop {
            match self.get(Until::Now) {
                Err(QueueError::Empty) => {}
                other => return other,
            }
            // Announce the wait, then look again (see `queue/raw.rs`).
            let (word, seen, keep) = self.raw.arm(NOT_EMPTY);
            match self.get(Until::Now) {
                Err(QueueError::Empty) => {}
                other => return other,
            }
            // SAFETY: `keep` is the queue's mapping, which holds `word`.
            unsafe { FutexWait::new(word, seen, keep) }.await;
        }
    }

    async fn put_async(&self, item: T) -> Result<(), PutError<T>> {
        loop {
            match self.put_ref(&item, Until::Now) {
                Err(e) if e.is_full() => {}
                Ok(()) => return Ok(()),
                Err(e) => return Err(PutError::new(e, item)),
            }
            let (word, seen, keep) = self.raw.arm(NOT_FULL);
            match self.put_ref(&item, Until::Now) {
                Err(e) if e.is_full() => {}
                Ok(()) => return Ok(()),
                Err(e) => return Err(PutError::new(e, item)),
            }
            // SAFETY: `keep` is the queue's mapping, which holds `word`.
            unsafe { FutexWait::new(word, seen, keep) }.await;
        }
    }
}

macro_rules! async_methods {
    ($queue:ident) => {
        impl<T: Serialize + DeserializeOwned> $queue<T> {
            /// Awaits an item: the async form of `get`, with the same errors.
            ///
            /// # Cancel safety
            /// Cancel safe: an item is taken out of the queue only in the poll
            /// that returns it, so dropping the future loses none.
            pub async fn get_async(&self) -> Result<T, QueueError> {
                self.q.get_async().await
            }

            /// Puts `item`, awaiting room: the async form of `put`. An error
            /// gives the item back in the [`PutError`].
            ///
            /// # Cancel safety
            /// The item is put in one poll or not at all. Dropped before it
            /// completes, the future has not put it, and the item is dropped
            /// with the future; to keep it, await room with
            /// [`put_ready_async`](Self::put_ready_async), then `try_put`, whose
            /// error gives the item back.
            pub async fn put_async(&self, item: T) -> Result<(), PutError<T>> {
                self.q.put_async(item).await
            }

            /// Resolves once the queue has room for an item (or is closed):
            /// follow with `try_put`, which may still find it full if another
            /// producer came first.
            ///
            /// # Cancel safety
            /// Cancel safe: it changes nothing.
            pub async fn put_ready_async(&self) {
                loop {
                    if self.q.raw.len() < self.q.raw.maxsize() || self.is_closed() {
                        return;
                    }
                    let (word, seen, keep) = self.q.raw.arm(NOT_FULL);
                    if self.q.raw.len() < self.q.raw.maxsize() {
                        return;
                    }
                    // SAFETY: `keep` is the queue's mapping, which holds `word`.
                    unsafe { FutexWait::new(word, seen, keep) }.await;
                }
            }
        }
    };
}

async_methods!(Queue);
async_methods!(JoinableQueue);
async_methods!(SimpleQueue);

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// Awaits the moment no task is unfinished: the async form of `join`.
    ///
    /// # Cancel safety
    /// Cancel safe: it changes nothing.
    pub async fn join_async(&self) {
        loop {
            if self.q.raw.unfinished() == 0 {
                return;
            }
            let (word, seen, keep) = self.q.raw.arm(UNFINISHED);
            if seen >> 1 == 0 {
                return;
            }
            // SAFETY: `keep` is the queue's mapping, which holds `word`.
            unsafe { FutexWait::new(word, seen, keep) }.await;
        }
    }
}
