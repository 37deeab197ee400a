//! `Lock`: a cross-process mutex on one shared futex word, with owner-death
//! recovery.
//!
//! Algorithm: Drepper's futex mutex ("Futexes Are Tricky", mutex 2) with the
//! holder's pid as the locked value. Fast path: one `compare_exchange` of
//! `0 → pid`. Slow path, with no spinning: set [`PARKED_BIT`] and `FUTEX_WAIT`.
//! `unlock` swaps in 0 and issues `FUTEX_WAKE` only if `PARKED_BIT` was set.
//! A waiter takes a free lock as plain `pid` until it has slept; after that it
//! takes it as `pid | PARKED_BIT`, because the unlock that woke it cleared the
//! bit while other sleepers may remain (Drepper's "take it as contended";
//! glibc takes it so even before sleeping, which costs a needless wake).
//! Uncontended lock + unlock is thus two atomic read-modify-writes, as for
//! glibc's mutex — the least a futex lock can do, since `unlock` must learn
//! atomically whether somebody sleeps. Compiled (x86-64, the
//! `lock_uncontended` bench), `lock()` and the guard's drop are a load of the
//! cached pid, `lock cmpxchg`, `xchg` and a test of [`PARKED_BIT`]: recording
//! the holder for owner-death recovery costs nothing, since the pid is the
//! locked value; there is no fence, no poison flag and no out-of-line call.
//!
//! # Why the waiter does not spin
//! glibc's default mutex does not spin either, and the `value_contended` bench
//! (two processes taking turns at a locked increment) shows why: a waiter
//! spinning on the word keeps pulling its cache line away from the holder, and
//! as soon as it sees the word free it takes the lock, so the line changes
//! cores on every increment. A waiter that sleeps instead lets the holder run
//! its next critical sections on a line that stays in its cache. On the 2-vCPU
//! bench machine (a `pause` there takes ~30 ns) the old policy, up to 100
//! `pause`s of spinning before sleeping, took ~90–100 ns per increment against
//! ~50–60 ns for a `PTHREAD_PROCESS_SHARED` glibc mutex; in one run of a sweep
//! over a copy of the lock (slower overall, called through function pointers),
//! spinning 0, 4, 16 and 64 times took 65, 70, 93 and 94 ns. Without spinning
//! the lock runs level with the glibc mutex (~45–50 ns each; the figures are
//! noisy, and fall to the uncontended ~24 ns whenever another load leaves the
//! two processes one CPU to take turns on).
//!
//! What both still pay is a futex call every ~10 increments (about 1 M per
//! 10 M increments, of which only ~150 actually sleep): the waiter's
//! `FUTEX_WAIT` finds the word already changed, because the holder released
//! and re-took the lock meanwhile, and the holder's `FUTEX_WAKE` finds nobody
//! asleep. Sparse probing (look at the word after 1, 2, 4 … 64 `pause`s, ~30
//! µs in all, before each sleep) avoids both the ping-pong and these calls and
//! measured ~35 ns (that copy) against glibc's ~58 ns in one quiet run, but not
//! reproducibly on the shared machine, and spinning wastes a CPU whose holder
//! has been preempted; it is not used. The price of not spinning is latency
//! when a lock is held briefly and rarely contended: the waiter sleeps (a
//! system call, and a wake-up by the holder) where it could have waited a few
//! hundred nanoseconds.
//!
//! # Owner death
//! A process SIGKILLed while it holds the lock cannot release it, and CPython's
//! semaphore-based lock hangs every other process forever. Here the word names
//! the holder, so waiters can tell. A waiter never sleeps longer than
//! [`OWNER_POLL`] (50 ms) at a time; each time a sleep times out with the same
//! holder in the word it asks whether that process is alive (`pidfd_open(2)`:
//! `ESRCH` means gone, a readable pidfd means a zombie). If the holder is dead,
//! the waiter takes the lock over with one `compare_exchange` of the dead word
//! to its own pid — so exactly one waiter wins — and reports it:
//! [`LockGuard::owner_died`] is true, [`Lock::acquire`] returns `true` (the lock
//! is held either way; the data it protects may be half-updated). Recovery thus
//! takes at most one poll interval plus a few system calls after the death.
//!
//! Limits: death is the death of the **process**; a thread that exits holding a
//! lock leaves it held, as in Python (any thread of any process may release a
//! `Lock`). Pids are compared, so (1) a holder's pid reused by a new process
//! before a waiter polls makes the waiter believe the holder alive (it then waits
//! for that process instead — it never takes a live holder's lock), and (2) all
//! users must share one pid namespace. Uncontended use costs nothing extra; a
//! waiter on a long-held lock wakes every 50 ms to poll.
//!
//! Fork: a child forked while a thread of the parent holds a lock sees the lock
//! held by the parent (alive), as with any fork of a multi-threaded process.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{Result, SyncError};
use crate::ident::{self, PID_BITS};
use crate::primitive::{self, AtomicU32, Ordering, WaitOutcome};
use crate::shared::{self, kind, placed, Object, Place};

