//! The parent's record of one started child, and the one place that reaps it.
//!
//! Every reap in mproc goes through [`Child::try_reap`]: a `waitpid(pid, WNOHANG)`
//! under the child's status mutex, so the exit status is taken exactly once and
//! published to every holder of the record (the [`Process`](crate::Process)
//! handle, the registry behind [`active_children`](crate::active_children), a
//! detached reaper thread). Blocking waits never reap and never hold the mutex:
//! they wait with `waitid(WEXITED | WNOWAIT)` or by polling a pidfd, then call
//! `try_reap`. While the status is `Running` the pid cannot be reused (we have not
//! reaped it), so signalling it under the mutex is safe.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{self as rp, Pid, PidfdFlags, Signal, WaitIdOptions, WaitOptions};

use crate::current::registry;
use crate::ProcessError;

/// What is known about a child's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Not reaped yet (running, or a zombie we have not collected).
    Running,
    /// Reaped: the exit code, or −N for signal N.
    Exited(i32),
    /// Reaped by someone outside mproc; the status is lost.
    Lost,
}

/// One started child of this process.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    status: Mutex<Status>,
}

impl Child {
    pub(crate) fn new(pid: u32, name: String, daemon: bool) -> Arc<Child> {
        let child = Arc::new(Child { pid, name, daemon, status: Mutex::new(Status::Running) });
        registry().add(child.clone());
        child
    }

    fn rpid(&self) -> Pid {
        Pid::from_raw(self.pid as i32).expect("a child's pid is positive")
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        // A panic while holding this lock cannot leave `Status` inconsistent.
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status without reaping.
    pub(crate) fn status(&self) -> Status {
        *self.lock()
    }

    /// Reaps the child if it has ended (`waitpid(WNOHANG)`); the only reaping call.
    pub(crate) fn try_reap(&self) -> Status {
        let mut st = self.lock();
        if *st != Status::Running {
            return *st;
        }
        let new = loop {
            match rp::waitpid(Some(self.rpid()), WaitOptions::NOHANG) {
                Ok(None) => break Status::Running,
                Ok(Some((_, ws))) => {
                    if let Some(code) = ws.exit_status() {
                        break Status::Exited(code);
                    } else if let Some(sig) = ws.terminating_signal() {
                        break Status::Exited(-sig);
                    }
                    // Stopped or continued: not an end.
                    break Status::Running;
                }
                Err(Errno::INTR) => continue,
                Err(_) => break Status::Lost, // ECHILD: reaped elsewhere.
            }
        };
        *st = new;
        drop(st);
        if new != Status::Running {
            registry().remove(self);
        }
        new
    }

    /// Blocks until the child has ended, then reaps it.
    pub(crate) fn wait(&self) -> Status {
        if self.status() != Status::Running {
            return self.status();
        }
        // WNOWAIT: wait for the end but leave the reaping to `try_reap`.
        while let Err(Errno::INTR) =
            rp::waitid(rp::WaitId::Pid(self.rpid()), WaitIdOptions::EXITED | WaitIdOptions::NOWAIT)
        {}
        self.try_reap()
    }

    /// Waits up to `timeout` for the end, reaping it; `Running` on time-out.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> io::Result<Status> {
        let st = self.try_reap();
        if st != Status::Running || timeout.is_zero() {
            return Ok(st);
        }
        // The pid is still ours (not reaped), so the pidfd names this very child.
        let pidfd = match rp::pidfd_open(self.rpid(), PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(Errno::SRCH) => return Ok(self.try_reap()),
            Err(e) => return Err(e.into()),
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = Timespec { tv_sec: left.as_secs() as _, tv_nsec: left.subsec_nanos() as _ };
            let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
            match poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let st = self.try_reap();
            if st != Status::Running || Instant::now() >= deadline {
                return Ok(st);
            }
        }
    }

    /// Sends `sig` unless the child has been reaped already (then a no-op, as in
    /// Python: the pid may belong to someone else by now).
    pub(crate) fn signal(&self, sig: Signal) -> Result<(), ProcessError> {
        let st = self.lock();
        if *st != Status::Running {
            return Ok(());
        }
        match rp::kill_process(self.rpid(), sig) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(ProcessError::os("kill", &self.name, e)),
        }
    }

    /// Hands a still-running child to a reaper thread that waits for its end, so a
    /// dropped handle never leaves a zombie and never blocks the dropping thread.
    pub(crate) fn detach(self: Arc<Self>) {
        if self.try_reap() != Status::Running {
            return;
        }
        // If no thread can be made, the registry still holds the child and the next
        // `active_children` (or the exit of this process) collects it.
        let _ = std::thread::Builder::new().name(format!("mproc-reap-{}", self.pid)).spawn(move || {
            self.wait();
        });
    }
}
