//! `Event`: a flag processes wait for, on one shared futex word.
//!
//! `set` stores [`SET_BIT`], bumps the generation and, if [`WAITERS_BIT`] was
//! set, wakes every sleeper; `wait` sleeps while the flag is clear. A waiter
//! returns `true` if the flag is set, or if a `set` happened while it waited
//! (the generation moved), even if `clear` came right after: a pulse
//! (`set(); clear()`) wakes every waiter, as with `threading.Event`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{Result, SyncError};
use crate::primitive::{self, AtomicU32, Ordering, WaitOutcome};
use crate::shared::{self, kind, placed, Object, Place};

#[cfg(feature = "tokio")]
#[path = "asyncio/event.rs"]
mod asyncio;

/// The flag.
pub const SET_BIT: u32 = 1;
/// Some process may sleep on the word: `set` must wake them.
pub const WAITERS_BIT: u32 = 2;
/// One step of the generation count in bits 31..2.
pub const GENERATION_ONE: u32 = 4;

/// The shared-memory body of an [`Event`].
#[repr(C)]
pub struct RawEvent {
    /// The event word:
    ///
    /// ```text
    ///  bits 31..2    bit 1         bit 0
    /// [generation] [WAITERS_BIT] [SET_BIT]
    /// ```
    ///
    /// | word                        | meaning                                       |
    /// |-----------------------------|-----------------------------------------------|
    /// | `g \| SET_BIT`               | set; waiters return at once                   |
    /// | `g`                         | clear, nobody asleep                          |
    /// | `g \| WAITERS_BIT`           | clear, waiters may sleep: `set` wakes them    |
    ///
    /// `g` (the generation) counts the `set` calls that found the flag clear.
    state: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawEvent>() == 4 && std::mem::align_of::<RawEvent>() == 4);

impl Default for RawEvent {
    fn default() -> Self {
        RawEvent::new()
    }
}

impl RawEvent {
    /// A clear event.
    pub fn new() -> RawEvent {
        RawEvent { state: AtomicU32::new(0) }
    }

    /// Whether the flag is set.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET_BIT != 0
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & SET_BIT != 0 {
                return;
            }
            let next = ((s & !WAITERS_BIT).wrapping_add(GENERATION_ONE)) | SET_BIT;
            match self.state.compare_exchange_weak(s, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s & WAITERS_BIT != 0 {
            primitive::wake_all(&self.state);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.state.fetch_and(!SET_BIT, Ordering::Relaxed);
    }

    /// Waits until the flag is set, at most until `deadline`; `true` if it was
    /// set (now, or at some moment during the wait).
    pub fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        if s & SET_BIT != 0 {
            return true;
        }
        let generation = s & !(SET_BIT | WAITERS_BIT);
        loop {
            let Some(armed) = self.arm(s, generation) else { return true };
            let left = shared::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return false;
            }
            let outcome = primitive::wait(&self.state, armed, left);
            s = self.state.load(Ordering::Acquire);
            if outcome == WaitOutcome::TimedOut && s & SET_BIT == 0 && s & !(SET_BIT | WAITERS_BIT) == generation {
                return false;
            }
        }
    }

    /// A waiter's look at the word `s`: `None` once the flag is set or a `set`
    /// moved the generation past `generation` (the wait is over); else sets
    /// [`WAITERS_BIT`] and returns the word to sleep on.
    fn arm(&self, mut s: u32, generation: u32) -> Option<u32> {
        loop {
            if s & SET_BIT != 0 || s & !(SET_BIT | WAITERS_BIT) != generation {
                return None;
            }
            if s & WAITERS_BIT != 0 {
                return Some(s);
            }
            match self.state.compare_exchange(s, s | WAITERS_BIT, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Some(s | WAITERS_BIT),
                Err(now) => s = now,
            }
        }
    }
}

impl Object for RawEvent {
    const KIND: u16 = kind::EVENT;
    const NAME: &'static str = "Event";
}

/// An event shared between processes: Python's `multiprocessing.Event`.
///
/// ```
/// let ev = mproc_sync::Event::new().unwrap();
/// assert!(ev.wait_timeout(std::time::Duration::from_millis(1)).is_err()); // SyncError::Timeout
/// ev.set();
/// ev.wait(); // returns at once: the flag is set
/// assert!(ev.is_set());
/// ```
#[doc(alias = "multiprocessing.Event")]
#[derive(Clone)]
pub struct Event {
    place: Place<RawEvent>,
}

placed!(Event, RawEvent);

impl Event {
    /// A new clear event in the shared arena.
    pub fn new() -> Result<Event> {
        Ok(Event { place: Place::new(RawEvent::new())? })
    }

    /// A new clear event placed in `seg` at `offset`.
    pub fn new_in(seg: &mproc_shm::Segment, offset: usize) -> Result<Event> {
        Ok(Event { place: Place::new_in(seg, offset, RawEvent::new())? })
    }

    fn from_place(place: Place<RawEvent>) -> Event {
        Event { place }
    }

    /// The shared body.
    pub fn raw(&self) -> &RawEvent {
        self.place.raw()
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.raw().is_set()
    }

    /// Sets the flag, waking every waiter.
    pub fn set(&self) {
        self.raw().set()
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.raw().clear()
    }

    /// Waits for the flag, as long as it takes. ([`is_set`](Event::is_set) is
    /// the form that never blocks.)
    pub fn wait(&self) {
        self.raw().wait(None);
    }

    /// Waits for the flag at most `timeout`, else [`SyncError::Timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        if self.raw().wait(shared::deadline(timeout)) {
            Ok(())
        } else {
            Err(SyncError::Timeout { what: "Event", after: timeout })
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("is_set", &self.is_set()).finish()
    }
}
