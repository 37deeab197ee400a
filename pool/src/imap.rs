//! `imap` and `imap_unordered`: lazy iterators over a pool's results.
//!
//! The iterator pulls from its source on the caller's thread, a chunk at a time,
//! keeping at most `4 × processes` chunks submitted and not yet consumed, so an
//! endless source runs in bounded memory and the source need not be `Send`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mproc_shm::sys::Deadline;
use serde::Serialize;

use crate::job::IterJob;
use crate::scheduler::Unit;
use crate::task::Code;
use crate::{Pool, PoolError};

#[cfg(feature = "tokio")]
#[path = "asyncio/imap.rs"]
mod asyncio;

struct Feed<'p, I, R> {
    pool: &'p Pool,
    /// `None` once exhausted (or after a failed submission).
    source: Option<I>,
    code: Code,
    chunksize: usize,
    job: Arc<IterJob<R>>,
    /// Chunks submitted so far (the next chunk's index).
    submitted: u32,
    /// Chunks taken from the job so far (ordered: the next chunk to yield).
    taken: u32,
    max_outstanding: u32,
    current: std::vec::IntoIter<R>,
    ordered: bool,
}

impl<'p, I, A, R> Feed<'p, I, R>
where
    I: Iterator<Item = A>,
    A: Serialize,
    R: serde::de::DeserializeOwned + Send + 'static,
{
    fn new(pool: &'p Pool, code: Code, source: I, chunksize: usize, ordered: bool) -> Result<Self, PoolError> {
        if chunksize == 0 {
            return Err(PoolError::ZeroChunksize(0));
        }
        {
            let mut st = pool.shared().lock();
            if st.phase != crate::scheduler::Phase::Running {
                return Err(PoolError::NotRunning(st.phase.name()));
            }
            st.feeders += 1;
        }
        Ok(Feed {
            pool,
            source: Some(source),
            code,
            chunksize,
            job: Arc::new(IterJob::new()),
            submitted: 0,
            taken: 0,
            max_outstanding: (4 * pool.processes()).min(u32::MAX as usize) as u32,
            current: Vec::new().into_iter(),
            ordered,
        })
    }

    fn exhausted(&mut self) {
        if self.source.take().is_some() {
            let shared = self.pool.shared();
            shared.lock().feeders -= 1;
            shared.notify();
        }
    }

    /// Submits chunks until the window is full or the source ends.
    fn top_up(&mut self) -> Result<(), PoolError> {
        while self.submitted - self.taken < self.max_outstanding {
            let Some(source) = &mut self.source else { return Ok(()) };
            let chunk: Vec<A> = source.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                self.exhausted();
                return Ok(());
            }
            let start = self.submitted as usize * self.chunksize;
            let unit = postcard::to_allocvec(&chunk)
                .map_err(|source| PoolError::Encode { type_name: std::any::type_name::<A>(), source })
                .map(|payload| Unit {
                    job: self.job.clone(),
                    chunk: self.submitted,
                    items: Some(start..start + chunk.len()),
                    code: self.code,
                    payload,
                });
            if let Err(e) = unit.and_then(|u| self.pool.shared().submit([u], true)) {
                self.exhausted();
                return Err(e);
            }
            self.submitted += 1;
        }
        Ok(())
    }

    fn next_until(&mut self, deadline: Option<Instant>, timeout: Duration) -> Option<Result<R, PoolError>> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(Ok(r));
            }
            if let Err(e) = self.top_up() {
                return Some(Err(e));
            }
            if self.taken == self.submitted {
                return None;
            }
            let want = self.ordered.then_some(self.taken);
            let (_, part) = match self.job.take(want, deadline) {
                Some(p) => p,
                None => return Some(Err(PoolError::Timeout(timeout))),
            };
            self.taken += 1;
            match part {
                Ok(values) => self.current = values.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<I, R> Drop for Feed<'_, I, R> {
    fn drop(&mut self) {
        if self.source.take().is_some() {
            let shared = self.pool.shared();
            shared.lock().feeders -= 1;
            shared.notify();
        }
    }
}

macro_rules! imap_iter {
    ($(#[$doc:meta])* $name:ident, $ordered:expr) => {
        $(#[$doc])*
        pub struct $name<'p, I, R> {
            feed: Feed<'p, I, R>,
        }

        impl<'p, I, A, R> $name<'p, I, R>
        where
            I: Iterator<Item = A>,
            A: Serialize,
            R: serde::de::DeserializeOwned + Send + 'static,
        {
            pub(crate) fn new(pool: &'p Pool, code: Code, source: I, chunksize: usize) -> Result<Self, PoolError> {
                Ok($name { feed: Feed::new(pool, code, source, chunksize, $ordered)? })
            }

            /// The next result, waiting at most `timeout` for it:
            /// `Some(Err(PoolError::Timeout))` if it is not ready by then (the
            /// iterator stays usable), `None` at the end. Python's `next(timeout)`.
            #[doc(alias = "next")]
            pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, PoolError>> {
                self.feed.next_until(Deadline::after(timeout).instant(), timeout)
            }
        }

        impl<I, A, R> Iterator for $name<'_, I, R>
        where
            I: Iterator<Item = A>,
            A: Serialize,
            R: serde::de::DeserializeOwned + Send + 'static,
        {
            type Item = Result<R, PoolError>;

            fn next(&mut self) -> Option<Result<R, PoolError>> {
                self.feed.next_until(None, Duration::MAX)
            }
        }

        impl<I, R> std::fmt::Debug for $name<'_, I, R> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("submitted", &self.feed.submitted)
                    .field("taken", &self.feed.taken)
                    .finish()
            }
        }
    };
}

imap_iter!(
    /// The iterator of [`Pool::imap`]: results in input order.
    Imap,
    true
);
imap_iter!(
    /// The iterator of [`Pool::imap_unordered`]: results in completion order.
    ImapUnordered,
    false
);
