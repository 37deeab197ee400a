//! `AsyncResult`: the handle to a result the pool will deliver later.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mproc_shm::sys::{self, Deadline, IgnorePoison};

use crate::PoolError;

/// What a [`Slot`] holds.
pub(crate) enum Cell<T> {
    /// Not delivered yet.
    Empty,
    /// Delivered and not taken.
    Filled(Result<T, PoolError>),
    /// Delivered, then moved out by `get_timeout`; whether it was a success.
    Taken { ok: bool },
}

impl<T> Cell<T> {
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Cell::Empty)
    }

    /// Moves a delivered result out, leaving `Taken`; `None` while empty.
    pub(crate) fn take(&mut self) -> Option<Result<T, PoolError>> {
        match std::mem::replace(self, Cell::Empty) {
            Cell::Empty => None,
            Cell::Filled(r) => {
                *self = Cell::Taken { ok: r.is_ok() };
                Some(r)
            }
            Cell::Taken { ok } => {
                *self = Cell::Taken { ok };
                Some(Err(PoolError::ResultTaken))
            }
        }
    }
}

/// A one-shot cell the collector fills and a caller waits on.
pub(crate) struct Slot<T> {
    value: Mutex<Cell<T>>,
    /// Threads blocked on `ready`, and futures registered in `wakers` (a
    /// notify costs a futex call, so it is made only when someone waits).
    waiters: std::sync::atomic::AtomicUsize,
    ready: Condvar,
    /// The wakers of futures awaiting the slot (see `asyncio.rs`), by future;
    /// looked at only when `waiters` is not zero.
    #[cfg(feature = "tokio")]
    pub(crate) wakers: Mutex<Vec<(u64, std::task::Waker)>>,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Arc<Slot<T>> {
        Arc::new(Slot {
            value: Mutex::new(Cell::Empty),
            waiters: Default::default(),
            ready: Condvar::new(),
            #[cfg(feature = "tokio")]
            wakers: Mutex::new(Vec::new()),
        })
    }

    #[cfg(test)]
    pub(crate) fn ready_with(value: Result<T, PoolError>) -> Arc<Slot<T>> {
        Arc::new(Slot {
            value: Mutex::new(Cell::Filled(value)),
            waiters: Default::default(),
            ready: Condvar::new(),
            #[cfg(feature = "tokio")]
            wakers: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Cell<T>> {
        sys::lock(&self.value)
    }

    /// Fills the slot unless it is filled already; true if this call filled it.
    pub(crate) fn set(&self, value: Result<T, PoolError>) -> bool {
        let mut v = self.lock();
        if !v.is_empty() {
            return false;
        }
        *v = Cell::Filled(value);
        // `waiters` only changes under the lock we hold, so Relaxed suffices.
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.ready.notify_all();
            #[cfg(feature = "tokio")]
            for (_, w) in self.wakers.lock().ignore_poison().drain(..) {
                w.wake();
            }
        }
        true
    }

    /// Counts a future in (`1`) or out (`-1`) of the waiters; call with the
    /// slot's lock held, as `wait_until` changes the count.
    #[cfg(feature = "tokio")]
    pub(crate) fn waiters_add(&self, n: isize) {
        if n > 0 {
            self.waiters.fetch_add(n as usize, Ordering::Relaxed);
        } else {
            self.waiters.fetch_sub(n.unsigned_abs(), Ordering::Relaxed);
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Waits until filled or until `deadline`; the guard, filled or not.
    fn wait_until(&self, deadline: Option<Instant>) -> MutexGuard<'_, Cell<T>> {
        let mut v = self.lock();
        self.waiters.fetch_add(1, Ordering::Relaxed);
        while v.is_empty() {
            match deadline {
                None => v = self.ready.wait(v).ignore_poison(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    v = self.ready.wait_timeout(v, d - now).ignore_poison().0;
                }
            }
        }
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        v
    }
}

/// A result the pool delivers later: Python's `multiprocessing.pool.AsyncResult`.
///
/// Returned by [`Pool::apply_async`](crate::Pool::apply_async),
/// [`Pool::map_async`](crate::Pool::map_async) and
/// [`Pool::starmap_async`](crate::Pool::starmap_async). It does not borrow the
/// pool: if the pool is terminated first, the result is
/// [`PoolError::Terminated`].
pub struct AsyncResult<T> {
    pub(crate) slot: Arc<Slot<T>>,
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.ready()).finish()
    }
}

impl<T> AsyncResult<T> {
    pub(crate) fn new(slot: Arc<Slot<T>>) -> AsyncResult<T> {
        AsyncResult { slot }
    }

    /// Waits for the result and returns it (Python's `get()` without a timeout).
    ///
    /// [`PoolError::ResultTaken`] if an earlier [`get_timeout`](Self::get_timeout)
    /// returned it already.
    pub fn get(self) -> Result<T, PoolError> {
        self.slot.wait_until(None).take().unwrap_or(Err(PoolError::ResultTaken))
    }

