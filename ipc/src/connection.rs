//! [`Connection`]: one end of a framed message channel over a stream socket.
//!
//! The wire format is CPython's `multiprocessing.connection` framing (see
//! [`framing`](crate::framing)), so a `Connection` talks to a Python
//! `Connection` byte for byte. Writes go out as one `send(2)` per message (header
//! and payload together) for messages up to 64 KiB; reads go through a 64 KiB
//! userspace buffer, so a burst of small messages costs one `read(2)`.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mproc_shm::sys::{self, Deadline};
use mproc_shm::{Exports, Share, ShmError};
use rustix::event::{PollFd, PollFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{IpcError, Result};
use crate::framing::{encode_header, FrameReader, MAX_HEADER, SHORT_MAX};
use crate::pipe::ring::{RingEnd, RingToken};

mod pickle;

#[cfg(feature = "tokio")]
#[path = "asyncio/connection.rs"]
pub(crate) mod asyncio;

/// The default frame cap of connections made from outside sockets
/// ([`Connection::from_unix`], [`Connection::from_tcp`], [`Listener`](crate::Listener),
/// [`Client`](crate::Client)): 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// The default frame cap of [`Connection::pair`], whose two ends are trusted
/// to be the same program: 1 GiB.
pub const PAIR_MAX_FRAME: usize = 1 << 30;

/// Messages up to this size are copied behind their header and sent with one
/// system call; larger ones are sent as header, then payload (CPython's
/// threshold is 16 KiB).
const COALESCE: usize = 64 * 1024;

/// The most descriptors one [`Connection::send_handle`] message carries.
pub const MAX_HANDLE_FDS: usize = 32;

/// The kind of socket under a [`Connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocketKind {
    /// A Unix-domain stream socket (socketpair or a filesystem path).
    Unix,
    /// A TCP stream.
    Tcp,
}

/// One end of a message channel: a stream socket (Unix or TCP), or a pair of
/// shared-memory rings made by [`pipe`](crate::pipe).
///
/// Messages are byte strings framed as in CPython's `multiprocessing.connection`;
/// [`send`](Connection::send) and [`recv`](Connection::recv) carry any serde
/// type, encoded with postcard. Message boundaries are kept: each `recv_bytes`
/// returns exactly one `send_bytes`' bytes, including empty ones.
///
/// The API is the same for both transports. A ring connection made by
/// [`pipe`](crate::pipe) moves messages through shared memory and keeps a
/// socket beside its rings only to learn that the peer is gone and to wake
/// [`wait`](crate::wait); [`kind`](Connection::kind) is then
/// [`SocketKind::Unix`] and [`is_shared_memory`](Connection::is_shared_memory) is true.
///
/// All operations take `&mut self`: a connection has one reader and one writer
/// at a time, like Python's (which is not thread-safe either). Send it to
/// another thread, or into a forked child, by moving it.
///
/// ```
/// use mproc_ipc::Connection;
///
/// let (mut a, mut b) = Connection::pair()?;
/// a.send(&("job", 7u32))?;
/// let (name, n): (String, u32) = b.recv()?;
/// assert_eq!((name.as_str(), n), ("job", 7));
/// b.send_bytes(b"")?;
/// assert_eq!(a.recv_bytes()?, b"");
/// drop(b);
/// assert!(a.recv_bytes().unwrap_err().is_eof());
/// # Ok::<(), mproc_ipc::IpcError>(())
/// ```
#[doc(alias = "PipeConnection")]
pub struct Connection {
    /// The async side (feature `tokio`): the reactor registration and a
    /// message being written. Declared before `fd`, which the registration borrows.
    #[cfg(feature = "tokio")]
    aio: asyncio::AsyncState,
    /// `None` after [`close`](Connection::close). For a ring connection, the
    /// doorbell socket. Declared before `transport`, so that dropping a
    /// connection closes the socket before the ring end rings the peer's bells.
    fd: Option<OwnedFd>,
    kind: SocketKind,
    reader: FrameReader,
    /// Reused for coalesced writes and postcard encoding.
    wbuf: Vec<u8>,
    max_frame: usize,
    transport: Transport,
    /// Descriptors that arrived (`SCM_RIGHTS`) with bytes read so far, in
    /// order, for [`Connection::recv_handle`]; closed if never claimed.
    received: VecDeque<OwnedFd>,
    /// Some arrived descriptors were dropped by the kernel (no room).
    fds_lost: bool,
}