#[cfg(feature = "tokio")]
#[path = "asyncio/lock.rs"]
mod asyncio;

/// The holder's pid (0: unlocked).
pub const PID_MASK: u32 = (1 << PID_BITS) - 1;
/// Some waiter may be asleep on the futex: `unlock` must wake one.
pub const PARKED_BIT: u32 = 1 << PID_BITS;
/// The longest a waiter sleeps before checking that the holder is alive.
pub const OWNER_POLL: Duration = Duration::from_millis(50);

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Taken from a live holder or an unlocked state.
    Clean,
    /// The previous holder died holding it; the caller now holds it, and the data
    /// it protects may be inconsistent.
    OwnerDied,
}

/// The shared-memory body of a [`Lock`]: one futex word.
///
/// Public so that other crates can embed a lock in their own shared headers.
#[repr(C)]
pub struct RawLock {
    /// The lock word:
    ///
    /// ```text
    ///  bit 31   bit 30        bits 29..0
    /// [  0  ] [PARKED_BIT] [ holder pid ]
    /// ```
    ///
    /// | word               | meaning                                                |
    /// |--------------------|--------------------------------------------------------|
    /// | `0`                | unlocked, nobody asleep                                |
    /// | `pid`              | held by process `pid`, nobody asleep                   |
    /// | `pid \| PARKED_BIT` | held by `pid`; waiters may sleep: unlock wakes one     |
    ///
    /// `PARKED_BIT` without a pid never occurs: unlock stores 0.
    state: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawLock>() == 4 && std::mem::align_of::<RawLock>() == 4);

impl Default for RawLock {
    fn default() -> Self {
        RawLock::new()
    }
}

impl RawLock {
    /// An unlocked lock.
    pub fn new() -> RawLock {
        RawLock { state: AtomicU32::new(0) }
    }

    /// Takes the lock if it is free.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.state.compare_exchange(0, ident::pid(), Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Takes the lock if it is free, or if its holder has died (then
    /// [`Acquired::OwnerDied`]); `None` if a live process holds it. Unlike
    /// [`try_lock`](RawLock::try_lock), a failed attempt costs a liveness check
    /// of the holder (a few system calls).
    #[inline]
    pub fn try_acquire(&self) -> Option<Acquired> {
        if self.try_lock() {
            return Some(Acquired::Clean);
        }
        self.take_from_dead()
    }

    /// Takes the lock over if its holder is dead: the compare-exchange of the
    /// dead holder's word lets exactly one taker win; `PARKED_BIT` is kept, as
    /// sleepers may remain.
    #[cold]
    fn take_from_dead(&self) -> Option<Acquired> {
        let s = self.state.load(Ordering::Relaxed);
        let holder = s & PID_MASK;
        if holder == 0 {
            // Freed meanwhile: one more plain attempt.
            return self.try_lock().then_some(Acquired::Clean);
        }
        if ident::alive(holder) {
            return None;
        }
        let me = ident::pid() | (s & PARKED_BIT);
        self.state.compare_exchange(s, me, Ordering::Acquire, Ordering::Relaxed).is_ok().then_some(Acquired::OwnerDied)
    }

