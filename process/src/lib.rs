//! Processes for mproc: Python's `multiprocessing.Process` in Rust.
//!
//! - [`Process`]: start, join (with a timeout), `is_alive`, `exitcode`,
//!   `terminate`, `kill`, `close`; built with [`Process::builder`] (name, daemon).
//! - Start methods: **fork** (a closure runs in a copy of this process) and
//!   **spawn** (a fresh exec of this binary runs a registered entry function).
//! - [`Run`]: a struct that is a process, like subclassing `Process`.
//! - [`current_process`], [`parent_process`], [`active_children`], [`cpu_count`].
//!
//! ```
//! use mproc_process::Process;
//! let mut p = Process::builder().name("worker").target(|| {}).build();
//! p.start().unwrap();
//! p.join().unwrap();
//! assert_eq!(p.exitcode(), Some(0));
//! ```
//!
//! # Fork from a multi-threaded parent
//! `fork` copies only the calling thread; locks held by other threads stay locked
//! in the child forever. mproc's own child-side code takes no such lock (see the
//! `fork` module docs), but a fork target that locks std's stdout or a program
//! mutex can deadlock if the parent has other threads — as every `cargo test`
//! binary does. Keep fork targets simple there, or use spawn. That includes
//! `std::process::exit`, whose clean-up takes a std-internal lock: end a fork
//! target early with [`exit`] (Python's `os._exit`) instead.
//!
//! # Spawn: how entries are found and checked
//! [`entry!`] registers a `fn(A)` in a link-time list (a `linkme` distributed
//! slice) under its path, `module::function`, and evaluates to a typed
//! [`Entry<A>`]. [`Builder::spawn_entry`] encodes the arguments with postcard —
//! shared handles inside them as [`Shared<T>`], whose fds are kept open across
//! `exec` at the same numbers — and `start` execs `/proc/self/exe`. A function
//! this crate places in `.init_array` runs in the child **before `main`**: it
//! reads the request (from an inherited memfd named by the `MPROC_SPAWN`
//! variable), checks the protocol version, the executable's identity (device,
//! inode, size, mtime of `/proc/self/exe`, and a hash of all entry names, as
//! recorded by the parent) and the entry name, decodes the arguments, imports the
//! handles, reports success on a status pipe, runs the entry, and `_exit`s. So
//! `main` (or `cargo test`'s harness) never runs in a spawn child, and a test
//! binary needs no dummy test. A stale or foreign binary, an unknown entry or
//! undecodable arguments make the child print the reason on stderr and exit with
//! [`EXIT_SPAWN_FAILED`] (121) before running anything, and the parent's `start`
//! returns [`ProcessError::Spawn`] with the same reason. A spawn child runs
//! before std's `main` set-up: no stack-overflow message (a plain SIGSEGV), and
//! SIGPIPE at its default action.
//!
//! Linux only: pidfd, `PR_SET_PDEATHSIG` and `/proc/self/exe` are Linux features.

#[cfg(not(target_os = "linux"))]
compile_error!("mproc-process supports Linux only: it relies on pidfd, prctl(PR_SET_PDEATHSIG) and /proc/self/exe");

#[cfg(feature = "tokio")]
mod asyncio;
mod child;
mod current;
mod error;
mod fork;
mod process;
mod registry;
mod spawn;
mod testing;

#[cfg(feature = "tokio")]
pub use asyncio::wait_any_async;
pub use current::{active_children, authkey, cpu_count, current_process, parent_process, set_authkey, ProcessInfo};
pub use error::ProcessError;
pub use fork::exit;
pub use process::{Builder, Process, Run};
#[doc(hidden)]
pub use spawn::private as __private;
pub use spawn::{registered_entries, Entry, Shared, EXIT_SPAWN_FAILED, SPAWN_READY_TIMEOUT};

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Hooks for this crate's own tests, not part of the API (hidden from the docs).
#[doc(hidden)]
pub mod __testing {
    pub use crate::testing::spawn_unchecked;
}
