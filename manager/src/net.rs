//! Sockets: connecting to a server, accepting clients, running a server in this process
//! ([`Server::serve_forever`]) or in a forked child ([`ManagerBuilder::start`]).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mproc_ipc::{Connection, IpcError};
use mproc_process::Process;
use rustix::event::{PollFd, PollFlags};

use crate::auth::{answer_challenge, deliver_challenge};
use crate::client::{random_bytes, Conn, Endpoint, Target};
use crate::error::{ManagerError, Result};
use crate::registry::Registry;
use crate::server::{ServerState, Transport, MAX_FRAME};
use crate::Manager;

/// Where a manager server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A Unix socket path (local use).
    Unix(PathBuf),
    /// A TCP address (remote use). Bind `127.0.0.1` unless other machines must connect.
    Tcp(SocketAddr),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

fn io_err(what: &str, addr: &Address, e: impl std::fmt::Display) -> ManagerError {
    ManagerError::Io(format!("{what} {addr}: {e}"))
}

/// An ipc `Connection` as a [`Transport`].
struct SocketConn(Connection);

impl Transport for SocketConn {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        self.0.send_bytes(frame).map_err(|e| ManagerError::Disconnected(e.to_string()))
    }

    fn recv(&mut self) -> Result<Vec<u8>> {
        self.0.recv_bytes().map_err(|e| match e {
            IpcError::MessageTooLarge { len, max } => ManagerError::FrameTooLarge { len, max: max as u64 },
            e => ManagerError::Disconnected(e.to_string()),
        })
    }

    fn alive(&self) -> bool {
        let fd = self.0.as_raw_fd();
        if fd < 0 {
            return false;
        }
        // SAFETY: `fd` is the open socket `self.0` owns; it outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut fds = [PollFd::new(&fd, PollFlags::RDHUP)];
        match rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })) {
            Ok(0) => true,
            Ok(_) => !fds[0].revents().intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
            Err(_) => true,
        }
    }
}

/// Connects and authenticates (client side: answer, then challenge).
pub(crate) fn connect(address: &Address, authkey: &[u8]) -> Result<Conn> {
    let mut conn = match address {
        Address::Unix(path) => Connection::from_unix(UnixStream::connect(path).map_err(|e| no_server(address, e))?),
        Address::Tcp(addr) => Connection::from_tcp(TcpStream::connect(addr).map_err(|e| no_server(address, e))?),
    };
    conn.set_max_frame(MAX_FRAME);
    answer_challenge(&mut conn, authkey)?;
    deliver_challenge(&mut conn, authkey)?;
    Ok(Box::new(SocketConn(conn)))
}

fn no_server(address: &Address, e: std::io::Error) -> ManagerError {
    ManagerError::Disconnected(format!("cannot connect to the manager at {address}: {e}"))
}

enum RawListener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl RawListener {
    fn bind(address: &Address) -> Result<(RawListener, Address)> {
        match address {
            Address::Unix(path) => {
                let l = UnixListener::bind(path).map_err(|e| io_err("bind", address, e))?;
                // Only this user may connect (the authkey is the second line of defence).
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io_err("chmod 0600", address, e))?;
                Ok((RawListener::Unix(l), address.clone()))
            }
            Address::Tcp(addr) => {
                let l = TcpListener::bind(addr).map_err(|e| io_err("bind", address, e))?;
                let bound = l.local_addr().map_err(|e| io_err("local_addr", address, e))?;
                Ok((RawListener::Tcp(l), Address::Tcp(bound)))
            }
        }
    }

    fn accept(&self) -> std::io::Result<Connection> {
        match self {
            RawListener::Unix(l) => l.accept().map(|(s, _)| Connection::from_unix(s)),
            RawListener::Tcp(l) => l.accept().map(|(s, _)| Connection::from_tcp(s)),
        }
    }
}

/// Opens (and drops) a plain connection to wake an accept loop blocked on `address`.
fn poke(address: &Address) {
    match address {
        Address::Unix(p) => drop(UnixStream::connect(p)),
        Address::Tcp(a) => {
            let mut a = *a;
            if a.ip().is_unspecified() {
                a.set_ip(Ipv4Addr::LOCALHOST.into());
            }
            drop(TcpStream::connect_timeout(&a, Duration::from_secs(1)));
        }
    }
}

/// A bound manager server, ready to [`serve_forever`](Server::serve_forever).
pub struct Server {
    state: Arc<ServerState>,
    listener: RawListener,
    address: Address,
    authkey: Arc<[u8]>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("address", &self.address).finish()
    }
}

impl Server {
    /// The bound address (with the real port when bound to port 0).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The server's counters.
    pub fn stats(&self) -> crate::ServerStats {
        self.state.stats()
    }

    /// Serves clients — one thread each, authenticated first — until a client sends
    /// `Shutdown` ([`Manager::shutdown`]). Threads of clients still connected then are
    /// left to end when their clients hang up.
    pub fn serve_forever(self) -> Result<()> {
        let address = self.address.clone();
        self.state.set_on_shutdown(Box::new(move || poke(&address)));
        loop {
            let conn = self.listener.accept();
            if self.state.is_shut_down() {
                return Ok(());
            }
            let Ok(mut conn) = conn else { continue };
            let (state, authkey) = (self.state.clone(), self.authkey.clone());
            let spawned = std::thread::Builder::new().name("mproc-manager-conn".into()).spawn(move || {
                conn.set_max_frame(MAX_FRAME);
                // Server side: challenge first, then answer.
                if deliver_challenge(&mut conn, &authkey).is_err() || answer_challenge(&mut conn, &authkey).is_err() {
                    return;
                }
                state.serve_connection(&mut SocketConn(conn));
            });
            // Out of threads: the connection is dropped (the client sees Disconnected).
            drop(spawned);
        }
    }
}

