//! [`SimpleQueue`]: Python's `multiprocessing.SimpleQueue`.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{common_methods, queue_impls, Kind, PutError, QueueBuilder, QueueError, Typed, Until};

/// A plain FIFO queue of `T` shared between processes: Python's
/// `multiprocessing.SimpleQueue` (`get`, `put`, `empty`, `close`).
///
/// It has no `Full`: its bound is large ([`SIMPLE_MAXSIZE`](super::SIMPLE_MAXSIZE)
/// items by default, set with [`QueueBuilder::build_simple`]) and a `put` into
/// a full one waits for room, like a put into a pipe whose buffer is full.
///
/// ```
/// use mproc_ipc::SimpleQueue;
/// let q = SimpleQueue::<String>::new().unwrap();
/// assert!(q.empty());
/// q.put("hello".into()).unwrap();
/// assert_eq!(q.get().unwrap(), "hello");
/// ```
#[doc(alias = "multiprocessing.SimpleQueue")]
pub struct SimpleQueue<T> {
    pub(super) q: Typed<T>,
}

queue_impls!(SimpleQueue, Kind::Simple);

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A queue of up to [`SIMPLE_MAXSIZE`](super::SIMPLE_MAXSIZE) items of up to
    /// [`DEFAULT_MAX_ITEM`](super::DEFAULT_MAX_ITEM) bytes.
    pub fn new() -> Result<SimpleQueue<T>, QueueError> {
        QueueBuilder::new().build_simple()
    }

    pub(super) fn from_typed(q: Typed<T>) -> SimpleQueue<T> {
        SimpleQueue { q }
    }

    /// Puts `item`, waiting for room if the queue is full. Fails with
    /// [`QueueError::Closed`], [`QueueError::TooLarge`] or
    /// [`QueueError::Encode`], giving the item back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.q.put(item, Until::Forever)
    }

    /// Puts a copy of `item` (encoded from the reference: the caller keeps it),
    /// waiting for room if the queue is full. Fails as [`put`](Self::put) does.
    pub fn put_ref(&self, item: &T) -> Result<(), QueueError> {
        self.q.put_ref(item, Until::Forever)
    }

    common_methods!();
}