/// What carries a connection's messages.
enum Transport {
    /// The socket `fd` itself, with CPython's framing.
    Socket,
    /// Shared-memory rings; `fd` is the doorbell socket.
    Ring(Box<RingEnd>),
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd.as_ref().map(|fd| fd.as_raw_fd()))
            .field("kind", &self.kind)
            .field("buffered", &self.reader.buffered())
            .field("max_frame", &self.max_frame)
            .field("ring", &self.ring())
            .finish()
    }
}

/// Reads a socket through a borrowed fd (for the [`FrameReader`]). On a Unix
/// socket every read is a `recvmsg(2)` that keeps the descriptors arriving
/// with the bytes: a plain `read(2)` of bytes that carry `SCM_RIGHTS` would
/// close them.
struct SocketSource<'a> {
    fd: BorrowedFd<'a>,
    /// `MSG_DONTWAIT`: an empty socket is a `WouldBlock` error (the async adapters).
    dontwait: bool,
    /// `None` on TCP.
    received: Option<(&'a mut VecDeque<OwnedFd>, &'a mut bool)>,
}

impl Read for SocketSource<'_> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some((received, lost)) = &mut self.received else {
            if self.dontwait {
                return Ok(rustix::net::recv(self.fd, buf, RecvFlags::DONTWAIT)?.0);
            }
            return Ok(rustix::io::read(self.fd, buf)?);
        };
        let flags = if self.dontwait { RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT } else { RecvFlags::CMSG_CLOEXEC };
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_HANDLE_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(self.fd, &mut [IoSliceMut::new(buf)], &mut control, flags)?;
        if got.flags.contains(ReturnFlags::CTRUNC) {
            **lost = true;
        }
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                received.extend(fds);
            }
        }
        Ok(got.bytes)
    }
}

impl Connection {
    fn from_fd(fd: OwnedFd, kind: SocketKind, max_frame: usize) -> Connection {
        Connection {
            #[cfg(feature = "tokio")]
            aio: Default::default(),
            fd: Some(fd),
            kind,
            reader: FrameReader::new(),
            wbuf: Vec::new(),
            max_frame,
            transport: Transport::Socket,
            received: VecDeque::new(),
            fds_lost: false,
        }
    }

    /// The reader of this socket connection's bytes (and descriptors).
    fn source(&mut self) -> Result<(&mut FrameReader, SocketSource<'_>)> {
        self.source_with(false)
    }

    fn source_with(&mut self, dontwait: bool) -> Result<(&mut FrameReader, SocketSource<'_>)> {
        let fd = self.fd.as_ref().ok_or_else(closed)?.as_fd();
        let received = (self.kind == SocketKind::Unix).then_some((&mut self.received, &mut self.fds_lost));
        Ok((&mut self.reader, SocketSource { fd, dontwait, received }))
    }

    /// A ring connection: `fd` is its doorbell socket.
    pub(crate) fn from_ring(fd: OwnedFd, ring: RingEnd) -> Connection {
        let mut c = Connection::from_fd(fd, SocketKind::Unix, PAIR_MAX_FRAME);
        c.transport = Transport::Ring(Box::new(ring));
        c
    }

    fn ring(&self) -> Option<&RingEnd> {
        match &self.transport {
            Transport::Ring(r) => Some(r),
            Transport::Socket => None,
        }
    }