/// Configures and starts a manager server: registry (default: the `SyncManager`
/// built-ins), address and authkey.
#[derive(Debug, Clone)]
pub struct ManagerBuilder {
    registry: Registry,
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
}

impl Default for ManagerBuilder {
    fn default() -> Self {
        ManagerBuilder::new()
    }
}

impl ManagerBuilder {
    /// A `SyncManager` on a private Unix socket with a random authkey.
    pub fn new() -> Self {
        ManagerBuilder { registry: Registry::sync(), address: None, authkey: None }
    }

    /// Serves `registry` instead (a `BaseManager`: `Registry::new()` plus registrations).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Listens on `address` (e.g. `Address::Tcp("127.0.0.1:5000".parse()?)`).
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }

    /// Uses `authkey` instead of a random one.
    pub fn authkey(mut self, authkey: &[u8]) -> Self {
        self.authkey = Some(authkey.to_vec());
        self
    }

    fn authkey_or_random(&self) -> Arc<[u8]> {
        match &self.authkey {
            Some(k) => k.as_slice().into(),
            None => {
                let mut k = [0u8; 32];
                random_bytes(&mut k);
                k.as_slice().into()
            }
        }
    }

    /// Binds the server in this process; run it with [`Server::serve_forever`].
    /// Without an address, binds TCP `127.0.0.1` on a free port.
    pub fn bind(self) -> Result<Server> {
        let address = self.address.clone().unwrap_or(Address::Tcp((Ipv4Addr::LOCALHOST, 0).into()));
        let (listener, address) = RawListener::bind(&address)?;
        let authkey = self.authkey_or_random();
        Ok(Server { state: ServerState::new(self.registry), listener, address, authkey })
    }

    /// Starts the server in a forked child process and returns a handle that owns it:
    /// `shutdown` (or drop) stops and reaps it. Without an address, listens on a Unix
    /// socket (mode 0600) in a fresh private directory (mode 0700).
    ///
    /// The child is a daemon: it is killed if the thread that started it ends (see
    /// `mproc_process::Builder::daemon`), so start managers from a long-lived thread.
    pub fn start(self) -> Result<Manager> {
        let dir = match &self.address {
            Some(_) => None,
            None => Some(private_dir()?),
        };
        let address = match (&self.address, &dir) {
            (Some(a), _) => a.clone(),
            (None, Some(d)) => Address::Unix(d.join("manager.sock")),
            (None, None) => unreachable!("a private dir is made when no address is given"),
        };
        let registry = self.registry.clone();
        let authkey = self.authkey_or_random();
        let bound = ManagerBuilder { registry, address: Some(address), authkey: Some(authkey.to_vec()) }.bind();
        let server = match bound {
            Ok(s) => s,
            Err(e) => {
                if let Some(d) = &dir {
                    let _ = std::fs::remove_dir_all(d);
                }
                return Err(e);
            }
        };
        let address = server.address.clone();
        let mut process = Process::builder()
            .name("mproc-manager")
            .daemon(true)
            .target(move || {
                let _ = server.serve_forever();
            })
            .build();
        if let Err(e) = process.start() {
            if let Some(d) = &dir {
                let _ = std::fs::remove_dir_all(d);
            }
            return Err(ManagerError::Start(e.to_string()));
        }
        let target = Target::new(Endpoint::Socket { address, authkey });
        Ok(Manager { target, server: Some(ServerProcess { process: Mutex::new(process), dir }) })
    }
}

/// Makes `$TMPDIR/mproc-manager-<random>` with mode 0700.
fn private_dir() -> Result<PathBuf> {
    let mut r = [0u8; 8];
    random_bytes(&mut r);
    let name = format!("mproc-manager-{:016x}", u64::from_ne_bytes(r));
    let dir = std::env::temp_dir().join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| ManagerError::Io(format!("mkdir {}: {e}", dir.display())))?;
    Ok(dir)
}

/// A server process a [`Manager`] handle started.
pub(crate) struct ServerProcess {
    process: Mutex<Process>,
    dir: Option<PathBuf>,
}

impl ServerProcess {
    /// Waits for the process to exit (it was asked to), kills it after `grace`, reaps
    /// it, and removes its private directory.
    pub fn stop(self, grace: Duration) -> Result<()> {
        let mut p = self.process.lock().unwrap_or_else(|e| e.into_inner());
        let result = match p.join_timeout(grace) {
            Ok(true) => Ok(()),
            _ => {
                let _ = p.kill();
                p.join().map_err(|e| ManagerError::Io(format!("reaping the manager process: {e}")))
            }
        };
        if let Some(d) = &self.dir {
            remove_private_dir(d);
        }
        result
    }

    /// The server's pid.
    pub fn pid(&self) -> Option<u32> {
        self.process.lock().unwrap_or_else(|e| e.into_inner()).pid()
    }
}

fn remove_private_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
