//! `Condition`: a condition variable shared between processes, over an
//! [`RLock`] (the default, as in Python) or a [`Lock`].
//!
//! # Algorithm
//! The body is a small table of waiter slots next to the lock (the lock itself
//! lives apart). Every slot is one futex word:
//!
//! | slot word           | meaning                                            |
//! |---------------------|----------------------------------------------------|
//! | `0`                 | free                                               |
//! | `pid`               | a thread of process `pid` waits, not yet notified  |
//! | `pid \| NOTIFIED`    | it was notified and has not yet taken the lock back |
//!
//! `wait` claims a free slot under the lock (writing its pid), releases the lock
//! and sleeps on its own slot word until `NOTIFIED` appears or the deadline
//! passes; then it takes the lock back, reads whether it was notified, and frees
//! the slot. `notify(n)` (under the lock) walks the slots round-robin from where
//! the last notify stopped, sets `NOTIFIED` on up to `n` waiting slots and wakes
//! exactly those sleepers. Every slot write happens under the lock, so
//! `notify(n)` releases exactly `min(n, waiting)` waiters, as CPython does, and
//! only waiters that were already waiting when `notify` ran (a later `wait` cannot
//! take an earlier notification). Round-robin means no waiter is starved by
//! others that wait again and again; no FIFO order is promised. Cost: `notify`
//! makes one liveness check (three system calls) per waiter of another process
//! it notifies, on top of the `FUTEX_WAKE`; with nobody waiting it reads one word.
//!
//! # Waiter death
//! A process SIGKILLed inside `wait` cannot free its slot. `notify` checks that
//! the process of each slot it is about to notify is alive (the liveness test of
//! `lock.rs`: `pidfd_open(2)`, a zombie counts as dead) and frees the slots of
//! dead processes instead of notifying them, so a dead waiter neither absorbs a
//! notification nor leaves a phantom one for the next `wait`.
//! [`waiting`](Condition::waiting) counts live waiters only. Limits: a notification
//! delivered to a waiter that then dies before taking the lock back is spent (as
//! if it had returned); a dead waiter's pid reused by a new process before the
//! next `notify` looks alive (that slot then absorbs one notification and is
//! freed only once that process dies), as for `Lock`.
//!
//! More than [`WAITER_SLOTS`] concurrent waiters still work: the extra ones
//! register in an overflow count (`waiters`) and sleep on a shared word
//! (`signals`) that `notify` feeds after the slots, the scheme of the first
//! version (invariant there: overflow waiters inside `wait` = `waiters +
//! signals`). Overflow waiters are not checked for death.
//!
//! # Owner death of the lock
//! Taking the lock back at the end of `wait` can find it held by a process that
//! died: the waiter takes it over, as [`Lock::lock`] does. [`Condition::wait`]
//! returns normally then (keeping Python's `-> bool`); [`Condition::wait_outcome`]
//! reports it ([`Wakeup::owner_died`]), as
//! [`LockGuard::owner_died`](crate::LockGuard::owner_died) does for `lock()`.
//!
//! # Ownership over a `Lock`
//! A [`Lock`] records the holding process, not the thread (any thread may release
//! it, as in Python), so over a `Lock` "the caller holds the lock" means "its
//! process does": another thread of the holding process may `wait` or `notify`.
//! CPython's `Condition(Lock())` cannot tell threads apart either (its
//! `_is_owned` tries a non-blocking acquire, so a lock held by *anyone* counts).
//! The default [`RLock`] checks the thread. (A per-thread check over a `Lock`
//! would need the holder's tid in the lock word's neighbourhood, a change to
//! `RawLock`.) The slot table is updated with read-modify-writes, so even two
//! threads of the holding process racing there keep it consistent.
//!
//! The layout is checked on attach: the header's check value holds a layout
//! number (2: slots) and [`WAITER_SLOTS`], so a process built with another
//! layout gets a layout-mismatch error, not a corrupt table.

use std::fmt;
use std::time::{Duration, Instant};

use mproc_shm::{Exports, Share};

use crate::error::{Result, SyncError};
use crate::ident::{self, PID_BITS};
use crate::lock::{Acquired, Lock, RawLock, PID_MASK};
use crate::primitive::{self, AtomicU32, Ordering};
use crate::rlock::{RLock, RawRLock};
use crate::shared::{self, kind, Object, Place, PlaceToken};

/// Waiter slots in a condition's body; more concurrent waiters than this use
/// the overflow count, without death detection (see the module doc).
pub const WAITER_SLOTS: usize = if cfg!(loom) { 1 } else { 64 };
/// Set in a slot word once its waiter is notified.
const NOTIFIED: u32 = 1 << PID_BITS;
/// The header check value: layout number 2 (slots) and the slot count.
const LAYOUT: u64 = (2 << 32) | WAITER_SLOTS as u64;

