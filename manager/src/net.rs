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
    /// Receives one frame and passes it to `f` where it lies (in a pipe's ring or the
    /// socket's read buffer), without allocating for it; `f` is not called when the
    /// receive fails (with `recv`'s errors).
    fn recv_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let frame = self.recv()?;
        f(&frame);
        Ok(())
    }
    /// False once the peer has closed its end (checked by blocked server calls).
    fn alive(&self) -> bool;
}

/// A boxed connection to a server.
pub(crate) type Conn = Box<dyn Transport + Send>;

/// An ipc `Connection` as a [`Transport`]: a socket, or a shared-memory pipe, whose
/// `AsRawFd` is its doorbell socket, which hangs up as the socket does when the peer
/// is gone.
pub(crate) struct IpcConn(pub Connection);

/// How long a pipe connection's reader waits for a frame as the pipe waits (spinning
/// while the peer may answer, then futex sleeps of at most the pipe's sleep slice)
/// before it sleeps in `poll(2)` on the doorbell socket with no timeout: an idle
/// connection then costs no wake-ups at all until its peer sends (the first frame
/// after the idle spell costs the peer one doorbell byte) or hangs up.
const IDLE: Duration = Duration::from_millis(20);

impl IpcConn {
    /// On a pipe: returns once a frame (or end of file) is there, sleeping without a
    /// timeout after [`IDLE`]. On a socket: at once (`recv` sleeps in the kernel).
    fn wait_frame(&mut self) -> Result<()> {
        if !self.0.is_shared_memory() {
            return Ok(());
        }
        while !self.0.poll(Some(IDLE)).map_err(disconnected)? {
            mproc_ipc::wait(&[&self.0], None).map_err(disconnected)?;
        }
        Ok(())
    }
}

fn disconnected(e: IpcError) -> ManagerError {
    ManagerError::Disconnected { reason: e.to_string() }
}

fn recv_error(e: IpcError) -> ManagerError {
    match e {
        IpcError::MessageTooLarge { len, max } => ManagerError::FrameTooLarge { len, max: max as u64 },
        e => disconnected(e),
    }
}

/// Whether the peer of the socket `fd` (a connection's socket or a pipe's doorbell
/// socket) is still there: no hang-up polled.
fn fd_alive(fd: std::os::fd::RawFd) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: every caller passes the open socket of a connection it borrows for the
    // whole call, so `fd` outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(&fd, PollFlags::RDHUP)];
    match rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })) {
        Ok(0) => true,
        Ok(_) => !fds[0].revents().intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
        Err(_) => true,
    }
}

impl Transport for IpcConn {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        self.0.send_bytes(frame).map_err(disconnected)
    }

    fn recv(&mut self) -> Result<Vec<u8>> {
        self.wait_frame()?;
        self.0.recv_bytes().map_err(recv_error)
    }

    fn recv_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.wait_frame()?;
        self.0.recv_bytes_with(f).map_err(recv_error)
    }

    fn alive(&self) -> bool {
        fd_alive(self.0.as_raw_fd())
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
