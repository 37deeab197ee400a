//! [`Listener`] and [`Client`]: connections on a Unix path or a TCP address,
//! with the authkey handshake (Python's `multiprocessing.connection.Listener`
//! and `Client`).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::auth::{answer_challenge, deliver_challenge};
use crate::connection::{Connection, DEFAULT_MAX_FRAME};
use crate::error::{IpcError, Result};
use crate::handshake::{Handshakes, Stream};

#[cfg(feature = "tokio")]
#[path = "asyncio/listener.rs"]
mod asyncio;

/// Where a [`Listener`] listens and a [`Client`] connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A Unix-domain socket at a filesystem path (Python's `AF_UNIX` family).
    /// A path that starts with a NUL byte names a socket in Linux's abstract
    /// namespace (no file; gone when closed), as in Python.
    Unix(PathBuf),
    /// A TCP address (Python's `AF_INET` / `AF_INET6`).
    Tcp(SocketAddr),
}

impl Address {
    /// `127.0.0.1:port`: a TCP address reachable from this machine only.
    /// Port 0 lets the system choose; [`Listener::address`] tells which.
    pub fn loopback(port: u16) -> Address {
        Address::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// Parses an address as a user would write it:
    /// - a bare port, `"50000"` → TCP on loopback (`127.0.0.1:50000`);
    /// - `"host:port"` or `"[v6]:port"` → TCP, the host resolved (first address);
    /// - anything containing `/` → a Unix socket path.
    ///
    /// ```
    /// use mproc_ipc::Address;
    /// assert_eq!(Address::parse("5000")?, Address::loopback(5000));
    /// assert_eq!(Address::parse("/tmp/s")?, Address::Unix("/tmp/s".into()));
    /// assert_eq!(Address::parse("0.0.0.0:80")?, Address::Tcp("0.0.0.0:80".parse().unwrap()));
    /// # Ok::<(), mproc_ipc::IpcError>(())
    /// ```
    pub fn parse(s: &str) -> Result<Address> {
        let bad = |reason: String| IpcError::BadAddress { address: s.to_owned(), reason };
        if s.contains('/') {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        if let Ok(port) = s.parse::<u16>() {
            return Ok(Address::loopback(port));
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Address::Tcp(addr));
        }
        if !s.contains(':') {
            return Err(bad("expected a port, host:port, or a Unix socket path containing '/'".into()));
        }
        let mut addrs = s.to_socket_addrs().map_err(|e| bad(format!("cannot resolve: {e}")))?;
        addrs.next().map(Address::Tcp).ok_or_else(|| bad("the host resolved to no address".into()))
    }
}

impl FromStr for Address {
    type Err = IpcError;
    fn from_str(s: &str) -> Result<Address> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => match abstract_name(p) {
                Some(name) => write!(f, "\\0{}", String::from_utf8_lossy(name)),
                None => write!(f, "{}", p.display()),
            },
            Address::Tcp(a) => write!(f, "{a}"),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

impl From<PathBuf> for Address {
    fn from(p: PathBuf) -> Address {
        Address::Unix(p)
    }
}

impl From<&Path> for Address {
    fn from(p: &Path) -> Address {
        Address::Unix(p.to_owned())
    }
}

impl From<&Address> for Address {
    fn from(a: &Address) -> Address {
        a.clone()
    }
}

enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// The default limit on how long a connected peer has to complete the
/// handshake with a [`Listener`] (and a [`Client`] with its listener): 30 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The default bound on handshakes a [`Listener`] runs at once: 256.
pub const DEFAULT_MAX_HANDSHAKES: usize = 256;

/// A bound, listening socket that hands out authenticated [`Connection`]s.
///
/// - Unix sockets are created with mode `0600` (owner only) and unlinked when
///   the listener is dropped. [`Listener::bind_temp`] picks a fresh path inside
///   a private (`0700`) directory.
/// - With an authkey, each peer runs CPython's mutual challenge (the listener
///   delivers first, then answers); a peer with another key gets
///   [`IpcError::Authentication`], and so does this side.
/// - Handshakes run beside `accept`, not in front of it: `accept` polls the
///   socket and every handshake in flight together and returns the first peer
///   to finish. A peer that connects and says nothing holds one file
///   descriptor until its [handshake timeout](Listener::set_handshake_timeout),
///   never the peers behind it. At most [`DEFAULT_MAX_HANDSHAKES`] run at once
///   ([`set_max_handshakes`](Listener::set_max_handshakes)); a new peer beyond
///   that drops the handshake closest to its deadline.
/// - Accepted connections have the frame cap [`DEFAULT_MAX_FRAME`] unless
///   changed with [`set_max_frame`](Listener::set_max_frame).
///
/// ```
/// use mproc_ipc::{Address, Client, Listener};
///
/// let listener = Listener::bind(Address::loopback(0), Some(b"secret"))?;
/// let addr = listener.address().clone();
/// let t = std::thread::spawn(move || -> mproc_ipc::Result<Vec<u8>> {
///     let mut c = Client::connect(&addr, Some(b"secret"))?;
///     c.send_bytes(b"ping")?;
///     c.recv_bytes()
/// });
/// let mut server = listener.accept()?;
/// assert_eq!(server.recv_bytes()?, b"ping");
/// server.send_bytes(b"pong")?;
/// assert_eq!(t.join().unwrap()?, b"pong");
/// # Ok::<(), mproc_ipc::IpcError>(())
/// ```
pub struct Listener {
    socket: Socket,
    address: Address,
    authkey: Option<Vec<u8>>,
    max_frame: usize,
    handshake_timeout: Option<Duration>,
    max_handshakes: usize,
    /// Handshakes in flight and finished ones not yet returned by `accept`.
    handshakes: Mutex<Handshakes>,
    /// The socket file we created (path, inode), removed on drop if unchanged.
    unlink: Option<(PathBuf, u64)>,
    /// The private directory of [`Listener::bind_temp`], removed on drop.
    temp_dir: Option<PathBuf>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("authenticated", &self.authkey.is_some())
            .field("max_frame", &self.max_frame)
            .finish()
    }
}

impl Listener {
    /// Binds and listens on `address` (backlog 128). `authkey: None` accepts
    /// any peer, as in Python; pass a key to require the handshake.
    ///
    /// A Unix path that exists already is an error (`EADDRINUSE`), as in Python.
    pub fn bind(address: impl Into<Address>, authkey: Option<&[u8]>) -> Result<Listener> {
        let address = address.into();
        let what = || address.to_string();
        let (socket, bound, unlink) = match &address {
            Address::Unix(path) if abstract_name(path).is_some() => {
                let name = abstract_name(path).unwrap_or_default();
                let sa = std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .map_err(|e| IpcError::BadAddress { address: what(), reason: e.to_string() })?;
                let l = UnixListener::bind_addr(&sa).map_err(|e| IpcError::os("bind", what(), e))?;
                (Socket::Unix(l), address.clone(), None)
            }
            Address::Unix(path) => {
                let l = UnixListener::bind(path).map_err(|e| IpcError::os("bind", what(), e))?;
                // Owner only. bind(2) honours the umask, so a brief window with
                // wider permissions remains for a caller-chosen path in a shared
                // directory; bind_temp has none (its directory is 0700).
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| IpcError::os("chmod", what(), e))?;
                let ino = std::fs::symlink_metadata(path).map_err(|e| IpcError::os("stat", what(), e))?.ino();
                (Socket::Unix(l), address.clone(), Some((path.clone(), ino)))
            }
            Address::Tcp(addr) => {
                let l = TcpListener::bind(addr).map_err(|e| IpcError::os("bind", what(), e))?;
                let local = l.local_addr().map_err(|e| IpcError::os("getsockname", what(), e))?;
                (Socket::Tcp(l), Address::Tcp(local), None)
            }
        };
        // `accept` polls first; a peer that left between poll and accept must
        // not block it.
        let nonblocking = match &socket {
            Socket::Unix(l) => l.set_nonblocking(true),
            Socket::Tcp(l) => l.set_nonblocking(true),
        };
        nonblocking.map_err(|e| IpcError::os("fcntl", what(), e))?;
        Ok(Listener {
            socket,
            address: bound,
            authkey: authkey.map(<[u8]>::to_vec),
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            handshakes: Mutex::new(Handshakes::default()),
            unlink,
            temp_dir: None,
        })
    }

