//! `Semaphore` and `BoundedSemaphore`: a counter and a waiters bit in one
//! shared futex word.
//!
//! `acquire` decrements the value with one `compare_exchange` when it is
//! positive; otherwise it sets [`WAITERS_BIT`] and sleeps on the word.
//! `release` increments the value, clearing `WAITERS_BIT`, and wakes one
//! sleeper if the bit was set. Because the bit is cleared while other sleepers
//! may remain, a waiter that has been through the slow path (1) sets the bit
//! again when it takes a unit and (2) wakes the next sleeper if value is left
//! over ("passes the baton"), and (3) leaves the bit set when it gives up on a
//! timeout. That keeps the rule: whenever a sleeper exists and the value is
//! positive, someone awake will take it or wake a sleeper.
//!
//! Unlike a lock, a semaphore has no owner, so a process that dies holding a
//! unit leaves it taken (as in Python).
//!
//! Source: Drepper, "Futexes Are Tricky"; glibc's `nptl/sem_waitcommon.c`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{Result, SyncError};
use crate::primitive::{self, AtomicU32, Ordering, WaitOutcome};
use crate::shared::{self, kind, placed, Object, Place};

#[cfg(feature = "tokio")]
#[path = "asyncio/semaphore.rs"]
mod asyncio;

/// Some process may sleep on the word: `release` must wake one.
pub const WAITERS_BIT: u32 = 1 << 31;
/// The value bits; also Python's `SEM_VALUE_MAX` (2³¹ − 1).
pub const VALUE_MASK: u32 = WAITERS_BIT - 1;
const SPIN_LIMIT: u32 = if cfg!(loom) { 1 } else { 50 };

/// The shared-memory body of a [`Semaphore`] or [`BoundedSemaphore`].
#[repr(C)]
pub struct RawSemaphore {
    /// The semaphore word:
    ///
    /// ```text
    ///  bit 31          bits 30..0
    /// [WAITERS_BIT] [     value     ]
    /// ```
    ///
    /// | word                  | meaning                                      |
    /// |-----------------------|----------------------------------------------|
    /// | `v` (v > 0)           | `v` units free, nobody asleep                |
    /// | `0`                   | no unit free, nobody asleep                  |
    /// | `WAITERS_BIT`         | no unit free, waiters may sleep              |
    /// | `v \| WAITERS_BIT`     | `v` free, a sleeper may remain: the next release wakes one |
    state: AtomicU32,
    /// The bound of a `BoundedSemaphore` (its initial value); 0 for a plain one.
    bound: u32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawSemaphore>() == 8 && std::mem::align_of::<RawSemaphore>() == 4);

impl RawSemaphore {
    /// A semaphore of `value` units; `bounded` makes `value` the bound.
    pub fn new(value: u32, bounded: bool) -> Result<RawSemaphore> {
        if value > VALUE_MASK {
            return Err(SyncError::InvalidArgument {
                what: "Semaphore value",
                value: value.to_string(),
                expected: "at most 2147483647 (SEM_VALUE_MAX)",
            });
        }
        if bounded && value == 0 {
            return Err(SyncError::InvalidArgument {
                what: "BoundedSemaphore value",
                value: "0".into(),
                expected: "at least 1: a bound of 0 could never be released",
            });
        }
        Ok(RawSemaphore { state: AtomicU32::new(value), bound: if bounded { value } else { 0 } })
    }

