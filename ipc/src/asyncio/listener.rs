//! [`Listener::accept_async`] and [`Client::connect_async`] (feature `tokio`).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::event::epoll;

use super::{abstract_name, clear_timeouts, Address, Client, Listener, DEFAULT_HANDSHAKE_TIMEOUT};
use crate::asyncio::timer::within;
use crate::asyncio::FdReady;
use crate::auth::{answer_challenge_async, auth, deliver_challenge_async};
use crate::connection::Connection;
use crate::error::{IpcError, Result};

impl Listener {
    /// Awaits a peer whose handshake (if this listener has an authkey) has
    /// finished: the async form of [`accept`](Listener::accept), with the same
    /// errors and the same protection. Handshakes run beside the accept, in
    /// the listener's one table of handshakes in flight, each with the
    /// [handshake timeout](Listener::set_handshake_timeout) (30 s by default):
    /// a peer that connects and stays silent holds one entry until then,
    /// never the call — the next peer's handshake proceeds at once — and is
    /// reported by one call as an [`IpcError::Authentication`] naming the
    /// timeout. A failed handshake is an error for that peer only: call again
    /// for the next.
    ///
    /// Each wait registers an `epoll` set of the listening socket, the
    /// handshakes' sockets and (with a handshake in flight) a timer for the
    /// earliest handshake deadline, with the runtime; no timer driver is
    /// needed. A blocking `accept` running on the same listener in another
    /// thread holds the table while it polls, and this call's thread waits
    /// for it.
    ///
    /// # Cancel safety
    /// Cancel safe: peers taken off the socket stay in the listener's table,
    /// their handshakes proceed at the next call (async or blocking), and a
    /// finished one waits there for it.
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
        loop {
            // One non-blocking round of the blocking accept loop: take the
            // peers waiting on the socket, advance the handshakes, expire
            // the late ones.
            if let Some(conn) = self.accept_within(Some(Duration::ZERO))? {
                return Ok(conn);
            }
            let (set, next) = self.interest().map_err(|e| IpcError::os("epoll", what(), e))?;
            let ready = FdReady::new(set.as_fd()).map_err(|e| IpcError::os("epoll", what(), e))?;
            let event = async { ready.readable().await.map(drop) };
            let waited = match next {
                Some(at) => within(at.saturating_duration_since(Instant::now()), event).await.map(drop),
                None => event.await,
            };
            waited.map_err(|e| IpcError::os("epoll", what(), e))?;
        }
    }

    /// An `epoll` set that turns readable when the listening socket has a
    /// peer or a handshake in flight can move, and the earliest handshake
    /// deadline.
    fn interest(&self) -> std::io::Result<(OwnedFd, Option<Instant>)> {
        let set = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(&set, self.socket_fd(), epoll::EventData::new_u64(0), epoll::EventFlags::IN)?;
        let hs = mproc_shm::sys::lock(&self.handshakes);
        for (fd, out) in hs.interest() {
            let flags = if out { epoll::EventFlags::OUT } else { epoll::EventFlags::IN };
            epoll::add(&set, fd, epoll::EventData::new_u64(1), flags)?;
        }
        Ok((set, hs.next_deadline()))
    }
}

impl Client {
    /// Connects to `address` and, with an authkey, runs the handshake with
    /// the connection's async calls: the async form of
    /// [`connect`](Client::connect), with the same errors and the same limits —
    /// the TCP connect and the handshake each take at most
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`] (30 s), so a listener that accepts and
    /// stays silent cannot stall the call. A Unix-socket connect completes at
    /// once (or fails).
    ///
    /// # Cancel safety
    /// Dropping the future drops the half-made connection; nothing else is lost.
    pub async fn connect_async(address: impl Into<Address>, authkey: Option<&[u8]>) -> Result<Connection> {
        Client::connect_timeout_async(address, authkey, DEFAULT_HANDSHAKE_TIMEOUT).await
    }

    /// [`connect_async`](Client::connect_async) with at most `timeout` for the
    /// TCP connect and at most `timeout` for the whole handshake: the async
    /// form of [`connect_timeout`](Client::connect_timeout). A listener that
    /// does not answer in time is an [`IpcError::Authentication`] naming the
    /// timeout. The timer is a `timerfd` awaited like a socket: no timer
    /// driver is needed.
    ///
    /// # Cancel safety
    /// As [`connect_async`](Client::connect_async).
    pub async fn connect_timeout_async(
        address: impl Into<Address>,
        authkey: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Connection> {
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
                let connect = tokio::net::TcpStream::connect(addr);
                let s = within(timeout, connect)
                    .await
                    .and_then(|r| r.unwrap_or_else(|| Err(std::io::ErrorKind::TimedOut.into())))
                    .map_err(|e| IpcError::os("connect", what(), e))?;
                let s = s.into_std().map_err(|e| IpcError::os("connect", what(), e))?;
                // The blocking calls need a blocking socket.
                s.set_nonblocking(false).map_err(|e| IpcError::os("fcntl", what(), e))?;
                Connection::from_tcp(s)
            }
        };
        if let Some(key) = authkey {
            let handshake = async {
                answer_challenge_async(&mut conn, key).await?;
                deliver_challenge_async(&mut conn, key).await
            };
            match within(timeout, handshake).await.map_err(|e| IpcError::os("timerfd", what(), e))? {
                Some(done) => done?,
                None => return Err(auth(format!("the peer did not complete the handshake in time ({timeout:?})"))),
            }
        }
        clear_timeouts(&conn).map_err(|e| IpcError::os("setsockopt", what(), e))?;
        Ok(conn)
    }
}
