//! A proxy server for shared objects, local and across machines: Python's
//! `multiprocessing.managers` in Rust.
//!
//! A manager server owns objects; clients hold typed proxies and call methods over
//! sockets (a Unix socket locally, TCP for remote use) after the authkey handshake.
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
//! enum run; anything else gets a typed error reply. The frame cap ([`MAX_FRAME`]) is
//! checked before a frame is allocated. Servers bind loopback unless told otherwise;
//! the Unix socket of a started manager is mode 0600 in a private 0700 directory.
//! Objects are reference-counted per client process and released when its last
//! connection closes — including when it dies.
//!
//! # Processes
//! Proxies are `Clone + Send + Sync` and hold the server's address, authkey and object
//! id, so a proxy moved into a forked child works there: the child opens its own
//! connections on first use and takes its own reference. Connections are pooled per
//! process (one per concurrently calling thread), so a blocking call (`queue.get`,
//! `lock.acquire`, `event.wait`, `barrier.wait`) blocks only its thread; on the server
//! it blocks only that connection's thread, and ends early if the client goes away.
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
