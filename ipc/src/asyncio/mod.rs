//! Async adapters (cargo feature `tokio`): how a task awaits a connection.
//!
//! # Design: a readiness descriptor per waitable
//! Everything here that can be awaited already owns a descriptor that the
//! kernel turns readable (or writable) when the awaited thing may have
//! happened, so no waiter thread is needed:
//!
//! - a socket [`Connection`](crate::Connection) (and a [`Listener`](crate::Listener)):
//!   the socket itself;
//! - a shared-memory [`pipe`](crate::pipe) connection: its doorbell socket. A task
//!   that finds the ring empty (or full) *arms* the ring's `data` (or `room`)
//!   bell with the `SLEEP_POLL` flag — the same announcement [`wait`](crate::wait)
//!   makes before `poll(2)` — looks at the ring again, and only then awaits the
//!   doorbell socket. The peer's next publish sees the flag and writes one byte
//!   to the socket; the peer's death closes it. See `doorbell.rs` for why no
//!   wake-up is lost.
//!
//! The queues are the exception: their futex words have no descriptor, so
//! their waits go through the one futex waiter thread per process of
//! [`mproc_sync::asyncio`] — the same thread the sync primitives' async waits
//! use (see `queue.rs`).
//!
//! The one runtime-specific piece is [`FdReady`]: "tell me when this descriptor
//! polls readable/writable" (tokio's `AsyncFd`, registered once per connection
//! and kept). The arm/look-again/await/disarm protocol around it, and every
//! read and write, are plain non-blocking calls, so an adapter for another
//! runtime replaces `FdReady` and nothing else.
//!
//! # What it costs
//! - The blocking path pays nothing: no new atomic on a send or a receive. A
//!   ring writer already does one `fetch_add` on the `data` bell per message;
//!   only when an async reader has armed it does it also clear the flag and
//!   write one byte (`send(2)`, about a microsecond). A ring reader releasing
//!   room rings the `room` bell as before, and writes a byte only when an async
//!   writer armed it.
//! - An async wake-up costs the runtime's `epoll_wait` return, a `recv(2)` that
//!   drains the doorbell byte(s), then the message copy out of the ring: one
//!   system call more than a tokio `UnixStream` read of the same message, one
//!   fewer copy through the kernel.
//! - While a message is already there (a busy stream) an await costs no system
//!   call at all on a ring connection: the task looks at the ring first, then
//!   spins on it for up to 20 µs (a peer answering within that is cheaper to
//!   spin for than to be woken), and only then arms the doorbell and yields.
//!
//! # Binding
//! A connection's first async call registers its descriptor with the runtime
//! it runs on, and the registration is kept, as tokio's own socket types are
//! bound to the runtime that made them. Await a connection from one runtime;
//! blocking calls may be mixed in freely.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

pub(crate) mod timer;

use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;

/// A descriptor number borrowed by an [`FdReady`]; its owner keeps it open
/// for as long as the registration lives (it is declared before the fd it
/// borrows, so it is dropped first).
#[derive(Debug)]
pub(crate) struct Borrowed(RawFd);

impl AsRawFd for Borrowed {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The runtime adapter: a descriptor registered with the runtime's reactor.
#[derive(Debug)]
pub(crate) struct FdReady {
    fd: AsyncFd<Borrowed>,
}

impl FdReady {
    /// Registers `fd` (for readable and writable) with the current runtime.
    /// The caller keeps `fd` open for as long as the `FdReady` lives.
    /// Outside a runtime (where tokio would panic) this is an error.
    pub(crate) fn new(fd: BorrowedFd<'_>) -> io::Result<FdReady> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("an async call outside a tokio runtime (with its I/O driver enabled)"));
        }
        // SAFETY: the fd is open (borrowed here), and the caller keeps it open
        // and unchanged while the `FdReady` lives (see `Connection`'s field order).
        let fd = unsafe {
            AsyncFd::register_with_interest(Borrowed(fd.as_raw_fd()), Interest::READABLE | Interest::WRITABLE)
        };
        Ok(FdReady { fd: fd.map_err(|e| e.into_parts().1)? })
    }

    /// Waits until the descriptor polls readable (or hung up). Call
    /// `clear_ready` on the guard after a non-blocking read found nothing.
    pub(crate) async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, Borrowed>> {
        self.fd.readable().await
    }

    /// Waits until the descriptor polls writable.
    pub(crate) async fn writable(&self) -> io::Result<AsyncFdReadyGuard<'_, Borrowed>> {
        self.fd.writable().await
    }
}
