//! The wire protocol: postcard-encoded [`Request`] and [`Response`] frames.
//!
//! Data only, never code: a request names a registered typeid or an object id, and the
//! method call is itself a postcard-encoded enum of the object's type, so only the
//! variants the server's type declares can run. Object values are carried as postcard
//! bytes (`Vec<u8>`): the server never needs to know the client's Rust types.

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
        /// Constructor arguments, postcard-encoded (type-specific).
        init: Vec<u8>,
    },
    /// Call a method: `call` is the postcard encoding of the type's method enum.
    Call {
        /// The object.
        id: ObjectId,
        /// The encoded method call.
        call: Vec<u8>,
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
    /// A method's return value, postcard-encoded (method-specific).
    Value(Vec<u8>),
    /// The server's counters.
    Stats(ServerStats),
    /// Done, nothing to return.
    Done,
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
}

/// Encodes a sequence whose items are already postcard-encoded, as postcard encodes a
/// `Vec<T>` (length varint, then the items back to back), so the client decodes it
/// straight into `Vec<T>` (or `Vec<(K, V)>` when each item is a key followed by a value).
pub(crate) fn encode_seq<'a>(len: usize, items: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    let mut n = len as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

/// Encodes `value` with postcard.
pub(crate) fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ManagerError> {
    postcard::to_allocvec(value).map_err(ManagerError::encode)
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
    fn encode_seq_matches_postcard_vec() {
        let items: Vec<u32> = (0..300).collect();
        let encoded: Vec<Vec<u8>> = items.iter().map(|i| to_bytes(i).unwrap()).collect();
        let seq = encode_seq(encoded.len(), encoded.iter().map(|v| v.as_slice()));
        assert_eq!(seq, to_bytes(&items).unwrap());
        let back: Vec<u32> = from_bytes(&seq).unwrap();
        assert_eq!(back, items);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = to_bytes(&5u32).unwrap();
        b.push(0);
        assert!(matches!(from_bytes::<u32>(&b), Err(ManagerError::Decode { .. })));
    }
}
