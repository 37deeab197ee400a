//! The error type of `mproc-ipc`.

use std::io;

/// A `Result` whose error is [`IpcError`].
pub type Result<T, E = IpcError> = std::result::Result<T, E>;

/// What can go wrong on a connection. Every variant names the sizes, the
/// address or the call involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// The peer closed its end and every message it sent has been read.
    /// Python raises `EOFError` here.
    #[error("end of file: the peer closed the connection")]
    Eof,
    /// The peer closed its end in the middle of a message: the stream stopped
    /// after `got` of the `expected` bytes of a frame (header included).
    #[error("connection closed in mid-message: got {got} of {expected} bytes of a frame")]
    TruncatedMessage {
        /// Bytes of the frame (header and payload) that were expected.
        expected: u64,
        /// Bytes that arrived before end of file.
        got: u64,
    },
    /// A frame header announces more bytes than this end accepts. Checked
    /// before anything is allocated; the connection cannot be read again
    /// (its position in the stream is lost), as in Python.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The length the header announced.
        len: u64,
        /// The limit in force (the frame cap or the caller's `max`).
        max: usize,
    },
    /// A frame header that no sender writes: a negative length other than the
    /// `-1` escape. The peer does not speak this protocol.
    #[error("bad frame header: length {len} (expected 0..=2147483647, or -1 then an 8-byte length)")]
    BadHeader {
        /// The signed 4-byte length that was read.
        len: i32,
    },
    /// A previous error left the read side at an unknown position in the stream
    /// (an oversized or malformed frame); nothing more can be received.
    #[error("the connection can no longer be read: an earlier frame was rejected ({reason})")]
    Unreadable {
        /// What made it unreadable.
        reason: String,
    },
    /// `recv_bytes_into` was given a buffer shorter than the message. The
    /// message has been consumed and is returned here whole (Python's
    /// `BufferTooShort`).
    #[error("buffer of {capacity} bytes is too short for a message of {} bytes", message.len())]
    BufferTooShort {
        /// The length of the caller's buffer.
        capacity: usize,
        /// The message that did not fit.
        message: Vec<u8>,
    },
    /// The connection was closed by this process ([`Connection::close`](crate::Connection::close)).
    #[error("the connection is closed")]
    Closed,
    /// The operation is not possible on this end of a one-way
    /// [`pipe`](crate::pipe): sending on the receiving end, or receiving on
    /// the sending end. Python raises `OSError` here.
    #[error("cannot {op} on the {end}-only end of a one-way pipe")]
    WrongDirection {
        /// What was attempted: `send` or `receive`.
        op: &'static str,
        /// What this end can do: `receive` or `send`.
        end: &'static str,
    },
    /// Handles (file descriptors) travel only over a connection on a Unix
    /// socket ([`Connection::pair`](crate::Connection::pair), a Unix
    /// [`Listener`](crate::Listener)), not over TCP or a shared-memory pipe.
    #[error("cannot pass a handle over a {transport} connection: only Unix-socket connections carry descriptors")]
    HandlesUnsupported {
        /// What the connection runs on: `TCP` or `shared-memory pipe`.
        transport: &'static str,
    },
    /// A handle needs more descriptors than one message carries.
    #[error("a handle of {count} descriptors is more than the {max} one message carries")]
    TooManyDescriptors {
        /// Descriptors the handle needs.
        count: usize,
        /// The most a message carries.
        max: usize,
    },
    /// A handle message arrived without the descriptors it names (they were
    /// dropped on the way, or the message was not sent by `send_handle`).
    #[error("a handle message names {expected} descriptors but {got} arrived with it")]
    MissingDescriptors {
        /// Descriptors the message names.
        expected: usize,
        /// Descriptors that arrived.
        got: usize,
    },
    /// Shared memory for a [`pipe`](crate::pipe) could not be set up.
    #[error(transparent)]
    Shm(#[from] mproc_shm::ShmError),
    /// A value could not be encoded with postcard.
    #[error("cannot encode {type_name}: {source}")]
    Encode {
        /// The Rust type being sent.
        type_name: &'static str,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// A message could not be decoded as the requested type.
    #[error("cannot decode a message of {len} bytes as {type_name}: {source}")]
    Decode {
        /// The Rust type asked for.
        type_name: &'static str,
        /// The message length.
        len: usize,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// A pickle message could not be encoded, or a received one decoded (a forbidden
    /// global, a malformed pickle, a value that does not fit the type asked for …).
    #[error("pickle message for {type_name}: {source}")]
    Pickle {
        /// The Rust type being sent or asked for.
        type_name: &'static str,
        /// The codec's error, naming the bad value.
        #[source]
        source: mproc_pickle::PickleError,
    },
    /// A [`PodVec`](crate::PodVec) or [`Bytes`](crate::Bytes) in a message
    /// could not be decoded as the requested type: e.g. the sender's elements
    /// are 8 bytes and the receiver's `T` 4.
    #[error("cannot decode the message: {0}")]
    Payload(#[from] crate::payload::PayloadError),
    /// The authkey handshake failed: a wrong key on either side, or a peer
    /// that does not speak the protocol. Python's `AuthenticationError`.
    #[error("authentication failed: {reason}")]
    Authentication {
        /// What went wrong, from this end's point of view.
        reason: String,
    },
    /// An address that cannot be used (bad path, unresolvable host).
    #[error("invalid address {address:?}: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// A system call failed.
    #[error("{op} failed on {what}: {source}")]
    Os {
        /// The call, e.g. `recv` or `connect`.
        op: &'static str,
        /// What it was for (a connection or an address).
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl IpcError {
    pub(crate) fn os(op: &'static str, what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        IpcError::Os { op, what: what.into(), source: source.into() }
    }

    /// True for [`IpcError::Eof`]: the peer closed cleanly.
    pub fn is_eof(&self) -> bool {
        matches!(self, IpcError::Eof)
    }
}
