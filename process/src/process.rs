//! `Process`: a child process handle, its builder, and the `Run` trait.

use std::fmt;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::Signal;
use serde::Serialize;

use crate::child::{Child, Status};
use crate::fork::{self, Target};
use crate::spawn::{Entry, SpawnJob};
use crate::ProcessError;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A struct that is a process: the Rust form of subclassing Python's
/// `multiprocessing.Process` and overriding `run`.
///
/// ```
/// use mproc_process::{Process, Run};
/// struct Greeter { who: String }
/// impl Run for Greeter {
///     fn run(&mut self) { let _ = self.who.len(); }
/// }
/// let mut p = Process::from_run(Greeter { who: "world".into() });
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(0));
/// ```
pub trait Run: Send + 'static {
    /// The body of the process; it runs in the child.
    fn run(&mut self);
}

/// What a process runs.
pub(crate) enum Job {
    /// Fork start method: a closure.
    Fork(Target),
    /// Spawn start method: a re-exec of this binary running a registered entry.
    Spawn(SpawnJob),
}

impl Job {
    fn start(self, name: &str, daemon: bool) -> Result<u32, ProcessError> {
        match self {
            Job::Fork(target) => fork::fork(name, daemon, target),
            Job::Spawn(job) => crate::spawn::spawn(name, daemon, job),
        }
    }
}

/// A child process, like Python's `multiprocessing.Process`.
///
/// # Start methods
/// - **fork** ([`Process::new`], [`Builder::target`]): the child is a copy of this
///   process and runs the closure; handles move into the closure. See the crate
///   docs on forking a multi-threaded parent.
/// - **spawn** ([`Builder::spawn_entry`]): a fresh exec of this binary runs a
///   function registered with [`entry!`](crate::entry); arguments travel encoded
///   with postcard, shared handles as [`Shared`](crate::Shared).
///
/// # Exit codes
/// [`exitcode`](Process::exitcode) is `None` while the child runs, then 0 after a
/// normal return, `n` after [`exit(n)`](crate::exit) or `std::process::exit(n)`
/// (see [`exit`](crate::exit) on why to prefer the first in fork targets), 1 after a panic (the message
/// goes to stderr), and −N after signal N (−15 after [`terminate`](Process::terminate),
/// −9 after [`kill`](Process::kill)).
///
/// # Reaping (no zombies)
/// A child is reaped — its exit status collected, so no zombie remains — by the
/// first of: [`join`](Process::join), [`join_timeout`](Process::join_timeout) once
/// it has ended, [`is_alive`](Process::is_alive) or [`exitcode`](Process::exitcode)
/// after it ended, [`active_children`](crate::active_children), or the drop of the
/// handle. Dropping the handle of a child that still runs never blocks: the child
/// is handed to a small reaper thread that waits for its end and reaps it (it is
/// not killed; a daemon still dies with its parent). Reaping uses
/// `waitpid(pid, WNOHANG)` on this child's pid only: mproc never calls
/// `waitpid(-1)`. If other code in the program reaps mproc's children (its own
/// `waitpid(-1)`, or `SIGCHLD` set to `SIG_IGN`), `join` reports
/// [`ProcessError::Lost`].
///
/// # At parent exit
/// Daemon children are killed when their parent dies, however it dies
/// (`PR_SET_PDEATHSIG`). Non-daemon children are **not** joined automatically at
/// exit (Python joins them in an `atexit` hook; Rust has none): they keep running,
/// are re-parented to init (or the nearest subreaper), which reaps them. Join them
/// before returning from `main` if the program must wait for them.
pub struct Process {
    name: String,
    daemon: bool,
    job: Option<Job>,
    child: Option<Arc<Child>>,
    closed: bool,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.child, self.closed) {
            (_, true) => "closed".to_owned(),
            (None, _) => "initial".to_owned(),
            (Some(c), _) => match c.status() {
                Status::Running => "started".to_owned(),
                Status::Exited(code) => format!("stopped[{code}]"),
                Status::Lost => "lost".to_owned(),
            },
        };
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("daemon", &self.daemon)
            .field("state", &state)
            .finish()
    }
}

