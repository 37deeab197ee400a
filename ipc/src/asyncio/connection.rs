//! [`Connection`]'s async methods (feature `tokio`); the design is in
//! `asyncio/mod.rs`.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{send_all, Connection, SocketSource, Transport};
use crate::asyncio::FdReady;
use crate::error::{IpcError, Result};
use crate::framing::{encode_header, MAX_HEADER};

/// The async side of a connection.
#[derive(Debug, Default)]
pub(crate) struct AsyncState {
    /// The reactor registration of the socket, made by the first await.
    ready: Option<FdReady>,
    /// Messages that async sends took over and did not finish, oldest
    /// first: for a socket each whole frame, for a ring connection the payload.
    out: VecDeque<Vec<u8>>,
    /// Bytes of the first of `out` already sent (socket) or pushed into the
    /// ring (ring).
    out_sent: usize,
}

/// How long an async receive on a pipe connection spins on the ring before it
/// arms the doorbell and yields to the runtime.
const ASYNC_SPIN: std::time::Duration = std::time::Duration::from_micros(20);

fn reactor_error(e: std::io::Error) -> IpcError {
    IpcError::os("epoll", "connection (async)", e)
}

impl Connection {
    /// Registers the socket with the current runtime, once.
    fn register(&mut self) -> Result<()> {
        if self.aio.ready.is_none() {
            let fd = self.fd.as_ref().ok_or(IpcError::Closed)?.as_fd();
            self.aio.ready = Some(FdReady::new(fd).map_err(reactor_error)?);
        }
        Ok(())
    }

    /// Waits until the next receive returns without blocking: a whole frame
    /// (or end of file, or an error to report) is buffered, or the ring holds a
    /// whole message.
    async fn recv_ready(&mut self) -> Result<()> {
        let max = self.max_frame;
        if self.fd.is_none() {
            return Ok(()); // the receive reports Closed
        }
        if self.ready_nowait(max)? {
            return Ok(());
        }
        if let Transport::Ring(r) = &mut self.transport {
            // As the blocking receive does: a peer that answers within a few
            // microseconds is cheaper to spin for than to be woken through the
            // doorbell socket and the reactor (a round trip's worth of system
            // calls). The spin is short and bounded: it holds the runtime's
            // thread at most `ASYNC_SPIN`, and only while the peer may answer.
            let fd = self.fd.as_ref().expect("checked above").as_fd();
            if r.spin_rx(fd, max, ASYNC_SPIN)? {
                return Ok(());
            }
        }
        self.register()?;
        loop {
            let ready = self.aio.ready.as_ref().expect("registered above");
            let fd = self.fd.as_ref().expect("checked above").as_fd();
            if let Transport::Ring(r) = &mut self.transport {
                // Announce the wait, then look again: a message published
                // after the look writes a doorbell byte (see doorbell.rs).
                r.arm_poll();
                if r.rx_progress(fd, max)? {
                    r.disarm_poll(fd, false)?;
                    return Ok(());
                }
            }
            let mut guard = ready.readable().await.map_err(reactor_error)?;
            match &mut self.transport {
                Transport::Ring(r) => {
                    r.disarm_poll(fd, true)?;
                    if r.rx_progress(fd, max)? {
                        return Ok(());
                    }
                }
                Transport::Socket => {
                    let received =
                        (self.kind == crate::SocketKind::Unix).then_some((&mut self.received, &mut self.fds_lost));
                    let mut src = SocketSource { fd, dontwait: true, received };
                    if self.reader.fill_nonblocking(&mut src, max)? {
                        return Ok(());
                    }
                }
            }
            guard.clear_ready();
        }
    }

    /// [`recv_ready`](Self::recv_ready) without waiting.
    fn ready_nowait(&mut self, max: usize) -> Result<bool> {
        match &mut self.transport {
            Transport::Ring(r) => {
                let fd = self.fd.as_ref().ok_or(IpcError::Closed)?.as_fd();
                r.rx_progress(fd, max)
            }
            Transport::Socket => {
                let (reader, mut src) = self.source_with(true)?;
                reader.fill_nonblocking(&mut src, max)
            }
        }
    }

