//! [`wait`]: block until one of several connections is readable (`poll(2)`).

use std::time::{Duration, Instant};

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
/// Connections made by [`pipe`](crate::pipe) and socket connections mix
/// freely: a ring connection's reader announces the sleep in shared memory and
/// its writer then wakes the `poll(2)` through the pipe's doorbell socket.
///
/// Python's `multiprocessing.connection.wait`.
///
/// ```
/// use std::time::{Duration, Instant};
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
    let deadline = timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
    loop {
        // Ring connections: announce the poll(2) sleep before looking at the
        // rings, so a message published after the look writes a doorbell byte.
        for r in conns.iter().filter_map(|c| c.ring_end()) {
            r.arm_poll();
        }
        let buffered: Vec<usize> = conns.iter().enumerate().filter(|(_, c)| c.ready_now()).map(|(i, _)| i).collect();
        // With a message already there, only look at the sockets; do not wait.
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let polled = poll_readable(&fds, if buffered.is_empty() { left } else { Some(Duration::ZERO) });
        let mut ready = buffered;
        let mut disarm_error = None;
        for (i, c) in conns.iter().enumerate() {
            if let Some(r) = c.ring_end() {
                let hit = polled.as_ref().is_ok_and(|p| p.contains(&i));
                match r.disarm_poll(fds[i], hit) {
                    Ok(true) => ready.push(i),
                    Ok(false) => {}
                    Err(e) => disarm_error = disarm_error.or(Some(e)),
                }
            }
        }
        let polled = polled?;
        if let Some(e) = disarm_error {
            return Err(e);
        }
        // A socket connection is ready when its socket is; a ring connection
        // when its ring holds a message or its peer is gone (stale doorbell
        // bytes alone do not count).
        ready.extend(polled.into_iter().filter(|&i| conns[i].ring_end().is_none()));
        ready.sort_unstable();
        ready.dedup();
        if !ready.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
