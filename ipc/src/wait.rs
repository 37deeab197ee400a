//! [`wait`]: block until one of several connections is readable (`poll(2)`).

use std::time::Duration;

use crate::connection::{poll_readable, Connection};
use crate::error::Result;

/// Waits until at least one of `conns` has a message (or end of file) to read,
/// or `timeout` passes (`None`: forever). Returns the indices of the ready
/// connections in `conns`, in order; empty on timeout.
///
/// Bytes already in a connection's read buffer count as ready, so a
/// connection that received several messages in one read is reported again
/// until they are consumed. A closed connection is an
/// [`IpcError::Closed`](crate::IpcError::Closed) error.
///
/// Python's `multiprocessing.connection.wait`.
///
/// ```
/// use std::time::Duration;
/// use mproc_ipc::{wait, Connection};
///
/// let (mut a, b) = Connection::pair()?;
/// let (c, mut d) = Connection::pair()?;
/// assert!(wait(&[&b, &d], Some(Duration::ZERO))?.is_empty());
/// a.send_bytes(b"x")?;
/// assert_eq!(wait(&[&b, &d], Some(Duration::from_secs(5)))?, vec![0]);
/// drop(c);
/// assert_eq!(wait(&[&b, &d], Some(Duration::from_secs(5)))?, vec![0, 1]);
/// # let _ = &mut d;
/// # Ok::<(), mproc_ipc::IpcError>(())
/// ```
pub fn wait(conns: &[&Connection], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let fds = conns.iter().map(|c| c.borrowed_fd()).collect::<Result<Vec<_>>>()?;
    let buffered: Vec<usize> = conns.iter().enumerate().filter(|(_, c)| c.ready_now()).map(|(i, _)| i).collect();
    // With data already buffered, only look at the sockets; do not wait.
    let timeout = if buffered.is_empty() { timeout } else { Some(Duration::ZERO) };
    let mut ready = poll_readable(&fds, timeout)?;
    ready.extend(buffered);
    ready.sort_unstable();
    ready.dedup();
    Ok(ready)
}
