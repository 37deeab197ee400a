//! The error type of `mproc-shm`.

use std::io;

/// A `Result` whose error is [`ShmError`].
pub type Result<T, E = ShmError> = std::result::Result<T, E>;

/// What can go wrong with shared memory. Every variant names the segment, the
/// offset or the size involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// A segment or object of zero bytes was asked for.
    #[error("{what}: a size of zero bytes was requested")]
    ZeroSize {
        /// What was being created.
        what: &'static str,
    },
    /// A size too large for the address space or the format.
    #[error("{what}: size {size} is too large (limit {limit})")]
    TooLarge {
        /// What was being created.
        what: &'static str,
        /// The size asked for.
        size: usize,
        /// The largest size allowed.
        limit: usize,
    },
    /// `Segment::create` found a segment of that name already.
    #[error("shared memory segment {name:?} already exists")]
    Exists {
        /// The segment's name.
        name: String,
    },
    /// `Segment::open` found no segment of that name.
    #[error("shared memory segment {name:?} does not exist")]
    NotFound {
        /// The segment's name.
        name: String,
    },
    /// A [`ShmBox`](crate::ShmBox) that arrived as a name whose segment is no
    /// longer there: another receiver took it first (it was sent twice), or
    /// the process tree of its creator has ended and the resource tracker
    /// removed it.
    #[error("ShmBox {name:?} is gone: received already, or its creator's process tree has ended")]
    BoxGone {
        /// The segment's name.
        name: String,
    },
    /// A name that cannot be a POSIX shared-memory name.
    #[error("invalid shared memory name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An object would not fit inside its segment.
    #[error("{what} of {len} bytes at offset {offset} does not fit in segment {segment} of {segment_len} bytes")]
    OutOfBounds {
        /// What was being placed.
        what: &'static str,
        /// The offset asked for.
        offset: usize,
        /// The object's size.
        len: usize,
        /// The segment's description.
        segment: String,
        /// The segment's size.
        segment_len: usize,
    },
    /// An offset that does not meet the object's alignment.
    #[error("{what} at offset {offset} is misaligned: it needs alignment {align}")]
    Misaligned {
        /// What was being placed.
        what: &'static str,
        /// The offset asked for.
        offset: usize,
        /// The alignment required.
        align: usize,
    },
    /// Attaching to an object whose header is not what the caller expects: a
    /// foreign segment, a different type, or a different version of mproc.
    #[error("{what} at offset {offset} of segment {segment}: layout mismatch: {detail}")]
    LayoutMismatch {
        /// What was being attached.
        what: &'static str,
        /// Where.
        offset: usize,
        /// The segment's description.
        segment: String,
        /// What differed, with the expected and found values.
        detail: String,
    },
    /// An index past the end of an [`Array`](crate::Array).
    #[error("index {index} out of range for array of length {len}")]
    IndexOutOfRange {
        /// The index given.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// A slice whose length differs from the array's.
    #[error("length mismatch: array has {expected} elements, slice has {found}")]
    LengthMismatch {
        /// The array's length.
        expected: usize,
        /// The slice's length.
        found: usize,
    },
    /// A token from [`Share::export`](crate::Share::export) that does not describe
    /// what this process holds (a stale fd, a foreign binary's token).
    #[error("cannot import {what}: {detail}")]
    BadToken {
        /// What was being imported.
        what: &'static str,
        /// Why it was refused.
        detail: String,
    },
    /// A system call failed.
    #[error("{op} failed for {what}: {source}")]
    Os {
        /// The call, e.g. `memfd_create`.
        op: &'static str,
        /// What it was for.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ShmError {
    pub(crate) fn os(op: &'static str, what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        ShmError::Os { op, what: what.into(), source: source.into() }
    }
}
