//! Python's `multiprocessing`, in Rust: the facade over the mproc crates.
//!
//! One dependency and one `use mproc::prelude::*;` give you what `import
//! multiprocessing` gives a Python program: processes, pools, pipes, queues,
//! cross-process locks, shared values and a manager server. Each piece lives in a
//! small crate of its own, re-exported here as a module ([`shm`], [`sync`],
//! [`ipc`], [`process`], [`pool`], [`manager`]) and, for the main types, flat at
//! the crate root.
//!
//! ```
//! use mproc::prelude::*;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! // A counter in shared memory behind its own lock: `Value('q', 0)`.
//! let counter = Value::new(0_i64)?;
//! let mut workers = Vec::new();
//! for _ in 0..4 {
//!     let counter = counter.clone();
//!     // Fork start method: the closure runs in a copy of this process.
//!     let mut p = Process::new(move || *counter.lock().unwrap() += 1);
//!     p.start()?;
//!     workers.push(p);
//! }
//! for p in &mut workers {
//!     p.join()?;
//!     assert_eq!(p.exitcode(), Some(0));
//! }
//! assert_eq!(counter.get()?, 4);
//!
//! // `Pool(2).map(square, range(1, 4))`
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(square, 1..4)?, vec![1, 4, 9]);
//! # Ok::<(), mproc::Error>(())
//! ```
//!
//! # From Python to Rust
//!
//! This table is the one place that maps Python's names to mproc's (the README
//! points here). Names that read well stay Python's (`apply_async`,
//! `notify_all`, `task_done`), and rustdoc finds the others by their Python
//! name (`#[doc(alias)]`).
//!
//! | Python `multiprocessing` | mproc |
//! | --- | --- |
//! | `Process(target=f, args=(x,))` (fork) | [`Process::new`]`(move \|\| f(x))` |
//! | `Process(name=.., daemon=..)` | [`Process::builder`]`().name(..).daemon(true).target(f).build()` |
//! | subclass `Process`, override `run` | implement [`Run`], [`Process::from_run`] |
//! | `p.start()`, `p.join(timeout)`, `p.is_alive()`, `p.exitcode`, `p.pid`, `p.name` | [`Process::start`], [`Process::join`] / [`Process::join_timeout`], [`Process::is_alive`], [`Process::exitcode`], [`Process::pid`], [`Process::name`] |
//! | `p.terminate()`, `p.kill()`, `p.close()` | [`Process::terminate`], [`Process::kill`], [`Process::close`] |
//! | `current_process()`, `parent_process()`, `active_children()`, `cpu_count()` | [`current_process`], [`parent_process`], [`active_children`], [`cpu_count`] |
//! | `os._exit(n)` | [`exit`] |
//! | `current_process().authkey` (get, set) | [`authkey`], [`set_authkey`] (shared by the process tree; a manager's default key) |
//! | `Lock()`, `RLock()` | [`Lock`], [`RLock`] (`with lock:` is `let _g = lock.lock()?;`); `acquire()`, `acquire(False)`, `acquire(timeout=t)` are [`Lock::acquire`], [`Lock::try_acquire`], [`Lock::acquire_timeout`]; `release()` |
//! | `Semaphore(n)`, `BoundedSemaphore(n)` | [`Semaphore`], [`BoundedSemaphore`] (a `permit()` guard, or `acquire` / `release`) |
//! | `Condition()`, `Event()`, `Barrier(n)`; `wait(timeout)` | [`Condition`], [`Event`], [`Barrier`]; `wait()` / `wait_timeout(t)` ([`Event::wait_timeout`], [`Condition::wait_timeout`]) |
//! | `Value('q', 0)` (locked), `v.get_lock()`, `RawValue` | [`Value`] (= [`Synchronized`]), [`Synchronized::get_lock`], [`RawValue`] |
//! | `Array('i', n)` (locked), `a.get_lock()`, `RawArray` | [`Array`] (= [`SynchronizedArray`]; `a.lock()?` derefs to `&mut [T]`), [`Array::get_lock`], [`RawArray`] |
//! | `Pipe(duplex)` | [`pipe`] (shared-memory rings), [`Connection::pair`] (a socket pair) |
//! | `conn.send(obj)`, `conn.recv()` | [`Connection::send`], [`Connection::recv`] (serde + postcard, not pickle) |
//! | `send_bytes`, `recv_bytes(maxlength)`, `recv_bytes_into` | [`Connection::send_bytes`], [`Connection::recv_bytes_max`], [`Connection::recv_bytes_into`] |
//! | `conn.poll(timeout)`, `conn.close()`, `conn.readable`, `conn.writable` | [`Connection::poll`], [`Connection::close`], [`Connection::readable`], [`Connection::writable`] |
//! | `Queue(maxsize)`, `put`, `get`, `put_nowait`, `get_nowait` | [`Queue`] ([`Queue::with_maxsize`], [`QueueBuilder`]), [`Queue::put`] (or [`Queue::put_ref`]), [`Queue::put_timeout`], [`Queue::get`] / [`Queue::get_timeout`], [`Queue::try_put`] ([`PutError`] gives the item back), [`Queue::try_get`] |
//! | `qsize()`, `empty()`, `full()`, `close()` | [`Queue::qsize`], [`Queue::empty`], [`Queue::full`], [`Queue::close`] |
//! | `queue.Full`, `queue.Empty` | [`QueueError::Full`], [`QueueError::Empty`] |
//! | `JoinableQueue`, `task_done`, `join`; `SimpleQueue` | [`JoinableQueue`], [`JoinableQueue::task_done`], [`JoinableQueue::join`] / [`JoinableQueue::join_timeout`]; [`SimpleQueue`] |
//! | `connection.Listener(address, authkey=..)`, `accept()`, `address` | [`Listener::bind`], [`Listener::accept`], [`Listener::address`] |
//! | `connection.Client(address, authkey=..)`, `connection.wait` | [`Client::connect`], [`wait`] (connections), [`wait_any`] (with `Process::sentinel`s and sockets) |
//! | `reduction.send_handle`, `recv_handle` | [`Connection::send_handle`], [`Connection::recv_handle`] (any [`Share`] handle, by `SCM_RIGHTS`) |
//! | `shared_memory.SharedMemory(name, create=True)`, resource tracker | [`Segment::create`] / [`Segment::open`] / [`Segment::unlink`] (a tracker process unlinks a killed program's names) |
//! | a `SharedMemory` handed to another process by name (`q.put(shm.name)`; the receiver attaches, someone unlinks) | [`ShmBox`]`<[T]>` put in a [`Queue`] or sent over a [`Connection`]: moved by name, never copied; the receiver owns it, and it is freed once |
//! | `SharedMemory(name, create=True, track=False)` (3.13) | [`Segment::create_untracked`] (outlives the program; whoever knows the name unlinks it) |
//! | `Pool(n)`, `apply`, `apply_async`, `map`, `starmap`, `imap`, `imap_unordered` | [`Pool::new`], [`Pool::apply`], [`Pool::apply_async`], [`Pool::map`], [`Pool::starmap`], [`Pool::imap`], [`Pool::imap_unordered`] (tasks are `fn` items) |
//! | `AsyncResult.get(timeout)`, `ready`, `successful`, `wait` | [`AsyncResult::get`] / [`AsyncResult::get_timeout`], [`AsyncResult::ready`], [`AsyncResult::successful`], [`AsyncResult::wait`] / [`AsyncResult::wait_timeout`] |
//! | `map_async(f, items).get(t)`, `map_async(f, items, chunksize)` | [`Pool::map_timeout`], [`Pool::map_async`] / [`Pool::map_async_chunked`] |
//! | `pool.close()`, `terminate()`, `join()` | [`Pool::close`], [`Pool::terminate`], [`Pool::join`] |
//! | `Pool(initializer=f, initargs=a, maxtasksperchild=n)`, `get_context("spawn").Pool()` | [`PoolBuilder::initializer_with`] (handles inside as [`Shared`]), [`PoolBuilder::maxtasksperchild`], [`PoolBuilder::start_method`] ([`StartMethod::Spawn`]) |
//! | `Manager()` / `SyncManager`; `list`, `dict`, `Queue`, `Lock`, `Value`, … | [`Manager::start`] ([`SyncManager`]); its proxies ([`ListProxy`], [`DictProxy`], …) |
//! | `BaseManager(address, authkey)`, `register`, `start`, `connect` | [`ManagerBuilder`] ([`BaseManager`]), [`Registry::register`], [`Manager::connect`] |
//! | `bytes`, `array.array('d')`, a NumPy array as an item or payload | [`Bytes`], [`PodVec<f64>`](PodVec) (one copy each way; a `Vec<u8>` costs about 1.7 ns per byte) |
//! | a CPython peer's `conn.send(obj)` / `conn.recv()`; `pickle.dumps` / `loads` | [`Connection::send_pickle`] / [`Connection::recv_pickle`]; [`pickle::dumps`] / [`pickle::loads`] (never imports what a pickle names) |
//! | `EOFError`, `BufferTooShort`, `AuthenticationError` | [`IpcError::Eof`], [`IpcError::BufferTooShort`], [`IpcError::Authentication`] |
//! | other exceptions (`queue.Empty`, a dead pool worker, …) | one error enum per crate ([`QueueError`], [`PoolError`], [`ManagerError`], …), all convertible into [`Error`] |
//!
//! Every tutorial example the project was built from has a runnable twin in
//! `mproc/examples/` (`cargo run -p mproc --example NAME`).
//!
//! # Forking a multi-threaded program
//! The fork start method copies only the calling thread: a lock another thread
//! held at that moment (std's stdout lock, a `Mutex` of the program) stays locked
//! in the child. See [`process`] for the details and for the spawn start method.
//!
//! Linux only: futex, memfd and pidfd are Linux calls.

