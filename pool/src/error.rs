//! The pool's error type.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// How a lost worker process ended, as far as the pool could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerExit {
    /// The worker's process id.
    pub pid: i32,
    /// Python's `exitcode`: the exit status, or `-N` when signal `N` ended it;
    /// `None` when the pool could not reap it in time.
    pub exitcode: Option<i32>,
}

impl WorkerExit {
    /// The signal that ended the worker, if a signal did.
    pub fn signal(&self) -> Option<i32> {
        self.exitcode.filter(|c| *c < 0).map(|c| -c)
    }
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.exitcode {
            Some(c) if c < 0 => write!(f, "worker pid {} was killed by signal {}", self.pid, -c),
            Some(c) => write!(f, "worker pid {} exited with code {}", self.pid, c),
            None => write!(f, "worker pid {} vanished (exit status unknown)", self.pid),
        }
    }
}

/// Everything that can go wrong in a [`Pool`](crate::Pool) or an
/// [`AsyncResult`](crate::AsyncResult).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// `processes` was zero.
    #[error("a pool needs at least one worker process, got processes = {0}")]
    ZeroProcesses(usize),
    /// `maxtasksperchild` was zero.
    #[error("maxtasksperchild must be at least 1 (or None for unlimited), got {0}")]
    ZeroMaxTasks(usize),
    /// `chunksize` was zero.
    #[error("chunksize must be at least 1, got {0}")]
    ZeroChunksize(usize),
    /// A task was submitted to a pool after `close` or `terminate`.
    #[error("cannot submit to a pool that is {0}")]
    NotRunning(&'static str),
    /// `join` was called on a pool that was neither closed nor terminated.
    #[error("join on a running pool: call close() or terminate() first")]
    StillRunning,
    /// The task panicked in its worker; the worker survived.
    #[error("task panicked{}: {message}", item_suffix(*item))]
    TaskPanicked {
        /// The panic message (and location, when known).
        message: String,
        /// For `map`-like calls, the index of the input item whose call panicked.
        item: Option<usize>,
    },
    /// The worker process running the task died (killed by a signal, the OOM killer,
    /// `exit` in the task, …). The pool replaced the worker.
    #[error("{exit} while running the task{}", items_suffix(items))]
    WorkerLost {
        /// The lost worker.
        exit: WorkerExit,
        /// For `map`-like calls, the input items of the chunk that was lost.
        items: Option<Range<usize>>,
    },
    /// The initializer panicked in a worker, so the pool stopped: its workers
    /// were killed and outstanding work cancelled. (CPython respawns such
    /// workers forever.)
    #[error("the pool's initializer panicked in worker pid {pid}: {message}")]
    InitializerFailed {
        /// The worker whose initializer panicked.
        pid: i32,
        /// The panic message.
        message: String,
    },
    /// The pool was terminated before the task finished.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// `get_timeout` / `next_timeout` gave up.
    #[error("no result within {0:?}")]
    Timeout(Duration),
    /// An [`AsyncResult`](crate::AsyncResult)'s result was asked for again after
    /// `get_timeout` had returned it (a result is moved out once).
    #[error("the result was already taken by an earlier get_timeout")]
    ResultTaken,
    /// `successful` was asked before the result was ready.
    #[error("the result is not ready yet")]
    NotReady,
    /// An argument (or a chunk of arguments, for `map`-like calls) could not
    /// be serialized for the worker: its `Serialize` failed (a map of unknown
    /// length, a custom error, …).
    #[error("cannot encode an argument of type {type_name}: {source}")]
    Encode {
        /// The argument's Rust type.
        type_name: &'static str,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// A task's result did not decode as the caller's type (a type whose
    /// `Deserialize` does not read what its `Serialize` wrote). A `PodVec` of
    /// another element type is [`Payload`](Self::Payload) instead.
    #[error("cannot decode a result of {len} encoded bytes as {type_name}{}: {source}", chunk_suffix(*item))]
    Decode {
        /// The Rust type the result was decoded as (for `map`-like calls, the
        /// chunk's `Vec` of results).
        type_name: &'static str,
        /// The length of the encoded result (for `map`-like calls, of the chunk's).
        len: usize,
        /// For `map`-like calls, the first input item of the chunk, when known.
        item: Option<usize>,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// A `map`-like call would need more than 2^32 chunks (a task names its
    /// chunk with a `u32`): `items` in chunks of `chunksize` make `chunks`.
    #[error("{items} items in chunks of {chunksize} make {chunks} chunks, more than 2^32: use a larger chunksize")]
    TooManyChunks {
        /// The number of input items.
        items: usize,
        /// The chunk size asked for (or the default one).
        chunksize: usize,
        /// The chunks that would make.
        chunks: usize,
    },
    /// A result message from a worker of a cluster pool (e.g. an MPI rank)
    /// does not frame: it names its task but not a well-formed outcome. The
    /// call waiting for that task ends with this error.
    #[error("malformed result message from rank {rank}: {detail}")]
    Malformed {
        /// The rank (worker) that sent the message.
        rank: usize,
        /// What is wrong with the message (the framing decoder's error).
        detail: String,
    },
    /// A result is a `PodVec` of another element type than the caller's (its
    /// element size or kind differs): the cause, naming both.
    #[error("cannot decode a task's result: {0}")]
    Payload(#[from] mproc_ipc::PayloadError),
    /// A task's argument did not decode in its worker (a type whose
    /// `Deserialize` does not read what its `Serialize` wrote, e.g. a `PodVec`
    /// encoded as one element type and read as another). The worker survived.
    #[error("the argument of task {task}{} ({len} encoded bytes) does not decode in the worker: {cause}", item_suffix(*item))]
    BadArgument {
        /// The task: its type, `fn(A) -> R`, or the function's name for `starmap`.
        task: String,
        /// For `map`-like calls, the index of the input item that did not decode.
        item: Option<usize>,
        /// The length of the encoded argument (for `map`-like calls, of the chunk).
        len: usize,
        /// Why it did not decode.
        cause: ArgumentError,
    },
    /// A worker process could not be started, or its channel could not be
    /// created. Also the error of every outstanding and later call of a pool
    /// that stopped because, with no worker left, starts kept failing.
    #[error("cannot start a worker process: {0}")]
    Spawn(String),
}

/// Why a task's argument did not decode in its worker ([`PoolError::BadArgument`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// A `PodVec` of another element type, or malformed payload bytes: the
    /// cause, naming both types or the bad length.
    #[error(transparent)]
    Payload(mproc_ipc::PayloadError),
    /// The encoding's own error (postcard's message).
    #[error("{0}")]
    Format(String),
}

fn item_suffix(item: Option<usize>) -> String {
    item.map(|i| format!(" on item {i}")).unwrap_or_default()
}

fn chunk_suffix(item: Option<usize>) -> String {
    item.map(|i| format!(" (the results of the chunk from item {i})")).unwrap_or_default()
}

fn items_suffix(items: &Option<Range<usize>>) -> String {
    match items {
        Some(r) if r.len() == 1 => format!(" on item {}", r.start),
        Some(r) => format!(" on items {}..{}", r.start, r.end),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_bad_value() {
        assert!(PoolError::ZeroProcesses(0).to_string().contains("processes = 0"));
        assert!(PoolError::ZeroChunksize(0).to_string().contains("got 0"));
        let lost = PoolError::WorkerLost { exit: WorkerExit { pid: 42, exitcode: Some(-9) }, items: Some(10..20) };
        let s = lost.to_string();
        assert!(s.contains("pid 42") && s.contains("signal 9") && s.contains("items 10..20"), "{s}");
        let p = PoolError::TaskPanicked { message: "boom".into(), item: Some(3) };
        assert_eq!(p.to_string(), "task panicked on item 3: boom");

        let source = postcard::Error::SerializeSeqLengthUnknown;
        let e = PoolError::Encode { type_name: "my::Arg", source: source.clone() };
        let s = e.to_string();
        assert!(s.contains("my::Arg") && s.contains(&source.to_string()), "{s}");
        assert_eq!(std::error::Error::source(&e).map(|c| c.to_string()), Some(source.to_string()));

        let source = postcard::Error::DeserializeUnexpectedEnd;
        let d = PoolError::Decode { type_name: "my::Res", len: 17, item: None, source: source.clone() };
        let s = d.to_string();
        assert!(s.contains("my::Res") && s.contains("17 encoded bytes") && s.contains(&source.to_string()), "{s}");
        assert!(!s.contains("item"), "{s}");
        assert_eq!(std::error::Error::source(&d).map(|c| c.to_string()), Some(source.to_string()));
        let d = PoolError::Decode { type_name: "alloc::vec::Vec<my::Res>", len: 6, item: Some(40), source };
        let s = d.to_string();
        assert!(s.contains("Vec<my::Res>") && s.contains("6 encoded bytes") && s.contains("from item 40"), "{s}");

        let t = PoolError::TooManyChunks { items: 5_000_000_000, chunksize: 1, chunks: 5_000_000_000 };
        let s = t.to_string();
        assert!(s.contains("5000000000 items") && s.contains("chunks of 1") && s.contains("larger chunksize"), "{s}");

        let m = PoolError::Malformed { rank: 3, detail: "too short".into() };
        assert_eq!(m.to_string(), "malformed result message from rank 3: too short");
    }

    #[test]
    fn signal_of_exit() {
        assert_eq!(WorkerExit { pid: 1, exitcode: Some(-9) }.signal(), Some(9));
        assert_eq!(WorkerExit { pid: 1, exitcode: Some(3) }.signal(), None);
    }
}
