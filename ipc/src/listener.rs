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
use std::time::Duration;

use crate::auth::{answer_challenge, deliver_challenge};
use crate::connection::{poll_readable, Connection, DEFAULT_MAX_FRAME};
use crate::error::{IpcError, Result};

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

/// The default limit on how long [`Listener::accept`] waits for a connected
/// peer to complete the handshake: 30 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound, listening socket that hands out authenticated [`Connection`]s.
///
/// - Unix sockets are created with mode `0600` (owner only) and unlinked when
///   the listener is dropped. [`Listener::bind_temp`] picks a fresh path inside
///   a private (`0700`) directory.
/// - With an authkey, [`accept`](Listener::accept) runs CPython's mutual
///   challenge (it delivers first, then answers); a peer with another key gets
///   [`IpcError::Authentication`], and so does this side.
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
        Ok(Listener {
            socket,
            address: bound,
            authkey: authkey.map(<[u8]>::to_vec),
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
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
        rustix::rand::getrandom(&mut rnd, rustix::rand::GetRandomFlags::empty())
            .map_err(|e| IpcError::os("getrandom", "temporary socket name", e))?;
        let dir = std::env::temp_dir().join(format!(
            "mproc-{}-{}-{:016x}",
            std::process::id(),
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

    /// Sets how long `accept` waits for a connected peer's handshake messages
    /// (`None`: forever, as in Python). Without a limit, a peer that connects
    /// and says nothing stalls `accept`.
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) {
        self.handshake_timeout = timeout;
    }

    /// Like [`accept`](Listener::accept), but gives up after `timeout` with
    /// `Ok(None)` if no peer connected (`None`: wait forever). Lets a server
    /// loop check a shutdown flag between waits.
    pub fn accept_timeout(&self, timeout: Option<Duration>) -> Result<Option<Connection>> {
        // SAFETY: the listener's fd is open for the lifetime of `self`.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.as_raw_fd()) };
        if poll_readable(&[fd], timeout)?.is_empty() {
            return Ok(None);
        }
        self.accept().map(Some)
    }

    /// Waits for a peer, then runs the handshake if this listener has an
    /// authkey. A failed handshake is an error for this peer only: call
    /// `accept` again for the next.
    pub fn accept(&self) -> Result<Connection> {
        let what = || self.address.to_string();
        let mut conn = match &self.socket {
            Socket::Unix(l) => {
                let (s, _) = l.accept().map_err(|e| IpcError::os("accept", what(), e))?;
                set_timeouts_unix(&s, self.handshake_timeout).map_err(|e| IpcError::os("setsockopt", what(), e))?;
                Connection::from_unix(s)
            }
            Socket::Tcp(l) => {
                let (s, _) = l.accept().map_err(|e| IpcError::os("accept", what(), e))?;
                s.set_read_timeout(self.handshake_timeout).map_err(|e| IpcError::os("setsockopt", what(), e))?;
                s.set_write_timeout(self.handshake_timeout).map_err(|e| IpcError::os("setsockopt", what(), e))?;
                Connection::from_tcp(s)
            }
        };
        if let Some(key) = &self.authkey {
            deliver_challenge(&mut conn, key)?;
            answer_challenge(&mut conn, key)?;
        }
        clear_timeouts(&conn).map_err(|e| IpcError::os("setsockopt", what(), e))?;
        conn.set_max_frame(self.max_frame);
        Ok(conn)
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