    /// Takes the lock, waiting until `deadline` (`None`: no limit). `None` when
    /// the deadline passed first.
    #[inline]
    pub fn lock(&self, deadline: Option<Instant>) -> Option<Acquired> {
        if self.try_lock() {
            return Some(Acquired::Clean);
        }
        self.lock_slow(deadline)
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> Option<Acquired> {
        let me = ident::pid();
        // What this waiter stores into a free word: `me` until it has slept; then
        // `me | PARKED_BIT`, because the unlock that woke it cleared the bit and
        // other sleepers may remain (Drepper's "take it as contended").
        let mut take = me;
        loop {
            let parked = match self.take_or_park(take) {
                Ok(()) => return Some(Acquired::Clean),
                Err(parked) => parked,
            };
            let left = shared::remaining(deadline);
            if left == Some(Duration::ZERO) {
                // Out of time (or a zero timeout): a dead holder still gives way.
                return self.take_from_dead();
            }
            let nap = left.map_or(OWNER_POLL, |l| l.min(OWNER_POLL));
            take = me | PARKED_BIT;
            if primitive::wait(&self.state, parked, Some(nap)) == WaitOutcome::TimedOut {
                if let Some(how) = self.take_over(parked, take) {
                    return Some(how);
                }
            }
        }
    }

    /// The slow path's look at the word: takes a free lock by storing `take`
    /// (`Ok`), or announces a sleeper on a held one and returns the value to
    /// sleep on (`Err`: the word with [`PARKED_BIT`]). No spinning first; see
    /// the module doc.
    #[inline]
    fn take_or_park(&self, take: u32) -> std::result::Result<(), u32> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & PID_MASK == 0 {
                match self.state.compare_exchange(s, take, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => return Ok(()),
                    Err(now) => {
                        s = now;
                        continue;
                    }
                }
            }
            if s & PARKED_BIT == 0 {
                if let Err(now) = self.state.compare_exchange(s, s | PARKED_BIT, Ordering::Relaxed, Ordering::Relaxed) {
                    s = now;
                    continue;
                }
            }
            return Err(s | PARKED_BIT);
        }
    }

    /// An owner poll found the word still `parked` after a full nap: takes the
    /// lock over (storing `take`) if its holder is dead. One compare-exchange
    /// of the dead word, so exactly one waiter wins.
    #[cold]
    fn take_over(&self, parked: u32, take: u32) -> Option<Acquired> {
        let holder = parked & PID_MASK;
        (self.state.load(Ordering::Relaxed) == parked
            && !ident::alive(holder)
            && self.state.compare_exchange(parked, take, Ordering::Acquire, Ordering::Relaxed).is_ok())
        .then_some(Acquired::OwnerDied)
    }

    /// Releases the lock; `false` if it was not held (nothing changes then).
    #[inline]
    pub fn unlock(&self) -> bool {
        let prev = self.state.swap(0, Ordering::Release);
        if prev & PARKED_BIT != 0 {
            self.wake_one();
        }
        prev != 0
    }

    #[cold]
    fn wake_one(&self) {
        primitive::wake(&self.state, 1);
    }

    /// The pid of the holder, if held.
    pub fn holder(&self) -> Option<u32> {
        match self.state.load(Ordering::Relaxed) & PID_MASK {
            0 => None,
            pid => Some(pid),
        }
    }
}

impl Object for RawLock {
    const KIND: u16 = kind::LOCK;
    const NAME: &'static str = "Lock";
    fn accepts(kind: u16, _aux: u64) -> bool {
        // The lock of a `Synchronized<T>` sits first in its body.
        kind == kind::LOCK || kind == kind::SYNCHRONIZED
    }
}

/// A lock shared between processes: Python's `multiprocessing.Lock`.
///
/// Not reentrant; any thread of any process may release it (Python semantics).
/// A handle is a cheap clone; move it into a forked child, or send it to a
/// spawned one through [`Share`](mproc_shm::Share).
///
/// ```
/// let lock = mproc_sync::Lock::new().unwrap();
/// {
///     let _g = lock.lock().unwrap();
///     assert!(lock.try_lock().is_err());
/// }
/// lock.try_acquire().unwrap();
/// lock.release().unwrap();
/// assert!(lock.release().is_err()); // not held
/// ```
#[doc(alias = "multiprocessing.Lock")]
#[derive(Clone)]
pub struct Lock {
    place: Place<RawLock>,
}

placed!(Lock, RawLock);