/// Shared-memory segments, plain-data views and lock-free rings (crate `mproc-shm`).
pub use mproc_shm as shm;

/// Futex-based cross-process locks and friends (crate `mproc-sync`).
pub use mproc_sync as sync;

/// Connections, listeners and clients (crate `mproc-ipc`).
pub use mproc_ipc as ipc;

/// `Process`, start methods and who-am-I functions (crate `mproc-process`).
pub use mproc_process as process;

/// The Pool on the ranks of an MPI job, past one machine (`mproc-mpi`; feature `mpi`).
#[cfg(feature = "mpi")]
pub use mproc_mpi as mpi;
/// `Pool` and `AsyncResult` (crate `mproc-pool`).
pub use mproc_pool as pool;

/// The manager server and its proxies (crate `mproc-manager`).
pub use mproc_manager as manager;

/// Python's pickle: `Value`, `dumps`/`loads` and the allow-list (crate `mproc-pickle`).
pub use mproc_pickle as pickle;

/// The `serde` this crate encodes with, derive macros included, so that
/// queue items, pipe messages and process arguments derive `Serialize` and
/// `Deserialize` without a second dependency to keep in step. A derive through
/// this path needs one extra line naming it, `#[serde(crate = "mproc::serde")]`:
///
/// ```
/// use mproc::serde::{Deserialize, Serialize};
/// use mproc::Process;
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// #[serde(crate = "mproc::serde")]
/// struct Job {
///     id: u32,
///     name: String,
/// }
///
/// let (mut parent, mut child) = mproc::pipe(true)?;
/// let mut p = Process::new(move || {
///     let job: Job = child.recv().unwrap();
///     child.send(&Job { id: job.id + 1, name: job.name.to_uppercase() }).unwrap();
/// });
/// p.start()?;
/// parent.send(&Job { id: 1, name: "resize".into() })?;
/// assert_eq!(parent.recv::<Job>()?, Job { id: 2, name: "RESIZE".into() });
/// p.join()?;
/// # Ok::<(), mproc::Error>(())
/// ```
pub use serde;

