//! [`pipe`]: a [`Connection`] pair over shared-memory rings.
//!
//! The rings, doorbells and the waiting protocol are in [`ring`]; this file
//! only wraps a pair of ring ends in connections. What a round trip costs,
//! and what separates it from two processes bumping one shared counter, is
//! measured in [`ring`]'s module doc.

pub(crate) mod ring;

use crate::connection::Connection;
use crate::error::Result;

/// The ring capacity of each direction of a [`pipe`]: 128 KiB, so messages of
/// up to 64 KiB − 8 bytes travel as one record.
pub const DEFAULT_PIPE_CAPACITY: usize = 128 << 10;

/// Creates a pipe: two connected [`Connection`]s whose messages travel through
/// shared memory, Python's `multiprocessing.Pipe(duplex)`.
///
/// With `duplex = true` both ends send and receive. With `duplex = false` the
/// first end only receives and the second only sends (as in Python); the wrong
/// operation is an [`IpcError::WrongDirection`](crate::IpcError::WrongDirection) error.
///
/// The connections have the whole [`Connection`] API, and [`wait`](crate::wait)
/// accepts them beside socket connections. A message costs two copies (into
/// and out of the ring) and no system call while the reader is awake; a reader
/// that found nothing spins briefly while its peer is running, then sleeps on
/// a futex, so a pipe does not burn time slices on a machine with more
/// runnable threads than CPUs.
///
/// **Sizes.** Each direction is a ring of [`DEFAULT_PIPE_CAPACITY`] bytes
/// (see [`pipe_with_capacity`]). A message shorter than half the ring less 8
/// bytes (64 KiB − 8 by default) is one ring record; a longer one is sent **in
/// chunks, transparently**: the writer blocks while the ring is full, as on a
/// socket, and the reader reassembles the message, so any size up to the frame
/// cap ([`PAIR_MAX_FRAME`](crate::PAIR_MAX_FRAME)) works. Zero-length messages
/// are legal and boundaries are never merged.
///
/// **End of file.** `recv` returns [`IpcError::Eof`](crate::IpcError::Eof) once every copy of the
/// peer's end is closed (or its process died, even by `SIGKILL`) and the
/// messages it sent have been read. A send to a closed peer fails with a
/// broken-pipe [`IpcError::Os`](crate::IpcError::Os) error at the latest when the ring is full.
///
/// Move an end into a forked child, or export it to a spawned one with
/// [`Share`](mproc_shm::Share). As with Python's `Pipe` under fork, the child inherits the
/// parent's end too: close it there ([`std::os::fd::AsRawFd`] gives the fd of
/// its doorbell socket) so that end of file is seen when the parent closes.
///
/// ```
/// let (mut rx, mut tx) = mproc_ipc::pipe(false)?;
/// for v in [1u32, 2, 3] {
///     tx.send(&v)?;
/// }
/// tx.close();
/// let got: Vec<u32> = (0..3).map(|_| rx.recv().unwrap()).collect();
/// assert_eq!(got, [1, 2, 3]);
/// assert!(rx.recv::<u32>().unwrap_err().is_eof());
/// # Ok::<(), mproc_ipc::IpcError>(())
/// ```
#[doc(alias = "Pipe")]
pub fn pipe(duplex: bool) -> Result<(Connection, Connection)> {
    pipe_with_capacity(duplex, DEFAULT_PIPE_CAPACITY)
}

/// [`pipe`] with rings of at least `capacity` bytes per direction (rounded up
/// to a power of two, at least 64). Messages of fewer than `capacity / 2 - 8`
/// bytes travel as one record; longer ones in chunks. Zero is an error.
pub fn pipe_with_capacity(duplex: bool, capacity: usize) -> Result<(Connection, Connection)> {
    let [(a, ring_a), (b, ring_b)] = ring::pair(duplex, capacity)?;
    Ok((Connection::from_ring(a, ring_a), Connection::from_ring(b, ring_b)))
}