    /// Takes a unit if one is free.
    #[inline]
    pub fn try_acquire(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & VALUE_MASK > 0 {
            // Keeps WAITERS_BIT as it is.
            match self.state.compare_exchange_weak(s, s - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Takes a unit, waiting until `deadline` (`None`: no limit); `false` on timeout.
    #[inline]
    pub fn acquire(&self, deadline: Option<Instant>) -> bool {
        self.try_acquire() || self.acquire_slow(deadline)
    }

    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>) -> bool {
        for _ in 0..SPIN_LIMIT {
            primitive::spin_loop();
            if self.try_acquire() {
                return true;
            }
        }
        let mut timed_out = false;
        loop {
            if self.take_or_announce() {
                return true;
            }
            if timed_out {
                // The bit is set and nothing is free: giving up loses no wake-up.
                return false;
            }
            let left = shared::remaining(deadline);
            if left == Some(Duration::ZERO) {
                timed_out = true;
                continue;
            }
            if primitive::wait(&self.state, WAITERS_BIT, left) == WaitOutcome::TimedOut {
                timed_out = true;
            }
        }
    }

    /// The slow path's look at the word: takes a unit if one is free (`true`),
    /// leaving [`WAITERS_BIT`] set, since other sleepers may remain, and
    /// passing the baton if units are left over; else sets the bit (`false`:
    /// sleep on the word `WAITERS_BIT`).
    fn take_or_announce(&self) -> bool {
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & VALUE_MASK > 0 {
                let next = (s - 1) | WAITERS_BIT;
                if self.state.compare_exchange(s, next, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    if next & VALUE_MASK > 0 {
                        primitive::wake(&self.state, 1);
                    }
                    return true;
                }
                continue;
            }
            if s & WAITERS_BIT == 0
                && self.state.compare_exchange(s, s | WAITERS_BIT, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            return false;
        }
    }

    /// Returns a unit; errors past the bound of a bounded semaphore, or past
    /// `SEM_VALUE_MAX`.
    #[inline]
    pub fn release(&self) -> Result<()> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let v = s & VALUE_MASK;
            if self.bound != 0 && v >= self.bound {
                return Err(SyncError::OverRelease { value: v, bound: self.bound });
            }
            if v == VALUE_MASK {
                return Err(SyncError::Overflow { what: "Semaphore value", max: VALUE_MASK as u64 });
            }
            match self.state.compare_exchange_weak(s, v + 1, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s & WAITERS_BIT != 0 {
            primitive::wake(&self.state, 1);
        }
        Ok(())
    }

    /// The current value.
    pub fn value(&self) -> u32 {
        self.state.load(Ordering::Relaxed) & VALUE_MASK
    }

    /// The bound (0: unbounded).
    pub fn bound(&self) -> u32 {
        self.bound
    }
}

impl Object for RawSemaphore {
    const KIND: u16 = kind::SEMAPHORE;
    const NAME: &'static str = "Semaphore";
}

macro_rules! semaphore {
    ($ty:ident, $name:literal, $bounded:literal, $alias:literal, $doc:literal) => {
        #[doc = $doc]
        #[doc(alias = $alias)]
        #[derive(Clone)]
        pub struct $ty {
            place: Place<RawSemaphore>,
        }

        placed!($ty, RawSemaphore);

        impl $ty {
            #[doc = concat!("A new ", $name, " of `value` units in the shared arena; `value` must be at most")]
            /// 2³¹ − 1 (and at least 1 for a bounded one).
            pub fn new(value: u32) -> Result<$ty> {
                Ok($ty { place: Place::new(RawSemaphore::new(value, $bounded)?)? })
            }

            #[doc = concat!("A new ", $name, " placed in `seg` at `offset`.")]
            pub fn new_in(seg: &mproc_shm::Segment, offset: usize, value: u32) -> Result<$ty> {
                Ok($ty { place: Place::new_in(seg, offset, RawSemaphore::new(value, $bounded)?)? })
            }

            fn from_place(place: Place<RawSemaphore>) -> $ty {
                $ty { place }
            }

            /// The shared body.
            pub fn raw(&self) -> &RawSemaphore {
                self.place.raw()
            }

            /// Takes a unit, waiting as long as it takes; the permit returns it on drop.
            #[doc(alias = "acquire")]
            #[inline]
            pub fn permit(&self) -> Result<Permit<'_>> {
                self.raw().acquire(None);
                Ok(Permit { sem: self.raw() })
            }

            /// Takes a unit if one is free, else [`SyncError::WouldBlock`].
            #[inline]
            pub fn try_permit(&self) -> Result<Permit<'_>> {
                if self.raw().try_acquire() {
                    Ok(Permit { sem: self.raw() })
                } else {
                    Err(SyncError::WouldBlock { what: $name })
                }
            }

            /// Takes a unit, waiting at most `timeout`, else [`SyncError::Timeout`].
            pub fn permit_timeout(&self, timeout: Duration) -> Result<Permit<'_>> {
                if self.raw().acquire(shared::deadline(timeout)) {
                    Ok(Permit { sem: self.raw() })
                } else {
                    Err(SyncError::Timeout { what: $name, after: timeout })
                }
            }

            /// Python's `acquire()`: takes a unit, waiting as long as it takes. The
            /// caller must [`release`](Self::release); a [`permit`](Self::permit) does
            /// that for you.
            pub fn acquire(&self) -> Result<()> {
                self.raw().acquire(None);
                Ok(())
            }

            /// Python's `acquire(block=False)`: takes a unit if one is free, else
            /// [`SyncError::WouldBlock`]. Never blocks.
            pub fn try_acquire(&self) -> Result<()> {
                if self.raw().try_acquire() {
                    Ok(())
                } else {
                    Err(SyncError::WouldBlock { what: $name })
                }
            }

            /// Python's `acquire(timeout=t)`: takes a unit, waiting at most
            /// `timeout`, else [`SyncError::Timeout`].
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
                if self.raw().acquire(shared::deadline(timeout)) {
                    Ok(())
                } else {
                    Err(SyncError::Timeout { what: $name, after: timeout })
                }
            }

            /// Python's `release()`: returns a unit.
            pub fn release(&self) -> Result<()> {
                self.raw().release()
            }

            /// Python's `get_value()`: the number of free units.
            #[doc(alias = "get_value")]
            pub fn value(&self) -> u32 {
                self.raw().value()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($name).field("value", &self.value()).finish()
            }
        }
    };
}

semaphore!(
    Semaphore,
    "Semaphore",
    false,
    "multiprocessing.Semaphore",
    "A counting semaphore shared between processes: Python's `multiprocessing.Semaphore`."
);
semaphore!(
    BoundedSemaphore,
    "BoundedSemaphore",
    true,
    "multiprocessing.BoundedSemaphore",
    "A semaphore whose value may not exceed its initial value: releasing past it is \
     [`SyncError::OverRelease`] (Python's `multiprocessing.BoundedSemaphore`)."
);

/// A unit taken from a semaphore; returned on drop.
#[must_use = "the unit is returned as soon as the permit drops"]
pub struct Permit<'a> {
    sem: &'a RawSemaphore,
}

impl Permit<'_> {
    /// Keeps the unit taken (Python style: someone calls `release` later).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Cannot exceed the bound: this permit's unit is outstanding, unless
        // someone released it on our behalf, which is theirs to answer for.
        let _ = self.sem.release();
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}
