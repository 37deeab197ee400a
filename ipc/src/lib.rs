//! Message channels between processes: [`Connection`], [`Listener`] / [`Client`]
//! with CPython's authkey handshake, and [`wait`].
//!
//! - [`Connection`]: one end of a framed, two-way message channel over a stream
//!   socket. The framing is CPython's `multiprocessing.connection` framing, byte
//!   for byte, so a Rust process and a Python process can talk.
//! - [`pipe`]: a [`Connection`] pair between related processes whose messages
//!   travel through shared-memory rings (one per direction) with futex
//!   wake-ups: no system call per message while the reader is awake.
//! - [`Listener`] / [`Client`]: accept and open connections on a Unix path or a
//!   TCP address ([`Address`]), with the mutual HMAC challenge of CPython ≥ 3.12
//!   (and the legacy HMAC-MD5 form of CPython ≤ 3.11 when the peer uses it).
//! - [`wait`]: `poll(2)` over several connections.
//! - [`Bytes`], [`PodVec`]: byte strings and plain-data arrays (`f64`, `u32`,
//!   `#[repr(C)]` structs) that every carrier — queues, connections, pool
//!   arguments and results, manager values — moves as one copy each way.
//! - [`ShmBox`](mproc_shm::ShmBox): a buffer in shared memory of its own that
//!   every carrier moves by name, not by copy; the receiver maps the same bytes
//!   (`Queue<ShmBox<[u8]>>`, `Connection::send(&b)`).
//!
//! # Fast payloads
//! Items travel as serde types encoded with postcard. Byte payloads should be
//! [`Bytes`] and numeric arrays [`PodVec`]: each is encoded as a length and one
//! `memcpy`. serde encodes a `Vec<u8>` byte by byte instead (about 1.7 ns per
//! byte: a 1 MiB `Vec<u8>` takes almost 2 ms each way, ten times a `Bytes`)
//! and a `Vec<f64>` number by number. Both decode from a `Vec<u8>` /
//! `Bytes` sender alike, so a receiver can switch first. To read a byte item
//! without copying it out: [`Queue::get_with`] for a `Queue<Bytes>`,
//! [`Connection::recv_bytes_with`] with [`Bytes::view`] for a connection.
//!
//! ```
//! use mproc_ipc::{Bytes, PodVec, Queue};
//!
//! let q = Queue::<(Bytes, PodVec<f64>)>::new()?;
//! q.put((Bytes::from(vec![1u8; 64 << 10]), PodVec::from(vec![0.5; 8192])))?;
//! let (bytes, samples) = q.get()?;
//! assert_eq!((bytes.len(), samples.iter().sum::<f64>()), (64 << 10, 4096.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Python's names for all of these, and which item here each maps to, are in the
//! table of the `mproc` facade crate's docs ("From Python to Rust").
//!
//! A Rust server that a Python `multiprocessing.connection.Client(addr,
//! authkey=b"secret")` can talk to:
//!
//! ```no_run
//! use mproc_ipc::{Address, Listener};
//!
//! let listener = Listener::bind(Address::loopback(6000), Some(b"secret"))?;
//! loop {
//!     let mut conn = listener.accept()?;
//!     while let Ok(msg) = conn.recv_bytes() {
//!         conn.send_bytes(&msg)?; // echo
//!     }
//! }
//! # Ok::<(), mproc_ipc::IpcError>(())
//! ```
//!
//! With the cargo feature `tokio` (off by default), connections, listeners and
//! queues have `*_async` forms (`recv_async`, `accept_async`, `get_async`, …),
//! each documented with its cancel safety; the design and its wake-up cost are
//! in `src/asyncio/mod.rs`.
//!
//! Linux only.

#[cfg(not(target_os = "linux"))]
compile_error!("mproc-ipc supports Linux only");

#[cfg(feature = "tokio")]
mod asyncio;
pub mod auth;
mod connection;
mod doorbell;
mod error;
pub mod framing;
mod handoff;
mod handshake;
mod listener;
pub mod payload;
mod pipe;
pub mod queue;
mod wait;

pub use connection::{Connection, ConnectionToken, SocketKind, DEFAULT_MAX_FRAME, MAX_HANDLE_FDS, PAIR_MAX_FRAME};
pub use error::{IpcError, Result};
pub use listener::{Address, Client, Listener, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_HANDSHAKES};
pub use payload::{Bytes, PayloadError, PodVec};
pub use pipe::{pipe, pipe_with_capacity, DEFAULT_PIPE_CAPACITY};
pub use queue::{JoinableQueue, PutError, Queue, QueueBuilder, QueueError, SimpleQueue};
pub use wait::{wait, wait_any, Waitable};

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// A queue item may be as large as a connection's frame (the queue cannot import the
// connection's constant: the connection's file reaches the queue through the payloads).
const _: () = assert!(queue::DEFAULT_MAX_ITEM == DEFAULT_MAX_FRAME);

/// Hooks for this crate's own tests and loom models, not part of the API
/// (hidden from the docs).
#[doc(hidden)]
pub mod __testing {
    pub use crate::doorbell::{Bell, Presence, Rang, SLEEP_FUTEX, SLEEP_POLL};

    /// Whether the peer of a pipe connection says it sleeps in the kernel
    /// (its presence word); `None` for a socket connection.
    pub fn pipe_peer_asleep(conn: &crate::Connection) -> Option<bool> {
        conn.ring_end().map(|r| r.peer_asleep())
    }

    /// The CPU the peer of a pipe connection last published in its presence
    /// word (`Some(None)`: none yet); `None` for a socket connection.
    pub fn pipe_peer_cpu(conn: &crate::Connection) -> Option<Option<u32>> {
        conn.ring_end().map(|r| r.peer_cpu())
    }
    #[cfg(loom)]
    use crate::{JoinableQueue, QueueBuilder, QueueError, SimpleQueue};
    #[cfg(loom)]
    use serde::{de::DeserializeOwned, Serialize};

    pub use crate::queue::testing::blocks_not_cold;
    #[cfg(loom)]
    pub use crate::queue::testing::{forge_dead_block_writer, forge_dead_reader, release_idle};

    /// A [`Queue`](crate::Queue) on the heap for loom models (not shareable
    /// between processes): loom's atomics cannot live in shared memory.
    #[cfg(loom)]
    pub fn heap_queue<T: Serialize + DeserializeOwned>(b: &QueueBuilder) -> Result<crate::Queue<T>, QueueError> {
        b.build_heap()
    }

    /// A [`JoinableQueue`] on the heap for loom models.
    #[cfg(loom)]
    pub fn heap_joinable_queue<T: Serialize + DeserializeOwned>(
        b: &QueueBuilder,
    ) -> Result<JoinableQueue<T>, QueueError> {
        b.build_joinable_heap()
    }

    /// A [`SimpleQueue`] on the heap for loom models.
    #[cfg(loom)]
    pub fn heap_simple_queue<T: Serialize + DeserializeOwned>(b: &QueueBuilder) -> Result<SimpleQueue<T>, QueueError> {
        b.build_simple_heap()
    }
}