    /// Receives one message, awaiting it without blocking the thread: the
    /// async form of [`recv_bytes`](Connection::recv_bytes), with the same
    /// errors ([`IpcError::Eof`] once the peer closed — or was killed — and
    /// every message was read).
    ///
    /// # Cancel safety
    /// This method is cancel safe: dropping the future at an await point loses
    /// no message. Bytes already read stay in the connection's buffer (a long
    /// ring message's chunks in its reassembly buffer), and the next receive,
    /// async or blocking, returns the whole message.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (mut a, mut b) = mproc_ipc::pipe(true)?;
    /// a.send_bytes_async(b"ping").await?;
    /// assert_eq!(b.recv_bytes_async().await?, b"ping");
    /// # Ok::<(), mproc_ipc::IpcError>(())
    /// # }).unwrap();
    /// ```
    pub async fn recv_bytes_async(&mut self) -> Result<Vec<u8>> {
        self.recv_ready().await?;
        let got = self.recv_bytes();
        self.reader.shrink();
        got
    }

    /// Receives one message and decodes it as a `T`: the async form of
    /// [`recv`](Connection::recv).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`recv_bytes_async`](Connection::recv_bytes_async).
    pub async fn recv_async<T: DeserializeOwned>(&mut self) -> Result<T> {
        self.recv_ready().await?;
        let got = self.recv();
        self.reader.shrink();
        got
    }

    /// Sends one message without blocking the thread: the async form of
    /// [`send_bytes`](Connection::send_bytes), with the same errors (a peer
    /// that closed or was killed is a broken-pipe [`IpcError::Os`]).
    ///
    /// # Cancel safety
    /// A message is sent whole or not at all. Dropped before its first poll,
    /// the future sent nothing. From its first poll on, the message is the
    /// connection's (copied if it could not go out at once): what is not yet
    /// out is sent, in order, before anything else by the next send on this
    /// connection, async or blocking, or by
    /// [`flush_async`](Connection::flush_async). Only closing the connection
    /// with such a tail unsent cuts the message (the peer reads
    /// [`IpcError::TruncatedMessage`]); await `flush_async` first to be sure.
    pub async fn send_bytes_async(&mut self, buf: &[u8]) -> Result<()> {
        // Earlier messages first; this one joins the queue behind them.
        self.flush_nowait()?;
        let fd = self.fd.as_ref().ok_or(IpcError::Closed)?.as_fd();
        let idle = self.aio.out.is_empty();
        match &mut self.transport {
            Transport::Ring(r) => {
                let mut sent = 0;
                if idle {
                    if r.push_nowait(fd, buf, &mut sent)? {
                        return Ok(());
                    }
                    self.aio.out_sent = sent;
                }
                self.aio.out.push_back(buf.to_vec());
            }
            Transport::Socket => {
                let mut header = [0u8; MAX_HEADER];
                let hlen = encode_header(buf.len() as u64, &mut header);
                let mut frame = Vec::with_capacity(hlen + buf.len());
                frame.extend_from_slice(&header[..hlen]);
                frame.extend_from_slice(buf);
                if idle {
                    let mut sent = 0;
                    if send_nowait(fd, &frame, &mut sent)? {
                        return Ok(());
                    }
                    self.aio.out_sent = sent;
                }
                self.aio.out.push_back(frame);
            }
        }
        self.flush_async().await
    }