/// The shared-memory body of a [`Condition`] (its lock lives apart).
#[repr(C)]
pub struct RawCondition {
    /// Overflow waiters not yet notified; changed only under the lock.
    waiters: AtomicU32,
    /// Overflow notifications granted and not yet consumed; the futex word
    /// overflow waiters sleep on.
    signals: AtomicU32,
    /// Slots in use (waiting or notified); changed only under the lock.
    occupied: AtomicU32,
    /// Where the next `notify` starts its walk; changed only under the lock.
    next: AtomicU32,
    /// One futex word per waiter: 0, `pid` or `pid | NOTIFIED` (module doc).
    slots: [AtomicU32; WAITER_SLOTS],
}

#[cfg(not(loom))]
const _: () =
    assert!(std::mem::size_of::<RawCondition>() == 16 + 4 * WAITER_SLOTS && std::mem::align_of::<RawCondition>() == 4);

impl Default for RawCondition {
    fn default() -> Self {
        RawCondition::new()
    }
}

/// How a [`Condition::wait_outcome`] ended: notified or not, and how the lock
/// was taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wakeup {
    notified: bool,
    how: Acquired,
}

impl Wakeup {
    /// True if notified (Python's `wait` result); false on timeout. For
    /// `wait_for_outcome`, the last value of the predicate.
    pub fn notified(&self) -> bool {
        self.notified
    }

    /// True when taking the lock back found its holder dead: the caller holds
    /// the lock now, but the data it protects may be inconsistent.
    pub fn owner_died(&self) -> bool {
        self.how == Acquired::OwnerDied
    }

    /// How the lock was taken back (the worst case over a `wait_for_outcome`).
    pub fn acquired(&self) -> Acquired {
        self.how
    }
}

impl RawCondition {
    /// A condition with nobody waiting.
    pub fn new() -> RawCondition {
        RawCondition {
            waiters: AtomicU32::new(0),
            signals: AtomicU32::new(0),
            occupied: AtomicU32::new(0),
            next: AtomicU32::new(0),
            slots: std::array::from_fn(|_| AtomicU32::new(0)),
        }
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

    /// Claims a free slot for process `me`; under the lock.
    fn claim(&self, me: u32) -> Option<&AtomicU32> {
        // Read-modify-writes, though the lock serialises callers: over a `Lock`,
        // two threads of the holding process both pass the ownership check (see
        // the module doc), and the table must stay consistent even then.
        let slot =
            self.slots.iter().find(|s| s.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed).is_ok())?;
        self.occupied.fetch_add(1, Ordering::Relaxed);
        Some(slot)
    }

