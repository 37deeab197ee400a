//! The one error type of the manager, carried over the wire as data.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The result type of every manager call.
pub type Result<T, E = ManagerError> = std::result::Result<T, E>;

/// Everything that can go wrong in a manager call. Errors raised by a method on the
/// server come back as one of these variants (never as code or a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ManagerError {
    /// The server is gone, or the connection to it broke mid-call.
    #[error("manager server disconnected: {reason}")]
    Disconnected {
        /// What broke.
        reason: String,
    },
    /// The authkey handshake failed: a wrong key on either side, or a peer that does not
    /// speak the protocol. The same shape as ipc's `IpcError::Authentication`; Python's
    /// `AuthenticationError`.
    #[error("authentication with the manager failed: {reason}")]
    Authentication {
        /// What went wrong, from this end's point of view.
        reason: String,
    },
    /// An I/O error that is not a plain disconnect (bind, connect, chmod, ...).
    #[error("manager i/o error: {op}: {reason}")]
    Io {
        /// What was being done (`"bind 127.0.0.1:5000"`, `"getrandom for the client id"`).
        op: String,
        /// The system's error.
        reason: String,
    },
    /// A frame larger than the connection's cap was refused before allocation.
    #[error("frame of {len} bytes exceeds the cap of {max} bytes")]
    FrameTooLarge {
        /// The announced frame length.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// The request frame did not decode as a request.
    #[error("malformed request: {reason}")]
    BadRequest {
        /// What the decoder said.
        reason: String,
    },
    /// `create` named a typeid that is not registered on the server.
    #[error("typeid {typeid:?} is not registered on the manager")]
    UnknownTypeid {
        /// The typeid asked for.
        typeid: String,
    },
    /// The call did not decode as a method of the object's type, or names a method the
    /// type does not expose.
    #[error("no such method on typeid {typeid:?}: {method}")]
    UnknownMethod {
        /// The object's typeid.
        typeid: String,
        /// The method (or what the decoder said of it).
        method: String,
    },
    /// The object id is not (or no longer) held by the server.
    #[error("no object with id {id} on the manager")]
    NoSuchObject {
        /// The id asked for.
        id: u64,
    },
    /// A list or array index was out of range (Python's `IndexError`).
    #[error("index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// The index asked for (negative counts from the end).
        index: i64,
        /// The length of the sequence.
        len: u64,
    },
    /// A dict key or namespace field is missing (Python's `KeyError` /
    /// `AttributeError`).
    #[error("key missing: {key}")]
    KeyMissing {
        /// The key, as Python's `repr` shows it.
        key: String,
    },
    /// A `Namespace` has no field of that name (Python's `AttributeError`).
    #[error("no attribute {name:?}")]
    AttributeMissing {
        /// The field name.
        name: String,
    },
    /// `list.remove` / `list.index` found no equal item (Python's `ValueError`).
    #[error("value not found in list")]
    ValueNotFound,
    /// A queue get found the queue empty (non-blocking, or the timeout expired):
    /// Python's `queue.Empty`.
    #[error("queue is empty")]
    QueueEmpty,
    /// A queue put found the queue full (non-blocking, or the timeout expired):
    /// Python's `queue.Full`.
    #[error("queue is full")]
    QueueFull,
    /// A `_timeout` call gave up after `after`: no item (`get_timeout`), no room
    /// (`put_timeout`), unfinished tasks (`join_timeout`), a lock not free
    /// (`lock_timeout`, `acquire_timeout`) or no notify or flag (`wait_timeout`).
    /// Every blocking call of the proxies has a `_timeout` form with this error;
    /// `try_` forms report `QueueEmpty` / `QueueFull` / `WouldBlock`.
    #[error("the manager call timed out after {after:?}")]
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// A `try_` call found the lock or semaphore taken and did not wait.
    #[error("the lock or semaphore is taken (try_ form: no wait)")]
    WouldBlock,
    /// `task_done` was called more times than items were put.
    #[error("task_done() called too many times")]
    TooManyTaskDone,
    /// A lock or condition was released or waited on by a client that does not hold it.
    #[error("{op} of a {typeid} the caller does not hold")]
    NotHeld {
        /// The object's typeid (`"Lock"`, `"RLock"`, `"Condition"`).
        typeid: String,
        /// The operation (`"release"`, `"wait"`, `"notify"`).
        op: String,
    },
    /// A bounded semaphore was released above its initial value.
    #[error("bounded semaphore released too many times (initial value {initial})")]
    SemaphoreOverRelease {
        /// The semaphore's initial value.
        initial: u64,
    },
    /// A barrier was broken (aborted, reset, or a waiter timed out).
    #[error("barrier is broken")]
    BrokenBarrier,
    /// An argument was invalid.
    #[error("invalid argument {argument}: {reason}")]
    InvalidArgument {
        /// The argument and its value, e.g. `"parties = 0"`.
        argument: String,
        /// Why it was refused.
        reason: String,
    },
    /// The call is not available here (an async call to a CPython server, or
    /// outside a tokio runtime).
    #[error("not available: {what}")]
    Unsupported {
        /// What was asked, and why it cannot be done.
        what: String,
    },
    /// A value could not be encoded.
    #[error("encode failed: {reason}")]
    Encode {
        /// What the encoder said.
        reason: String,
    },
    /// A reply or value could not be decoded as the expected type.
    #[error("decode failed: {reason}")]
    Decode {
        /// What the decoder said.
        reason: String,
    },
    /// A user-registered method returned an error, or panicked.
    #[error("remote error: {message}")]
    Remote {
        /// Its message.
        message: String,
    },
    /// A Python server raised an exception this enum has no variant for (a
    /// `('#ERROR', exception)` reply).
    #[error("python exception {module}.{name}{args:?}")]
    PythonException {
        /// The exception class's module (`"builtins"`).
        module: String,
        /// The class name (`"TypeError"`).
        name: String,
        /// The exception's arguments, as Python's `repr` shows them.
        args: Vec<String>,
    },
    /// A Python server failed inside its own machinery (a `('#TRACEBACK', text)` reply).
    #[error("python server error:\n{traceback}")]
    PythonTraceback {
        /// The formatted traceback.
        traceback: String,
    },
    /// Starting the server process failed.
    #[error("cannot start the manager server: {reason}")]
    Start {
        /// Why.
        reason: String,
    },
    /// A value is a `PodVec` of another element type than the proxy's (its
    /// element size or kind differs): the cause, naming both. Raised by the
    /// client as it decodes; never sent over the wire.
    ///
    /// Last on purpose: serde's derive numbers the variants after a skipped one
    /// differently when it decodes than when it encodes, so a skipped variant
    /// anywhere else would shift every later one on the (index-tagged) wire.
    #[error("decode failed: {0}")]
    #[serde(skip)]
    Payload(#[from] mproc_ipc::PayloadError),
}

impl ManagerError {
    pub(crate) fn decode(e: postcard::Error) -> Self {
        ManagerError::Decode { reason: e.to_string() }
    }
    pub(crate) fn encode(e: postcard::Error) -> Self {
        ManagerError::Encode { reason: e.to_string() }
    }
}