    /// Sends `v` encoded with postcard: the async form of
    /// [`send`](Connection::send).
    ///
    /// # Cancel safety
    /// As [`send_bytes_async`](Connection::send_bytes_async): whole or not at all.
    pub async fn send_async<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let buf = postcard::to_allocvec(v)
            .map_err(|source| IpcError::Encode { type_name: std::any::type_name::<T>(), source })?;
        self.send_bytes_async(&buf).await
    }

    /// Finishes sending a message that an async send began and was dropped
    /// before it finished (see [`send_bytes_async`](Connection::send_bytes_async)).
    /// Returns at once when there is none.
    ///
    /// # Cancel safety
    /// Cancel safe: what is not sent stays queued.
    pub async fn flush_async(&mut self) -> Result<()> {
        if self.aio.out.is_empty() {
            return Ok(());
        }
        self.register()?;
        loop {
            if self.flush_nowait()? {
                return Ok(());
            }
            let ready = self.aio.ready.as_ref().expect("registered above");
            let fd = self.fd.as_ref().ok_or(IpcError::Closed)?.as_fd();
            match &mut self.transport {
                Transport::Ring(r) => {
                    // Announce the wait for room, then look again.
                    r.arm_room();
                    let front = self.aio.out.front().expect("flush_nowait left a message");
                    if r.push_nowait(fd, front, &mut self.aio.out_sent)? {
                        r.disarm_room(fd, false)?;
                        self.aio.out.pop_front();
                        self.aio.out_sent = 0;
                        continue;
                    }
                    let mut guard = ready.readable().await.map_err(reactor_error)?;
                    r.disarm_room(fd, true)?;
                    guard.clear_ready();
                }
                Transport::Socket => {
                    let mut guard = ready.writable().await.map_err(reactor_error)?;
                    let front = self.aio.out.front().expect("flush_nowait left a message");
                    if send_nowait(fd, front, &mut self.aio.out_sent)? {
                        self.aio.out.pop_front();
                        self.aio.out_sent = 0;
                    } else {
                        guard.clear_ready();
                    }
                }
            }
        }
    }

    /// Sends what it can of the unfinished message without waiting; true when
    /// nothing is left.
    fn flush_nowait(&mut self) -> Result<bool> {
        while let Some(front) = self.aio.out.front() {
            let fd = self.fd.as_ref().ok_or(IpcError::Closed)?.as_fd();
            let done = match &mut self.transport {
                Transport::Ring(r) => r.push_nowait(fd, front, &mut self.aio.out_sent)?,
                Transport::Socket => send_nowait(fd, front, &mut self.aio.out_sent)?,
            };
            if !done {
                return Ok(false);
            }
            self.aio.out.pop_front();
            self.aio.out_sent = 0;
        }
        Ok(true)
    }

    /// Blocking: finishes a message an async send left unfinished, so that
    /// a blocking send never interleaves with it.
    #[inline]
    pub(super) fn finish_async_send(&mut self) -> Result<()> {
        if self.aio.out.is_empty() {
            return Ok(());
        }
        self.finish_async_send_slow()
    }

    #[cold]
    fn finish_async_send_slow(&mut self) -> Result<()> {
        while let Some(front) = self.aio.out.front() {
            let fd = self.fd.as_ref().ok_or(IpcError::Closed)?.as_fd();
            match &mut self.transport {
                Transport::Ring(r) => r.push_blocking(fd, front, &mut self.aio.out_sent)?,
                Transport::Socket => send_all(fd, &front[self.aio.out_sent..])?,
            }
            self.aio.out.pop_front();
            self.aio.out_sent = 0;
        }
        Ok(())
    }
}

/// `send(2)` with `MSG_DONTWAIT`: sends what the socket takes of
/// `buf[*sent..]`; true when all of it is out.
fn send_nowait(fd: BorrowedFd<'_>, buf: &[u8], sent: &mut usize) -> Result<bool> {
    use rustix::net::SendFlags;
    while *sent < buf.len() {
        match rustix::net::send(fd, &buf[*sent..], SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
            Ok(n) => *sent += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return Ok(false),
            Err(e) => return Err(IpcError::os("send", "connection", e)),
        }
    }
    Ok(true)
}
