//! Message channels between processes: [`Connection`], [`Listener`] / [`Client`]
//! with CPython's authkey handshake, and [`wait`].
//!
//! - [`Connection`]: one end of a framed, two-way message channel over a stream
//!   socket. The framing is CPython's `multiprocessing.connection` framing, byte
//!   for byte, so a Rust process and a Python process can talk.
//! - [`Listener`] / [`Client`]: accept and open connections on a Unix path or a
//!   TCP address, with the mutual HMAC challenge of CPython ≥ 3.12 (and the
//!   legacy HMAC-MD5 form of CPython ≤ 3.11 when the peer uses it).
//! - [`wait`]: `poll(2)` over several connections.
//!
//! Linux only.

#[cfg(not(target_os = "linux"))]
compile_error!("mproc-ipc supports Linux only");

mod connection;
mod error;
pub mod framing;
mod wait;

pub use connection::{Connection, ConnectionToken, SocketKind, DEFAULT_MAX_FRAME, PAIR_MAX_FRAME};
pub use error::{IpcError, Result};
pub use wait::wait;
