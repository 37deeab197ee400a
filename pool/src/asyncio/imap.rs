//! [`Imap`] and [`ImapUnordered`] as `futures_core::Stream`s (feature `tokio`).
//!
//! A poll pulls the source and submits chunks on the polling thread, as the
//! iterator does (submitting waits only while the pool's task queue is full),
//! then takes the next chunk result if it has arrived; otherwise it leaves its
//! waker with the job, and the collector's delivery of any chunk wakes it.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde::Serialize;

use super::{Feed, Imap, ImapUnordered};
use crate::PoolError;

impl<I, A, R> Feed<'_, I, R>
where
    I: Iterator<Item = A>,
    A: Serialize,
    R: serde::de::DeserializeOwned + Send + 'static,
{
    fn poll_next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, PoolError>>> {
        loop {
            if let Some(r) = self.current.next() {
                return Poll::Ready(Some(Ok(r)));
            }
            if let Err(e) = self.top_up() {
                return Poll::Ready(Some(Err(e)));
            }
            if self.taken == self.submitted {
                return Poll::Ready(None);
            }
            let want = self.ordered.then_some(self.taken);
            let (_, part) = match self.job.poll_take(want, cx) {
                Poll::Ready(p) => p,
                Poll::Pending => return Poll::Pending,
            };
            self.taken += 1;
            match part {
                Ok(values) => self.current = values.into_iter(),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

macro_rules! imap_stream {
    ($name:ident) => {
        /// The results as a stream, in the iterator's order.
        ///
        /// # Cancel safety
        /// `next()` on it is cancel safe: a result is moved out of the job
        /// only in the poll that returns it.
        impl<I, A, R> Stream for $name<'_, I, R>
        where
            I: Iterator<Item = A> + Unpin,
            A: Serialize,
            R: serde::de::DeserializeOwned + Send + Unpin + 'static,
        {
            type Item = Result<R, PoolError>;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                self.get_mut().feed.poll_next_item(cx)
            }
        }
    };
}

imap_stream!(Imap);
imap_stream!(ImapUnordered);
