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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use mproc_shm::sys::{self, Deadline};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;
use rustix::process::{self as rp, Pid, PidfdFlags, Signal, WaitIdOptions, WaitOptions};

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
    /// A pidfd opened right after the start, while the pid was surely this
    /// child's; `None` if the kernel refused one. Readable once the child ends.
    pidfd: Option<OwnedFd>,
    /// Called once the child is reaped: the registry's hook that takes the
    /// record off its list.
    on_reaped: fn(&Child),
}

impl Child {
    /// A record of the child `pid`, just started; `on_reaped` runs once it is reaped.
    pub(crate) fn new(pid: u32, name: String, daemon: bool, on_reaped: fn(&Child)) -> Arc<Child> {
        // Not reaped yet, so the pid cannot have been reused.
        let pidfd = Pid::from_raw(pid as i32).and_then(|p| rp::pidfd_open(p, PidfdFlags::empty()).ok());
        Arc::new(Child { pid, name, daemon, status: Mutex::new(Status::Running), pidfd, on_reaped })
    }

    fn rpid(&self) -> Pid {
        Pid::from_raw(self.pid as i32).expect("a child's pid is positive")
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        // A panic while holding this lock cannot leave `Status` inconsistent.
        sys::lock(&self.status)
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
            (self.on_reaped)(self);
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
        let opened;
        let pidfd = match &self.pidfd {
            Some(fd) => fd,
            // The pid is still ours (not reaped), so a new pidfd names this very child.
            None => match rp::pidfd_open(self.rpid(), PidfdFlags::empty()) {
                Ok(fd) => {
                    opened = fd;
                    &opened
                }
                Err(Errno::SRCH) => return Ok(self.try_reap()),
                Err(e) => return Err(e.into()),
            },
        };
        // A timeout too long for an Instant (Duration::MAX) is no limit.
        let deadline = Deadline::after(timeout);
        loop {
            let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
            match poll(&mut fds, deadline.timespec().as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let st = self.try_reap();
            if st != Status::Running || deadline.has_passed() {
                return Ok(st);
            }
        }
    }

    /// The pidfd made at the start, if any.
    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
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

    /// Hands a still-running child to this process's reaper thread, which waits for
    /// its end and reaps it, so a dropped handle never leaves a zombie and never
    /// blocks the dropping thread.
    pub(crate) fn detach(self: Arc<Self>, reaper: Option<&Reaper>) {
        if self.try_reap() != Status::Running {
            return;
        }
        // Without a reaper thread the registry still holds the child, and the next
        // `active_children` (or the exit of this process) collects it.
        if let Some(reaper) = reaper {
            reaper.watch(self);
        }
    }
}

/// One long-lived thread per process that reaps detached children.
///
/// A thread per dropped handle would be simpler, but every thread start and exit
/// takes std's internal locks, and a fork that lands in the middle leaves them held
/// in the child (see the `fork` module docs); one thread that lives as long as the
/// process does not churn. It polls a wake-up pipe and one pidfd per detached child.
pub(crate) struct Reaper {
    tx: mpsc::Sender<Arc<Child>>,
    wake: OwnedFd,
}

impl Reaper {
    pub(crate) fn start() -> Option<Reaper> {
        let (wake_r, wake_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).ok()?;
        let (tx, rx) = mpsc::channel::<Arc<Child>>();
        std::thread::Builder::new().name("mproc-reaper".into()).spawn(move || reap_loop(&wake_r, &rx)).ok()?;
        Some(Reaper { tx, wake: wake_w })
    }

    fn watch(&self, child: Arc<Child>) {
        if self.tx.send(child).is_ok() {
            // A full pipe already holds a wake-up: losing this byte is fine.
            let _ = rustix::io::write(&self.wake, &[1]);
        }
    }
}

fn reap_loop(wake: &OwnedFd, rx: &mpsc::Receiver<Arc<Child>>) {
    let mut watched: Vec<(Arc<Child>, OwnedFd)> = Vec::new();
    loop {
        let readable: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(watched.len() + 1);
            fds.push(PollFd::new(wake, PollFlags::IN));
            fds.extend(watched.iter().map(|(_, fd)| PollFd::new(fd, PollFlags::IN)));
            match poll(&mut fds, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            fds.iter().skip(1).map(|fd| !fd.revents().is_empty()).collect()
        };
        let mut i = 0;
        watched.retain(|(child, _)| {
            let keep = !readable[i] || child.try_reap() == Status::Running;
            i += 1;
            keep
        });
        let mut buf = [0u8; 64];
        while matches!(rustix::io::read(wake, &mut buf), Ok(n) if n > 0) {}
        while let Ok(child) = rx.try_recv() {
            if child.try_reap() != Status::Running {
                continue;
            }
            // Not reaped, so the pid is still this child's.
            match rp::pidfd_open(child.rpid(), PidfdFlags::empty()) {
                Ok(fd) => watched.push((child, fd)),
                Err(_) => {
                    child.try_reap();
                }
            }
        }
    }
}
