//! The error type of `mproc-process`.

use std::io;

/// What can go wrong with a [`Process`](crate::Process). Every variant names the
/// process it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// `join`, `terminate` or `kill` before `start`.
    #[error("process {name:?} has not been started")]
    NotStarted {
        /// The process's name.
        name: String,
    },
    /// `start` called a second time.
    #[error("process {name:?} was already started (pid {pid})")]
    AlreadyStarted {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
    },
    /// A closed handle was used.
    #[error("process {name:?} is closed")]
    Closed {
        /// The process's name.
        name: String,
    },
    /// `close` while the child still runs.
    #[error("cannot close process {name:?}: pid {pid} is still running")]
    StillRunning {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
    },
    /// A handle built without a target or an entry was started.
    #[error("process {name:?} has nothing to run: give it a target or a spawn entry")]
    NoTarget {
        /// The process's name.
        name: String,
    },
    /// [`join_timeout`](crate::Process::join_timeout) ran out of time: the
    /// child still runs.
    #[error("process {name:?} (pid {pid}) still runs after {after:?}")]
    Timeout {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The timeout given.
        after: std::time::Duration,
    },
    /// The child was reaped by someone else (a `waitpid(-1)` elsewhere in the
    /// program, or `SIGCHLD` set to `SIG_IGN`), so its exit status is lost.
    #[error("process {name:?} (pid {pid}) was reaped outside mproc; its exit status is lost")]
    Lost {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u32,
    },
    /// A spawn child could not run its entry: the entry is not registered in the
    /// binary, the binary is not the one the parent runs, the arguments did not
    /// decode or a shared handle did not import. The child exited with
    /// [`EXIT_SPAWN_FAILED`](crate::EXIT_SPAWN_FAILED).
    #[error("spawn of process {name:?} failed: {detail}")]
    Spawn {
        /// The process's name.
        name: String,
        /// What the child (or the parent) reported.
        detail: String,
    },
    /// Encoding the spawn arguments failed, including the export of a
    /// [`Shared`](crate::Shared) handle (the detail carries `mproc-shm`'s message).
    #[error("encoding the arguments of process {name:?} failed: {detail}")]
    Encode {
        /// The process's name.
        name: String,
        /// The encoder's message.
        detail: String,
    },
    /// A system call failed.
    #[error("{op} failed for process {name:?}: {source}")]
    Os {
        /// The call, e.g. `fork`.
        op: &'static str,
        /// The process's name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ProcessError {
    pub(crate) fn os(op: &'static str, name: &str, source: impl Into<io::Error>) -> Self {
        ProcessError::Os { op, name: name.to_owned(), source: source.into() }
    }
}
