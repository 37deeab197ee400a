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
        /// `(args_tuple, kwds_dict)`, pickled or, from a Rust client, in the compact
        /// form when all arguments are scalars.
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
    /// `Hello` from a client that may hang up with a request in flight (an async
    /// client whose call was dropped after sending): before each request of the
    /// connection the server asks whether the client is still there, and runs nothing
    /// for one that is gone (so a dropped `get` takes no item). A blocking client
    /// waits for every answer, and its connections spare that `poll(2)` per call.
    HelloAsync {
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
    /// A method's return value, pickled or (to a Rust client, for a scalar) in the
    /// compact form.
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
    from_borrowed(bytes)
}

/// [`from_bytes`] for a value that may borrow from `bytes`.
fn from_borrowed<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ManagerError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(ManagerError::decode)?;
    if !rest.is_empty() {
        return Err(ManagerError::Decode { reason: format!("{} trailing bytes", rest.len()) });
    }
    Ok(value)
}

// ---- the frames of a method call, without allocating ----------------------------
//
// A method call is the one request a client makes over and over. Its request and its
// answer are encoded here straight into (and decoded straight out of) buffers the
// caller keeps, as the same bytes the derived encodings of `Request::Call` and
// `Ok(Reply::Value(..))` give: a server or client that decodes them with `Request`
// and `Response` reads the same thing.

/// `Request::Call`'s variant index (its first byte on the wire).
const CALL: u8 = 2;

/// A [`Request::Call`] borrowed from the frame it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallRef<'a> {
    pub id: ObjectId,
    pub thread: u64,
    pub method: &'a str,
    pub args: &'a [u8],
}

impl Serialize for CallRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        let mut v = s.serialize_struct_variant("Request", CALL.into(), "Call", 4)?;
        v.serialize_field("id", &self.id)?;
        v.serialize_field("thread", &self.thread)?;
        v.serialize_field("method", self.method)?;
        v.serialize_field("args", serde_bytes::Bytes::new(self.args))?;
        v.end()
    }
}

impl<'a> CallRef<'a> {
    /// Appends the frame of this call to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), ManagerError> {
        extend(self, out)
    }

    /// The call in `frame`; `None` if `frame` is another request.
    pub(crate) fn decode(frame: &'a [u8]) -> Option<Result<CallRef<'a>, ManagerError>> {
        let fields = frame.strip_prefix(&[CALL])?;
        let call = from_borrowed::<(ObjectId, u64, &str, &serde_bytes::Bytes)>(fields);
        Some(call.map(|(id, thread, method, args)| CallRef { id, thread, method, args }))
    }
}

/// `Ok(Reply::Value(bytes))`, borrowed: the answer to a call.
struct ValueReply<'a>(&'a [u8]);

impl Serialize for ValueReply<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// `Reply::Value(bytes)`, borrowed.
        struct Value<'a>(&'a [u8]);
        impl Serialize for Value<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_newtype_variant("Reply", VALUE.into(), "Value", serde_bytes::Bytes::new(self.0))
            }
        }
        s.serialize_newtype_variant("Result", OK.into(), "Ok", &Value(self.0))
    }
}

/// `Result::Ok`'s and `Reply::Value`'s variant indices.
const OK: u8 = 0;
const VALUE: u8 = 1;

/// Appends the frame of the response `Ok(Reply::Value(value))` to `out`.
pub(crate) fn encode_value_reply(value: &[u8], out: &mut Vec<u8>) -> Result<(), ManagerError> {
    extend(&ValueReply(value), out)
}

/// The value of a response frame that is `Ok(Reply::Value(..))`, borrowed; `None` for
/// any other response (decode those as [`Response`]).
pub(crate) fn decode_value_reply(frame: &[u8]) -> Option<Result<&[u8], ManagerError>> {
    let value = frame.strip_prefix(&[OK, VALUE])?;
    Some(from_borrowed::<&serde_bytes::Bytes>(value).map(|b| &**b))
}

/// Appends `value`'s postcard encoding to `out`.
fn extend<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), ManagerError> {
    *out = postcard::to_extend(value, std::mem::take(out)).map_err(ManagerError::encode)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_borrowed_call_is_the_same_bytes_as_request_call(
            id in any::<u64>(), thread in any::<u64>(), method in ".{0,20}",
            args in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let owned = to_bytes(&Request::Call { id, thread, method: method.clone(), args: args.clone() }).unwrap();
            let call = CallRef { id, thread, method: &method, args: &args };
            let mut mine = vec![9];
            call.encode(&mut mine).unwrap();
            prop_assert_eq!(&mine[1..], &owned[..]);
            prop_assert_eq!(CallRef::decode(&owned).unwrap().unwrap(), call);
        }

        #[test]
        fn a_borrowed_value_reply_is_the_same_bytes_as_ok_value(value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let owned = to_bytes(&Response::Ok(Reply::Value(value.clone()))).unwrap();
            let mut mine = Vec::new();
            encode_value_reply(&value, &mut mine).unwrap();
            prop_assert_eq!(&mine, &owned);
            prop_assert_eq!(decode_value_reply(&owned).unwrap().unwrap(), &value[..]);
        }

        #[test]
        fn the_borrowed_decoders_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for first in [CALL, OK] {
                let mut frame = vec![first];
                frame.extend_from_slice(&bytes);
                let _ = CallRef::decode(&frame);
                let _ = decode_value_reply(&frame);
            }
        }
    }

    #[test]
    fn other_requests_and_replies_are_not_taken_for_calls_and_values() {
        assert_eq!(CallRef::decode(&to_bytes(&Request::IncRef { id: 2 }).unwrap()), None);
        assert_eq!(CallRef::decode(&to_bytes(&Request::Stats).unwrap()), None);
        assert_eq!(decode_value_reply(&to_bytes(&Response::Ok(Reply::Done)).unwrap()), None);
        let err = Response::Err(ManagerError::NoSuchObject { id: 1 });
        assert_eq!(decode_value_reply(&to_bytes(&err).unwrap()), None);
        let mut call = to_bytes(&Request::Call { id: 1, thread: 2, method: "m".into(), args: vec![3] }).unwrap();
        call.push(0);
        assert!(matches!(CallRef::decode(&call), Some(Err(ManagerError::Decode { .. }))));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = to_bytes(&5u32).unwrap();
        b.push(0);
        assert!(matches!(from_bytes::<u32>(&b), Err(ManagerError::Decode { .. })));
    }
}