    /// `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`: two connected ends.
    ///
    /// The frame cap of both ends is [`PAIR_MAX_FRAME`]. For a forked child,
    /// move one end into the child's closure; for a spawned child, export it
    /// with [`Share`].
    #[doc(alias = "socketpair")]
    #[doc(alias = "Pipe")]
    pub fn pair() -> Result<(Connection, Connection)> {
        let (a, b) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
            .map_err(|e| IpcError::os("socketpair", "AF_UNIX stream pair", e))?;
        Ok((
            Connection::from_fd(a, SocketKind::Unix, PAIR_MAX_FRAME),
            Connection::from_fd(b, SocketKind::Unix, PAIR_MAX_FRAME),
        ))
    }

    /// Wraps a connected Unix stream. Frame cap: [`DEFAULT_MAX_FRAME`].
    pub fn from_unix(s: UnixStream) -> Connection {
        Connection::from_fd(s.into(), SocketKind::Unix, DEFAULT_MAX_FRAME)
    }

    /// Wraps a connected TCP stream, with `TCP_NODELAY` set (each message is
    /// written whole, so Nagle's algorithm would only add latency). Frame cap:
    /// [`DEFAULT_MAX_FRAME`].
    pub fn from_tcp(s: std::net::TcpStream) -> Connection {
        // Failure leaves Nagle on: slower, never wrong.
        let _ = s.set_nodelay(true);
        Connection::from_fd(s.into(), SocketKind::Tcp, DEFAULT_MAX_FRAME)
    }

    /// The largest message this end accepts.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Sets the largest message this end accepts. A longer frame is refused
    /// with [`IpcError::MessageTooLarge`] before any memory is allocated for it.
    pub fn set_max_frame(&mut self, max: usize) {
        self.max_frame = max;
    }

    /// Which kind of socket carries this connection (for a ring connection,
    /// the kind of its doorbell socket: [`SocketKind::Unix`]).
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// True for a connection made by [`pipe`](crate::pipe), whose messages
    /// travel through shared-memory rings.
    pub fn is_shared_memory(&self) -> bool {
        self.ring().is_some()
    }

    /// Whether this end can receive: false for the sending end of a one-way
    /// [`pipe`](crate::pipe) (Python's `readable`), and after `close`.
    pub fn readable(&self) -> bool {
        !self.is_closed() && self.ring().is_none_or(|r| r.readable())
    }

    /// Whether this end can send: false for the receiving end of a one-way
    /// [`pipe`](crate::pipe) (Python's `writable`), and after `close`.
    pub fn writable(&self) -> bool {
        !self.is_closed() && self.ring().is_none_or(|r| r.writable())
    }

    /// The ring capacity of each direction of a [`pipe`](crate::pipe)
    /// connection; `None` for a socket connection.
    pub fn ring_capacity(&self) -> Option<usize> {
        self.ring().map(|r| r.capacity())
    }

    /// True after [`close`](Connection::close).
    pub fn is_closed(&self) -> bool {
        self.fd.is_none()
    }

    /// Bytes already read from the socket and not yet returned as messages
    /// (always 0 for a ring connection, whose messages stay in the ring).
    pub fn buffered(&self) -> usize {
        self.reader.buffered()
    }

    /// Sends one message: the bytes of `buf`, framed. Zero-length messages are legal.
    pub fn send_bytes(&mut self, buf: &[u8]) -> Result<()> {
        #[cfg(feature = "tokio")]
        self.finish_async_send()?;
        let fd = self.fd.as_ref().ok_or_else(closed)?.as_fd();
        if let Transport::Ring(r) = &mut self.transport {
            return r.send_bytes(fd, buf);
        }
        let mut header = [0u8; MAX_HEADER];
        let hlen = encode_header(buf.len() as u64, &mut header);
        if buf.len() <= COALESCE {
            self.wbuf.clear();
            self.wbuf.extend_from_slice(&header[..hlen]);
            self.wbuf.extend_from_slice(buf);
            send_all(fd, &self.wbuf)
        } else {
            send_all(fd, &header[..hlen])?;
            send_all(fd, buf)
        }
    }