    /// Waits at most `timeout` for the result (Python's `get(timeout)`).
    ///
    /// If it is not ready by then, the error is [`PoolError::Timeout`] and the
    /// handle is untouched: call `get_timeout` (or [`get`](Self::get)) again
    /// later. Once ready, the result — the value or the task's error — is moved
    /// out to this call; a later `get` or `get_timeout` on the same handle is
    /// [`PoolError::ResultTaken`] (a value is not `Clone` in general, so it is
    /// returned once), while [`ready`](Self::ready) and
    /// [`successful`](Self::successful) keep answering.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc_pool::{Pool, PoolError};
    ///
    /// fn slow(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let pool = Pool::new(1)?;
    /// let r = pool.apply_async(slow, 50)?;
    /// let value = loop {
    ///     match r.get_timeout(Duration::from_millis(10)) {
    ///         Err(PoolError::Timeout(_)) => continue, // not yet: the handle survives
    ///         other => break other?,
    ///     }
    /// };
    /// assert_eq!(value, 50);
    /// assert_eq!(r.get_timeout(Duration::ZERO), Err(PoolError::ResultTaken));
    /// assert_eq!(r.successful(), Ok(true));
    /// # Ok::<(), PoolError>(())
    /// ```
    #[doc(alias = "get")]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, PoolError> {
        match self.slot.wait_until(Deadline::after(timeout).instant()).take() {
            Some(r) => r,
            None => Err(PoolError::Timeout(timeout)),
        }
    }

    /// Waits until the result is ready.
    pub fn wait(&self) {
        drop(self.slot.wait_until(None));
    }

    /// Waits at most `timeout` for the result to be ready, else
    /// [`PoolError::Timeout`].
    #[doc(alias = "wait")]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        if self.slot.wait_until(Deadline::after(timeout).instant()).is_empty() {
            Err(PoolError::Timeout(timeout))
        } else {
            Ok(())
        }
    }

    /// Whether the result is ready (the call finished, failed, or was cancelled).
    pub fn ready(&self) -> bool {
        self.slot.is_set()
    }

    /// Whether the call completed without error; [`PoolError::NotReady`] before
    /// it is [`ready`](Self::ready). Still answers after
    /// [`get_timeout`](Self::get_timeout) took the result.
    pub fn successful(&self) -> Result<bool, PoolError> {
        match &*self.slot.lock() {
            Cell::Empty => Err(PoolError::NotReady),
            Cell::Filled(r) => Ok(r.is_ok()),
            Cell::Taken { ok } => Ok(*ok),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successful_before_ready_is_an_error() {
        let slot = Slot::<u32>::new();
        let r = AsyncResult::new(slot.clone());
        assert!(!r.ready());
        assert_eq!(r.successful(), Err(PoolError::NotReady));
        assert_eq!(r.wait_timeout(Duration::from_millis(1)), Err(PoolError::Timeout(Duration::from_millis(1))));
        assert!(slot.set(Ok(7)));
        assert!(!slot.set(Ok(8)), "a slot is filled once");
        assert!(r.ready());
        assert_eq!(r.successful(), Ok(true));
        assert_eq!(r.get_timeout(Duration::from_secs(1)), Ok(7));
    }

    #[test]
    fn get_timeout_times_out() {
        let r = AsyncResult::new(Slot::<u32>::new());
        assert_eq!(r.get_timeout(Duration::from_millis(5)), Err(PoolError::Timeout(Duration::from_millis(5))));
    }

    #[test]
    fn get_timeout_can_be_retried_after_a_timeout() {
        let slot = Slot::<String>::new();
        let r = AsyncResult::new(slot.clone());
        let t = Duration::from_millis(1);
        assert_eq!(r.get_timeout(t), Err(PoolError::Timeout(t)));
        assert_eq!(r.get_timeout(t), Err(PoolError::Timeout(t)), "a second timeout, still not consumed");
        slot.set(Ok("late".into()));
        assert_eq!(r.get_timeout(t), Ok("late".to_string()));
        assert_eq!(r.get_timeout(t), Err(PoolError::ResultTaken));
        assert!(r.ready());
        assert_eq!(r.successful(), Ok(true));
        assert_eq!(r.get(), Err(PoolError::ResultTaken));
    }

    #[test]
    fn a_taken_failure_stays_unsuccessful() {
        let r = AsyncResult::new(Slot::<u32>::ready_with(Err(PoolError::Terminated)));
        assert_eq!(r.get_timeout(Duration::ZERO), Err(PoolError::Terminated));
        assert_eq!(r.successful(), Ok(false));
        assert_eq!(r.get_timeout(Duration::ZERO), Err(PoolError::ResultTaken));
    }

    #[test]
    fn failed_result_is_not_successful() {
        let r = AsyncResult::new(Slot::<u32>::ready_with(Err(PoolError::Terminated)));
        assert_eq!(r.successful(), Ok(false));
        assert_eq!(r.get(), Err(PoolError::Terminated));
    }

    #[test]
    fn wakes_a_waiting_thread() {
        let slot = Slot::<u32>::new();
        let r = AsyncResult::new(slot.clone());
        let t = std::thread::spawn(move || r.get_timeout(Duration::from_secs(10)));
        slot.set(Ok(1));
        assert_eq!(t.join().unwrap(), Ok(1));
    }
}
