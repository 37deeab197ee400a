//! The manager's async client (feature `tokio`): the calls of `client.rs`
//! over ipc's async connections.
//!
//! # Design
//! An async call is the blocking call's request and reply, sent and awaited
//! with `Connection::send_bytes_async` / `recv_bytes_async` instead of the
//! blocking calls: the same wire, the same server, the same errors. A call
//! that blocks on the server (`get` on an empty queue, `acquire` on a held
//! lock, `wait` on an event) blocks that connection's thread there, as the
//! blocking call does, while the task awaits the socket here: no thread of
//! this process is held.
//!
//! Connections come from a pool beside the blocking calls' one, keyed by
//! server and by runtime (an awaited connection stays registered with the
//! runtime that first awaited it), so concurrent tasks never share a
//! connection. Like the blocking pool it is fresh in a forked child, and a
//! target's idle connections close with it.
//!
//! # Cost
//! The server's round trip plus one readiness wake-up of the runtime per
//! reply, where the blocking call sleeps in `recv(2)`; a first call on a
//! runtime pays the connect and authkey handshake once per concurrent task.
//!
//! # Cancellation
//! A call whose future is dropped before the request is sent changes
//! nothing. Dropped after, its connection is closed rather than returned to
//! the pool (its reply would be stale). The server runs no request of a
//! connection that has hung up, and a call blocked there gives up when it
//! does, without taking anything; but a call that had already completed (an
//! item taken, a lock acquired) has done so and its result is lost: the lock
//! is released with the client's other holdings only when the process's last
//! connection closes. The server sees the hang-up once every copy of the
//! socket is closed: a child forked while the call was in flight holds one
//! until it exits (or execs), and the call runs on meanwhile. Each proxy
//! method states its own case.
//!
//! Not served: CPython's manager (its protocol runs through `cpython.rs`,
//! blocking only) — an async call to one is [`ManagerError::Unsupported`].

use mproc_ipc::{Client, Connection, IpcError};

use super::{
    client_id, from_bytes, pool, to_bytes, value_of, Endpoint, Handle, ManagerError, Reply, Request, Response, Result,
    Target, MAX_FRAME,
};
use crate::value::{from_value, Dict, Value};

impl Target {
    /// Opens an authenticated connection and says `HelloAsync`, awaited.
    async fn connect_async(&self) -> Result<Connection> {
        let (address, authkey) = match &self.endpoint {
            Endpoint::Socket { address, authkey } => (address, authkey),
            #[cfg(test)]
            Endpoint::Memory(_) => return Err(unsupported("an async call on an in-process server")),
        };
        let mut conn = Client::connect_async(address, Some(authkey)).await.map_err(|e| match e {
            IpcError::Authentication { reason } => ManagerError::Authentication { reason },
            e => ManagerError::Disconnected { reason: format!("cannot connect to the manager at {address}: {e}") },
        })?;
        conn.set_max_frame(MAX_FRAME);
        let hello = to_bytes(&Request::HelloAsync { client: client_id()? })?;
        conn.send_bytes_async(&hello).await.map_err(disconnected)?;
        Ok(conn)
    }

    /// [`call`](Target::call), awaited, on a pooled async connection.
    pub(crate) async fn call_async(&self, req: &Request) -> Result<Reply> {
        if self.is_python() {
            return Err(unsupported("an async call to CPython's manager (use the blocking call)"));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| unsupported("an async manager call outside a tokio runtime"))?;
        let frame = to_bytes(req)?;
        if frame.len() > MAX_FRAME {
            return Err(ManagerError::FrameTooLarge { len: frame.len() as u64, max: MAX_FRAME as u64 });
        }
        let key = (self.serial, runtime.id());
        let idle = pool().as_mut().and_then(|p| p.idle_async.get_mut(&key)?.pop());
        let mut conn = match idle {
            Some(c) => c,
            None => self.connect_async().await?,
        };
        conn.send_bytes_async(&frame).await.map_err(disconnected)?;
        let reply = conn.recv_bytes_async().await.map_err(|e| match e {
            IpcError::MessageTooLarge { len, max } => ManagerError::FrameTooLarge { len, max: max as u64 },
            e => disconnected(e),
        })?;
        if let Some(p) = pool().as_mut() {
            p.idle_async.entry(key).or_default().push(conn);
        }
        from_bytes::<Response>(&reply)?
    }
}

impl Handle {
    /// [`call_value`](Handle::call_value), awaited.
    pub async fn call_value_async(&self, method: &str, args: Vec<Value>, kwds: Dict) -> Result<Value> {
        if let Some(incref) = self.adopt() {
            self.0.target.call_async(&incref).await?;
            self.adopted();
        }
        value_of(self.0.target.call_async(&self.request(method, args, kwds)?).await?)
    }

    /// [`call`](Handle::call), awaited.
    pub async fn call_async<R: serde::de::DeserializeOwned>(&self, method: &str, args: Vec<Value>) -> Result<R> {
        from_value(self.call_value_async(method, args, Dict::new()).await?)
    }

    /// [`call_unit`](Handle::call_unit), awaited.
    pub async fn call_unit_async(&self, method: &str, args: Vec<Value>) -> Result<()> {
        self.call_value_async(method, args, Dict::new()).await.map(drop)
    }
}

fn disconnected(e: IpcError) -> ManagerError {
    ManagerError::Disconnected { reason: e.to_string() }
}

fn unsupported(what: &str) -> ManagerError {
    ManagerError::Unsupported { what: what.to_owned() }
}