    /// Sends `v` encoded with postcard, as one message.
    ///
    /// Fast types: numbers, strings, structs of them, and for bulk data
    /// [`Bytes`](crate::Bytes) and [`PodVec`](crate::PodVec), which are one
    /// `memcpy` into the message. A `Vec<u8>` costs about 1.7 ns per byte
    /// (serde writes it byte by byte): send bytes as `Bytes`, or raw with
    /// [`send_bytes`](Connection::send_bytes).
    ///
    /// A [`ShmBox`](mproc_shm::ShmBox) in `v` goes by name; a failed send
    /// leaves it the sender's.
    pub fn send<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let sent = self.send_encoded(v);
        if sent.is_err() {
            crate::handoff::reclaim(v);
        }
        sent
    }

    fn send_encoded<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        #[cfg(feature = "tokio")]
        self.finish_async_send()?;
        let fd = self.fd.as_ref().ok_or_else(closed)?.as_fd();
        if let Transport::Ring(r) = &mut self.transport {
            let mut buf = std::mem::take(&mut self.wbuf);
            buf.clear();
            let buf = postcard::to_extend(v, buf)
                .map_err(|source| IpcError::Encode { type_name: std::any::type_name::<T>(), source })?;
            let sent = r.send_bytes(fd, &buf);
            self.wbuf = if buf.capacity() > 4 * COALESCE { Vec::new() } else { buf };
            return sent;
        }
        let mut buf = std::mem::take(&mut self.wbuf);
        buf.clear();
        buf.extend_from_slice(&[0u8; 4]);
        let buf = postcard::to_extend(v, buf)
            .map_err(|source| IpcError::Encode { type_name: std::any::type_name::<T>(), source })?;
        let len = (buf.len() - 4) as u64;
        let sent = if len <= SHORT_MAX {
            let mut b = buf;
            b[..4].copy_from_slice(&(len as i32).to_be_bytes());
            let r = send_all(fd, &b);
            self.wbuf = b;
            r
        } else {
            let mut header = [0u8; MAX_HEADER];
            let hlen = encode_header(len, &mut header);
            let r = send_all(fd, &header[..hlen]).and_then(|()| send_all(fd, &buf[4..]));
            self.wbuf = buf;
            r
        };
        // Do not keep a huge encoding buffer alive after a one-off big message.
        if self.wbuf.capacity() > 4 * COALESCE {
            self.wbuf = Vec::new();
        }
        sent
    }

    /// Receives one message of at most [`max_frame`](Connection::max_frame)
    /// bytes. [`IpcError::Eof`] when the peer closed and every message was read.
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        self.recv_bytes_max(self.max_frame)
    }

    /// Receives one message of at most `max` bytes (and at most the frame cap).
    /// A longer one is an [`IpcError::MessageTooLarge`], after which a socket
    /// connection cannot be read (Python's `recv_bytes(maxlength)` does the
    /// same); on a ring connection the message stays queued instead, and a
    /// later call with a larger `max` receives it.
    pub fn recv_bytes_max(&mut self, max: usize) -> Result<Vec<u8>> {
        let max = max.min(self.max_frame);
        let fd = self.fd.as_ref().ok_or_else(closed)?.as_fd();
        if let Transport::Ring(r) = &mut self.transport {
            return r.with_message(fd, max, |m| m.into_vec());
        }
        let (reader, mut src) = self.source()?;
        reader.read_vec(&mut src, max)
    }

    /// Receives one message into `buf` and returns its length. If `buf` is too
    /// short, the message is consumed and returned in [`IpcError::BufferTooShort`].
    ///
    /// ```
    /// use mproc_ipc::{Connection, IpcError};
    ///
    /// let (mut a, mut b) = Connection::pair()?;
    /// a.send_bytes(b"0123456789")?;
    /// let mut buf = [0u8; 4];
    /// match b.recv_bytes_into(&mut buf) {
    ///     Err(IpcError::BufferTooShort { message, .. }) => assert_eq!(message, b"0123456789"),
    ///     other => panic!("{other:?}"),
    /// }
    /// a.send_bytes(b"ok")?;
    /// assert_eq!(b.recv_bytes_into(&mut buf)?, 2);
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        let fd = self.fd.as_ref().ok_or_else(closed)?.as_fd();
        if let Transport::Ring(r) = &mut self.transport {
            return r.recv_into(fd, self.max_frame, buf);
        }
        let max = self.max_frame;
        let (reader, mut src) = self.source()?;
        reader.read_into(&mut src, buf, max)
    }

    /// Receives one message and decodes it with postcard as a `T`. Small
    /// messages are decoded in place from the read buffer, without a copy.
    /// A [`PodVec`](crate::PodVec) of another element type than the sender's
    /// is an [`IpcError::Payload`] naming both.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        crate::payload::clear_decode_error();
        self.recv_bytes_with(|bytes| {
            postcard::from_bytes::<T>(bytes).map_err(|source| match crate::payload::take_decode_error() {
                Some(e) => IpcError::Payload(e),
                None => IpcError::Decode { type_name: std::any::type_name::<T>(), len: bytes.len(), source },
            })
        })
        .and_then(|r| r)
    }

    /// Receives one message and hands its bytes to `f` where they lie: in the
    /// shared-memory ring of a [`pipe`](crate::pipe) connection, in the read
    /// buffer of a socket connection (a socket message longer than that
    /// buffer, 64 KiB, is first read whole into a temporary vector). No copy
    /// for messages in the ring or the buffer.
    ///
    /// With [`Bytes::view`](crate::Bytes::view) it reads a sent
    /// [`Bytes`](crate::Bytes) without allocating:
    ///
    /// ```
    /// use mproc_ipc::{pipe, Bytes};
    ///
    /// let (mut a, mut b) = pipe(true)?;
    /// a.send(&Bytes::from(vec![3u8; 4096]))?;
    /// let mut sum = 0u64;
    /// b.recv_bytes_with(|msg| Bytes::view(msg).map(|s| sum = s.iter().map(|&x| u64::from(x)).sum()))??;
    /// assert_eq!(sum, 3 * 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_bytes_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let fd = self.fd.as_ref().ok_or_else(closed)?.as_fd();
        if let Transport::Ring(r) = &mut self.transport {
            return r.with_message(fd, self.max_frame, |msg| f(msg.as_slice()));
        }
        let max = self.max_frame;
        let (reader, mut src) = self.source()?;
        reader.with_frame(&mut src, max, f)
    }

    /// Sends a handle — a [`Segment`](mproc_shm::Segment), `Queue`, `Lock`,
    /// `Value`, another `Connection`, anything [`Share`] — to the process at
    /// the other end, which need not be related to this one: its token goes as
    /// one message and its descriptors with it by `SCM_RIGHTS`. The receiver
    /// calls [`recv_handle`](Connection::recv_handle). Only a connection on a
    /// Unix socket carries descriptors ([`IpcError::HandlesUnsupported`]
    /// otherwise); at most [`MAX_HANDLE_FDS`] per handle.
    ///
    /// ```
    /// use mproc_ipc::Connection;
    /// use mproc_shm::Value;
    ///
    /// let (mut a, mut b) = Connection::pair()?;
    /// let v = Value::<u64>::new(7)?;
    /// a.send_handle(&v)?;
    /// let w: Value<u64> = b.recv_handle()?;
    /// w.set(8);
    /// assert_eq!(v.get(), 8);
    /// # Ok::<(), mproc_ipc::IpcError>(())
    /// ```
    #[doc(alias = "reduction.send_handle")]
    pub fn send_handle<H: Share>(&mut self, handle: &H) -> Result<()> {
        #[cfg(feature = "tokio")]
        self.finish_async_send()?;
        let transport = match (&self.transport, self.kind) {
            (Transport::Ring(_), _) => "shared-memory pipe",
            (Transport::Socket, SocketKind::Tcp) => "TCP",
            (Transport::Socket, SocketKind::Unix) => "",
        };
        if !transport.is_empty() {
            return Err(IpcError::HandlesUnsupported { transport });
        }
        let mut exports = Exports::new();
        let token = handle.export(&mut exports)?;
        let fds = exports.fds().to_vec();
        if fds.len() > MAX_HANDLE_FDS {
            return Err(IpcError::TooManyDescriptors { count: fds.len(), max: MAX_HANDLE_FDS });
        }
        let token = postcard::to_allocvec(&token)
            .map_err(|source| IpcError::Encode { type_name: std::any::type_name::<H::Token>(), source })?;
        let msg = postcard::to_allocvec(&HandleMsg { fds: fds.clone(), token })
            .map_err(|source| IpcError::Encode { type_name: "handle message", source })?;
        let mut header = [0u8; MAX_HEADER];
        let hlen = encode_header(msg.len() as u64, &mut header);
        let frame = [&header[..hlen], &msg[..]].concat();
        let fd = self.fd.as_ref().ok_or_else(closed)?.as_fd();
        // SAFETY: the numbers were recorded by `export` from fds that `handle`
        // (borrowed for this whole call) keeps open.
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|&n| unsafe { BorrowedFd::borrow_raw(n) }).collect();
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
            return Err(IpcError::TooManyDescriptors { count: fds.len(), max: MAX_HANDLE_FDS });
        }
        // The descriptors ride with the first byte; the rest follows plainly.
        let sent = loop {
            match rustix::net::sendmsg(fd, &[IoSlice::new(&frame)], &mut control, SendFlags::NOSIGNAL) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(IpcError::os("sendmsg", "handle", e)),
            }
        };
        send_all(fd, &frame[sent..])
    }

    /// Receives a handle sent with [`send_handle`](Connection::send_handle),
    /// as a `H`: the descriptors that came with it stand in for the sender's
    /// numbers while the token is imported (see
    /// [`import_with_fds`](mproc_shm::import_with_fds)).
    ///
    /// Descriptors are matched to handle messages in the order they arrive, so
    /// receive a handle message only with `recv_handle`: one read as plain
    /// bytes leaves its descriptors queued (until the connection is dropped),
    /// and a later handle could then be given them — which the import's
    /// checks (inode, device) refuse with a typed error.
    #[doc(alias = "reduction.recv_handle")]
    pub fn recv_handle<H: Share>(&mut self) -> Result<H> {
        if !matches!(self.transport, Transport::Socket) || self.kind != SocketKind::Unix {
            let transport = if self.kind == SocketKind::Tcp { "TCP" } else { "shared-memory pipe" };
            return Err(IpcError::HandlesUnsupported { transport });
        }
        let msg: HandleMsg = self.recv()?;
        if msg.fds.len() > self.received.len() {
            let got = self.received.len();
            self.received.clear();
            return Err(IpcError::MissingDescriptors { expected: msg.fds.len(), got });
        }
        let fds: Vec<(RawFd, OwnedFd)> =
            msg.fds.iter().map(|&n| (n, self.received.pop_front().expect("counted above"))).collect();
        let token: H::Token = postcard::from_bytes(&msg.token).map_err(|source| IpcError::Decode {
            type_name: std::any::type_name::<H::Token>(),
            len: msg.token.len(),
            source,
        })?;
        Ok(mproc_shm::import_with_fds(token, fds)?)
    }

    /// Whether a message (or end of file) can be read without blocking, waiting
    /// up to `timeout` (`None`: forever; `Some(Duration::ZERO)`: just look).
    ///
    /// Like Python's, `poll` reports the stream readable once any bytes (or end
    /// of file) are there; a peer that wrote half a frame and stalled makes a
    /// following `recv` block.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc_ipc::Connection;
    ///
    /// let (mut a, mut b) = Connection::pair()?;
    /// assert!(!b.poll(Some(Duration::ZERO))?);
    /// a.send(&42u32)?;
    /// assert!(b.poll(Some(Duration::from_secs(5)))?);
    /// assert_eq!(b.recv::<u32>()?, 42);
    /// # Ok::<(), mproc_ipc::IpcError>(())
    /// ```
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let fd = self.fd.as_ref().ok_or_else(closed)?.as_fd();
        if let Transport::Ring(r) = &self.transport {
            return r.poll(fd, timeout);
        }
        if self.reader.buffered() > 0 || self.reader.at_eof() {
            return Ok(true);
        }
        poll_readable(&[fd], timeout).map(|ready| !ready.is_empty())
    }

    /// Closes this end now. Later calls fail with [`IpcError::Closed`]; the
    /// peer reads [`IpcError::Eof`] once it has read what was sent. Dropping
    /// the connection does the same.
    pub fn close(&mut self) {
        // The reactor registration borrows the socket: it goes first.
        #[cfg(feature = "tokio")]
        {
            self.aio = Default::default();
        }
        // The socket first: the ring end's drop then wakes the peer, which
        // finds the socket closed.
        self.fd = None;
        self.transport = Transport::Socket;
        self.reader = FrameReader::new();
        self.wbuf = Vec::new();
    }

    /// True when a read would return without touching the socket: bytes are
    /// buffered, a message waits in the ring, or end of file was seen.
    pub(crate) fn ready_now(&self) -> bool {
        match &self.transport {
            Transport::Ring(r) => r.ready_now(),
            Transport::Socket => self.reader.buffered() > 0 || self.reader.at_eof(),
        }
    }

    /// The ring end of a ring connection (for `wait`).
    pub(crate) fn ring_end(&self) -> Option<&RingEnd> {
        self.ring()
    }

    pub(crate) fn borrowed_fd(&self) -> Result<BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd()).ok_or_else(closed)
    }
}