pub use mproc_process::{
    active_children, authkey, cpu_count, current_process, entry, exit, parent_process, set_authkey, Entry, Process,
    ProcessError, ProcessInfo, Run, Shared,
};

#[cfg(feature = "tokio")]
pub use mproc_process::wait_any_async;
/// Builds a [`Process`] (name, daemon flag, target): `Process::builder()`.
pub use mproc_process::Builder as ProcessBuilder;

pub use mproc_sync::{
    ArrayGuard, Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard, Permit, RLock, RLockGuard, Semaphore,
    SyncError, SyncGuard, Synchronized, SynchronizedArray, Wakeup,
};

pub use mproc_shm::{Segment, Share, ShmBox, ShmError};

pub use mproc_ipc::{
    pipe, pipe_with_capacity, wait, wait_any, Address, Client, Connection, IpcError, JoinableQueue, Listener, PutError,
    Queue, QueueBuilder, QueueError, SimpleQueue, Waitable,
};

/// Payloads that travel as one copy (`bytes`, `array.array`): use them for
/// byte and numeric data in queues, connections, pools and managers.
pub use mproc_ipc::{Bytes, PayloadError, PodVec};

pub use mproc_pool::{ArgumentError, AsyncResult, Imap, ImapUnordered, Pool, PoolBuilder, PoolError, StartMethod};

pub use mproc_manager::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy, ListProxy, LockProxy, Manager,
    ManagerBuilder, ManagerError, NamespaceProxy, Proxy, ProxyType, QueueProxy, Registry, SemaphoreProxy, Served,
    Server, ValueProxy,
};

/// A plain-data value in shared memory behind its own lock: Python's
/// `multiprocessing.Value(typecode, v)` (with the default `lock=True`).
///
/// Another name for [`Synchronized`]: `lock()` gives a guard that derefs to the
/// value, `get`/`set` read and write under the lock, `get_lock()` is the lock.
///
/// ```
/// let v = mproc::Value::new(0_i64)?;
/// *v.lock()? += 2;
/// assert_eq!(v.get()?, 2);
/// # Ok::<(), mproc::Error>(())
/// ```
#[doc(alias = "multiprocessing.Value")]
#[doc(alias = "Synchronized")]
pub type Value<T> = mproc_sync::Synchronized<T>;

