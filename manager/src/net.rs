//! The transport: framed byte channels to one peer ([`Transport`]), and the ipc kind
//! of it: a socket (Unix or TCP, after the authkey handshake) or the shared-memory pipe
//! a local client moves to (`crate::local`). Knows nothing of what the frames hold.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;
use std::time::Duration;

pub use mproc_ipc::Address;
use mproc_ipc::{Client, Connection, IpcError};
use rustix::event::{PollFd, PollFlags};

use crate::error::{ManagerError, Result};
use crate::wire::MAX_FRAME;

/// A framed, reliable byte channel to one peer.
pub(crate) trait Transport {
    /// Sends one frame.
    fn send(&mut self, frame: &[u8]) -> Result<()>;
    /// Receives one frame; `Disconnected` on EOF, `FrameTooLarge` over the cap.
    fn recv(&mut self) -> Result<Vec<u8>>;
    /// False once the peer has closed its end (checked by blocked server calls).
    fn alive(&self) -> bool;
    /// Whether the server asks [`alive`](Transport::alive) before running each
    /// request, so a request whose client hung up right after sending it (a dropped
    /// async call) runs nothing. True where a request costs system calls anyway; the
    /// shared-memory pipe, which carries only blocking Rust clients and costs none
    /// while both ends are awake, says false and spares the `poll(2)`.
    fn check_alive_per_request(&self) -> bool {
        true
    }
}

/// A boxed connection to a server.
pub(crate) type Conn = Box<dyn Transport + Send>;

/// An ipc `Connection` as a [`Transport`]: a socket, or a shared-memory pipe, whose
/// `AsRawFd` is its doorbell socket, which hangs up as the socket does when the peer
/// is gone.
pub(crate) struct IpcConn(pub Connection);

impl Transport for IpcConn {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        self.0.send_bytes(frame).map_err(|e| ManagerError::Disconnected { reason: e.to_string() })
    }

    fn recv(&mut self) -> Result<Vec<u8>> {
        self.0.recv_bytes().map_err(|e| match e {
            IpcError::MessageTooLarge { len, max } => ManagerError::FrameTooLarge { len, max: max as u64 },
            e => ManagerError::Disconnected { reason: e.to_string() },
        })
    }

    fn alive(&self) -> bool {
        let fd = self.0.as_raw_fd();
        if fd < 0 {
            return false;
        }
        // SAFETY: `fd` is the open socket (or pipe doorbell socket) `self.0` owns; it
        // outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut fds = [PollFd::new(&fd, PollFlags::RDHUP)];
        match rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })) {
            Ok(0) => true,
            Ok(_) => !fds[0].revents().intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
            Err(_) => true,
        }
    }

    fn check_alive_per_request(&self) -> bool {
        !self.0.is_shared_memory()
    }
}

/// Connects and authenticates (client side: answer, then challenge). A refused
/// handshake is [`ManagerError::Authentication`], as ipc's `IpcError::Authentication`.
pub(crate) fn connect(address: &Address, authkey: &[u8]) -> Result<Conn> {
    let conn = connect_socket(address, authkey)?;
    Ok(Box::new(IpcConn(conn)))
}

/// [`connect`], returning the bare `Connection`.
pub(crate) fn connect_socket(address: &Address, authkey: &[u8]) -> Result<Connection> {
    let mut conn = Client::connect(address, Some(authkey)).map_err(|e| match e {
        IpcError::Authentication { reason } => ManagerError::Authentication { reason },
        e => ManagerError::Disconnected { reason: format!("cannot connect to the manager at {address}: {e}") },
    })?;
    conn.set_max_frame(MAX_FRAME);
    Ok(conn)
}

/// Opens (and drops) a plain connection to wake an accept loop blocked on `address`.
pub(crate) fn poke(address: &Address) {
    let mut a = address.clone();
    if let Address::Tcp(sa) = &mut a {
        if sa.ip().is_unspecified() {
            sa.set_ip(Ipv4Addr::LOCALHOST.into());
        }
    }
    drop(Client::connect(&a, None));
}

/// Sets (or clears, with `None`) the receive and send timeouts of a connection's socket.
pub(crate) fn set_timeouts(conn: &Connection, t: Option<Duration>) {
    let fd = conn.as_raw_fd();
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is the open socket `conn` owns; it outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Recv, t);
    let _ = rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Send, t);
}

/// An [`Address`] on the wire (a started server's report; a proxy's serde form).
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
