//! The wake-up protocol of shared-memory pipes: one futex word per condition.
//!
//! A [`Bell`] is a 32-bit word in shared memory that one side *rings* after it
//! published something (a message, or room in the ring) and the other side
//! *sleeps on* when it found nothing. The word holds two flags and a counter:
//!
//! - [`SLEEP_FUTEX`]: the waiter is about to sleep (or sleeps) in `FUTEX_WAIT`
//!   on this word;
//! - [`SLEEP_POLL`]: the waiter is about to sleep (or sleeps) in `poll(2)` on
//!   its doorbell socket (`wait` over several connections), and needs a byte
//!   written there;
//! - bits 2..32: a counter that [`Bell::ring`] advances on every publish.
//!
//! The ringer publishes first (the ring's `Release` store of its index), then
//! [`ring`](Bell::ring)s: one `fetch_add` of the counter (`AcqRel`). The waiter
//! [`arm`](Bell::arm_futex)s: one `fetch_or` of its flag (`AcqRel`), then looks
//! at the ring again, and only then sleeps with `FUTEX_WAIT` on the armed value.
//! Both are read-modify-writes of the same word, so they are ordered in its
//! modification order:
//!
//! - the ring comes first: the arm reads from it, synchronises with it, and the
//!   waiter's second look at the ring sees the message — it does not sleep;
//! - the arm comes first: the ring reads the flag, clears the flags and wakes
//!   the waiter (`FUTEX_WAKE`, or a doorbell byte); and since the counter moved,
//!   a `FUTEX_WAIT` issued after the wake finds the word changed and returns.
//!
//! Either way no wake-up is lost, with no `SeqCst` fence on the fast path: the
//! ringer pays one uncontended `lock xadd` per message and makes a system call
//! only when the flag is set. `ipc/tests/loom_pipe.rs` model-checks this.
//!
//! The waiter never relies on a wake-up alone for end of file: a peer killed
//! mid-way rings nothing, so sleeps are capped and the waiter then looks at its
//! doorbell socket for `POLLHUP` (see `pipe.rs`).
//!
//! # Presence: whether spinning can pay
//! Beside its bells, each end of a pipe publishes a [`Presence`] word: whether
//! it sleeps in the kernel (futex or `poll(2)`) and the CPU it last waited on.
//! A waiter reads its peer's word to decide whether to spin: a peer that
//! sleeps cannot answer before someone wakes it, and a peer that last ran on
//! the waiter's own CPU is not running now, so spinning would only delay it.
//! The word is a hint, never part of the wake-up protocol above: a stale or
//! garbled value (a peer killed mid-way) costs time, never a lost wake-up.
//! The owner writes its word only when the value changes, so two ends spinning
//! on their own CPUs never move its cache line.

use std::time::Duration;

use mproc_sync::futex::{self, WaitOutcome};
use mproc_sync::primitive::{AtomicU32, Ordering};

/// Flag: the waiter sleeps (or is about to) in `FUTEX_WAIT` on the word.
pub const SLEEP_FUTEX: u32 = 1;
/// Flag: the waiter sleeps (or is about to) in `poll(2)` on its doorbell socket.
pub const SLEEP_POLL: u32 = 2;
/// Both flags.
const FLAGS: u32 = SLEEP_FUTEX | SLEEP_POLL;
/// One step of the counter.
const STEP: u32 = 4;

/// [`Presence`] bit: the end sleeps (or is about to) in the kernel.
const ASLEEP: u32 = 1;
/// [`Presence`] value of an end that is awake on no known CPU.
const AWAKE_NOWHERE: u32 = 0;

/// What one end of a pipe publishes about itself for its peer's spin decision
/// (see the module doc): an `ASLEEP` bit and, above it, its CPU plus one (0:
/// not known).
#[repr(transparent)]
pub struct Presence {
    word: AtomicU32,
}

impl Default for Presence {
    fn default() -> Self {
        Presence::new()
    }
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").field("asleep", &self.asleep()).field("cpu", &self.cpu()).finish()
    }
}

impl Presence {
    /// An end that is awake on no known CPU (the zeroed word).
    pub fn new() -> Presence {
        Presence { word: AtomicU32::new(AWAKE_NOWHERE) }
    }

    /// The owner is awake and waits on `cpu` (if known). Writes only on change.
    #[inline]
    pub fn awake_on(&self, cpu: Option<u32>) {
        let v = cpu.map_or(AWAKE_NOWHERE, |c| c.wrapping_add(1) << 1);
        if self.word.load(Ordering::Relaxed) != v {
            self.word.store(v, Ordering::Relaxed);
        }
    }

    /// Whether the owner sleeps (or is about to) in the kernel.
    #[inline]
    pub fn asleep(&self) -> bool {
        self.word.load(Ordering::Relaxed) & ASLEEP != 0
    }

    /// Marks the owner as about to sleep in the kernel; keeps its CPU.
    #[inline]
    pub fn fall_asleep(&self) {
        let v = self.word.load(Ordering::Relaxed);
        if v & ASLEEP == 0 {
            self.word.store(v | ASLEEP, Ordering::Relaxed);
        }
    }