    /// Binds a Unix socket at a fresh path inside a new private directory
    /// (mode `0700`, under the system temp dir), like Python's `Listener()`
    /// with no address. Both are removed when the listener is dropped.
    ///
    /// ```
    /// use mproc_ipc::{Address, Client, Listener};
    ///
    /// let listener = Listener::bind_temp(Some(b"key"))?;
    /// let Address::Unix(path) = listener.address().clone() else { unreachable!() };
    /// let t = std::thread::spawn(move || Client::connect(path, Some(b"key")));
    /// let mut server = listener.accept()?;
    /// let mut client = t.join().unwrap()?;
    /// client.send(&"hello")?;
    /// assert_eq!(server.recv::<String>()?, "hello");
    /// # Ok::<(), mproc_ipc::IpcError>(())
    /// ```
    pub fn bind_temp(authkey: Option<&[u8]>) -> Result<Listener> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut rnd = [0u8; 8];
        mproc_shm::sys::random_bytes(&mut rnd).map_err(|e| IpcError::os("getrandom", "temporary socket name", e))?;
        let dir = std::env::temp_dir().join(format!(
            "mproc-{}-{}-{:016x}",
            mproc_shm::sys::pid(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            u64::from_ne_bytes(rnd)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| IpcError::os("mkdir", dir.display().to_string(), e))?;
        match Listener::bind(dir.join("listener.sock"), authkey) {
            Ok(mut l) => {
                l.temp_dir = Some(dir);
                Ok(l)
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// The address this listener is bound to; for TCP port 0, the port the
    /// system chose.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Sets the frame cap of connections accepted from now on.
    pub fn set_max_frame(&mut self, max: usize) {
        self.max_frame = max;
    }

    /// Sets how long a connected peer has to complete the handshake, counted
    /// from when it connected (`None`: forever, as in Python). A peer past its
    /// deadline is closed and reported by `accept` as an
    /// [`IpcError::Authentication`] naming the timeout.
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) {
        self.handshake_timeout = timeout;
    }

    /// Sets how many handshakes may be in flight at once (at least 1). Each
    /// costs one file descriptor and a few hundred bytes.
    pub fn set_max_handshakes(&mut self, max: usize) {
        self.max_handshakes = max.max(1);
    }

    /// Like [`accept`](Listener::accept), but gives up after `timeout` with
    /// [`IpcError::Timeout`] if no peer completed its handshake by then. Lets a
    /// server loop check a shutdown flag between waits.
    ///
    /// Calls from several threads take turns: one polls while the others wait
    /// for it (beyond their own timeout, if it runs longer).
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Connection> {
        self.accept_within(Some(timeout))?.ok_or(IpcError::Timeout { what: "Listener::accept", after: timeout })
    }

    /// Never blocks: a connection whose handshake has finished, else
    /// [`IpcError::Timeout`] with a zero timeout. Progresses the handshakes in
    /// flight as far as they go without waiting.
    pub fn try_accept(&self) -> Result<Connection> {
        self.accept_timeout(Duration::ZERO)
    }

    /// The accept loop: `Ok(None)` once `timeout` (`None`: none) has passed.
    fn accept_within(&self, timeout: Option<Duration>) -> Result<Option<Connection>> {
        let deadline = mproc_shm::sys::Deadline::within(timeout).instant();
        let mut hs = mproc_shm::sys::lock(&self.handshakes);
        loop {
            if let Some(done) = hs.ready.pop_front() {
                return done.map(Some);
            }
            let now = Instant::now();
            let wake = [deadline, hs.next_deadline()].into_iter().flatten().min();
            let (arrived, fired) = {
                let mut fds = Vec::with_capacity(1);
                fds.push(PollFd::from_borrowed_fd(self.socket_fd(), PollFlags::IN));
                fds.extend(hs.poll_fds());
                poll(&mut fds, wake.map(|w| w.saturating_duration_since(now)))?;
                let fired: Vec<bool> = fds[1..].iter().map(|p| !p.revents().is_empty()).collect();
                (!fds[0].revents().is_empty(), fired)
            };
            if arrived {
                // A burst of peers: take a batch per poll, not one.
                for _ in 0..ACCEPT_BATCH {
                    if !self.accept_one(&mut hs)? {
                        break;
                    }
                }
            }
            if let Some(key) = &self.authkey {
                hs.advance(&fired, key, self.max_frame);
            }
            if hs.ready.is_empty() && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    /// Waits for a peer to connect and, if this listener has an authkey, to
    /// complete the handshake. A failed handshake is an error for that peer
    /// only: call `accept` again for the next.
    pub fn accept(&self) -> Result<Connection> {
        loop {
            if let Some(conn) = self.accept_within(None)? {
                return Ok(conn);
            }
        }
    }

    /// How many peers have connected and not yet finished their handshake.
    pub fn handshakes_in_flight(&self) -> usize {
        mproc_shm::sys::lock(&self.handshakes).in_flight()
    }

    /// Takes one peer off the socket's queue: straight to `ready` without an
    /// authkey, into the handshake table with one. `Ok(false)` when the queue
    /// was empty.
    fn accept_one(&self, hs: &mut Handshakes) -> Result<bool> {
        let accepted = match &self.socket {
            Socket::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Socket::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
        };
        let stream = match accepted {
            Ok(s) => s,
            // Another caller took it, or the peer gave up before we got to it.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::Interrupted) => {
                return Ok(true)
            }
            Err(e) => return Err(IpcError::os("accept", self.address.to_string(), e)),
        };
        match &self.authkey {
            None => hs.ready.push_back(stream.into_connection(self.max_frame)),
            Some(_) => hs.start(stream, self.handshake_timeout, self.max_handshakes),
        }
        Ok(true)
    }

    fn socket_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match &self.socket {
            Socket::Unix(l) => l.as_fd(),
            Socket::Tcp(l) => l.as_fd(),
        }
    }
}

/// Peers taken off the socket's queue per poll.
const ACCEPT_BATCH: usize = 64;

/// `poll(2)` on `fds` for up to `timeout` (`None`: forever); `EINTR` counts
/// as a poll where nothing fired.
fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> Result<()> {
    let ts = timeout.map(|t| rustix::event::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos() as _,
    });
    match rustix::event::poll(fds, ts.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(IpcError::os("poll", format!("a listener and {} handshake(s)", fds.len() - 1), e)),
    }
}

/// The name of an abstract-namespace address (a path starting with NUL),
/// without the NUL.
fn abstract_name(path: &Path) -> Option<&[u8]> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().strip_prefix(b"\0")
}

fn set_timeouts_unix(s: &UnixStream, t: Option<Duration>) -> std::io::Result<()> {
    s.set_read_timeout(t)?;
    s.set_write_timeout(t)
}

fn clear_timeouts(conn: &Connection) -> rustix::io::Result<()> {
    // SAFETY: the fd is open for the lifetime of `conn`, which outlives the borrow.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(conn.as_raw_fd()) };
    rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Recv, None)?;
    rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Send, None)
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match &self.socket {
            Socket::Unix(l) => l.as_raw_fd(),
            Socket::Tcp(l) => l.as_raw_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((path, ino)) = &self.unlink {
            // Only remove the socket file if it is still the one we created.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == *ino) {
                let _ = std::fs::remove_file(path);
            }
        }
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Opens connections to a [`Listener`] (Python's `multiprocessing.connection.Client`).
#[derive(Debug, Clone, Copy)]
pub struct Client;

impl Client {
    /// Connects to `address` and, with an authkey, runs the handshake (answers
    /// the listener's challenge, then delivers one). A listener with another
    /// key makes this an [`IpcError::Authentication`].
    ///
    /// The connection's frame cap is [`DEFAULT_MAX_FRAME`].
    ///
    /// ```
    /// use mproc_ipc::{Address, Client, IpcError, Listener};
    ///
    /// let listener = Listener::bind(Address::loopback(0), Some(b"right"))?;
    /// let addr = listener.address().clone();
    /// let t = std::thread::spawn(move || listener.accept());
    /// match Client::connect(&addr, Some(b"wrong")) {
    ///     Err(IpcError::Authentication { .. }) => {}
    ///     other => panic!("{other:?}"),
    /// }
    /// assert!(matches!(t.join().unwrap(), Err(IpcError::Authentication { .. })));
    /// # Ok::<(), IpcError>(())
    /// ```
    ///
    /// A peer that accepts and then stays silent cannot hang this call (as it
    /// hangs CPython's `Client`): connecting and the handshake each wait at most
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`], as the listener's side does; see
    /// [`Client::connect_timeout`] to choose.
    pub fn connect(address: impl Into<Address>, authkey: Option<&[u8]>) -> Result<Connection> {
        Client::connect_timeout(address, authkey, DEFAULT_HANDSHAKE_TIMEOUT)
    }

    /// [`Client::connect`] with at most `timeout` for the TCP connect and at most
    /// `timeout` for each read and write of the handshake. A listener that does
    /// not answer in time is an [`IpcError::Authentication`] naming the timeout;
    /// the returned connection has no timeout.
    pub fn connect_timeout(
        address: impl Into<Address>,
        authkey: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Connection> {
        let address = address.into();
        let what = || address.to_string();
        // Zero is "no timeout" to setsockopt: the shortest real one instead.
        let timeout = timeout.max(Duration::from_micros(1));
        let mut conn = match &address {
            Address::Unix(path) => {
                let stream = match abstract_name(path) {
                    Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name)
                        .and_then(|sa| UnixStream::connect_addr(&sa)),
                    None => UnixStream::connect(path),
                };
                let s = stream.map_err(|e| IpcError::os("connect", what(), e))?;
                set_timeouts_unix(&s, Some(timeout)).map_err(|e| IpcError::os("setsockopt", what(), e))?;
                Connection::from_unix(s)
            }
            Address::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, timeout).map_err(|e| IpcError::os("connect", what(), e))?;
                s.set_read_timeout(Some(timeout)).map_err(|e| IpcError::os("setsockopt", what(), e))?;
                s.set_write_timeout(Some(timeout)).map_err(|e| IpcError::os("setsockopt", what(), e))?;
                Connection::from_tcp(s)
            }
        };
        if let Some(key) = authkey {
            answer_challenge(&mut conn, key)?;
            deliver_challenge(&mut conn, key)?;
        }
        clear_timeouts(&conn).map_err(|e| IpcError::os("setsockopt", what(), e))?;
        Ok(conn)
    }
}
