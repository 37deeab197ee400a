//! The byte channel between the pool and one worker: a Unix socketpair carrying
//! length-prefixed messages, read through a buffer so a burst of small
//! messages costs one `read`.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const READ_BUF: usize = 64 << 10;

/// Why `recv_bytes` returned no message.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The peer closed its end (it exited or was killed) at a message boundary.
    Eof,
    /// Anything else, including EOF in the middle of a message.
    Io(#[allow(dead_code, reason = "read in Debug output only")] io::Error),
}

/// One end of a socketpair with message framing.
pub(crate) struct Link {
    sock: UnixStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    scratch: Vec<u8>,
}

impl Link {
    /// A connected pair.
    pub(crate) fn pair() -> io::Result<(Link, Link)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Link::new(a), Link::new(b)))
    }

    fn new(sock: UnixStream) -> Link {
        Link { sock, buf: vec![0; READ_BUF].into_boxed_slice(), start: 0, end: 0, scratch: Vec::new() }
    }

    /// Takes ownership of a socket fd (the worker rebuilds its ends from fd
    /// numbers after fork).
    pub(crate) fn from_fd(fd: OwnedFd) -> Link {
        Link::new(UnixStream::from(fd))
    }

    /// Gives up the socket, closing nothing.
    pub(crate) fn into_fd(self) -> OwnedFd {
        OwnedFd::from(self.sock)
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Sends one message.
    pub(crate) fn send_bytes(&mut self, msg: &[u8]) -> io::Result<()> {
        let len = u32::try_from(msg.len()).map_err(|_| io::Error::other("message larger than 4 GiB"))?;
        if msg.len() <= READ_BUF {
            self.scratch.clear();
            self.scratch.extend_from_slice(&len.to_le_bytes());
            self.scratch.extend_from_slice(msg);
            self.sock.write_all(&self.scratch)
        } else {
            self.sock.write_all(&len.to_le_bytes())?;
            self.sock.write_all(msg)
        }
    }

    /// Whether a whole message header is already buffered, so `recv_bytes`
    /// returns without waiting for the socket to become readable.
    pub(crate) fn has_buffered(&self) -> bool {
        self.end - self.start >= 4
    }

    fn fill(&mut self) -> Result<(), RecvError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.sock.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(if self.start == self.end {
                        RecvError::Eof
                    } else {
                        RecvError::Io(io::ErrorKind::UnexpectedEof.into())
                    })
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RecvError::Io(e)),
            }
        }
    }

    /// Receives one message, waiting for it.
    pub(crate) fn recv_bytes(&mut self) -> Result<Vec<u8>, RecvError> {
        while self.end - self.start < 4 {
            self.fill()?;
        }
        let len = u32::from_le_bytes(self.buf[self.start..self.start + 4].try_into().expect("4 bytes")) as usize;
        self.start += 4;
        let have = (self.end - self.start).min(len);
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&self.buf[self.start..self.start + have]);
        self.start += have;
        if have < len {
            msg.resize(len, 0);
            self.sock.read_exact(&mut msg[have..]).map_err(RecvError::Io)?;
        }
        Ok(msg)
    }
}

/// Waits until at least one link has a message (or EOF) to read; the indices of
/// the ready ones, empty on timeout.
pub(crate) fn wait(links: &[&Link], timeout: Option<Duration>) -> io::Result<Vec<usize>> {
    let buffered: Vec<usize> = (0..links.len()).filter(|&i| links[i].has_buffered()).collect();
    if !buffered.is_empty() {
        return Ok(buffered);
    }
    let mut fds: Vec<libc::pollfd> =
        links.iter().map(|l| libc::pollfd { fd: l.raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    loop {
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok((0..fds.len()).filter(|&i| fds[i].revents != 0).collect())
}

/// Rebuilds a link from an fd number inherited across fork.
///
/// # Safety
/// `fd` must be an open socket that nothing else in this process owns.
pub(crate) unsafe fn from_raw(fd: RawFd) -> Link {
    // SAFETY: ownership of an open, otherwise unowned fd (contract).
    Link::from_fd(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_boundaries() {
        let (mut a, mut b) = Link::pair().unwrap();
        a.send_bytes(b"one").unwrap();
        a.send_bytes(b"").unwrap();
        let big = vec![7u8; 3 * READ_BUF + 5];
        let t = std::thread::spawn(move || {
            a.send_bytes(&big).unwrap();
            a.send_bytes(b"last").unwrap();
        });
        assert_eq!(b.recv_bytes().unwrap(), b"one");
        assert!(b.has_buffered());
        assert_eq!(b.recv_bytes().unwrap(), b"");
        assert_eq!(wait(&[&b], Some(Duration::from_secs(10))).unwrap(), vec![0]);
        assert_eq!(b.recv_bytes().unwrap().len(), 3 * READ_BUF + 5);
        assert_eq!(b.recv_bytes().unwrap(), b"last");
        t.join().unwrap();
        assert!(matches!(b.recv_bytes(), Err(RecvError::Eof)));
    }

    #[test]
    fn wait_times_out_when_nothing_is_ready() {
        let (_a, b) = Link::pair().unwrap();
        assert!(wait(&[&b], Some(Duration::from_millis(1))).unwrap().is_empty());
    }
}