/// A plain-data value in shared memory with no lock: Python's
/// `multiprocessing.RawValue` (or `Value(..., lock=False)`).
///
/// ```
/// let v = mproc::RawValue::new(1.5_f64)?;
/// v.set(2.5);
/// assert_eq!(v.get(), 2.5);
/// # Ok::<(), mproc::Error>(())
/// ```
#[doc(alias = "multiprocessing.RawValue")]
pub type RawValue<T> = mproc_shm::Value<T>;

/// A fixed-length array of plain data in shared memory behind its own lock:
/// Python's `multiprocessing.Array(typecode, n)` (with `lock=True`, the default).
///
/// `get`/`set` lock for one element; `lock()` gives a guard that dereferences to
/// the whole slice, for a compound update (Python's `with arr.get_lock():`).
/// The same type as [`SynchronizedArray`]; [`RawArray`] has no lock.
///
/// ```
/// let a = mproc::Array::from_slice(&[1_i32, 2, 3])?;
/// a.set(0, -1)?;
/// a.lock()?.iter_mut().for_each(|x| *x *= 10);
/// assert_eq!(a.to_vec()?, vec![-10, 20, 30]);
/// # Ok::<(), mproc::Error>(())
/// ```
#[doc(alias = "multiprocessing.Array")]
pub type Array<T> = mproc_sync::SynchronizedArray<T>;

/// A fixed-length array of plain data in shared memory with no lock: Python's
/// `multiprocessing.RawArray`. Each `get`/`set` copies one element; nothing locks.
#[doc(alias = "multiprocessing.RawArray")]
pub type RawArray<T> = mproc_shm::Array<T>;

/// The client handle of a `SyncManager` server: Python's
/// `multiprocessing.Manager()` returns one. Another name for [`Manager`].
#[doc(alias = "multiprocessing.managers.SyncManager")]
pub type SyncManager = mproc_manager::Manager;

/// A manager with the typeids you register: Python's
/// `multiprocessing.managers.BaseManager`. Another name for [`ManagerBuilder`];
/// give it a [`Registry`] (`Registry::new()` plus `register…` calls), an
/// address and an authkey, then `start()` a server process or `bind()` one here.
#[doc(alias = "multiprocessing.managers.BaseManager")]
pub type BaseManager = mproc_manager::ManagerBuilder;

/// The address a manager listens on: the same type as [`Address`].
pub type ManagerAddress = mproc_manager::Address;

/// Any error of the mproc crates, for code that uses several of them.
///
/// Each crate's error converts into it with `?`. Match on the variant to get
/// the crate's own error back.
///
/// ```
/// fn run() -> mproc::Result<()> {
///     let pool = mproc::Pool::new(0)?; // a PoolError
///     drop(pool);
///     Ok(())
/// }
/// assert!(matches!(run(), Err(mproc::Error::Pool(mproc::PoolError::ZeroProcesses(0)))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From shared memory ([`shm`]).
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// From a lock, semaphore, condition, event or barrier ([`sync`]).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// From a connection, listener or client ([`ipc`]).
    #[error(transparent)]
    Ipc(#[from] IpcError),
    /// From a queue ([`ipc`]); a failed `put` gives its item back in
    /// [`PutError`], which converts into this variant without it.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// From starting, joining or signalling a process ([`process`]).
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// From a pool or an async result ([`pool`]).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// From a manager or one of its proxies ([`manager`]).
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// From the operating system, outside the mproc crates (files, commands).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl<T> From<PutError<T>> for Error {
    /// Drops the item the failed `put` gave back, keeping the reason.
    fn from(e: PutError<T>) -> Error {
        Error::Queue(e.into())
    }
}

impl From<PayloadError> for Error {
    /// A payload that did not decode (e.g. [`Bytes::view`]), as an [`IpcError::Payload`].
    fn from(e: PayloadError) -> Error {
        Error::Ipc(e.into())
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The names most programs need: `use mproc::prelude::*;`.
///
/// Types and functions only (no `Result` or `Error`, which would shadow std's):
/// processes, the synchronisation primitives, shared values, pipes, queues and
/// connections, the pool and the manager.
pub mod prelude {
    pub use crate::{
        active_children, cpu_count, current_process, parent_process, pipe, Array, AsyncResult, Barrier,
        BoundedSemaphore, Bytes, Condition, Connection, Event, JoinableQueue, Lock, Manager, PodVec, Pool, Process,
        Queue, RLock, RawArray, RawValue, Run, Semaphore, Share, ShmBox, SimpleQueue, Value,
    };
}

/// The README's code blocks, run as doc tests so the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
