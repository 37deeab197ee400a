//! The wire protocol: postcard-encoded [`Request`] and [`Response`] frames.
//!
//! Data only, never code: a request names a registered typeid or an object id and a
//! method by name, as CPython's proxies do; only the methods the object's type has can
//! run. Arguments and results are pickled values (the codec reads only data and an
//! allow-list of exception classes), or for scalars their compact form (`compact.rs`),
//! so the server holds one value model for Rust and Python clients alike and never
//! needs to know a client's Rust types.

use serde::{Deserialize, Serialize};

use crate::error::ManagerError;

/// The largest request frame a server accepts (checked before allocating).
pub const MAX_FRAME: usize = 16 << 20;

/// The server's name for an object it owns.
pub type ObjectId = u64;

/// One request frame, client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The first frame on every connection: which client (process) this is.
    /// References are counted per client and released when its last connection closes.
    Hello {
        /// A random id chosen once per client process.
        client: u64,
    },
    /// Create an object of a registered typeid; the client then holds one reference.
    Create {
        /// The registered name.
        typeid: String,
        /// Constructor arguments: a pickled `(args_tuple, kwds_dict)`.
        #[serde(with = "serde_bytes")]
        args: Vec<u8>,
    },
    /// Call a method by its Python name (`"append"`, `"__getitem__"`).
    Call {
        /// The object.
        id: ObjectId,
        /// The calling thread (owner of a lock it acquires).
        thread: u64,
        /// The method.
        method: String,
        /// A pickled `(args_tuple, kwds_dict)`.
        #[serde(with = "serde_bytes")]
        args: Vec<u8>,
    },
    /// Add one reference held by this client.
    IncRef {
        /// The object.
        id: ObjectId,
    },
    /// Drop one reference held by this client.
    DecRef {
        /// The object.
        id: ObjectId,
    },
    /// Ask for [`ServerStats`].
    Stats,
    /// Stop the server.
    Shutdown,
    /// The first frame of a connection that asks for the local transport: `Hello`,
    /// and, if the server can, a move to a shared-memory pipe. The server answers
    /// [`Reply::SharedMemory`] and then sends the client's end of the pipe over the
    /// Unix socket (`Connection::send_handle`), or [`Reply::Done`] and goes on
    /// serving on the socket.
    Local {
        /// A random id chosen once per client process, as in `Hello`.
        client: u64,
    },
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `Create` made this object.
    Created {
        /// Its id.
        id: ObjectId,
        /// Its typeid (as registered).
        typeid: String,
    },
    /// A method's return value, pickled.
    Value(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The server's counters.
    Stats(ServerStats),
    /// Done, nothing to return.
    Done,
    /// The answer to [`Request::Local`]: the client's end of a shared-memory pipe
    /// follows on the socket, and every later frame travels through the pipe.
    SharedMemory,
}

/// One response frame, server → client.
pub type Response = Result<Reply, ManagerError>;

/// What the server holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Live objects.
    pub objects: u64,
    /// Clients with at least one open connection.
    pub clients: u64,
    /// Open connections.
    pub connections: u64,
    /// References held, summed over clients.
    pub references: u64,
    /// Open connections of local Rust clients that moved to a shared-memory pipe
    /// (counted in `connections` too).
    pub shared_memory: u64,
}

/// Encodes `value` with postcard, into a vector sized for a small frame at once (a
/// vector grown from empty reallocates three times on the way to a call's frame).
pub(crate) fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ManagerError> {
    postcard::to_extend(value, Vec::with_capacity(128)).map_err(ManagerError::encode)
}

/// The error for a reply of the wrong kind for its request (a server out of step).
pub(crate) fn unexpected(reply: &Reply) -> ManagerError {
    ManagerError::Decode { reason: format!("unexpected reply {reply:?}") }
}

/// Decodes a postcard value, refusing trailing bytes.
pub(crate) fn from_bytes<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ManagerError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(ManagerError::decode)?;
    if !rest.is_empty() {
        return Err(ManagerError::Decode { reason: format!("{} trailing bytes", rest.len()) });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = to_bytes(&5u32).unwrap();
        b.push(0);
        assert!(matches!(from_bytes::<u32>(&b), Err(ManagerError::Decode { .. })));
    }
}