impl AsRawFd for Connection {
    /// The socket's fd, or -1 after [`close`](Connection::close).
    ///
    /// For a [`pipe`](crate::pipe) connection this is the doorbell socket: it
    /// turns readable when the peer is gone, but not when a message arrives
    /// (messages travel through shared memory). Wait for messages with
    /// [`poll`](Connection::poll) or [`wait`](crate::wait), not with an outside
    /// `poll(2)` on this fd.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }
}

/// A [`Connection::send_handle`] message: the sender's numbers of the
/// descriptors sent with it (in order), and the handle's encoded token.
#[derive(Serialize, Deserialize)]
struct HandleMsg {
    fds: Vec<RawFd>,
    token: Vec<u8>,
}

/// Sends all of `buf` with `MSG_NOSIGNAL` (a closed peer is an `EPIPE` error,
/// never a `SIGPIPE`), retrying on `EINTR`.
/// The error of an operation on a closed connection, built only when needed
/// (an eager `ok_or(IpcError::Closed)` costs a drop on the hot path).
#[inline]
fn closed() -> IpcError {
    IpcError::Closed
}

fn send_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match rustix::net::send(fd, buf, SendFlags::NOSIGNAL) {
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(IpcError::os("send", "connection", e)),
        }
    }
    Ok(())
}

