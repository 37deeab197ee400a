//! [`JoinableQueue`]: a [`Queue`](super::Queue) that counts unfinished tasks.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{bounded_methods, common_methods, queue_impls, Kind, PutError, QueueBuilder, QueueError, Typed, Until};

/// A [`Queue`](super::Queue) whose consumers mark each item done, so that a
/// producer can [`join`](JoinableQueue::join) until all are: Python's
/// `multiprocessing.JoinableQueue`.
///
/// The count of unfinished tasks lives in shared memory: every `put` raises it
/// (before the item becomes visible), every [`task_done`](JoinableQueue::task_done)
/// lowers it, and `join` sleeps on it until it reaches zero. A process killed
/// between a `get` and its `task_done` leaves its task unfinished forever, so
/// `join` would wait forever: use [`join_timeout`](JoinableQueue::join_timeout)
/// where workers may die.
///
/// ```
/// use mproc_ipc::{JoinableQueue, QueueError};
/// let q = JoinableQueue::<u32>::new().unwrap();
/// q.put(7).unwrap();
/// assert!(q.join_timeout(std::time::Duration::from_millis(1)).unwrap_err().is_timeout());
/// assert_eq!(q.get().unwrap(), 7);
/// q.task_done().unwrap();
/// q.join();
/// assert!(matches!(q.task_done(), Err(QueueError::TaskDoneTooOften)));
/// ```
#[doc(alias = "multiprocessing.JoinableQueue")]
pub struct JoinableQueue<T> {
    pub(super) q: Typed<T>,
}

queue_impls!(JoinableQueue, Kind::Joinable);

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A queue of [`DEFAULT_MAXSIZE`](super::DEFAULT_MAXSIZE) items of up to
    /// [`DEFAULT_MAX_ITEM`](super::DEFAULT_MAX_ITEM) bytes.
    pub fn new() -> Result<JoinableQueue<T>, QueueError> {
        QueueBuilder::new().build_joinable()
    }

    /// A queue bounded at `maxsize` items.
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>, QueueError> {
        QueueBuilder::new().maxsize(maxsize).build_joinable()
    }

    pub(super) fn from_typed(q: Typed<T>) -> JoinableQueue<T> {
        JoinableQueue { q }
    }

    bounded_methods!();
    common_methods!();

    /// Marks one task taken with `get` as done. Once every task put has been
    /// marked, `join` returns. Calling it more times than items were put is
    /// [`QueueError::TaskDoneTooOften`].
    pub fn task_done(&self) -> Result<(), QueueError> {
        self.q.raw.task_done()
    }

    /// Waits until every item put has been marked with `task_done`.
    pub fn join(&self) {
        self.q.raw.join(Until::Forever);
    }

    /// Waits at most `timeout` for every item to be marked done;
    /// [`QueueError::Timeout`] if some are still unfinished then.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), QueueError> {
        if self.q.raw.join(Until::after(timeout)) {
            Ok(())
        } else {
            Err(QueueError::Timeout { after: timeout })
        }
    }

    /// Tasks put and not yet marked done (a snapshot).
    pub fn unfinished_tasks(&self) -> usize {
        self.q.raw.unfinished() as usize
    }
}