    /// Frees `slot` if it still reads `v`; under the lock.
    fn free(&self, slot: &AtomicU32, v: u32) {
        if slot.compare_exchange(v, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.occupied.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Waits for a notification: the caller holds `lock`; it is released while
    /// waiting and held again on return. `true` if notified, `false` on timeout.
    pub fn wait<L: CondLock + ?Sized>(&self, lock: &L, deadline: Option<Instant>) -> Result<bool> {
        self.wait_outcome(lock, deadline).map(|w| w.notified)
    }

    /// As [`wait`](RawCondition::wait), also telling how the lock was taken back.
    pub fn wait_outcome<L: CondLock + ?Sized>(&self, lock: &L, deadline: Option<Instant>) -> Result<Wakeup> {
        if !lock.is_owned() {
            return Err(lock.not_owned("Condition.wait"));
        }
        let me = ident::pid();
        let Some(slot) = self.claim(me) else { return self.wait_overflow(lock, deadline) };
        let saved = match lock.release_save() {
            Ok(saved) => saved,
            Err(e) => {
                self.free(slot, me);
                return Err(e);
            }
        };
        loop {
            let v = slot.load(Ordering::Acquire);
            if v & NOTIFIED != 0 {
                break;
            }
            let left = shared::remaining(deadline);
            if left == Some(Duration::ZERO) {
                break;
            }
            // Returns at once if `notify` already changed the word.
            primitive::wait(slot, v, left);
        }
        let how = lock.acquire_restore(saved);
        // Under the lock again: a notify that came while we gave up still counts.
        let v = slot.load(Ordering::Relaxed);
        self.free(slot, v);
        let notified = v & NOTIFIED != 0;
        Ok(Wakeup { notified, how })
    }

    /// The wait of a waiter that found every slot taken: the counting scheme.
    #[cold]
    fn wait_overflow<L: CondLock + ?Sized>(&self, lock: &L, deadline: Option<Instant>) -> Result<Wakeup> {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let saved = match lock.release_save() {
            Ok(saved) => saved,
            Err(e) => {
                self.waiters.fetch_sub(1, Ordering::Relaxed);
                return Err(e);
            }
        };
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
            primitive::wait(&self.signals, 0, left);
        }
        let how = lock.acquire_restore(saved);
        if !notified {
            // Under the lock again: settle the account (see the module doc).
            if self.take_signal() {
                notified = true;
            } else {
                self.waiters.fetch_sub(1, Ordering::Relaxed);
            }
        }
        Ok(Wakeup { notified, how })
    }

    /// Wakes `min(n, waiting)` live waiters; the caller holds `lock`. Frees the
    /// slots of dead waiters it meets on the way.
    pub fn notify<L: CondLock + ?Sized>(&self, lock: &L, n: u32) -> Result<u32> {
        if !lock.is_owned() {
            return Err(lock.not_owned("Condition.notify"));
        }
        let mut k = 0;
        if n > 0 && self.occupied.load(Ordering::Relaxed) > 0 {
            let start = self.next.load(Ordering::Relaxed) as usize % WAITER_SLOTS;
            for j in 0..WAITER_SLOTS {
                if k == n {
                    break;
                }
                let i = (start + j) % WAITER_SLOTS;
                let slot = &self.slots[i];
                let v = slot.load(Ordering::Relaxed);
                if v == 0 {
                    continue;
                }
                if !ident::alive(v & PID_MASK) {
                    self.free(slot, v);
                    continue;
                }
                if v & NOTIFIED == 0
                    && slot.compare_exchange(v, v | NOTIFIED, Ordering::Release, Ordering::Relaxed).is_ok()
                {
                    primitive::wake(slot, 1);
                    k += 1;
                    self.next.store(((i + 1) % WAITER_SLOTS) as u32, Ordering::Relaxed);
                }
            }
        }
        let w = self.waiters.load(Ordering::Relaxed);
        let extra = (n - k).min(w);
        if extra > 0 {
            self.waiters.store(w - extra, Ordering::Relaxed);
            self.signals.fetch_add(extra, Ordering::Release);
            primitive::wake(&self.signals, extra);
        }
        Ok(k + extra)
    }

    /// Live waiters not yet notified (each slot's process is checked; overflow
    /// waiters are counted as they are).
    pub fn waiting(&self) -> u32 {
        let slotted = self
            .slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&v| v != 0 && v & NOTIFIED == 0 && ident::alive(v & PID_MASK))
            .count() as u32;
        slotted + self.waiters.load(Ordering::Relaxed)
    }
}

impl Object for RawCondition {
    const KIND: u16 = kind::CONDITION;
    const NAME: &'static str = "Condition";
    fn aux() -> u64 {
        LAYOUT
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Lock {}
    impl Sealed for crate::RLock {}
    impl Sealed for crate::RawLock {}
    impl Sealed for crate::RawRLock {}
}

/// A lock a [`Condition`] can wait on: [`RLock`] or [`Lock`] (or their raw
/// bodies, for [`RawCondition`] embedded in another crate's shared header).
pub trait CondLock: sealed::Sealed {
    /// What `release_save` remembers (the `RLock` depth).
    type Saved;
    /// Whether the caller holds the lock: its thread, for `RLock`; its process,
    /// for `Lock`, which records no owning thread (so another thread of the
    /// holding process passes too; CPython's check for a `Lock` is weaker still:
    /// see the module doc).
    fn is_owned(&self) -> bool;
    /// Releases the lock entirely.
    fn release_save(&self) -> Result<Self::Saved>;
    /// Takes the lock back as it was.
    fn acquire_restore(&self, saved: Self::Saved) -> Acquired;
    /// The error for a caller that does not hold the lock.
    fn not_owned(&self, what: &'static str) -> SyncError;
    /// Python's `acquire(block, timeout)`: what the condition's `acquire`,
    /// `try_acquire` and `acquire_timeout` call. `true` once held.
    fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool>;
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
    fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        RLock::acquire_with(self, block, timeout)
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
    fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        Lock::acquire_with(self, block, timeout)
    }
    fn release(&self) -> Result<()> {
        Lock::release(self)
    }
}

impl CondLock for RawRLock {
    type Saved = u32;
    fn is_owned(&self) -> bool {
        RawRLock::is_owned(self)
    }
    fn release_save(&self) -> Result<u32> {
        self.release_all("Condition.wait")
    }
    fn acquire_restore(&self, depth: u32) -> Acquired {
        self.restore(depth)
    }
    fn not_owned(&self, what: &'static str) -> SyncError {
        self.not_owner(what)
    }
    fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        if block {
            Ok(self.lock(timeout.and_then(shared::deadline))?.is_some())
        } else {
            self.try_lock()
        }
    }
    fn release(&self) -> Result<()> {
        self.unlock()
    }
}

