//! A proxy server for shared objects, local and across machines: Python's
//! `multiprocessing.managers` in Rust.
//!
//! A manager server owns objects; clients hold typed proxies and call methods over
//! sockets (a Unix socket locally, TCP for remote use) after the authkey handshake.
//! A Rust client on the server's machine then moves each connection to a shared-memory
//! pipe (see *Local transport* below).
//!
//! - [`Manager`]: `Manager::start()` runs a `SyncManager` in a child process;
//!   [`Manager::connect`] reaches a running server; [`ManagerBuilder`] picks the
//!   registry, address and authkey, and [`Server::serve_forever`] runs a server in
//!   this process (the seed's `task_master`).
//! - Proxies for the `SyncManager` built-ins: [`ListProxy`], [`DictProxy`],
//!   [`NamespaceProxy`], [`ValueProxy`], [`ArrayProxy`], [`QueueProxy`],
//!   [`JoinableQueueProxy`], [`LockProxy`] (Lock and RLock), [`SemaphoreProxy`]
//!   (Semaphore and BoundedSemaphore), [`ConditionProxy`], [`EventProxy`],
//!   [`BarrierProxy`].
//! - [`Registry`] and [`Served`]: register a user type under a typeid (`BaseManager`)
//!   and call it through a typed [`Proxy`].
//!
//! # Wire and security
//! Requests and responses are postcard-encoded enums ([`wire`]): data only, never
//! code. Only registered typeids are created and only the variants of a type's method
//! enum run; anything else gets a typed error reply. Arguments and return values are
//! pickles, except that scalars (`None`, bools, ints, floats, strs, bytes) between a
//! Rust client and the server travel in a compact postcard form, and a method call's
//! two frames are encoded into and decoded out of buffers that stay (per calling
//! thread, per server connection), not allocated per call. The frame cap
//! ([`MAX_FRAME`]) is checked before a frame is allocated. Servers bind loopback unless
//! told otherwise; the Unix socket of a started manager is mode 0600 in a private 0700
//! directory. Objects are reference-counted per client process and released when its
//! last connection closes — including when it dies.
//!
//! # Local transport
//! A Rust client that reaches the server on a Unix socket (so on one machine: what
//! [`Manager::start`] listens on) asks, in its first frame, to move: the server makes a
//! duplex `mproc_ipc::pipe` (two SPSC rings in one memfd, futex doorbells), sends the
//! client its end over the socket (`SCM_RIGHTS`), and both drop the socket. Frames,
//! frame cap and errors are those of the socket; a call then costs copies into and out
//! of the rings and, while both ends are awake, no system call: a waiting end spins
//! while the other may answer, for an adaptive budget, before it sleeps on a futex, so
//! calls made back to back stay in user space on an idle machine, and with every core
//! busy both ends fall back to futex sleeps, as the socket transport sleeps in `recv`. A killed client or server is
//! seen through the pipe's doorbell socket pair, which the kernel closes: the other
//! side's calls end as on the socket (`Disconnected`; the server releases the client's
//! references and locks). CPython clients and TCP clients stay on their socket;
//! [`ClientTransport::Socket`] keeps a Rust client there too, and
//! [`ServerStats::shared_memory`] counts the connections that moved.
//!
//! Cost: per pooled connection, a memfd of two 128 KiB rings (touched as used) and a
//! socket pair, and one more round trip when it is opened; a server thread whose client
//! is idle sleeps in `poll(2)` on the doorbell socket and costs no wake-ups. If the
//! server cannot make a pipe, the connection stays on the socket.
//!
//! # Processes
//! Proxies are `Clone + Send + Sync` and hold the server's address, authkey and object
//! id, so a proxy moved into a forked child works there: the child opens its own
//! connections on first use and takes its own reference. Connections are pooled per
//! process (one per concurrently calling thread), so a blocking call (`queue.get`,
//! `lock.acquire`, `event.wait`, `barrier.wait`) blocks only its thread; on the server
//! it blocks only that connection's thread, and ends early if the client goes away.
//!
//! With the cargo feature `tokio` (off by default) the proxies have `*_async` forms of
//! those calls (`get_async`, `acquire_async`, `wait_async`, …, and
//! `ObjectRef::call_async` for any method), sent over ipc's async connections; the
//! design and cancel safety are in `src/asyncio/client.rs`.
//!
//! Other ways across: every proxy is serde `Serialize + Deserialize` (a pool task's
//! argument, a queue item) and implements shm's `Share` (spawn arguments, as
//! `mproc_process::Shared<ListProxy<T>>`). The receiver connects and takes its own
//! reference. The serde form carries no authkey: the receiving process must know it
//! (it started or connected to the manager, or was forked after its parent did); a
//! spawn token carries it. See [`ProxyToken`] and the `share` module source for why.
//!
//! `Manager::start` forks. Fork from a multi-threaded parent copies only the calling
//! thread: a lock another thread held at that moment stays locked in the child. The
//! manager client's own process-wide locks are taken by a `pthread_atfork` handler
//! around every fork, so they are never inherited locked; other code's locks are
//! the caller's business.
//!
//! Linux only.

#[cfg(not(target_os = "linux"))]
compile_error!("mproc-manager supports Linux only");

mod builder;
mod client;
mod compact;
mod cpython;
mod error;
mod launcher;
mod local;
mod manager;
#[cfg(test)]
mod memory;
mod net;
mod object;
mod objects;
mod proxy;
mod python;
mod registry;
mod server;
mod share;
mod state;
mod value;
pub mod wire;

#[cfg(test)]
mod tests;

pub use builder::ManagerBuilder;
pub use error::{ManagerError, Result};
pub use local::ClientTransport;
pub use manager::Manager;
pub use net::Address;
pub use object::Served;
pub use proxy::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy, ListProxy, LockGuard,
    LockProxy, NamespaceProxy, ObjectRef, Proxy, ProxyType, QueueProxy, SemaphoreProxy, ValueProxy,
};
pub use registry::{typeids, Registry};
pub use server::Server;
pub use share::ProxyToken;
pub use wire::ServerStats;
pub use wire::MAX_FRAME;

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
