//! [`Listener::accept_async`] and [`Client::connect_async`] (feature `tokio`).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use super::{abstract_name, clear_timeouts, Address, Client, Listener, Socket};
use crate::asyncio::FdReady;
use crate::auth::{answer_challenge_async, deliver_challenge_async};
use crate::connection::{poll_readable, Connection};
use crate::error::{IpcError, Result};

impl Listener {
    /// Awaits a peer, then runs the handshake (if this listener has an
    /// authkey) with the connection's async calls: the async form of
    /// [`accept`](Listener::accept), with the same errors.
    ///
    /// The handshake has no timeout of its own here (the blocking form uses
    /// the handshake timeout); wrap the call in `tokio::time::timeout` so a
    /// peer that connects and stays silent cannot stall an accept loop.
    ///
    /// The listening socket is registered with the runtime for the length of
    /// the call. Another thread or process accepting on the same socket at the
    /// same time can take the peer between the readiness and the `accept(2)`;
    /// the call then blocks its thread until the next peer.
    ///
    /// # Cancel safety
    /// Cancel safe while it awaits a peer (no peer is taken); dropped during the
    /// handshake, the accepted peer is dropped too (it sees end of file).
    ///
    /// ```
    /// use mproc_ipc::{Address, Client, Listener};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let listener = Listener::bind(Address::loopback(0), Some(b"key"))?;
    /// let addr = listener.address().clone();
    /// let client = tokio::spawn(async move {
    ///     let mut c = Client::connect_async(&addr, Some(b"key")).await?;
    ///     c.send_bytes_async(b"hi").await?;
    ///     Ok::<_, mproc_ipc::IpcError>(c)
    /// });
    /// let mut server = listener.accept_async().await?;
    /// assert_eq!(server.recv_bytes_async().await?, b"hi");
    /// # drop(client.await.unwrap()?);
    /// # Ok::<(), mproc_ipc::IpcError>(())
    /// # }).unwrap();
    /// ```
    pub async fn accept_async(&self) -> Result<Connection> {
        let what = || self.address.to_string();
        // SAFETY: the listener's fd is open for the lifetime of `self`, which
        // outlives the registration below.
        let fd = unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) };
        let ready = FdReady::new(fd).map_err(|e| IpcError::os("epoll", what(), e))?;
        loop {
            let mut guard = ready.readable().await.map_err(|e| IpcError::os("epoll", what(), e))?;
            if !poll_readable(&[fd], Some(std::time::Duration::ZERO))?.is_empty() {
                break;
            }
            guard.clear_ready();
        }
        drop(ready);
        let mut conn = match &self.socket {
            Socket::Unix(l) => Connection::from_unix(l.accept().map_err(|e| IpcError::os("accept", what(), e))?.0),
            Socket::Tcp(l) => Connection::from_tcp(l.accept().map_err(|e| IpcError::os("accept", what(), e))?.0),
        };
        if let Some(key) = &self.authkey {
            deliver_challenge_async(&mut conn, key).await?;
            answer_challenge_async(&mut conn, key).await?;
        }
        conn.set_max_frame(self.max_frame);
        Ok(conn)
    }
}

impl Client {
    /// Connects to `address` and, with an authkey, runs the handshake with
    /// the connection's async calls: the async form of
    /// [`connect`](Client::connect), with the same errors. A TCP connect is
    /// awaited; a Unix-socket connect completes at once (or fails).
    ///
    /// No timeout of its own: wrap the call in `tokio::time::timeout`.
    ///
    /// # Cancel safety
    /// Dropping the future drops the half-made connection; nothing else is lost.
    pub async fn connect_async(address: impl Into<Address>, authkey: Option<&[u8]>) -> Result<Connection> {
        let address = address.into();
        let what = || address.to_string();
        let mut conn = match &address {
            Address::Unix(path) => {
                let stream = match abstract_name(path) {
                    Some(name) => {
                        use std::os::linux::net::SocketAddrExt;
                        std::os::unix::net::SocketAddr::from_abstract_name(name)
                            .and_then(|sa| UnixStream::connect_addr(&sa))
                    }
                    None => UnixStream::connect(path),
                };
                Connection::from_unix(stream.map_err(|e| IpcError::os("connect", what(), e))?)
            }
            Address::Tcp(addr) => {
                let s = tokio::net::TcpStream::connect(addr).await.map_err(|e| IpcError::os("connect", what(), e))?;
                let s = s.into_std().map_err(|e| IpcError::os("connect", what(), e))?;
                // The blocking calls need a blocking socket.
                s.set_nonblocking(false).map_err(|e| IpcError::os("fcntl", what(), e))?;
                Connection::from_tcp(s)
            }
        };
        if let Some(key) = authkey {
            answer_challenge_async(&mut conn, key).await?;
            deliver_challenge_async(&mut conn, key).await?;
        }
        clear_timeouts(&conn).map_err(|e| IpcError::os("setsockopt", what(), e))?;
        Ok(conn)
    }
}