    /// Marks the owner awake again, keeping its CPU; called by the owner after
    /// a sleep, and by the peer that just woke it (it will run soon).
    #[inline]
    pub fn wake(&self) {
        if self.word.load(Ordering::Relaxed) & ASLEEP != 0 {
            self.word.fetch_and(!ASLEEP, Ordering::Relaxed);
        }
    }

    /// The CPU the owner last published, if any.
    #[inline]
    pub fn cpu(&self) -> Option<u32> {
        match self.word.load(Ordering::Relaxed) >> 1 {
            0 => None,
            c => Some(c - 1),
        }
    }

    /// The raw word (for tests and debugging).
    pub fn load(&self) -> u32 {
        self.word.load(Ordering::Relaxed)
    }
}

/// What a [`Bell::ring`] found: who was waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rang {
    /// A futex sleeper was announced; `FUTEX_WAKE` has been issued.
    pub futex: bool,
    /// A `poll(2)` sleeper was announced: the caller must write a doorbell byte.
    pub poll: bool,
}

/// A wake-up word in shared memory (see the module doc).
#[repr(transparent)]
pub struct Bell {
    word: AtomicU32,
}

impl Default for Bell {
    fn default() -> Self {
        Bell::new()
    }
}

impl std::fmt::Debug for Bell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Bell").field(&self.word.load(Ordering::Relaxed)).finish()
    }
}

impl Bell {
    /// A bell with no waiter.
    pub fn new() -> Bell {
        Bell { word: AtomicU32::new(0) }
    }

    /// Call after publishing: advances the counter and, if a waiter announced
    /// itself, clears the flags and wakes it. One atomic `fetch_add` when nobody
    /// waits.
    #[inline]
    pub fn ring(&self) -> Rang {
        let old = self.word.fetch_add(STEP, Ordering::AcqRel);
        if old & FLAGS == 0 {
            return Rang::default();
        }
        self.ring_slow()
    }

    #[cold]
    fn ring_slow(&self) -> Rang {
        let old = self.word.fetch_and(!FLAGS, Ordering::AcqRel);
        let rang = Rang { futex: old & SLEEP_FUTEX != 0, poll: old & SLEEP_POLL != 0 };
        if rang.futex {
            futex::wake(&self.word, 1);
        }
        rang
    }

    /// Announces a futex sleep; returns the value to pass to [`sleep`](Bell::sleep).
    /// The caller must look at its condition again after this and before sleeping.
    #[inline]
    pub fn arm_futex(&self) -> u32 {
        self.word.fetch_or(SLEEP_FUTEX, Ordering::AcqRel) | SLEEP_FUTEX
    }

    /// Withdraws a futex announcement (after waking, or when the condition held).
    #[inline]
    pub fn disarm_futex(&self) {
        self.word.fetch_and(!SLEEP_FUTEX, Ordering::AcqRel);
    }

    /// Sleeps while the word still holds `armed` (from [`arm_futex`](Bell::arm_futex)),
    /// at most `timeout`. Returns at once if the bell rang since.
    #[inline]
    pub fn sleep(&self, armed: u32, timeout: Option<Duration>) -> WaitOutcome {
        futex::wait(&self.word, armed, timeout)
    }

    /// Announces a `poll(2)` sleep: the next [`ring`](Bell::ring) reports
    /// [`Rang::poll`], and its caller writes a doorbell byte. Look at the
    /// condition again after this and before polling.
    #[inline]
    pub fn arm_poll(&self) {
        self.word.fetch_or(SLEEP_POLL, Ordering::AcqRel);
    }

    /// Withdraws a `poll(2)` announcement.
    #[inline]
    pub fn disarm_poll(&self) {
        self.word.fetch_and(!SLEEP_POLL, Ordering::AcqRel);
    }

    /// Waits once for `ready`: arms, looks at `ready` again, sleeps at most
    /// `timeout` unless it holds, disarms. Returns whether `ready` held when
    /// last looked at (a `false` may be a timeout, a spurious wake-up or a
    /// wake-up without news, such as the peer closing: the caller decides).
    pub fn wait_once(&self, mut ready: impl FnMut() -> bool, timeout: Option<Duration>) -> bool {
        let armed = self.arm_futex();
        if ready() {
            self.disarm_futex();
            return true;
        }
        self.sleep(armed, timeout);
        self.disarm_futex();
        ready()
    }

    /// The raw word (for tests and debugging).
    pub fn load(&self) -> u32 {
        self.word.load(Ordering::Acquire)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Presence;

    #[test]
    fn presence_keeps_the_cpu_across_sleep_and_wake() {
        let p = Presence::new();
        assert!(!p.asleep());
        assert_eq!(p.cpu(), None);
        p.awake_on(Some(3));
        assert_eq!((p.asleep(), p.cpu()), (false, Some(3)));
        p.fall_asleep();
        assert_eq!((p.asleep(), p.cpu()), (true, Some(3)));
        p.wake();
        assert_eq!((p.asleep(), p.cpu()), (false, Some(3)));
        p.awake_on(Some(0));
        assert_eq!(p.cpu(), Some(0));
        p.awake_on(None);
        assert_eq!(p.cpu(), None);
    }
}
