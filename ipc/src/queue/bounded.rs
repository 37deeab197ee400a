//! [`Queue`]: Python's `multiprocessing.Queue`.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{bounded_methods, common_methods, queue_impls, Kind, PutError, QueueBuilder, QueueError, Typed};

/// A bounded FIFO queue of `T` shared between processes: Python's
/// `multiprocessing.Queue`.
///
/// Many processes may put and get at once. Items are encoded with postcard;
/// each is at most [`max_item_bytes`](Queue::max_item_bytes) once encoded.
/// Blocking calls spin briefly, then sleep on a futex.
///
/// ```
/// use mproc_ipc::Queue;
/// let q = Queue::<char>::with_maxsize(2).unwrap();
/// q.try_put('A').unwrap();
/// q.try_put('B').unwrap();
/// assert!(q.full() && q.try_put('C').unwrap_err().is_full());
/// assert_eq!((q.get().unwrap(), q.get().unwrap()), ('A', 'B'));
/// q.close();
/// assert!(q.try_get().is_err());
/// ```
#[doc(alias = "multiprocessing.Queue")]
pub struct Queue<T> {
    pub(super) q: Typed<T>,
}

queue_impls!(Queue, Kind::Queue);

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue of [`DEFAULT_MAXSIZE`](super::DEFAULT_MAXSIZE) items of up to
    /// [`DEFAULT_MAX_ITEM`](super::DEFAULT_MAX_ITEM) bytes.
    pub fn new() -> Result<Queue<T>, QueueError> {
        QueueBuilder::new().build()
    }

    /// A queue bounded at `maxsize` items. Python's `Queue(maxsize)`.
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>, QueueError> {
        QueueBuilder::new().maxsize(maxsize).build()
    }

    /// A builder, to set the sizes.
    pub fn builder() -> QueueBuilder {
        QueueBuilder::new()
    }

    pub(super) fn from_typed(q: Typed<T>) -> Queue<T> {
        Queue { q }
    }

    bounded_methods!();
    common_methods!();
}
