//! `Condition`: a condition variable shared between processes, over an
//! [`RLock`] (the default, as in Python) or a [`Lock`].
//!
//! Two words next to the lock. `waiters` counts the processes waiting and not
//! yet notified; it changes only under the lock. `signals` (the futex word)
//! counts notifications granted and not yet consumed. `wait` registers in
//! `waiters` under the lock, releases the lock, and sleeps until it can take a
//! unit of `signals`; `notify(n)` moves `min(n, waiters)` from `waiters` to
//! `signals` and wakes that many. So `notify(n)` releases exactly
//! `min(n, waiting)` waiters, as CPython does, not "at least one".
//!
//! A waiter that times out takes the lock back and then settles its account:
//! if a signal is there (it was notified while giving up) it consumes it and
//! reports `true`; otherwise it removes itself from `waiters`. Invariant: the
//! number of processes inside `wait` equals `waiters + signals`.
//!
//! A unit of `signals` may be taken by any waiter, including one that started
//! waiting after the `notify` (no FIFO order is promised, as in CPython).

use std::fmt;
use std::time::{Duration, Instant};

use mproc_shm::{Exports, Share};

use crate::error::{Result, SyncError};
use crate::ident;
use crate::lock::{Acquired, Lock};
use crate::primitive::{self, AtomicU32, Ordering, WaitOutcome};
use crate::rlock::RLock;
use crate::shared::{self, kind, Object, Place, PlaceToken};

/// The shared-memory body of a [`Condition`] (its lock lives apart).
#[repr(C)]
pub struct RawCondition {
    /// Processes waiting and not yet notified; changed only under the lock.
    waiters: AtomicU32,
    /// Notifications granted and not yet consumed; the futex word waiters sleep on.
    signals: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawCondition>() == 8 && std::mem::align_of::<RawCondition>() == 4);

impl Default for RawCondition {
    fn default() -> Self {
        RawCondition::new()
    }
}

impl RawCondition {
    /// A condition with nobody waiting.
    pub fn new() -> RawCondition {
        RawCondition { waiters: AtomicU32::new(0), signals: AtomicU32::new(0) }
    }

    fn take_signal(&self) -> bool {
        let mut s = self.signals.load(Ordering::Acquire);
        while s > 0 {
            match self.signals.compare_exchange_weak(s, s - 1, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Waits for a notification: the caller holds `lock`; it is released while
    /// waiting and held again on return. `true` if notified, `false` on timeout.
    pub fn wait<L: CondLock + ?Sized>(&self, lock: &L, deadline: Option<Instant>) -> Result<bool> {
        if !lock.is_owned() {
            return Err(lock.not_owned("Condition.wait"));
        }
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let saved = lock.release_save()?;
        let mut notified = false;
        loop {
            if self.take_signal() {
                notified = true;
                break;
            }
            let left = shared::remaining(deadline);
            if left == Some(Duration::ZERO) {
                break;
            }
            if primitive::wait(&self.signals, 0, left) == WaitOutcome::TimedOut {
                notified = self.take_signal();
                break;
            }
        }
        lock.acquire_restore(saved);
        if !notified {
            // Under the lock again: settle the account (see the module doc).
            if self.take_signal() {
                notified = true;
            } else {
                self.waiters.fetch_sub(1, Ordering::Relaxed);
            }
        }
        Ok(notified)
    }

    /// Wakes `min(n, waiting)` waiters; the caller holds `lock`.
    pub fn notify<L: CondLock + ?Sized>(&self, lock: &L, n: u32) -> Result<u32> {
        if !lock.is_owned() {
            return Err(lock.not_owned("Condition.notify"));
        }
        let w = self.waiters.load(Ordering::Relaxed);
        let k = n.min(w);
        if k > 0 {
            self.waiters.store(w - k, Ordering::Relaxed);
            self.signals.fetch_add(k, Ordering::Release);
            primitive::wake(&self.signals, k);
        }
        Ok(k)
    }

    /// Processes waiting and not yet notified.
    pub fn waiting(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }
}

impl Object for RawCondition {
    const KIND: u16 = kind::CONDITION;
    const NAME: &'static str = "Condition";
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Lock {}
    impl Sealed for crate::RLock {}
}

/// A lock a [`Condition`] can wait on: [`RLock`] or [`Lock`].
pub trait CondLock: sealed::Sealed {
    /// What `release_save` remembers (the `RLock` depth).
    type Saved;
    /// Whether the caller holds the lock (its thread, for `RLock`; its process,
    /// for `Lock`, which has no thread owner).
    fn is_owned(&self) -> bool;
    /// Releases the lock entirely.
    fn release_save(&self) -> Result<Self::Saved>;
    /// Takes the lock back as it was.
    fn acquire_restore(&self, saved: Self::Saved) -> Acquired;
    /// The error for a caller that does not hold the lock.
    fn not_owned(&self, what: &'static str) -> SyncError;
    /// Python's `acquire(block, timeout)`.
    fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool>;
    /// Python's `release()`.
    fn release(&self) -> Result<()>;
}

impl CondLock for RLock {
    type Saved = u32;
    fn is_owned(&self) -> bool {
        self.raw().is_owned()
    }
    fn release_save(&self) -> Result<u32> {
        self.raw().release_all("Condition.wait")
    }
    fn acquire_restore(&self, depth: u32) -> Acquired {
        self.raw().restore(depth)
    }
    fn not_owned(&self, what: &'static str) -> SyncError {
        self.raw().not_owner(what)
    }
    fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        RLock::acquire(self, block, timeout)
    }
    fn release(&self) -> Result<()> {
        RLock::release(self)
    }
}

impl CondLock for Lock {
    type Saved = ();
    fn is_owned(&self) -> bool {
        self.holder() == Some(ident::pid())
    }
    fn release_save(&self) -> Result<()> {
        self.release()
    }
    fn acquire_restore(&self, _: ()) -> Acquired {
        self.raw().lock(None).unwrap_or(Acquired::Clean)
    }
    fn not_owned(&self, what: &'static str) -> SyncError {
        SyncError::NotOwner { what, pid: ident::pid(), tid: ident::tid(), owner_pid: self.holder().unwrap_or(0) }
    }
    fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        Lock::acquire(self, block, timeout)
    }
    fn release(&self) -> Result<()> {
        Lock::release(self)
    }
}

/// A condition variable shared between processes: Python's
/// `multiprocessing.Condition`.
///
/// Hold the lock (`lock()` / `acquire`) around `wait` and `notify`; doing
/// either without it is [`SyncError::NotOwner`].
///
/// ```
/// use std::time::Duration;
/// let c = mproc_sync::Condition::new().unwrap();
/// let _g = c.lock().unwrap();
/// assert!(!c.wait(Some(Duration::from_millis(1))).unwrap()); // nobody notifies
/// assert_eq!(c.notify(1).unwrap(), 0); // nobody waits
/// ```
#[doc(alias = "multiprocessing.Condition")]
#[derive(Clone)]
pub struct Condition<L: CondLock = RLock> {
    place: Place<RawCondition>,
    lock: L,
}

impl Condition<RLock> {
    /// A new condition over a new [`RLock`], in the shared arena.
    pub fn new() -> Result<Condition<RLock>> {
        Condition::with_lock(RLock::new()?)
    }

    /// Takes the lock; see [`RLock::lock`].
    #[doc(alias = "acquire")]
    pub fn lock(&self) -> Result<crate::RLockGuard<'_>> {
        self.lock.lock()
    }
}

impl Condition<Lock> {
    /// Takes the lock; see [`Lock::lock`].
    #[doc(alias = "acquire")]
    pub fn lock(&self) -> Result<crate::LockGuard<'_>> {
        self.lock.lock()
    }
}

