//! `Barrier`: CPython's `threading.Barrier` algorithm in shared memory.
//!
//! The state machine is CPython's (`threading.Barrier`): `FILLING` while
//! parties arrive; the last arrival runs the action and moves to `DRAINING`;
//! the waiters leave, and the last to leave moves back to `FILLING`. New
//! arrivals wait while the barrier drains, so a slow waiter of one pass can
//! never be confused with the next pass. `abort` (or a timeout, or a panicking
//! action) moves to `BROKEN`; `reset` moves to `RESETTING` until the waiters
//! have left, then to `FILLING`. Waiters of a broken or reset pass get
//! [`SyncError::BrokenBarrier`]. The index a waiter gets is its arrival order in
//! the pass, so exactly one waiter per pass gets 0.
//!
//! The condition CPython uses is built here from the barrier's own
//! [`RawLock`] and a sequence word: a waiter reads `seq` under the lock,
//! unlocks, and sleeps while `seq` is unchanged; `notify_all` bumps `seq` and
//! wakes every sleeper.
//!
//! # Party death
//! A party SIGKILLed inside `wait` would leave its pass one short forever (and a
//! later `reset` waiting for it to leave). So each party inside `wait` writes its
//! pid in a slot of a small table ([`PARTY_SLOTS`]), and a sleeping party wakes
//! at least every [`OWNER_POLL`] (50 ms) to check, under the lock, that the pids
//! there are alive (the liveness test of `lock.rs`). A dead party's slot is
//! freed and it stops being counted; if its pass was still filling, the barrier
//! breaks, so the others get [`SyncError::BrokenBarrier`] within a poll
//! interval, with or without a timeout. `reset` also drops dead parties first,
//! so a reset after a death completes. If a party dies holding the internal
//! lock, the next process to take the lock over breaks the barrier (and, when
//! every party is tracked, recounts the parties inside from the table).
//!
//! Limits: parties past the first [`PARTY_SLOTS`] concurrent ones are not
//! tracked (with more parties than slots, a death among them is seen only by a
//! timeout, as in the first version); a dead party's pid reused by a new process
//! before the check looks alive, as for `Lock`. Waiting parties poll every 50
//! ms, like waiters on a long-held `Lock`.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Result, SyncError};
use crate::ident;
use crate::lock::{Acquired, RawLock, OWNER_POLL};
use crate::primitive::{self, AtomicU32, AtomicU64, Ordering, WaitOutcome};
use crate::shared::{self, kind, placed, Object, Place};

/// Parties are arriving.
pub const FILLING: u32 = 0;
/// The pass is complete; its waiters are leaving.
pub const DRAINING: u32 = 1;
/// `reset` was called; waiters are leaving with `BrokenBarrier`.
pub const RESETTING: u32 = 2;
/// Broken by `abort`, a timeout or a failed action, until `reset`.
pub const BROKEN: u32 = 3;

const NO_TIMEOUT: u64 = u64::MAX;

/// Parties inside `wait` whose pid is recorded for death detection.
pub const PARTY_SLOTS: usize = if cfg!(loom) { 2 } else { 32 };
/// The header check value: layout number 2 (party slots) and the slot count.
const LAYOUT: u64 = (2 << 32) | PARTY_SLOTS as u64;

/// The shared-memory body of a [`Barrier`].
#[repr(C)]
pub struct RawBarrier {
    /// Guards `state` and `count`.
    lock: RawLock,
    /// Bumped by every `notify_all`; the futex word waiters sleep on.
    seq: AtomicU32,
    /// [`FILLING`], [`DRAINING`], [`RESETTING`] or [`BROKEN`]; changed under `lock`.
    state: AtomicU32,
    /// Parties inside `wait` (arrived in this pass, or still leaving); under `lock`.
    count: AtomicU32,
    /// The number of parties (fixed).
    parties: u32,
    _pad: u32,
    /// The default timeout in nanoseconds, `u64::MAX` for none (fixed).
    timeout_ns: AtomicU64,
    /// The pids of parties inside `wait` (0: free); changed under `lock`.
    pids: [AtomicU32; PARTY_SLOTS],
}

#[cfg(not(loom))]
const _: () =
    assert!(std::mem::size_of::<RawBarrier>() == 32 + 4 * PARTY_SLOTS && std::mem::align_of::<RawBarrier>() == 8);

/// The barrier's lock, held: unlocks on drop.
struct Held<'a>(&'a RawBarrier);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.lock.unlock();
    }
}

impl RawBarrier {
    /// A barrier for `parties` parties with a default `timeout`.
    pub fn new(parties: usize, timeout: Option<Duration>) -> Result<RawBarrier> {
        let parties = u32::try_from(parties).ok().filter(|&p| p > 0).ok_or_else(|| SyncError::InvalidArgument {
            what: "Barrier parties",
            value: parties.to_string(),
            expected: "between 1 and 4294967295",
        })?;
        let timeout_ns = timeout.map_or(NO_TIMEOUT, |t| u64::try_from(t.as_nanos()).unwrap_or(NO_TIMEOUT - 1));
        Ok(RawBarrier {
            lock: RawLock::new(),
            seq: AtomicU32::new(0),
            state: AtomicU32::new(FILLING),
            count: AtomicU32::new(0),
            parties,
            _pad: 0,
            timeout_ns: AtomicU64::new(timeout_ns),
            pids: std::array::from_fn(|_| AtomicU32::new(0)),
        })
    }

