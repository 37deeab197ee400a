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
//! | Python `multiprocessing.connection` | here |
//! | --- | --- |
//! | `Pipe(duplex=True)` | [`pipe`] (shared-memory rings), [`Connection::pair`] (a socketpair) |
//! | `conn.readable`, `conn.writable` | [`Connection::readable`], [`Connection::writable`] |
//! | `conn.send(obj)` / `conn.recv()` | [`Connection::send`] / [`Connection::recv`] (serde + postcard, not pickle) |
//! | `bytes`, `array.array('d')` / a NumPy array as an item | [`Bytes`], [`PodVec<f64>`](PodVec) |
//! | `send_bytes`, `recv_bytes(maxlength)`, `recv_bytes_into` | [`Connection::send_bytes`], [`Connection::recv_bytes_max`], [`Connection::recv_bytes_into`] |
//! | `poll(timeout)`, `close()` | [`Connection::poll`], [`Connection::close`] |
//! | `EOFError`, `BufferTooShort`, `AuthenticationError` | [`IpcError::Eof`], [`IpcError::BufferTooShort`], [`IpcError::Authentication`] |
//! | `Listener(address, authkey=...)`, `accept()`, `address` | [`Listener::bind`], [`Listener::accept`], [`Listener::address`] |
//! | `Client(address, authkey=...)` | [`Client::connect`] |
//! | `wait(object_list, timeout)` | [`wait`] |
//! | `multiprocessing.Queue(maxsize)` | [`Queue::with_maxsize`], [`QueueBuilder`] |
//! | `put(obj, block, timeout)`, `put_nowait` | [`Queue::put`], [`Queue::put_timeout`], [`Queue::try_put`] ([`PutError`] gives the item back) |
//! | `get(block, timeout)`, `get_nowait` | [`Queue::get`], [`Queue::get_timeout`], [`Queue::try_get`] |
//! | `qsize()`, `empty()`, `full()`, `close()` | [`Queue::qsize`], [`Queue::empty`], [`Queue::full`], [`Queue::close`] |
//! | `queue.Full`, `queue.Empty` | [`QueueError::Full`], [`QueueError::Empty`] |
//! | `JoinableQueue`: `task_done()`, `join()` | [`JoinableQueue::task_done`], [`JoinableQueue::join`] |
//! | `SimpleQueue`: `get`, `put`, `empty`, `close` | [`SimpleQueue`] |
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
//! Linux only.

#[cfg(not(target_os = "linux"))]
compile_error!("mproc-ipc supports Linux only");

pub mod auth;
mod connection;
#[doc(hidden)]
pub mod doorbell;
mod error;
pub mod framing;
mod listener;
pub mod payload;
mod pipe;
pub mod queue;
mod wait;

pub use connection::{Connection, ConnectionToken, SocketKind, DEFAULT_MAX_FRAME, PAIR_MAX_FRAME};
pub use error::{IpcError, Result};
pub use listener::{Address, Client, Listener, DEFAULT_HANDSHAKE_TIMEOUT};
pub use payload::{Bytes, PayloadError, PodVec};
pub use pipe::{pipe, pipe_with_capacity, DEFAULT_PIPE_CAPACITY};
pub use queue::{JoinableQueue, PutError, Queue, QueueBuilder, QueueError, SimpleQueue};
pub use wait::{wait, wait_any, Waitable};
