//! The errors of the queues: [`QueueError`], and [`PutError`], which gives the
//! item back when a `put` fails.

use std::fmt;

use mproc_shm::{RingError, ShmError};

/// What can go wrong with a [`Queue`](crate::Queue),
/// [`JoinableQueue`](crate::JoinableQueue) or [`SimpleQueue`](crate::SimpleQueue).
/// Every variant names the sizes or the type involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue holds `maxsize` items: `try_put` found no room, or
    /// `put_timeout` found none before its timeout. Python's `queue.Full`.
    #[error("queue full: it holds its maximum of {maxsize} items")]
    Full {
        /// The queue's bound, in items.
        maxsize: usize,
    },
    /// No item arrived: `try_get` found none, or `get_timeout` none before its
    /// timeout. Python's `queue.Empty`.
    #[error("queue empty: no item is waiting")]
    Empty,
    /// A `_timeout` call gave up: no item (`get_timeout`), no room
    /// (`put_timeout`) or unfinished tasks (`join_timeout`) after `after`. The
    /// crate's one timeout error, as every blocking call's `x_timeout` form has
    /// one; `try_` forms report `Empty` / `Full` instead.
    #[error("the queue call timed out after {after:?}")]
    Timeout {
        /// The timeout that passed.
        after: std::time::Duration,
    },
    /// This handle was closed with `close`: it can neither put nor get.
    /// Python raises `ValueError("Queue is closed")`.
    #[error("the queue handle is closed")]
    Closed,
    /// The item's encoding is larger than the queue's cap on one item (64 MiB
    /// by default): it can never be put. Build the queue with a larger
    /// [`QueueBuilder::max_item_bytes`](crate::QueueBuilder::max_item_bytes)
    /// (up to [`MAX_ITEM_CAP`](crate::queue::MAX_ITEM_CAP)) for larger items.
    #[error(
        "item of {size} bytes (encoded) is larger than the queue's limit of {limit} bytes per item \
         (build the queue with QueueBuilder::max_item_bytes for larger items)"
    )]
    TooLarge {
        /// The item's encoded size.
        size: usize,
        /// The queue's limit per item.
        limit: usize,
    },
    /// A builder value out of range.
    #[error("{what} {value} is out of range: it must be {min}..={max}")]
    BadSize {
        /// Which setting (`maxsize`, `max_item_bytes`, …).
        what: &'static str,
        /// The value given.
        value: usize,
        /// The smallest value allowed.
        min: usize,
        /// The largest value allowed.
        max: usize,
    },
    /// `task_done` was called more times than items were put. Python raises
    /// `ValueError("task_done() called too many times")`.
    #[error("task_done() called too many times: no unfinished task is left")]
    TaskDoneTooOften,
    /// The item could not be encoded with postcard.
    #[error("cannot encode an item of type {type_name}: {source}")]
    Encode {
        /// The item's Rust type.
        type_name: &'static str,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// An item taken from the queue could not be decoded as the queue's type
    /// (a peer put another type through the same memory). The item is consumed.
    #[error("cannot decode an item of {len} bytes as {type_name}: {source}")]
    Decode {
        /// The queue's item type.
        type_name: &'static str,
        /// The encoded length.
        len: usize,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// An item taken from the queue is a [`PodVec`](crate::PodVec) of
    /// another element type than the queue's (the sender's element size or
    /// kind differs): the cause, naming both. The item is consumed.
    #[error("cannot decode an item: {0}")]
    Payload(#[from] crate::payload::PayloadError),
    /// The queue's ring reported damage (a foreign writer, a stray store).
    #[error("queue ring: {0}")]
    Ring(#[from] RingError),
    /// Creating or attaching the queue's shared memory failed.
    #[error("queue memory: {0}")]
    Shm(#[from] ShmError),
}

impl QueueError {
    /// True for [`QueueError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, QueueError::Full { .. })
    }

    /// What a `_timeout` form returns for what the waiting core reports: a
    /// queue still empty or full after `after` is [`QueueError::Timeout`].
    pub(crate) fn timed_out(self, after: std::time::Duration) -> QueueError {
        match self {
            QueueError::Empty | QueueError::Full { .. } => QueueError::Timeout { after },
            e => e,
        }
    }

    /// True for [`QueueError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, QueueError::Timeout { .. })
    }

    /// True for [`QueueError::Empty`].
    pub fn is_empty(&self) -> bool {
        matches!(self, QueueError::Empty)
    }
}

/// A failed `put`: the error, and the item, given back to the caller.
///
/// ```
/// use mproc_ipc::{Queue, QueueError};
/// let q = Queue::<String>::with_maxsize(1).unwrap();
/// q.put("one".to_string()).unwrap();
/// let err = q.try_put("two".to_string()).unwrap_err();
/// assert!(matches!(err.error(), QueueError::Full { maxsize: 1 }));
/// assert_eq!(err.into_item(), "two");
/// ```
pub struct PutError<T> {
    error: QueueError,
    item: T,
}

impl<T> PutError<T> {
    pub(crate) fn new(error: QueueError, item: T) -> PutError<T> {
        PutError { error, item }
    }

    /// A full queue after `after` becomes [`QueueError::Timeout`].
    pub(crate) fn timed_out(self, after: std::time::Duration) -> PutError<T> {
        PutError { error: self.error.timed_out(after), item: self.item }
    }

    /// Why the put failed: [`QueueError::Full`], [`QueueError::Closed`],
    /// [`QueueError::TooLarge`] or [`QueueError::Encode`].
    pub fn error(&self) -> &QueueError {
        &self.error
    }

    /// The item that was not put.
    pub fn item(&self) -> &T {
        &self.item
    }

    /// Takes the item back.
    pub fn into_item(self) -> T {
        self.item
    }

    /// The error and the item.
    pub fn into_parts(self) -> (QueueError, T) {
        (self.error, self.item)
    }

    /// True when the queue was full.
    pub fn is_full(&self) -> bool {
        self.error.is_full()
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutError").field("error", &self.error).finish_non_exhaustive()
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "put failed: {}", self.error)
    }
}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<PutError<T>> for QueueError {
    fn from(e: PutError<T>) -> QueueError {
        e.error
    }
}
