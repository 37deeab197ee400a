//! [`wait`]: block until one of several connections is readable (`poll(2)`);
//! [`wait_any`]: the same over connections and plain file descriptors (a
//! process's sentinel, a socket).

use std::os::fd::BorrowedFd;
use std::time::Duration;

use mproc_shm::sys::Deadline;

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
    let objects: Vec<Waitable<'_>> = conns.iter().map(|&c| Waitable::Conn(c)).collect();
    wait_any(&objects, timeout)
}

/// Something [`wait_any`] waits on.
#[derive(Debug, Clone, Copy)]
pub enum Waitable<'a> {
    /// Ready when it has a message (or end of file) to read, as for [`wait`].
    Conn(&'a Connection),
    /// Ready when the descriptor polls readable: a process's sentinel (a pidfd,
    /// readable once the process has ended), a socket, a pipe.
    Fd(BorrowedFd<'a>),
}

impl<'a> From<&'a Connection> for Waitable<'a> {
    fn from(c: &'a Connection) -> Waitable<'a> {
        Waitable::Conn(c)
    }
}

impl<'a> From<BorrowedFd<'a>> for Waitable<'a> {
    fn from(fd: BorrowedFd<'a>) -> Waitable<'a> {
        Waitable::Fd(fd)
    }
}

/// [`wait`] over connections and file descriptors mixed, as Python's
/// `multiprocessing.connection.wait` takes connections, sockets and
/// `Process.sentinel`s in one list. Returns the indices of the ready objects
/// in `objects`, in order; empty on timeout.
///
/// ```
/// use std::time::Duration;
/// use mproc_ipc::{wait_any, Connection, Waitable};
/// use std::os::fd::AsFd;
///
/// let (mut a, b) = Connection::pair()?;
/// let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
/// let objects = [Waitable::from(&b), Waitable::from(r.as_fd())];
/// assert!(wait_any(&objects, Some(Duration::ZERO))?.is_empty());
/// drop(w); // end of file: the descriptor polls readable
/// a.send_bytes(b"x")?;
/// assert_eq!(wait_any(&objects, Some(Duration::from_secs(5)))?, vec![0, 1]);
/// # Ok::<(), mproc_ipc::IpcError>(())
/// ```
pub fn wait_any(objects: &[Waitable<'_>], timeout: Option<Duration>) -> Result<Vec<usize>> {
    fn conn<'a>(o: &Waitable<'a>) -> Option<&'a Connection> {
        match *o {
            Waitable::Conn(c) => Some(c),
            Waitable::Fd(_) => None,
        }
    }
    let fds = objects
        .iter()
        .map(|o| match *o {
            Waitable::Conn(c) => c.borrowed_fd(),
            Waitable::Fd(fd) => Ok(fd),
        })
        .collect::<Result<Vec<_>>>()?;
    let deadline = Deadline::within(timeout);
    loop {
        // Ring connections: announce the poll(2) sleep before looking at the
        // rings, so a message published after the look writes a doorbell byte.
        for r in objects.iter().filter_map(conn).filter_map(|c| c.ring_end()) {
            r.arm_poll();
        }
        let buffered: Vec<usize> = objects
            .iter()
            .enumerate()
            .filter(|(_, o)| conn(o).is_some_and(|c| c.ready_now()))
            .map(|(i, _)| i)
            .collect();
        // With a message already there, only look at the descriptors; do not wait.
        let left = deadline.remaining();
        let polled = poll_readable(&fds, if buffered.is_empty() { left } else { Some(Duration::ZERO) });
        let mut ready = buffered;
        let mut disarm_error = None;
        for (i, o) in objects.iter().enumerate() {
            if let Some(r) = conn(o).and_then(|c| c.ring_end()) {
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
        // A socket connection or a descriptor is ready when it polls readable; a
        // ring connection when its ring holds a message or its peer is gone
        // (stale doorbell bytes alone do not count).
        ready.extend(polled.into_iter().filter(|&i| conn(&objects[i]).is_none_or(|c| c.ring_end().is_none())));
        ready.sort_unstable();
        ready.dedup();
        if !ready.is_empty() || deadline.has_passed() {
            return Ok(ready);
        }
    }
}