/// `poll(2)` for `POLLIN` on `fds`; returns the indices that are readable or
/// hung up, waiting up to `timeout` for at least one. Restarts after `EINTR`
/// with the time that is left.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let deadline = Deadline::within(timeout);
    let mut pfds: Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::new(fd, PollFlags::IN)).collect();
    loop {
        match rustix::event::poll(&mut pfds, deadline.timespec().as_ref()) {
            Ok(0) => {
                if deadline.has_passed() {
                    return Ok(Vec::new());
                }
            }
            Ok(_) => {
                return Ok(pfds.iter().enumerate().filter(|(_, p)| !p.revents().is_empty()).map(|(i, _)| i).collect())
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(IpcError::os("poll", format!("{} connection(s)", fds.len()), e)),
        }
    }
}

/// The serialised identity of a [`Connection`] exported to a spawned child:
/// the fd number the child inherits, and the socket's inode to verify it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionToken {
    fd: RawFd,
    dev: u64,
    ino: u64,
    exporter: u32,
    kind: SocketKind,
    max_frame: u64,
    /// The shared-memory part of a [`pipe`](crate::pipe) connection.
    ring: Option<RingToken>,
}

/// Inherited fds already taken over by an import in this process: a second
/// import of the same token gets a duplicate, never a second owner.
fn imported() -> &'static Mutex<HashSet<RawFd>> {
    static IMPORTED: OnceLock<Mutex<HashSet<RawFd>>> = OnceLock::new();
    IMPORTED.get_or_init(|| Mutex::new(HashSet::new()))
}