impl Lock {
    /// A new unlocked lock in the shared arena.
    pub fn new() -> Result<Lock> {
        Ok(Lock { place: Place::new(RawLock::new())? })
    }

    /// A new unlocked lock placed in `seg` at `offset` (see [`Lock::footprint`]).
    pub fn new_in(seg: &mproc_shm::Segment, offset: usize) -> Result<Lock> {
        Ok(Lock { place: Place::new_in(seg, offset, RawLock::new())? })
    }

    pub(crate) fn from_place(place: Place<RawLock>) -> Lock {
        Lock { place }
    }

    /// The shared body.
    #[inline]
    pub fn raw(&self) -> &RawLock {
        self.place.raw()
    }

    /// Takes the lock, waiting as long as it takes. If the holder died, the
    /// guard says so ([`LockGuard::owner_died`]).
    #[doc(alias = "acquire")]
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        match self.raw().lock(None) {
            Some(how) => Ok(LockGuard { lock: self, how }),
            None => unreachable!("a lock without deadline cannot time out"),
        }
    }

    /// Takes the lock if it is free, or if its holder died (the guard says so:
    /// [`LockGuard::owner_died`]); else [`SyncError::WouldBlock`].
    #[inline]
    pub fn try_lock(&self) -> Result<LockGuard<'_>> {
        match self.raw().try_acquire() {
            Some(how) => Ok(LockGuard { lock: self, how }),
            None => Err(SyncError::WouldBlock { what: "Lock" }),
        }
    }

    /// Takes the lock, waiting at most `timeout`, else [`SyncError::Timeout`].
    pub fn lock_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        match self.raw().lock(shared::deadline(timeout)) {
            Some(how) => Ok(LockGuard { lock: self, how }),
            None => Err(SyncError::Timeout { what: "Lock", after: timeout }),
        }
    }

    /// Python's `acquire()`: takes the lock, waiting as long as it takes (also
    /// from a dead holder). The caller must [`release`](Lock::release); the
    /// guard of [`lock`](Lock::lock) does that for you.
    pub fn acquire(&self) -> Result<()> {
        self.acquire_with(true, None).map(drop)
    }

    /// Python's `acquire(block=False)`: takes the lock if it is free (or its
    /// holder died), else [`SyncError::WouldBlock`]. Never blocks.
    pub fn try_acquire(&self) -> Result<()> {
        if self.acquire_with(false, None)? {
            Ok(())
        } else {
            Err(SyncError::WouldBlock { what: "Lock" })
        }
    }

    /// Python's `acquire(timeout=t)`: takes the lock, waiting at most
    /// `timeout`, else [`SyncError::Timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        if self.acquire_with(true, Some(timeout))? {
            Ok(())
        } else {
            Err(SyncError::Timeout { what: "Lock", after: timeout })
        }
    }

    pub(crate) fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        Ok(match (block, timeout) {
            (false, _) => self.raw().try_acquire().is_some(),
            (true, None) => self.raw().lock(None).is_some(),
            (true, Some(t)) => self.raw().lock(shared::deadline(t)).is_some(),
        })
    }

    /// Python's `release()`: unlocks; [`SyncError::NotHeld`] if it was not locked.
    pub fn release(&self) -> Result<()> {
        if self.raw().unlock() {
            Ok(())
        } else {
            Err(SyncError::NotHeld { what: "Lock" })
        }
    }

    /// Whether some process holds the lock now.
    pub fn is_locked(&self) -> bool {
        self.raw().holder().is_some()
    }

    /// The holder's pid, if held.
    pub fn holder(&self) -> Option<u32> {
        self.raw().holder()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("holder", &self.holder()).finish()
    }
}

/// Holds a [`Lock`]; unlocks on drop.
#[must_use = "the lock is released as soon as the guard drops"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    how: Acquired,
}

impl LockGuard<'_> {
    /// True when the lock was taken over from a holder that died holding it: the
    /// data it protects may be inconsistent.
    pub fn owner_died(&self) -> bool {
        self.how == Acquired::OwnerDied
    }

    /// How the lock was acquired.
    pub fn acquired(&self) -> Acquired {
        self.how
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.lock.raw().unlock();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("how", &self.how).finish()
    }
}
