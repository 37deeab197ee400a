//! [`Queue`]: Python's `multiprocessing.Queue`.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{bounded_methods, common_methods, queue_impls, Kind, PutError, QueueBuilder, QueueError, Typed};

/// A bounded FIFO queue of `T` shared between processes: Python's
/// `multiprocessing.Queue`.
///
/// Many processes may put and get at once. Items are encoded with postcard;
/// each is at most [`max_item_bytes`](Queue::max_item_bytes) once encoded
/// (64 MiB by default, like a `Connection` frame).
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
    /// A queue of [`DEFAULT_MAXSIZE`](super::DEFAULT_MAXSIZE) items of any size
    /// up to [`DEFAULT_MAX_ITEM`](super::DEFAULT_MAX_ITEM) bytes.
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

    /// Takes the oldest item and hands `f` its **encoded** bytes (postcard) in
    /// place — in its ring slot, or in the shared block a large item lives in —
    /// without copying or decoding them, waiting as long as it takes. The item
    /// is consumed and its memory freed once `f` returns (or unwinds); while
    /// `f` runs it holds one slot, so keep it short. Fails with
    /// [`QueueError::Closed`] after [`close`](Self::close).
    ///
    /// ```
    /// use mproc_ipc::Queue;
    /// let q = Queue::<Vec<u8>>::new().unwrap();
    /// q.put(vec![7; 100_000]).unwrap();
    /// // postcard: the length as a varint (3 bytes here), then the bytes.
    /// let (len, sum) = q.get_bytes_with(|b| (b.len(), b[3..].iter().map(|&x| x as u64).sum::<u64>())).unwrap();
    /// assert_eq!((len, sum), (100_003, 700_000));
    /// ```
    pub fn get_bytes_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, QueueError> {
        self.q.get_bytes(super::Until::Forever, f)
    }

    /// [`get_bytes_with`](Self::get_bytes_with), waiting at most `timeout`;
    /// [`QueueError::Timeout`] if no item came (then `f` is not called).
    pub fn get_bytes_with_timeout<R>(
        &self,
        timeout: std::time::Duration,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, QueueError> {
        self.q.get_bytes(super::Until::after(timeout), f).map_err(|e| e.timed_out(timeout))
    }

    /// [`get_bytes_with`](Self::get_bytes_with) if an item is ready;
    /// [`QueueError::Empty`] otherwise (then `f` is not called).
    pub fn try_get_bytes_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, QueueError> {
        self.q.get_bytes(super::Until::Now, f)
    }

    bounded_methods!();
    common_methods!();
}
