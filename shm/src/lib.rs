//! Shared memory for mproc: segments, plain-data views and lock-free rings.
//!
//! This crate is the substrate the rest of mproc stands on. It owns every byte
//! that is shared between processes and never blocks: the futex lives in
//! `mproc-sync`, which builds on the words placed here.
//!
//! - [`Segment`]: a `MAP_SHARED` mapping, anonymous (memfd, inherited by children,
//!   passed by fd) or named (`/dev/shm`, opened by unrelated processes).
//! - [`arena`]: carves small objects out of a few segments, like CPython's
//!   `multiprocessing.heap`, so a thousand locks do not cost a thousand fds.
//! - [`Value`] and [`Array`]: plain-data views behind a checked layout header.
//! - [`SpscRing`] and [`MpmcRing`] ([`ring`]): lock-free rings of byte messages,
//!   one producer to one consumer (for pipes) and many to many, crash-safe (for
//!   queues). They never block: the `ipc` crate waits on futex words of its own.
//! - [`ShmBox`]: a buffer of plain data in a segment of its own that moves to
//!   another process by name through any carrier (queue, pipe, socket),
//!   never copied, and is freed exactly once ([`shm_box`]).
//! - [`Share`]: how a handle crosses into a child process (fork or spawn).
//! - [`sys`]: the project's OS layer — cached pid/tid, process liveness, random
//!   bytes, deadlines, the list of shared-memory magics and the attach check.
//!   Every mproc crate reaches the OS through it for those.
//!
//! Linux only: memfd, futex and pidfd are Linux calls.

#[cfg(not(target_os = "linux"))]
compile_error!("mproc-shm supports Linux only: it relies on memfd_create, futex and pidfd");

pub mod arena;
mod error;
mod pidlock;
pub mod primitive;
pub mod ring;
mod segment;
mod share;
pub mod shm_box;
pub mod sys;
pub mod tracker;
mod view;

pub use arena::Block;
pub use error::{Result, ShmError};
pub use ring::{MpmcRing, RingError, SpscRing};
pub use segment::{Segment, SegmentToken};
pub use share::{import_with_fds, received_fd, take_received_fd, Exports, Share};
pub use shm_box::ShmBox;
pub use view::{Array, Value};

/// The size of a cache line on the platforms mproc supports; shared objects are
/// aligned to it so that two of them never share a line.
pub const CACHE_LINE: usize = 64;

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Hooks for this crate's own tests, not part of the API (hidden from the docs).
#[doc(hidden)]
pub mod __testing {
    use crate::primitive::AtomicU64;
    use crate::MpmcRing;

    /// Holds the arena lock until dropped, on this thread: for tests that fork
    /// while another thread is inside the arena.
    pub fn hold_arena_lock() -> impl Drop {
        crate::arena::hold_lock()
    }

    /// The transitions of a `ShmBox` segment's state word (for the loom
    /// model of recycling: claim, release, reuse, dead-holder reclaim, retire).
    pub mod box_state {
        use crate::primitive::AtomicU64;
        use crate::shm_box::state;

        /// The phases (see the state table in `shm_box/state.rs`).
        pub const FREE: u64 = state::FREE;
        /// See [`FREE`].
        pub const HELD: u64 = state::HELD;
        /// See [`FREE`].
        pub const SENT: u64 = state::SENT;
        /// See [`FREE`].
        pub const RETIRED: u64 = state::RETIRED;

        /// A new segment's word, held by `pid`.
        pub fn created(pid: u32) -> u64 {
            state::created(pid)
        }
        /// The phase of `word`.
        pub fn phase(word: u64) -> u64 {
            state::phase(word)
        }
        /// The holder's pid in `word`.
        pub fn holder(word: u64) -> u32 {
            state::holder(word)
        }
        /// The ticket (generation) of `word`.
        pub fn ticket(word: u64) -> u64 {
            state::ticket(word)
        }
        /// FREE → HELD by `me`.
        pub fn take_free(w: &AtomicU64, seen: u64, me: u32) -> Option<u64> {
            state::take_free(w, seen, me)
        }
        /// HELD → SENT.
        pub fn send(w: &AtomicU64, held: u64) -> Option<u64> {
            state::send(w, held)
        }
        /// SENT → HELD by `me`.
        pub fn claim(w: &AtomicU64, sent: u64, me: u32) -> Option<u64> {
            state::claim(w, sent, me)
        }
        /// HELD → FREE by its holder.
        pub fn release(w: &AtomicU64, held: u64) -> bool {
            state::release(w, held)
        }
        /// HELD by a dead holder → FREE.
        pub fn reclaim_dead(w: &AtomicU64, seen: u64, alive: impl FnOnce(u32) -> bool) -> bool {
            state::reclaim_dead(w, seen, alive)
        }
        /// FREE (or HELD by the dropping owner) → RETIRED.
        pub fn retire(w: &AtomicU64, seen: u64) -> bool {
            state::retire(w, seen)
        }
    }

    /// Slot `index`'s state word of `ring`, for tests that forge a dead
    /// claimer's state (see the state table of `MpmcRing`).
    pub fn slot_state(ring: &MpmcRing, index: usize) -> &AtomicU64 {
        ring.slot_state(index)
    }
}
