//! The listener's side of the authkey handshake as a poll-driven state
//! machine, so that handshakes run beside `accept` instead of in front of it.
//!
//! [`Listener::accept`](crate::Listener::accept) polls the listening socket
//! and every handshake in flight in one `poll(2)` call. A peer that connects
//! and says nothing holds one file descriptor and one entry here until its
//! deadline, not the accept loop: the next peer's handshake proceeds at once.
//!
//! Each handshake walks the listener's half of the protocol in
//! [`auth`](crate::auth) (deliver, then answer) one frame at a time:
//!
//! ```text
//! send #CHALLENGE#…  → Response  (verify; send #WELCOME# or #FAILURE#)
//!                    → Challenge (send our answer)
//!                    → Verdict   (#WELCOME#: done)
//! ```
//!
//! Reads never go past the frame being read (header first, then exactly its
//! payload), so bytes the peer sends right after the handshake stay in the
//! socket for the [`Connection`].
//!
//! Bounds: at most `max` handshakes are in flight; when a new peer arrives
//! and the table is full, the handshake closest to its deadline is dropped
//! (reported as an [`IpcError::Authentication`] for that peer), so a flood of
//! silent peers cycles through the table instead of shutting it.

use mproc_shm::sys::Deadline;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::auth::{answer, auth, check_verdict, new_challenge, verify_response, FAILURE, HANDSHAKE_MAX, WELCOME};
use crate::connection::Connection;
use crate::error::{IpcError, Result};

/// A freshly accepted stream, before it is a [`Connection`].
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(on),
            Stream::Tcp(s) => s.set_nonblocking(on),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }

    /// The stream as a blocking [`Connection`] with frame cap `max_frame`.
    pub(crate) fn into_connection(self, max_frame: usize) -> Result<Connection> {
        self.set_nonblocking(false).map_err(|e| IpcError::os("fcntl", "accepted connection", e))?;
        let mut conn = match self {
            Stream::Unix(s) => Connection::from_unix(s),
            Stream::Tcp(s) => Connection::from_tcp(s),
        };
        conn.set_max_frame(max_frame);
        Ok(conn)
    }
}

/// Where one handshake stands: the frame it waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The peer's MAC of our challenge.
    Response,
    /// The peer's own challenge.
    Challenge,
    /// The peer's `#WELCOME#` or `#FAILURE#` for our answer.
    Verdict,
}

/// One handshake in flight.
#[derive(Debug)]
struct Pending {
    stream: Stream,
    deadline: Deadline,
    step: Step,
    /// The challenge message we sent (what the peer's MAC must cover).
    message: Vec<u8>,
    /// Framed bytes still to send; `out[sent..]` is unsent.
    out: Vec<u8>,
    sent: usize,
    /// The frame being read: a 4-byte header, then its payload.
    inbuf: Vec<u8>,
}

/// What a step of a handshake came to.
enum Progress {
    /// Waiting for the peer.
    Blocked,
    /// The handshake is over: the connection, or why it failed.
    Done(Result<()>),
}

impl Pending {
    fn new(stream: Stream, deadline: Deadline) -> Result<Pending> {
        stream.set_nonblocking(true).map_err(|e| IpcError::os("fcntl", "accepted connection", e))?;
        let (message, framed) = new_challenge()?;
        let mut p =
            Pending { stream, deadline, step: Step::Response, message, out: Vec::new(), sent: 0, inbuf: Vec::new() };
        p.queue(&framed);
        Ok(p)
    }

    fn queue(&mut self, payload: &[u8]) {
        // Handshake frames are at most HANDSHAKE_MAX bytes: the short header.
        self.out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        self.out.extend_from_slice(payload);
    }

    fn events(&self) -> PollFlags {
        if self.sent < self.out.len() {
            PollFlags::OUT
        } else {
            PollFlags::IN
        }
    }

