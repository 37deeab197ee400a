//! [`Event::wait_async`] (feature `tokio`): `RawEvent::wait` without a
//! deadline, the futex wait awaited through the per-process waiter thread.

use super::{Event, SET_BIT, WAITERS_BIT};
use crate::asyncio::FutexWait;

impl Event {
    /// Awaits the flag: the async form of [`wait`](Event::wait). Resolves if
    /// the flag is set, or if a `set` happened while it waited (a pulse,
    /// `set(); clear()`, wakes every waiter).
    ///
    /// `set` wakes every waiter, blocking or async, with one `FUTEX_WAKE`;
    /// the async ones through the per-process futex waiter thread (see the
    /// [`asyncio`](crate::asyncio) module).
    ///
    /// # Cancel safety
    /// Cancel safe: it changes nothing but the waiters bit, which only costs a
    /// later `set` one `FUTEX_WAKE`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let ev = mproc_sync::Event::new()?;
    /// let setter = ev.clone();
    /// std::thread::spawn(move || setter.set());
    /// ev.wait_async().await;
    /// assert!(ev.is_set());
    /// # Ok::<(), mproc_sync::SyncError>(())
    /// # }).unwrap();
    /// ```
    pub async fn wait_async(&self) {
        let raw = self.raw();
        let mut s = raw.state.load(crate::primitive::Ordering::Acquire);
        let generation = s & !(SET_BIT | WAITERS_BIT);
        while let Some(armed) = raw.arm(s, generation) {
            // SAFETY: the event's place keeps the segment holding the word mapped.
            unsafe { FutexWait::new(&raw.state, armed, self.place.keep_alive()) }.await;
            s = raw.state.load(crate::primitive::Ordering::Acquire);
        }
    }
}
