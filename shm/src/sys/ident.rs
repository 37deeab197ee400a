//! Who am I, and is that process still alive: the ids stored in shared words
//! and the liveness test behind owner-death recovery.
//!
//! `getpid(2)` and `gettid(2)` are system calls (glibc stopped caching the pid),
//! too slow for a lock's or a ring's fast path, so both are cached: the pid in a
//! static, the tid in a thread-local. One `pthread_atfork(3)` child handler
//! clears both caches, so a child created by `fork(2)` (libc's, which runs the
//! handlers) sees its own ids. A child made by a raw `clone(2)` that bypasses the
//! handlers would inherit stale ids; mproc never does that.
//!
//! The handler is registered without a `Once`: a fork while another thread is
//! inside `call_once` would leave the child a `Once` that never completes, and
//! its first lock operation would hang. A three-state word is used instead, and
//! an id is cached only once the handler is in place; a child forked
//! mid-registration never caches and asks the kernel each time (slower, right).

#[cfg(not(loom))]
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Shared words keep a pid in their low 30 bits (Linux's `PID_MAX_LIMIT` is 2^22).
pub const PID_BITS: u32 = 30;

/// The cached pid; 0 until first asked for, and again in a forked child.
static PID: AtomicU32 = AtomicU32::new(0);
/// 0: the atfork handler is not registered; 1: a thread is registering it; 2: it is.
static ATFORK: AtomicU8 = AtomicU8::new(0);

#[cfg(not(loom))]
thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn after_fork_in_child() {
    PID.store(0, Ordering::Relaxed);
    // The forking thread is the child's only thread: its cache is the only one left.
    #[cfg(not(loom))]
    TID.with(|t| t.set(0));
}

/// True once the atfork handler is registered (registering it if nobody has).
/// Never waits: see the module docs.
fn atfork_registered() -> bool {
    if ATFORK.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: registers a plain `extern "C"` function with no captured state
        // that only stores to an atomic and a thread-local (async-signal-safe, as
        // a fork child handler must be); pthread_atfork only stores the pointer.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
        ATFORK.store(2, Ordering::Release);
    }
    ATFORK.load(Ordering::Acquire) == 2
}

#[cold]
fn init_pid() -> u32 {
    let registered = atfork_registered();
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    debug_assert!(pid < 1 << PID_BITS, "pid {pid} does not fit in {PID_BITS} bits");
    if registered {
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}

/// `getpid(2)`, cached: this process's id, refreshed in a forked child.
///
/// ```
/// assert_eq!(mproc_shm::sys::pid(), std::process::id());
/// ```
#[doc(alias = "getpid")]
#[inline]
pub fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => init_pid(),
        p => p,
    }
}

/// `gettid(2)`, cached: this thread's kernel id, refreshed in a forked child.
/// Tids are unique system-wide among live threads, so a tid names one thread
/// of one process.
#[doc(alias = "gettid")]
#[cfg(not(loom))]
#[inline]
pub fn tid() -> u32 {
    TID.with(|t| match t.get() {
        0 => {
            let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            if atfork_registered() {
                t.set(tid);
            }
            tid
        }
        v => v,
    })
}

/// Under loom every model thread lives in one process: hands out distinct ids.
#[cfg(loom)]
pub fn tid() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1 << 20);
    loom::thread_local! {
        static TID: u32 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TID.with(|t| *t)
}

/// Under loom there are no processes: this pid stands for a dead one, so that
/// models can forge a word claimed by a process that died.
#[cfg(loom)]
#[doc(hidden)]
pub const LOOM_DEAD_PID: u32 = (1 << 30) - 1;

/// True unless process `pid` has certainly exited: gone, or a zombie (killed
/// but not yet reaped). Slow (three system calls): call it only after spinning
/// or sleeping.
///
/// `pidfd_open(2)` fails with `ESRCH` for a pid that no longer exists; for a
/// zombie — which `kill(pid, 0)` still reports as existing — the pidfd polls
/// readable. This is chosen over `kill(pid, 0)` plus parsing `/proc/<pid>/stat`
/// because it asks the kernel one question about one process (no text to parse,
/// no dependence on `/proc` being mounted). If `pidfd_open` fails for another
/// reason (`EMFILE`, `ENOSYS` before Linux 5.3) it falls back to `kill(pid, 0)`.
/// Any other doubt counts as alive: only certain death lets a caller take over
/// what the process held.
///
/// Pid reuse: a word holds a bare pid, no generation, so a pid reused by a new
/// process reads as alive. That only delays recovery until the new process
/// exits; it never declares a live holder dead. (A pidfd kept from the start,
/// as `mproc-process` keeps for its children, has no such gap, but a pid read
/// from shared memory has no pidfd.)
///
/// This process is alive; pid 0 and pids beyond `i32::MAX` name no process
/// and are not alive.
///
/// ```
/// assert!(mproc_shm::sys::alive(mproc_shm::sys::pid()));
/// assert!(!mproc_shm::sys::alive(0));
/// ```
#[cold]
pub fn alive(pid: u32) -> bool {
    #[cfg(loom)]
    {
        pid != LOOM_DEAD_PID
    }
    #[cfg(not(loom))]
    {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        use rustix::io::Errno;
        use rustix::process::{pidfd_open, Pid, PidfdFlags};

        if pid == self::pid() {
            return true;
        }
        let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else { return false };
        match pidfd_open(p, PidfdFlags::empty()) {
            Err(Errno::SRCH) => false,
            Err(_) => !matches!(rustix::process::test_kill_process(p), Err(Errno::SRCH)),
            Ok(fd) => {
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
                !matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
            }
        }
    }
}