    /// Sends what is queued and reads what has arrived, as far as the socket
    /// allows without blocking.
    fn advance(&mut self, authkey: &[u8]) -> Progress {
        loop {
            while self.sent < self.out.len() {
                match self.stream.write(&self.out[self.sent..]) {
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::Blocked,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Progress::Done(Err(IpcError::os("send", "handshake", e))),
                }
            }
            let frame = match self.read_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Progress::Blocked,
                Err(e) => return Progress::Done(Err(e)),
            };
            match self.step {
                Step::Response => match verify_response(authkey, &self.message, &frame) {
                    Ok(()) => {
                        self.queue(WELCOME);
                        self.step = Step::Challenge;
                    }
                    Err(e) => {
                        // Best effort: the peer may be gone; the error is what matters.
                        let mut failure = (FAILURE.len() as i32).to_be_bytes().to_vec();
                        failure.extend_from_slice(FAILURE);
                        let _ = self.stream.write(&failure);
                        return Progress::Done(Err(e));
                    }
                },
                Step::Challenge => match answer(authkey, &frame) {
                    Ok(response) => {
                        self.queue(&response);
                        self.step = Step::Verdict;
                    }
                    Err(e) => return Progress::Done(Err(e)),
                },
                Step::Verdict => return Progress::Done(check_verdict(&frame)),
            }
        }
    }

    /// Reads the next frame without reading past it: `Ok(None)` until it is
    /// whole.
    fn read_frame(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            let want = match self.inbuf.get(..4) {
                None => 4,
                Some(h) => {
                    let len = i32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                    if !(0..=HANDSHAKE_MAX as i32).contains(&len) {
                        return Err(auth(format!(
                            "protocol error during the handshake: a frame header of {len}, \
                             expected 0..={HANDSHAKE_MAX} bytes"
                        )));
                    }
                    4 + len as usize
                }
            };
            if self.inbuf.len() >= 4 && self.inbuf.len() == want {
                let frame = self.inbuf.split_off(4);
                self.inbuf.clear();
                return Ok(Some(frame));
            }
            let have = self.inbuf.len();
            self.inbuf.resize(want, 0);
            match self.stream.read(&mut self.inbuf[have..want]) {
                Ok(0) => {
                    self.inbuf.truncate(have);
                    return Err(auth("the peer closed the connection during the handshake"));
                }
                Ok(n) => self.inbuf.truncate(have + n),
                Err(e) => {
                    self.inbuf.truncate(have);
                    match e.kind() {
                        ErrorKind::WouldBlock => return Ok(None),
                        ErrorKind::Interrupted => {}
                        _ => return Err(IpcError::os("recv", "handshake", e)),
                    }
                }
            }
        }
    }
}

/// The handshakes in flight and the finished ones not yet handed out.
#[derive(Debug, Default)]
pub(crate) struct Handshakes {
    pending: Vec<Pending>,
    /// Finished handshakes, oldest first: connections and failures (each
    /// failure is reported by one `accept` call, as a blocking handshake's was).
    pub(crate) ready: VecDeque<Result<Connection>>,
}

impl Handshakes {
    /// Starts a handshake on a freshly accepted stream, dropping the oldest
    /// one if `max` are in flight already.
    pub(crate) fn start(&mut self, stream: Stream, timeout: Option<Duration>, max: usize) {
        if self.pending.len() >= max.max(1) {
            // Handshakes with no deadline sort last.
            let key = |d: Deadline| (d.instant().is_none(), d.instant());
            let oldest = (0..self.pending.len()).min_by_key(|&i| key(self.pending[i].deadline)).unwrap_or(0);
            self.pending.swap_remove(oldest);
            self.ready.push_back(Err(auth(format!(
                "dropped: {max} handshakes were in flight and a new peer arrived (see Listener::set_max_handshakes)"
            ))));
        }
        let deadline = Deadline::within(timeout);
        match Pending::new(stream, deadline) {
            Ok(p) => self.pending.push(p),
            Err(e) => self.ready.push_back(Err(e)),
        }
    }

    /// How many handshakes are in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The earliest handshake deadline, if any handshake is in flight.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().filter_map(|p| p.deadline.instant()).min()
    }

    /// Poll entries for the handshakes, in table order.
    pub(crate) fn poll_fds(&self) -> impl Iterator<Item = PollFd<'_>> {
        self.pending.iter().map(|p| PollFd::from_borrowed_fd(p.stream.fd(), p.events()))
    }

    /// Each handshake's socket and whether it waits to write (`true`) or to
    /// read: what [`poll_fds`](Handshakes::poll_fds) polls, for an `epoll` set.
    #[cfg(feature = "tokio")]
    pub(crate) fn interest(&self) -> impl Iterator<Item = (BorrowedFd<'_>, bool)> {
        self.pending.iter().map(|p| (p.stream.fd(), p.events() == PollFlags::OUT))
    }

    /// Advances the handshakes whose poll entry (same order as
    /// [`poll_fds`](Handshakes::poll_fds)) reported an event, and fails the
    /// ones past their deadline. Finished ones move to `ready`.
    pub(crate) fn advance(&mut self, fired: &[bool], authkey: &[u8], max_frame: usize) {
        let now = Instant::now();
        let mut i = 0;
        let mut k = 0;
        while i < self.pending.len() {
            let mut progress = if fired.get(k).copied().unwrap_or(false) {
                self.pending[i].advance(authkey)
            } else {
                Progress::Blocked
            };
            if matches!(progress, Progress::Blocked) && self.pending[i].deadline.instant().is_some_and(|d| d <= now) {
                progress = Progress::Done(Err(auth("the peer did not complete the handshake in time")));
            }
            k += 1;
            match progress {
                Progress::Blocked => i += 1,
                Progress::Done(result) => {
                    // `remove`, not `swap_remove`: `fired` is indexed in table order.
                    let p = self.pending.remove(i);
                    self.ready.push_back(result.and_then(|()| p.stream.into_connection(max_frame)));
                }
            }
        }
    }
}
