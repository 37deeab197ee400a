//! The one error type of the manager, carried over the wire as data.

use serde::{Deserialize, Serialize};

/// The result type of every manager call.
pub type Result<T, E = ManagerError> = std::result::Result<T, E>;

/// Everything that can go wrong in a manager call. Errors raised by a method on the
/// server come back as one of these variants (never as code or a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ManagerError {
    /// The server is gone, or the connection to it broke mid-call.
    #[error("manager server disconnected: {0}")]
    Disconnected(String),
    /// The authkey handshake failed (either side rejected the other).
    #[error("authentication with the manager failed: {0}")]
    AuthFailed(String),
    /// An I/O error that is not a plain disconnect (bind, connect, chmod, ...).
    #[error("manager i/o error: {0}")]
    Io(String),
    /// A frame larger than the connection's cap was refused before allocation.
    #[error("frame of {len} bytes exceeds the cap of {max} bytes")]
    FrameTooLarge {
        /// The announced frame length.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// The request frame did not decode as a request.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// `create` named a typeid that is not registered on the server.
    #[error("typeid {0:?} is not registered on the manager")]
    UnknownTypeid(String),
    /// The call did not decode as a method of the object's type.
    #[error("no such method on typeid {typeid:?}: {detail}")]
    UnknownMethod {
        /// The object's typeid.
        typeid: String,
        /// What the decoder said.
        detail: String,
    },
    /// The object id is not (or no longer) held by the server.
    #[error("no object with id {0} on the manager")]
    NoSuchObject(u64),
    /// A list or array index was out of range.
    #[error("index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// The index asked for (negative counts from the end).
        index: i64,
        /// The length of the sequence.
        len: u64,
    },
    /// A dict key or namespace field is missing.
    #[error("key missing: {0}")]
    KeyMissing(String),
    /// `list.remove` / `list.index` found no equal item.
    #[error("value not found in list")]
    ValueNotFound,
    /// A queue get found the queue empty (non-blocking, or the timeout expired).
    #[error("queue is empty")]
    QueueEmpty,
    /// A queue put found the queue full (non-blocking, or the timeout expired).
    #[error("queue is full")]
    QueueFull,
    /// `task_done` was called more times than items were put.
    #[error("task_done() called too many times")]
    TooManyTaskDone,
    /// A lock or condition was released or waited on by a client that does not hold it.
    #[error("not held: {0}")]
    NotHeld(String),
    /// A bounded semaphore was released above its initial value.
    #[error("bounded semaphore released too many times (initial value {0})")]
    SemaphoreOverRelease(u64),
    /// A barrier was broken (aborted, reset, or a waiter timed out).
    #[error("barrier is broken")]
    BrokenBarrier,
    /// An argument was invalid; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A value could not be encoded.
    #[error("encode failed: {0}")]
    Encode(String),
    /// A reply or value could not be decoded as the expected type.
    #[error("decode failed: {0}")]
    Decode(String),
    /// A user-registered method returned an error; its message.
    #[error("remote error: {0}")]
    Remote(String),
    /// Starting the server process failed.
    #[error("cannot start the manager server: {0}")]
    Start(String),
}

impl ManagerError {
    pub(crate) fn decode(e: postcard::Error) -> Self {
        ManagerError::Decode(e.to_string())
    }
    pub(crate) fn encode(e: postcard::Error) -> Self {
        ManagerError::Encode(e.to_string())
    }
}
