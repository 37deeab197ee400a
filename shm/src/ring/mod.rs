//! Lock-free rings in shared memory: one file per algorithm.
//!
//! - [`spsc`]: [`SpscRing`], one producer and one consumer, variable-length byte
//!   messages packed back to back (for `Pipe`).
//! - [`mpmc`]: [`MpmcRing`], many producers and many consumers, one message per
//!   slot, crash-safe (for `Queue`).
//!
//! Both never block and never call the futex: they offer `try_push`/`try_pop`
//! and cheap `is_empty`/`len` hints, and the `ipc` crate waits on words of its own.

use serde::{Deserialize, Serialize};

use crate::{Block, Segment, SegmentToken};

pub mod mpmc;
pub mod spsc;

pub use mpmc::MpmcRing;
pub use spsc::{Consumer, Producer, ReadGrant, SpscRing, WriteGrant};

/// What a ring operation can report besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The ring has no room for the message now; it may later.
    #[error("ring full: no room for a message of {len} bytes now ({free} bytes free)")]
    Full {
        /// The message's length.
        len: usize,
        /// Bytes (SPSC) or slots (MPMC) free when it was tried.
        free: usize,
    },
    /// The message is larger than the ring can ever hold: retrying will not help.
    #[error("message of {len} bytes is larger than the ring can ever hold ({max} bytes at most)")]
    TooLarge {
        /// The message's length.
        len: usize,
        /// The largest message this ring accepts.
        max: usize,
    },
    /// The ring's memory holds a value no correct peer writes: a foreign writer or
    /// a stray store has corrupted it. Nothing out of bounds was read.
    #[error("ring corrupted at position {position}: {detail}")]
    Corrupt {
        /// The byte position (SPSC) or ticket (MPMC) where it was found.
        position: u64,
        /// What was found, and what was expected.
        detail: String,
    },
}

/// The spawn form of a ring handle: where its header lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RingToken {
    /// The segment holding the ring.
    pub seg: SegmentToken,
    /// The header's offset in that segment.
    pub offset: u64,
}

/// What keeps a ring's memory mapped.
pub(crate) enum Backing {
    /// A shared segment; the arena block, if the ring came from the arena.
    Shared { seg: Segment, offset: usize, _block: Option<Block> },
    /// Heap memory for loom models: loom's atomics cannot live in raw memory.
    #[cfg(loom)]
    Heap(#[allow(dead_code)] Box<dyn std::any::Any>),
}

/// A ring's memory, plus (under loom) one shadow cell per tracked unit of the
/// data area, so that loom checks every data access for a happens-before edge.
pub(crate) struct Region {
    pub(crate) backing: Backing,
    #[cfg(loom)]
    pub(crate) shadow: Box<[loom::cell::UnsafeCell<()>]>,
}

impl Region {
    pub(crate) fn shared(seg: Segment, offset: usize, block: Option<Block>) -> Region {
        Region {
            backing: Backing::Shared { seg, offset, _block: block },
            #[cfg(loom)]
            shadow: Box::new([]),
        }
    }

    /// The segment and offset of a shared ring (`None` for a loom heap ring).
    pub(crate) fn location(&self) -> Option<(&Segment, usize)> {
        match &self.backing {
            Backing::Shared { seg, offset, .. } => Some((seg, *offset)),
            #[cfg(loom)]
            Backing::Heap(_) => None,
        }
    }

    /// Records a read of shadow units `units` (loom only; free otherwise).
    #[inline]
    pub(crate) fn shadow_read(&self, _units: std::ops::Range<usize>) {
        #[cfg(loom)]
        for u in _units {
            if let Some(c) = self.shadow.get(u) {
                c.with(|_| ());
            }
        }
    }

    /// Records a write of shadow units `units` (loom only; free otherwise).
    #[inline]
    pub(crate) fn shadow_write(&self, _units: std::ops::Range<usize>) {
        #[cfg(loom)]
        for u in _units {
            if let Some(c) = self.shadow.get(u) {
                c.with_mut(|_| ());
            }
        }
    }
}

// SAFETY: the region is shared memory (or, under loom, heap memory reached only
// through loom's atomics and cells); it has no thread affinity.
unsafe impl Send for Region {}
// SAFETY: as for Send: `&Region` hands out only the location and shadow cells.
unsafe impl Sync for Region {}

/// This process's id, cached; a `pthread_atfork` child handler resets the cache,
/// so a forked child records its own pid in a ring's state words.
pub fn current_pid() -> u32 {
    use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
    static PID: AtomicU32 = AtomicU32::new(0);
    // 0: the atfork handler is not registered; 1: being registered; 2: registered.
    // Not a `Once`: a fork while another thread is inside `call_once` would leave
    // the child a `Once` that never completes, and its first ring operation would
    // hang. The pid is cached only once the handler is in place; a child forked
    // mid-registration asks the kernel each time instead.
    static HOOK: AtomicU8 = AtomicU8::new(0);
    extern "C" fn reset() {
        PID.store(0, Ordering::Relaxed);
    }
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    if HOOK.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: registering a handler that only stores to an atomic is
        // async-signal-safe, as a fork child handler must be.
        unsafe { libc::pthread_atfork(None, None, Some(reset)) };
        HOOK.store(2, Ordering::Release);
    }
    let p = rustix::process::getpid().as_raw_nonzero().get() as u32;
    if HOOK.load(Ordering::Acquire) == 2 {
        PID.store(p, Ordering::Relaxed);
    }
    p
}

/// Under loom there are no processes: this pid stands for a dead one, so that
/// models can forge a slot claimed by a process that died.
#[cfg(loom)]
#[doc(hidden)]
pub const LOOM_DEAD_PID: u32 = (1 << 30) - 1;

/// True unless `pid` certainly no longer runs: `kill(pid, 0)` fails with
/// `ESRCH`, or `/proc/<pid>/stat` shows a zombie (a killed child its parent has
/// not reaped yet still answers `kill`). Slow: call it only after spinning.
///
/// A pid reused by a new process reads as alive, which delays reclaiming the
/// dead holder's slot until that process exits; it never reclaims a live one.
#[cold]
pub fn process_alive(pid: u32) -> bool {
    #[cfg(loom)]
    {
        pid != LOOM_DEAD_PID
    }
    #[cfg(not(loom))]
    {
        if pid == 0 || pid > i32::MAX as u32 {
            return false;
        }
        // SAFETY: signal 0 performs only the existence and permission check.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the last ')' (the command name may contain one).
            Ok(stat) => !matches!(
                stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()),
                Some('Z' | 'X' | 'x')
            ),
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        }
    }
}