/// Builds a [`Process`]: name, daemon flag, and what it runs.
#[must_use]
pub struct Builder {
    name: Option<String>,
    daemon: bool,
    job: Option<Job>,
}

impl Builder {
    /// The process's name; default `Process-N`, N counting from 1 in each process.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// A daemon child is killed (SIGKILL) when its parent dies, even when the parent
    /// is SIGKILLed. Default false.
    ///
    /// Linux delivers this signal (`PR_SET_PDEATHSIG`) when the **thread** that
    /// forked the child ends, so mproc forks daemon children from one long-lived
    /// thread of the parent (made on the first daemon start): a daemon started
    /// from a short-lived thread lives as long as the parent process, as in
    /// Python. A daemon's fork target therefore runs in a copy of that thread.
    /// Unlike Python, a daemon may start children of its own.
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = daemon;
        self
    }

    /// Fork start method: the child runs `target`. A value it returns is dropped
    /// in the child (exit code 0), as Python ignores a target's return value.
    pub fn target<F, R>(mut self, target: F) -> Builder
    where
        F: FnOnce() -> R + Send + 'static,
    {
        self.job = Some(Job::Fork(Box::new(move || drop(target()))));
        self
    }

    /// Fork start method: the child runs `obj.run()`.
    pub fn run<R: Run>(self, mut obj: R) -> Builder {
        self.target(move || obj.run())
    }

    /// Spawn start method: the child is a fresh exec of this binary that runs
    /// `entry(args)`; see [`entry!`](crate::entry) and [`Shared`](crate::Shared).
    /// The arguments are encoded (and their shared handles exported) by `start`.
    pub fn spawn_entry<A: Serialize + Send + 'static>(self, entry: &Entry<A>, args: A) -> Builder {
        self.job(Job::Spawn(SpawnJob::new(entry, args)))
    }

    pub(crate) fn job(mut self, job: Job) -> Builder {
        self.job = Some(job);
        self
    }

    /// The process, not yet started.
    pub fn build(self) -> Process {
        let name = self.name.unwrap_or_else(|| format!("Process-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)));
        Process { name, daemon: self.daemon, job: self.job, child: None, closed: false }
    }
}

impl Process {
    /// A process that runs `target` (fork start method); call [`start`](Process::start).
    ///
    /// ```
    /// let mut p = mproc_process::Process::new(|| mproc_process::exit(3));
    /// p.start().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(p.exitcode(), Some(3));
    /// ```
    pub fn new<F, R>(target: F) -> Process
    where
        F: FnOnce() -> R + Send + 'static,
    {
        Process::builder().target(target).build()
    }

    /// A process whose body is `obj.run()` (fork start method).
    pub fn from_run<R: Run>(obj: R) -> Process {
        Process::builder().run(obj).build()
    }

    /// A builder: `Process::builder().name("w").daemon(true).target(f).build()`.
    pub fn builder() -> Builder {
        Builder { name: None, daemon: false, job: None }
    }

    fn check_open(&self) -> Result<(), ProcessError> {
        if self.closed {
            return Err(ProcessError::Closed { name: self.name.clone() });
        }
        Ok(())
    }

    fn started(&self) -> Result<&Arc<Child>, ProcessError> {
        self.check_open()?;
        self.child.as_ref().ok_or_else(|| ProcessError::NotStarted { name: self.name.clone() })
    }

    /// Starts the child. A second call is [`ProcessError::AlreadyStarted`].
    ///
    /// For spawn, this returns once the child has found its entry and imported its
    /// arguments, so a stale binary or a bad handle is reported here as
    /// [`ProcessError::Spawn`].
    pub fn start(&mut self) -> Result<(), ProcessError> {
        self.check_open()?;
        if let Some(c) = &self.child {
            return Err(ProcessError::AlreadyStarted { name: self.name.clone(), pid: c.pid });
        }
        let Some(job) = self.job.take() else {
            return Err(ProcessError::NoTarget { name: self.name.clone() });
        };
        // Made before the first child exists, so that every process of the tree
        // shares it (a forked child inherits it as memory).
        let _ = crate::current::authkey();
        let pid = if self.daemon {
            let name = self.name.clone();
            crate::current::on_daemon_starter(move || job.start(&name, true))?
        } else {
            job.start(&self.name, false)?
        };
        self.child = Some(Child::new(pid, self.name.clone(), self.daemon));
        Ok(())
    }

    /// Waits for the child to end and reaps it. Returns at once if it was reaped.
    pub fn join(&self) -> Result<(), ProcessError> {
        let c = self.started()?;
        match c.wait() {
            Status::Lost => Err(ProcessError::Lost { name: self.name.clone(), pid: c.pid }),
            _ => Ok(()),
        }
    }

    /// Waits at most `timeout` for the child to end (and reaps it);
    /// [`ProcessError::Timeout`] if it still runs then.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), ProcessError> {
        let c = self.started()?;
        match c.wait_timeout(timeout).map_err(|e| ProcessError::os("poll(pidfd)", &self.name, e))? {
            Status::Running => Err(ProcessError::Timeout { name: self.name.clone(), pid: c.pid, after: timeout }),
            Status::Exited(_) => Ok(()),
            Status::Lost => Err(ProcessError::Lost { name: self.name.clone(), pid: c.pid }),
        }
    }

    /// True between `start` and the child's end (reaps it if it has ended).
    ///
    /// Takes `&self` (the reaped status lives behind the handle's shared
    /// record), so a filter over borrowed handles works:
    ///
    /// ```
    /// use mproc_process::Process;
    ///
    /// let mut procs: Vec<Process> = (0..3).map(|_| Process::new(|| ())).collect();
    /// for p in &mut procs {
    ///     p.start()?;
    /// }
    /// for p in &procs {
    ///     p.join()?;
    /// }
    /// assert_eq!(procs.iter().filter(|p| p.is_alive()).count(), 0);
    /// assert!(procs.iter().all(|p| p.exitcode() == Some(0)));
    /// # Ok::<(), mproc_process::ProcessError>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        match &self.child {
            Some(c) if !self.closed => c.try_reap() == Status::Running,
            _ => false,
        }
    }

    /// A file descriptor that polls readable (`POLLIN`) once the child has ended,
    /// like Python's `Process.sentinel`: a pidfd, opened at `start`, valid as long
    /// as this handle lives, to wait on many children (and other fds) at once.
    pub fn sentinel(&self) -> Result<BorrowedFd<'_>, ProcessError> {
        let c = self.started()?;
        c.pidfd()
            .ok_or_else(|| ProcessError::os("pidfd_open", &self.name, std::io::Error::from_raw_os_error(libc::ENOSYS)))
    }

    /// The child's pid once started.
    #[doc(alias = "ident")]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid)
    }

    /// The name (default `Process-N`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the child is a daemon.
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// `None` until the child has ended (and is reaped by this call if it has);
    /// then 0, the exit code, 1 after a panic, or −N after signal N.
    pub fn exitcode(&self) -> Option<i32> {
        match self.child.as_ref()?.try_reap() {
            Status::Exited(code) => Some(code),
            _ => None,
        }
    }

    /// Sends SIGTERM. A no-op once the child has been reaped.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.started()?.signal(Signal::TERM)
    }

    /// Sends SIGKILL. A no-op once the child has been reaped.
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.started()?.signal(Signal::KILL)
    }

    /// Releases the handle's resources; an error while the child runs. After
    /// `close`, `start`, `join` and the signals return [`ProcessError::Closed`].
    pub fn close(&mut self) -> Result<(), ProcessError> {
        if self.closed {
            return Ok(());
        }
        if let Some(c) = &self.child {
            if c.try_reap() == Status::Running {
                return Err(ProcessError::StillRunning { name: self.name.clone(), pid: c.pid });
            }
        }
        self.job = None;
        self.closed = true;
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            c.detach();
        }
    }
}