    fn hold(&self) -> Held<'_> {
        if self.lock.lock(None) == Some(Acquired::OwnerDied) {
            // A process died mid-update: nobody can trust this pass any more.
            self.drop_dead();
            if self.parties as usize <= PARTY_SLOTS {
                // Every party inside is in the table: recount from it, in case
                // the dead one was between counting itself and taking a slot.
                let inside = self.pids.iter().filter(|p| p.load(Ordering::Relaxed) != 0).count();
                self.count.store(inside as u32, Ordering::Relaxed);
            }
            self.state.store(BROKEN, Ordering::Relaxed);
            self.notify_all();
        }
        Held(self)
    }

    /// Records this party's pid; under the lock. `None` if the table is full.
    fn claim(&self) -> Option<&AtomicU32> {
        let me = ident::pid();
        self.pids.iter().find(|p| p.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed).is_ok())
    }

    /// Frees the slots of dead parties and stops counting them; under the lock.
    /// A pass still filling breaks; a drained or reset pass left only by the
    /// dead reopens.
    fn drop_dead(&self) {
        let mut dead = 0;
        for p in &self.pids {
            let pid = p.load(Ordering::Relaxed);
            if pid != 0
                && !ident::alive(pid)
                && p.compare_exchange(pid, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                dead += 1;
            }
        }
        if dead == 0 {
            return;
        }
        let left = self.count.load(Ordering::Relaxed).saturating_sub(dead);
        self.count.store(left, Ordering::Relaxed);
        match self.state() {
            FILLING => self.break_(),
            DRAINING | RESETTING if left == 0 => {
                self.state.store(FILLING, Ordering::Relaxed);
                self.notify_all();
            }
            _ => {}
        }
    }

    fn state(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }

    fn notify_all(&self) {
        self.seq.fetch_add(1, Ordering::Release);
        primitive::wake_all(&self.seq);
    }

    /// Waits for a `notify_all` (the lock held on entry and on return); the
    /// flag is true when `deadline` passed instead.
    fn wait_notified(&self, held: Held<'_>, deadline: Option<Instant>) -> (Held<'_>, bool) {
        let seq = self.seq.load(Ordering::Relaxed);
        drop(held);
        let (timed_out, napped) = match shared::remaining(deadline) {
            Some(Duration::ZERO) => (true, false),
            left => {
                // Nap at most OWNER_POLL, to check on the other parties.
                let nap = left.map_or(OWNER_POLL, |l| l.min(OWNER_POLL));
                let napped = primitive::wait(&self.seq, seq, Some(nap)) == WaitOutcome::TimedOut;
                (napped && shared::remaining(deadline) == Some(Duration::ZERO), napped)
            }
        };
        let held = self.hold();
        if napped {
            self.drop_dead();
        }
        (held, timed_out)
    }

    fn break_(&self) {
        self.state.store(BROKEN, Ordering::Relaxed);
        self.notify_all();
    }

    /// The default timeout.
    pub fn timeout(&self) -> Option<Duration> {
        match self.timeout_ns.load(Ordering::Relaxed) {
            NO_TIMEOUT => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Waits for the other parties; returns this party's arrival index.
    /// `action` runs in the last party to arrive, before the others are released.
    pub fn wait(&self, timeout: Option<Duration>, action: Option<&(dyn Fn() + Send + Sync)>) -> Result<usize> {
        let deadline = timeout.or_else(|| self.timeout()).and_then(shared::deadline);
        let mut held = self.hold();
        // Enter: wait while the previous pass drains or resets.
        while matches!(self.state(), DRAINING | RESETTING) {
            held = self.wait_notified(held, None).0;
        }
        if self.state() == BROKEN {
            return Err(SyncError::BrokenBarrier);
        }
        let index = self.count.fetch_add(1, Ordering::Relaxed);
        let slot = self.claim();
        let result = if index + 1 == self.parties {
            // Release: the last to arrive runs the action and opens the barrier.
            match action.map(|a| catch_unwind(AssertUnwindSafe(a))) {
                Some(Err(panic)) => {
                    self.break_();
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(non-string panic)".into());
                    Err(SyncError::BarrierAction { message })
                }
                _ => {
                    self.state.store(DRAINING, Ordering::Relaxed);
                    self.notify_all();
                    Ok(index as usize)
                }
            }
        } else {
            loop {
                if self.state() != FILLING {
                    break if self.state() == DRAINING { Ok(index as usize) } else { Err(SyncError::BrokenBarrier) };
                }
                let (h, timed_out) = self.wait_notified(held, deadline);
                held = h;
                if timed_out && self.state() == FILLING {
                    // This waiter's timeout breaks the barrier: it gets the
                    // timeout, the others `BrokenBarrier`.
                    self.break_();
                    let after = timeout.or_else(|| self.timeout()).unwrap_or_default();
                    break Err(SyncError::Timeout { what: "Barrier", after });
                }
            }
        };
        // Exit: the last to leave a drained or reset pass reopens the barrier.
        if let Some(slot) = slot {
            slot.store(0, Ordering::Relaxed);
        }
        if self.count.fetch_sub(1, Ordering::Relaxed) == 1 && matches!(self.state(), DRAINING | RESETTING) {
            self.state.store(FILLING, Ordering::Relaxed);
            self.notify_all();
        }
        drop(held);
        result
    }

    /// Breaks the barrier: current and future waiters get `BrokenBarrier` until
    /// [`reset`](RawBarrier::reset).
    pub fn abort(&self) {
        let _held = self.hold();
        self.break_();
    }

    /// Returns the barrier to its initial state; current waiters get `BrokenBarrier`.
    pub fn reset(&self) {
        let _held = self.hold();
        self.drop_dead();
        if self.count.load(Ordering::Relaxed) > 0 {
            if matches!(self.state(), FILLING | BROKEN) {
                self.state.store(RESETTING, Ordering::Relaxed);
            }
        } else {
            self.state.store(FILLING, Ordering::Relaxed);
        }
        self.notify_all();
    }

    /// Parties waiting in the current pass.
    pub fn n_waiting(&self) -> usize {
        let _held = self.hold();
        if self.state() == FILLING {
            self.count.load(Ordering::Relaxed) as usize
        } else {
            0
        }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.state() == BROKEN
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.parties as usize
    }
}

impl Object for RawBarrier {
    const KIND: u16 = kind::BARRIER;
    const NAME: &'static str = "Barrier";
    fn aux() -> u64 {
        LAYOUT
    }
}

/// The action a barrier runs when a pass completes.
type Action = Arc<dyn Fn() + Send + Sync>;

/// A barrier shared between processes: Python's `multiprocessing.Barrier`.
///
/// The action is local to the handle and its forked copies (it runs in the
/// last process to arrive, if that process's handle has it); a handle imported
/// by a spawned child has none unless [`with_action`](Barrier::with_action)
/// gives it one.
///
/// ```
/// let b = mproc_sync::Barrier::new(1).unwrap();
/// assert_eq!(b.wait().unwrap(), 0);
/// assert!(mproc_sync::Barrier::new(0).is_err());
/// ```
#[doc(alias = "multiprocessing.Barrier")]
#[derive(Clone)]
pub struct Barrier {
    place: Place<RawBarrier>,
    action: Option<Action>,
}

placed!(Barrier, RawBarrier);

impl Barrier {
    /// A barrier for `parties` processes (at least 1), in the shared arena.
    pub fn new(parties: usize) -> Result<Barrier> {
        Barrier::with(parties, None)
    }

    /// Python's `Barrier(parties, timeout=...)`: with a default timeout for `wait`.
    pub fn with(parties: usize, timeout: Option<Duration>) -> Result<Barrier> {
        Ok(Barrier { place: Place::new(RawBarrier::new(parties, timeout)?)?, action: None })
    }

    /// A barrier placed in `seg` at `offset`.
    pub fn new_in(
        seg: &mproc_shm::Segment,
        offset: usize,
        parties: usize,
        timeout: Option<Duration>,
    ) -> Result<Barrier> {
        Ok(Barrier { place: Place::new_in(seg, offset, RawBarrier::new(parties, timeout)?)?, action: None })
    }

    fn from_place(place: Place<RawBarrier>) -> Barrier {
        Barrier { place, action: None }
    }

    /// Gives this handle an action, run by the last party to arrive at each pass
    /// (Python's `action`). If it panics, the barrier breaks.
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Barrier {
        self.action = Some(Arc::new(action));
        self
    }

    /// The shared body.
    pub fn raw(&self) -> &RawBarrier {
        self.place.raw()
    }

    /// Waits for every party, at most the default timeout; returns this
    /// process's arrival index (exactly one party per pass gets 0).
    pub fn wait(&self) -> Result<usize> {
        self.raw().wait(None, self.action.as_deref())
    }

    /// Waits at most `timeout`; on timeout the barrier breaks: this waiter gets
    /// [`SyncError::Timeout`], every other waiter [`SyncError::BrokenBarrier`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.raw().wait(Some(timeout), self.action.as_deref())
    }

    /// Breaks the barrier.
    pub fn abort(&self) {
        self.raw().abort()
    }

    /// Returns the barrier to its initial state; waiters get `BrokenBarrier`.
    pub fn reset(&self) {
        self.raw().reset()
    }

    /// Parties waiting in the current pass.
    pub fn n_waiting(&self) -> usize {
        self.raw().n_waiting()
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.raw().broken()
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.raw().parties()
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("broken", &self.broken())
            .field("has_action", &self.action.is_some())
            .finish()
    }
}
