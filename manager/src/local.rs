//! The local transport: a Rust client on the server's machine moves its connection
//! from the Unix socket to a shared-memory pipe (`mproc_ipc::pipe`: two SPSC rings in
//! one memfd, futex doorbells), so a call costs two ring round trips' worth of copies
//! and, while both ends are awake, no system call at all.
//!
//! # How a connection upgrades
//! 1. The client connects to the Unix socket and authenticates, as every client does.
//! 2. Its first frame is [`Request::Local`] (`Hello` plus the wish) instead of
//!    `Hello`.
//! 3. The server makes a duplex pipe, answers [`Reply::SharedMemory`] and sends the
//!    client's end over the socket with `Connection::send_handle` (the memfd and the
//!    pipe's doorbell socket go by `SCM_RIGHTS`), then drops its copy of that end.
//! 4. Both sides drop the Unix socket; every later frame of the connection, in both
//!    directions, travels through the pipe, in the same framing and with the same
//!    frame cap as on the socket.
//!
//! If the server cannot make a pipe (out of memory or descriptors) it answers
//! [`Reply::Done`] instead and serves the connection on the socket, so the upgrade
//! never costs a client its connection. CPython clients never send `Local` (their
//! first frame is a pickle) and are served on the socket as before; TCP clients,
//! which may be on another machine and cannot receive descriptors, send `Hello` and
//! stay on TCP. [`ClientTransport::Socket`] keeps a local client on its socket too.
//!
//! # Liveness
//! The pipe's doorbell socket pair is what tells each side that the other is gone: the
//! kernel closes a killed process's end, a reader asleep on the ring sees end of file
//! within the pipe's sleep slice (20 ms), one asleep in `poll(2)` at once (see
//! *Waiting*), and the frame-level errors are those of the socket
//! transport (`Disconnected` for the client, the connection's end for the server,
//! which then releases the client's references and locks). A server method blocked
//! in a call asks the same socket whether its client is still there.
//!
//! # Waiting
//! Waiting is the pipe's: a reader that finds its ring empty spins only while the peer
//! may answer (the pipe's presence word says it is not asleep in the kernel and not
//! descheduled), for an adaptive budget, then sleeps on a futex; it never
//! `sched_yield`s, which with every core busy would cost a scheduler slice. On an idle
//! machine the server thread of a client making calls back to back is still spinning
//! when the next request lands, and the client is spinning when the reply does; with
//! every core busy both sides sleep on futexes, which is what the socket transport
//! does on every call (`manager_call_oversubscribed` measures the two under the same
//! load). A reader that has waited 20 ms for a frame (an idle client's server thread,
//! a client blocked in a long call) stops the pipe's sliced futex sleep and sleeps in
//! `poll(2)` on the doorbell socket with no timeout: the pipe's writer then rings the
//! doorbell with a byte, and the peer's death hangs the socket up.
//!
//! # Cost
//! Per connection: one memfd of two 128 KiB rings plus a page (pages are touched as
//! messages use them), a socket pair, and one more round trip when the connection is
//! made (the `Local` answer and the handle); connections are pooled, so this is paid
//! once per calling thread. A server thread whose client is idle costs no wake-ups,
//! like a socket connection's thread asleep in `recv`.
//! Frames over 64 KiB go through the ring in chunks, copied in and out once each.

use mproc_ipc::{Connection, SocketKind};

use crate::error::{ManagerError, Result};
use crate::net::{Address, Conn, IpcConn, Transport};
use crate::state::ServerState;
use crate::wire::{from_bytes, to_bytes, Reply, Request, Response, MAX_FRAME};

/// Which transport a client uses to reach a server of this crate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientTransport {
    /// A shared-memory pipe when the server listens on a Unix socket (so is on this
    /// machine), else the socket itself (TCP).
    #[default]
    Auto,
    /// Always the socket, as a CPython client does (for comparisons and tests).
    Socket,
}

/// Client side: opens an authenticated connection to a server of this crate, sends
/// `Hello` (or `Local`) with `client`, and returns it moved to a pipe where it can be.
pub(crate) fn connect(address: &Address, authkey: &[u8], client: u64, transport: ClientTransport) -> Result<Conn> {
    let mut socket = IpcConn(crate::net::connect_socket(address, authkey)?);
    if transport == ClientTransport::Socket || !matches!(address, Address::Unix(_)) {
        socket.send(&to_bytes(&Request::Hello { client })?)?;
        return Ok(Box::new(socket));
    }
    socket.send(&to_bytes(&Request::Local { client })?)?;
    match from_bytes::<Response>(&socket.recv()?)? {
        Ok(Reply::SharedMemory) => {
            let mut pipe: Connection = socket.0.recv_handle().map_err(|e| ManagerError::Disconnected {
                reason: format!("the manager's shared-memory pipe did not arrive: {e}"),
            })?;
            pipe.set_max_frame(MAX_FRAME);
            Ok(Box::new(IpcConn(pipe)))
        }
        Ok(Reply::Done) => Ok(Box::new(socket)),
        Ok(other) => Err(crate::wire::unexpected(&other)),
        Err(e) => Err(e),
    }
}

/// Server side: serves one authenticated socket connection until it closes — a
/// CPython client's, a Rust client's on the socket, or a local Rust client's, moved
/// to a pipe first.
pub(crate) fn serve_socket(state: &ServerState, socket: Connection) {
    let mut socket = IpcConn(socket);
    let Ok(first) = socket.recv() else { return };
    if first.first() == Some(&crate::python::PICKLE_PROTO) {
        return crate::python::serve(state, &mut socket, first);
    }
    let Ok(Request::Local { client }) = from_bytes::<Request>(&first) else {
        return state.serve_rust(&mut socket, first);
    };
    let Ok(hello) = to_bytes(&Request::Hello { client }) else { return };
    match upgrade(&mut socket.0) {
        Ok(Some(pipe)) => {
            drop(socket);
            let mut pipe = IpcConn(pipe);
            state.shared_memory.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            state.serve_rust(&mut pipe, hello);
            state.shared_memory.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(None) => state.serve_rust(&mut socket, hello),
        // The client is gone, or the socket broke mid-upgrade: nothing to serve.
        Err(_) => {}
    }
}

/// Answers a `Local` request on `socket`: makes a pipe and hands the client its end
/// (`Some`: serve the pipe from now on), or says to stay on the socket (`None`).
fn upgrade(socket: &mut Connection) -> Result<Option<Connection>> {
    let pipe = match socket.kind() {
        SocketKind::Unix => mproc_ipc::pipe(true).ok(),
        SocketKind::Tcp => None,
    };
    let Some((mut ours, theirs)) = pipe else {
        socket.send_bytes(&to_bytes(&Response::Ok(Reply::Done))?).map_err(disconnected)?;
        return Ok(None);
    };
    socket.send_bytes(&to_bytes(&Response::Ok(Reply::SharedMemory))?).map_err(disconnected)?;
    socket.send_handle(&theirs).map_err(disconnected)?;
    // Our copy of the client's end must go: while it lives here, the client's death
    // would not close the doorbell socket and the pipe would never see end of file.
    drop(theirs);
    ours.set_max_frame(MAX_FRAME);
    Ok(Some(ours))
}

fn disconnected(e: mproc_ipc::IpcError) -> ManagerError {
    ManagerError::Disconnected { reason: e.to_string() }
}
