//! Sockets: connecting to a server, accepting clients, running a server in this process
//! ([`Server::serve_forever`]) or in a forked child ([`ManagerBuilder::start`]).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mproc_ipc::auth::{answer_challenge, deliver_challenge};
pub use mproc_ipc::Address;
use mproc_ipc::{Client, Connection, IpcError, Listener, DEFAULT_HANDSHAKE_TIMEOUT};
use mproc_process::Process;
use rustix::event::{PollFd, PollFlags};

use crate::client::{random_bytes, Conn, Endpoint, Target};
use crate::error::{ManagerError, Result};
use crate::registry::Registry;
use crate::server::{ServerState, Transport, MAX_FRAME};
use crate::Manager;

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
    let mut conn = Client::connect(address, Some(authkey)).map_err(|e| match e {
        IpcError::Authentication { .. } => ManagerError::AuthFailed(e.to_string()),
        e => ManagerError::Disconnected(format!("cannot connect to the manager at {address}: {e}")),
    })?;
    conn.set_max_frame(MAX_FRAME);
    Ok(Box::new(SocketConn(conn)))
}

/// Opens (and drops) a plain connection to wake an accept loop blocked on `address`.
fn poke(address: &Address) {
    let mut a = address.clone();
    if let Address::Tcp(sa) = &mut a {
        if sa.ip().is_unspecified() {
            sa.set_ip(Ipv4Addr::LOCALHOST.into());
        }
    }
    drop(Client::connect(&a, None));
}

/// Sets (or clears, with `None`) the receive and send timeouts of a connection's socket.
fn set_timeouts(conn: &Connection, t: Option<Duration>) {
    let fd = conn.as_raw_fd();
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is the open socket `conn` owns; it outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Recv, t);
    let _ = rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Send, t);
}