impl CondLock for RawLock {
    type Saved = ();
    fn is_owned(&self) -> bool {
        self.holder() == Some(ident::pid())
    }
    fn release_save(&self) -> Result<()> {
        CondLock::release(self)
    }
    fn acquire_restore(&self, _: ()) -> Acquired {
        self.lock(None).unwrap_or(Acquired::Clean)
    }
    fn not_owned(&self, what: &'static str) -> SyncError {
        SyncError::NotOwner { what, pid: ident::pid(), tid: ident::tid(), owner_pid: self.holder().unwrap_or(0) }
    }
    fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        Ok(if block { self.lock(timeout.and_then(shared::deadline)).is_some() } else { self.try_lock() })
    }
    fn release(&self) -> Result<()> {
        if self.unlock() {
            Ok(())
        } else {
            Err(SyncError::NotHeld { what: "Lock" })
        }
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
/// // Nobody notifies: a typed timeout (the lock is held again).
/// assert!(matches!(c.wait_timeout(Duration::from_millis(1)), Err(mproc_sync::SyncError::Timeout { .. })));
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

    /// Python's `acquire()` on the underlying lock: waits as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        self.lock.acquire_with(true, None).map(drop)
    }

    /// Python's `acquire(block=False)` on the underlying lock: never blocks;
    /// [`SyncError::WouldBlock`] if it is busy.
    pub fn try_acquire(&self) -> Result<()> {
        if self.lock.acquire_with(false, None)? {
            Ok(())
        } else {
            Err(SyncError::WouldBlock { what: "Condition" })
        }
    }

    /// Python's `acquire(timeout=t)` on the underlying lock:
    /// [`SyncError::Timeout`] after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        if self.lock.acquire_with(true, Some(timeout))? {
            Ok(())
        } else {
            Err(SyncError::Timeout { what: "Condition", after: timeout })
        }
    }

    /// Python's `release()` on the underlying lock.
    pub fn release(&self) -> Result<()> {
        self.lock.release()
    }

    /// The shared body.
    pub fn raw(&self) -> &RawCondition {
        self.place.raw()
    }

    /// Waits until notified; the caller holds the lock, which is released
    /// while waiting and held again on return.
    ///
    /// If the lock's holder died while this waiter was away, the lock is taken
    /// over and `wait` returns as usual; [`wait_outcome`](Condition::wait_outcome)
    /// says so.
    pub fn wait(&self) -> Result<()> {
        self.raw().wait(&self.lock, None).map(drop)
    }

    /// As [`wait`](Condition::wait), at most `timeout`: [`SyncError::Timeout`]
    /// if not notified by then (the lock is held again either way).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        if self.raw().wait(&self.lock, shared::deadline(timeout))? {
            Ok(())
        } else {
            Err(SyncError::Timeout { what: "Condition", after: timeout })
        }
    }

    /// As [`wait`](Condition::wait), and also tells whether taking the lock back
    /// found its holder dead ([`Wakeup::owner_died`]; the lock is held either way).
    pub fn wait_outcome(&self, timeout: Option<Duration>) -> Result<Wakeup> {
        self.raw().wait_outcome(&self.lock, timeout.and_then(shared::deadline))
    }

    /// As [`wait_for`](Condition::wait_for): [`Wakeup::notified`] is the last
    /// value of `pred()`, [`Wakeup::owner_died`] whether any of the waits took
    /// the lock over from a dead holder.
    pub fn wait_for_outcome(&self, mut pred: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<Wakeup> {
        let deadline = timeout.and_then(shared::deadline);
        let mut how = Acquired::Clean;
        loop {
            if pred() {
                return Ok(Wakeup { notified: true, how });
            }
            let left = shared::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return Ok(Wakeup { notified: false, how });
            }
            if self.raw().wait_outcome(&self.lock, deadline)?.owner_died() {
                how = Acquired::OwnerDied;
            }
        }
    }

    /// Waits until `pred()` holds (checked under the lock, before each wait).
    pub fn wait_for(&self, pred: impl FnMut() -> bool) -> Result<()> {
        self.wait_for_outcome(pred, None).map(drop)
    }

    /// As [`wait_for`](Condition::wait_for), at most `timeout`:
    /// [`SyncError::Timeout`] if `pred()` still fails then.
    pub fn wait_for_timeout(&self, pred: impl FnMut() -> bool, timeout: Duration) -> Result<()> {
        if self.wait_for_outcome(pred, Some(timeout))?.notified {
            Ok(())
        } else {
            Err(SyncError::Timeout { what: "Condition", after: timeout })
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

    /// Waiters (threads of live processes) waiting and not yet notified.
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
