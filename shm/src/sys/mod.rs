//! The project's OS layer: every crate of mproc reaches the operating system
//! through here for the few things they all need.
//!
//! - [`pid`], [`tid`]: this process's and this thread's ids, cached, with one
//!   `pthread_atfork(3)` registration that refreshes them in a forked child.
//! - [`alive`]: whether a process still runs (`pidfd_open(2)`), the one liveness
//!   test behind every owner-death recovery.
//! - [`random_bytes`]: the kernel's CSPRNG (`getrandom(2)`).
//! - [`Deadline`]: a point in time computed from a timeout, with one overflow
//!   rule: a timeout too large for the clock means no deadline, never a panic.
//! - [`magic`]: every magic word placed in shared memory, checked at compile
//!   time to be distinct, and [`magic::Attach`], the header check every attach
//!   site runs.
//! - [`IgnorePoison`], [`lock`]: a `std::sync::Mutex` taken without caring about
//!   poisoning.
//!
//! Nothing here blocks except what its name says ([`lock`]); nothing makes a
//! futex call (that is `mproc-sync`'s).

mod deadline;
mod ident;
pub mod magic;
mod poison;
mod random;

pub use deadline::{timespec, Deadline};
#[cfg(loom)]
#[doc(hidden)]
pub use ident::LOOM_DEAD_PID;
pub use ident::{alive, pid, tid, PID_BITS};
pub use poison::{lock, IgnorePoison};
pub use random::random_bytes;
