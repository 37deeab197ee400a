//! Awaiting processes (cargo feature `tokio`): [`Process::join_async`] and
//! [`wait_any_async`].
//!
//! A child's pidfd (its [`sentinel`](Process::sentinel)) polls readable once
//! the child has ended, so a task awaits it through the runtime's reactor
//! (tokio's `AsyncFd`) — no thread waits, and the wake-up costs one
//! `epoll_wait` return. Once the pidfd is readable, the blocking
//! [`join`](Process::join) returns at once and reaps the child through the
//! one reaping path (`child.rs`), as every other join does.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::task::Poll;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::error::ProcessError;
use crate::process::Process;

/// A pidfd number borrowed for the length of one await.
struct Borrowed(RawFd);

impl AsRawFd for Borrowed {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn register(fd: BorrowedFd<'_>) -> io::Result<AsyncFd<Borrowed>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("an async call outside a tokio runtime (with its I/O driver enabled)"));
    }
    // SAFETY: the pidfd is open (borrowed here) and its `Process` outlives the
    // registration: both are dropped at the end of the awaiting call.
    unsafe { AsyncFd::register_with_interest(Borrowed(fd.as_raw_fd()), Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

impl Process {
    /// Awaits the child's end and reaps it: the async form of
    /// [`join`](Process::join), with the same errors
    /// ([`ProcessError::NotStarted`] before `start`).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future changes nothing; join again later.
    ///
    /// ```
    /// use mproc_process::Process;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mut p = Process::new(|| mproc_process::exit(3));
    /// p.start()?;
    /// p.join_async().await?;
    /// assert_eq!(p.exitcode(), Some(3));
    /// # Ok::<(), mproc_process::ProcessError>(())
    /// # }).unwrap();
    /// ```
    pub async fn join_async(&mut self) -> Result<(), ProcessError> {
        if self.exitcode().is_some() {
            return self.join();
        }
        let name = self.name().to_owned();
        let os = |e| ProcessError::os("epoll(pidfd)", &name, e);
        {
            let fd = register(self.sentinel()?).map_err(os)?;
            let mut guard = fd.readable().await.map_err(os)?;
            guard.retain_ready();
        }
        self.join()
    }
}

/// Awaits the end of any of `procs` and returns the index of one that ended
/// (and is reaped); Python's `connection.wait` over sentinels, awaited. A
/// process not started is [`ProcessError::NotStarted`]; an empty slice is an
/// [`ProcessError::Os`] error (`InvalidInput`).
///
/// # Cancel safety
/// Cancel safe: dropping the future changes nothing.
pub async fn wait_any_async(procs: &mut [&mut Process]) -> Result<usize, ProcessError> {
    if procs.is_empty() {
        return Err(ProcessError::os("wait_any_async", "(no process)", io::Error::from(io::ErrorKind::InvalidInput)));
    }
    for (i, p) in procs.iter_mut().enumerate() {
        if p.exitcode().is_some() {
            p.join()?;
            return Ok(i);
        }
    }
    let ready = {
        let mut fds = Vec::with_capacity(procs.len());
        for p in procs.iter() {
            let fd = register(p.sentinel()?).map_err(|e| ProcessError::os("epoll(pidfd)", p.name(), e))?;
            fds.push(fd);
        }
        poll_fn(|cx| {
            for (i, fd) in fds.iter().enumerate() {
                if let Poll::Ready(r) = fd.poll_read_ready(cx) {
                    return Poll::Ready(r.map(|_| i));
                }
            }
            Poll::Pending
        })
        .await
        .map_err(|e| ProcessError::os("epoll(pidfd)", "wait_any_async", e))?
    };
    procs[ready].join()?;
    Ok(ready)
}
