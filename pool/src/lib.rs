//! Pool, AsyncResult and imap iterators: Python's `multiprocessing.Pool` in Rust.
//!
//! ```
//! use mproc_pool::Pool;
//!
//! fn cube(x: i64) -> i64 { x * x * x }
//!
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(cube, [1, 2, 3])?, vec![1, 8, 27]);
//! assert_eq!(pool.starmap(|a: i64, b: i64| a + b, [(1, 2), (3, 4)])?, vec![3, 7]);
//! let evens: Vec<i64> = pool.imap(cube, (0..4).map(|x| 2 * x))?.collect::<Result<_, _>>()?;
//! assert_eq!(evens, vec![0, 8, 64, 216]);
//! # Ok::<(), mproc_pool::PoolError>(())
//! ```
//!
//! - [`Pool`] (built by [`Pool::new`] or [`Pool::builder`]): `apply`,
//!   `apply_async` (+ callbacks), `map`, `map_async`, `starmap`,
//!   `starmap_async`, `imap`, `imap_unordered`, `close`, `terminate`, `join`.
//! - [`AsyncResult`]: `get`, `get_timeout`, `wait`, `wait_timeout`, `ready`,
//!   `successful`.
//! - [`PoolError`]: every failure, typed; a worker killed mid-task is
//!   [`PoolError::WorkerLost`], never a hang.
//!
//! # Tasks
//! A task is a `fn` item or a closure without captures; its argument and result
//! are serde types, encoded with postcard. The function reaches the worker as a
//! code address (relative to a symbol of this crate), which is valid in forked
//! workers and in spawned ones, a re-exec of the same binary
//! ([`StartMethod`], set by [`PoolBuilder::start_method`]).
//!
//! # Initializer and its argument
//! [`PoolBuilder::initializer_with`] is Python's `initializer` with
//! `initargs`: each worker runs `init(arg)` before its first task. Shared
//! handles (a queue, a lock, a shared value) go in the argument wrapped in
//! [`mproc_process::Shared`], which works with both start methods.
//!
//! # Forking a multi-threaded process
//! With [`StartMethod::Fork`] (the default), workers are forked while other threads run
//! (the pool's own, and the program's). A worker touches only its own sockets and
//! the tasks, so the pool itself is safe; but a task or initializer that takes a
//! lock another thread of the parent held at fork time (stdout's, a program
//! `Mutex`) deadlocks. Keep tasks free of such locks, as with any fork, or use
//! [`StartMethod::Spawn`].
//!
//! Linux only.

#[cfg(feature = "tokio")]
mod asyncio;
mod error;
mod imap;
mod job;
mod journal;
mod pool;
pub mod remote;
mod result;
mod scheduler;
mod task;
mod wire;
mod worker;
mod worker_args;

#[cfg(feature = "tokio")]
pub use asyncio::ResultFuture;
pub use error::{ArgumentError, PoolError, WorkerExit};
/// The stream trait [`Imap`] and [`ImapUnordered`] implement (feature `tokio`).
#[cfg(feature = "tokio")]
pub use futures_core::Stream;
pub use imap::{Imap, ImapUnordered};
pub use pool::{Pool, PoolBuilder, StartMethod};
pub use result::AsyncResult;
pub use task::StarFn;

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