/// A bound manager server, ready to [`serve_forever`](Server::serve_forever).
pub struct Server {
    state: Arc<ServerState>,
    listener: Listener,
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
            // The listener has no key: the handshake runs on the connection's own
            // thread, so a client that connects and stalls cannot stall `accept`.
            let conn = self.listener.accept();
            if self.state.is_shut_down() {
                return Ok(());
            }
            let Ok(mut conn) = conn else {
                // Out of fds or similar: do not spin; the condition may pass.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let (state, authkey) = (self.state.clone(), self.authkey.clone());
            let spawned = std::thread::Builder::new().name("mproc-manager-conn".into()).spawn(move || {
                conn.set_max_frame(MAX_FRAME);
                set_timeouts(&conn, Some(DEFAULT_HANDSHAKE_TIMEOUT));
                // Server side: challenge first, then answer.
                if deliver_challenge(&mut conn, &authkey).is_err() || answer_challenge(&mut conn, &authkey).is_err() {
                    return;
                }
                set_timeouts(&conn, None);
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

    /// The authkey given, or 32 random bytes; `Io` if the kernel's CSPRNG fails.
    /// The authkey given, else this process's (`mproc_process::authkey()`,
    /// Python's `current_process().authkey`), which every process of the tree
    /// shares: so any of them can connect and decode this manager's proxies.
    fn authkey_or_random(&self) -> Result<Arc<[u8]>> {
        Ok(match &self.authkey {
            Some(k) => k.as_slice().into(),
            None => mproc_process::authkey().into(),
        })
    }

    /// Binds the server in this process; run it with [`Server::serve_forever`].
    /// Without an address, binds TCP `127.0.0.1` on a free port.
    pub fn bind(self) -> Result<Server> {
        let authkey = self.authkey_or_random()?;
        let address = self.address.clone().unwrap_or(Address::loopback(0));
        let listener = Listener::bind(address.clone(), None).map_err(|e| io_err("bind", &address, e))?;
        let address = listener.address().clone();
        Ok(Server { state: ServerState::new(self.registry), listener, address, authkey })
    }

    /// Starts the server in a forked child process and returns a handle that owns it:
    /// `shutdown` (or drop) stops and reaps it. Without an address, listens on a Unix
    /// socket (mode 0600) in a fresh private directory (mode 0700).
    ///
    /// The child is a daemon (`mproc_process::Builder::daemon`): the kernel kills it
    /// when this process dies, even by SIGKILL. Daemons are forked from this process's
    /// long-lived daemon-starter thread (not the calling thread), so a manager started
    /// from a short-lived thread lives as long as this process, or until `shutdown` /
    /// drop of the returned handle.
    pub fn start(self) -> Result<Manager> {
        let authkey = self.authkey_or_random()?;
        let dir = match &self.address {
            Some(_) => None,
            None => Some(private_dir()?),
        };
        let cleanup = |e: ManagerError| {
            if let Some(d) = &dir {
                remove_private_dir(d);
            }
            e
        };
        let address = match (&self.address, &dir) {
            (Some(a), _) => a.clone(),
            (None, Some(d)) => Address::Unix(d.join("manager.sock")),
            (None, None) => unreachable!("a private dir is made when no address is given"),
        };
        let builder =
            ManagerBuilder { registry: self.registry, address: Some(address), authkey: Some(authkey.to_vec()) };
        // The child binds (so the listener, and its unlink-on-drop, live only there) and
        // reports the bound address, or why it could not bind, on this pair.
        let (mut ready, mut report) = Connection::pair().map_err(|e| cleanup(ManagerError::Start(e.to_string())))?;
        let mut process = Process::builder()
            .name("mproc-manager")
            .daemon(true)
            .target(move || match builder.bind() {
                Ok(server) => {
                    let _ = report.send(&Ok::<_, String>(WireAddress::from(server.address())));
                    drop(report);
                    let _ = server.serve_forever();
                }
                Err(e) => {
                    let _ = report.send(&Err::<WireAddress, _>(e.to_string()));
                }
            })
            .build();
        process.start().map_err(|e| cleanup(ManagerError::Start(e.to_string())))?;
        let reported = match ready.poll(Some(START_TIMEOUT)) {
            Ok(true) => ready.recv::<std::result::Result<WireAddress, String>>().map_err(|e| e.to_string()),
            _ => Err(format!("the server did not report within {START_TIMEOUT:?}")),
        };
        let address = match reported {
            Ok(Ok(a)) => a.into(),
            Ok(Err(e)) | Err(e) => {
                let _ = process.kill();
                let _ = process.join();
                return Err(cleanup(ManagerError::Start(e)));
            }
        };
        let target = Target::new(Endpoint::Socket { address, authkey });
        crate::client::remember(&target);
        Ok(Manager {
            target,
            server: Some(ServerProcess { process: Mutex::new(process), dir, owner: crate::client::current_pid() }),
        })
    }
}

/// How long `start` waits for the server process to bind.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// An [`Address`] on the wire (child → parent at start).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum WireAddress {
    Unix(PathBuf),
    Tcp(std::net::SocketAddr),
}

impl From<&Address> for WireAddress {
    fn from(a: &Address) -> Self {
        match a {
            Address::Unix(p) => WireAddress::Unix(p.clone()),
            Address::Tcp(s) => WireAddress::Tcp(*s),
        }
    }
}

impl From<WireAddress> for Address {
    fn from(a: WireAddress) -> Self {
        match a {
            WireAddress::Unix(p) => Address::Unix(p),
            WireAddress::Tcp(s) => Address::Tcp(s),
        }
    }
}

/// Makes `$TMPDIR/mproc-manager-<random>` with mode 0700, tracked by shm's
/// resource tracker.
fn private_dir() -> Result<PathBuf> {
    let mut r = [0u8; 8];
    random_bytes(&mut r, "the manager's socket directory name")?;
    let name = format!("mproc-manager-{:016x}", u64::from_ne_bytes(r));
    let dir = std::env::temp_dir().join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| ManagerError::Io(format!("mkdir {}: {e}", dir.display())))?;
    // Removed by shm's resource tracker if this process dies without removing
    // it (SIGKILL; the daemon server dies with it).
    mproc_shm::tracker::track_dir(&dir);
    Ok(dir)
}

/// A server process a [`Manager`] handle started.
pub(crate) struct ServerProcess {
    process: Mutex<Process>,
    dir: Option<PathBuf>,
    /// The process that started the server: only it may join the server and remove
    /// its directory (a forked child holding a copy of the handle must not).
    owner: u32,
}

impl ServerProcess {
    /// Waits for the process to exit (it was asked to), kills it after `grace`, reaps
    /// it, and removes its private directory.
    pub fn stop(self, grace: Duration) -> Result<()> {
        let p = self.process.lock().unwrap_or_else(|e| e.into_inner());
        let result = match p.join_timeout(grace) {
            Ok(()) => Ok(()),
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

    /// True in the process that started the server.
    pub fn is_owner(&self) -> bool {
        self.owner == crate::client::current_pid()
    }

    /// The server's pid.
    pub fn pid(&self) -> Option<u32> {
        self.process.lock().unwrap_or_else(|e| e.into_inner()).pid()
    }
}

fn remove_private_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    mproc_shm::tracker::untrack_dir(dir);
}