impl Share for Connection {
    type Token = ConnectionToken;

    /// Exports the socket fd for a spawned child. Fails if this end is closed
    /// or holds already-read bytes, which could not travel with the fd.
    fn export(&self, exports: &mut Exports) -> mproc_shm::Result<ConnectionToken> {
        let bad = |detail: String| ShmError::BadToken { what: "connection", detail };
        let fd = self.fd.as_ref().ok_or_else(|| bad("the connection is closed".into()))?;
        if self.reader.buffered() > 0 {
            return Err(bad(format!(
                "{} bytes were already read from the socket in this process and would be lost",
                self.reader.buffered()
            )));
        }
        let st = rustix::fs::fstat(fd).map_err(|e| bad(format!("fstat of fd {}: {e}", fd.as_raw_fd())))?;
        exports.inherit(fd.as_fd());
        let ring = self.ring().map(|r| r.export(exports)).transpose()?;
        Ok(ConnectionToken {
            fd: fd.as_raw_fd(),
            dev: st.st_dev,
            ino: st.st_ino,
            exporter: sys::pid(),
            kind: self.kind,
            max_frame: self.max_frame as u64,
            ring,
        })
    }

    /// Takes over the inherited fd (so that dropping the connection in the
    /// child closes it, and the peer sees end of file), after checking that it
    /// is the same socket. In the exporting process itself, or on a second
    /// import, the fd is duplicated instead. A ring connection's token also
    /// names its segment, which must hold a pipe (checked by magic and version).
    fn import(token: ConnectionToken) -> mproc_shm::Result<Connection> {
        let bad = |detail: String| ShmError::BadToken { what: "connection", detail };
        let fd = token.fd;
        // Attach the rings first: a bad segment leaves the socket fd untouched.
        let ring = token.ring.map(RingEnd::import).transpose()?;
        if ring.is_some() && token.kind != SocketKind::Unix {
            return Err(bad(format!("a pipe connection over a {:?} socket", token.kind)));
        }
        // Received under another number (SCM_RIGHTS): ours to take over.
        let received = mproc_shm::take_received_fd(fd);
        // SAFETY: fstat on an fd number we may not own is sound: at worst it is
        // closed (EBADF) or another file, both checked below; the borrow ends
        // before any fd is created from it.
        let borrowed = received.as_ref().map_or_else(|| unsafe { BorrowedFd::borrow_raw(fd) }, |f| f.as_fd());
        let st = rustix::fs::fstat(borrowed).map_err(|e| bad(format!("fd {fd} was not inherited: {e}")))?;
        let is_socket = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket;
        if !is_socket || st.st_dev != token.dev || st.st_ino != token.ino {
            return Err(bad(format!(
                "fd {fd} is inode {} on device {} (socket: {is_socket}); the token names socket inode {} on device {} \
                 (stale token?)",
                st.st_ino, st.st_dev, token.ino, token.dev
            )));
        }
        let here = sys::pid();
        // The table's lock only when it is needed (not for a received fd): a fork
        // from another thread while it is held leaves the child's copy locked.
        let owned = if let Some(owned) = received {
            owned
        } else if here != token.exporter && sys::lock(imported()).insert(fd) {
            // SAFETY: [1] the fd is open and is the exported socket (checked
            // above); [2] it was inherited across exec for this import, and the
            // `imported` set guarantees only this one OwnedFd is made from it.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)
                .map_err(|e| ShmError::BadToken { what: "connection", detail: format!("F_SETFD on fd {fd}: {e}") })?;
            owned
        } else {
            rustix::io::fcntl_dupfd_cloexec(borrowed, 0)
                .map_err(|e| bad(format!("fcntl(F_DUPFD_CLOEXEC) of fd {fd}: {e}")))?
        };
        let mut conn = Connection::from_fd(owned, token.kind, token.max_frame.min(usize::MAX as u64) as usize);
        if let Some(ring) = ring {
            conn.transport = Transport::Ring(Box::new(ring));
        }
        Ok(conn)
    }
}