impl<L: CondLock> Condition<L> {
    /// A new condition over `lock` (which others may share), in the shared arena.
    pub fn with_lock(lock: L) -> Result<Condition<L>> {
        Ok(Condition { place: Place::new(RawCondition::new())?, lock })
    }

    /// A new condition over `lock`, its own words placed in `seg` at `offset`
    /// (see [`Condition::footprint`]).
    pub fn new_in(seg: &mproc_shm::Segment, offset: usize, lock: L) -> Result<Condition<L>> {
        Ok(Condition { place: Place::new_in(seg, offset, RawCondition::new())?, lock })
    }

    /// Attaches to a condition placed at `offset` in `seg`, over `lock`.
    pub fn attach(seg: &mproc_shm::Segment, offset: usize, lock: L) -> Result<Condition<L>> {
        Ok(Condition { place: Place::attach(seg, offset)?, lock })
    }

    /// Bytes the condition's own words take when placed with `new_in`.
    pub fn footprint() -> usize {
        shared::footprint::<RawCondition>()
    }

    /// The underlying lock.
    pub fn get_lock(&self) -> &L {
        &self.lock
    }

    /// Python's `acquire(block=True, timeout=None)` on the underlying lock.
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        self.lock.acquire(block, timeout)
    }

    /// Python's `release()` on the underlying lock.
    pub fn release(&self) -> Result<()> {
        self.lock.release()
    }

    /// The shared body.
    pub fn raw(&self) -> &RawCondition {
        self.place.raw()
    }

    /// Waits until notified or `timeout` passes (`None`: no limit); the caller
    /// holds the lock, which is released while waiting and held again on return.
    /// `true` if notified.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.raw().wait(&self.lock, timeout.and_then(shared::deadline))
    }

    /// Waits until `pred()` holds (checked under the lock), at most `timeout`;
    /// returns the last value of `pred()`.
    pub fn wait_for(&self, mut pred: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(shared::deadline);
        loop {
            if pred() {
                return Ok(true);
            }
            let left = shared::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return Ok(false);
            }
            self.raw().wait(&self.lock, deadline)?;
        }
    }

    /// Wakes `min(n, waiting)` waiters; returns how many. The caller holds the lock.
    pub fn notify(&self, n: u32) -> Result<u32> {
        self.raw().notify(&self.lock, n)
    }

    /// Wakes every waiter; returns how many. The caller holds the lock.
    pub fn notify_all(&self) -> Result<u32> {
        self.raw().notify(&self.lock, u32::MAX)
    }

    /// Processes waiting and not yet notified.
    pub fn waiting(&self) -> u32 {
        self.raw().waiting()
    }
}

impl<L: CondLock + Share> Share for Condition<L> {
    type Token = (PlaceToken, L::Token);

    fn export(&self, exports: &mut Exports) -> mproc_shm::Result<Self::Token> {
        Ok((self.place.token(exports)?, self.lock.export(exports)?))
    }

    fn import(token: Self::Token) -> mproc_shm::Result<Self> {
        Ok(Condition { place: Place::import(token.0)?, lock: L::import(token.1)? })
    }
}

impl<L: CondLock + fmt::Debug> fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").field("lock", &self.lock).field("waiting", &self.waiting()).finish()
    }
}
