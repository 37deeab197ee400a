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
    /// An argument could not be serialized for the worker.
    #[error("cannot encode the task's argument: {0}")]
    Encode(String),
    /// A result could not be deserialized.
    #[error("cannot decode a task's data: {0}")]
    Decode(String),
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
    }

    #[test]
    fn signal_of_exit() {
        assert_eq!(WorkerExit { pid: 1, exitcode: Some(-9) }.signal(), Some(9));
        assert_eq!(WorkerExit { pid: 1, exitcode: Some(3) }.signal(), None);
    }
}
