//! Who am I, and is that process still alive: the identities stored in lock
//! words and the liveness test behind owner-death recovery.
//!
//! `getpid(2)` and `gettid(2)` are system calls (glibc stopped caching the pid),
//! too slow for a lock's fast path, so both are cached: the pid in a static, the
//! tid in a thread-local. A `pthread_atfork` child handler clears both caches,
//! so a child created by `fork(2)` (libc's, which runs the handlers) sees its own
//! ids. A child made by a raw `clone(2)` that bypasses the handlers would inherit
//! stale ids; mproc never does that.
//!
//! The handler is registered without a `Once`: a fork while another thread is
//! inside `call_once` would leave the child a `Once` that never completes, and
//! its first lock operation would hang. A three-state word is used instead, and
//! the pid is cached only once the handler is in place; a child forked
//! mid-registration never caches and asks the kernel each time (slower, right).

#[cfg(not(loom))]
use std::cell::Cell;
use std::sync::atomic::Ordering;

/// Lock words keep a pid in their low 30 bits (Linux's `PID_MAX_LIMIT` is 2^22).
pub(crate) const PID_BITS: u32 = 30;

static PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// 0: the atfork handler is not registered; 1: a thread is registering it; 2: it is.
static ATFORK: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

#[cfg(not(loom))]
thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn after_fork_in_child() {
    PID.store(0, Ordering::Relaxed);
    #[cfg(not(loom))]
    TID.with(|t| t.set(0));
}

/// True once the atfork handler is registered (registering it if nobody has).
/// Never waits: see the module docs.
fn atfork_registered() -> bool {
    if ATFORK.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: registers a plain `extern "C"` function with no captured state;
        // pthread_atfork only stores the pointer.
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

/// This process's pid (cached; refreshed after fork).
#[inline]
pub(crate) fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => init_pid(),
        p => p,
    }
}

/// This thread's kernel tid (cached; refreshed after fork). Tids are unique
/// system-wide among live threads, so a tid names one thread of one process.
#[cfg(not(loom))]
#[inline]
pub(crate) fn tid() -> u32 {
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

/// Under loom every model thread lives in one process: hand out distinct ids.
#[cfg(loom)]
pub(crate) fn tid() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1 << 20);
    loom::thread_local! {
        static TID: u32 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TID.with(|t| *t)
}

/// True unless process `pid` has certainly exited (gone, or a zombie).
///
/// `pidfd_open(2)` fails with `ESRCH` for a pid that no longer exists; for a
/// zombie (killed but not yet reaped — `kill(pid, 0)` still succeeds there) the
/// pidfd polls readable. Any other failure counts as alive: only certain death
/// lets a waiter take a lock over.
pub(crate) fn alive(pid: u32) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::io::Errno;
    use rustix::process::{pidfd_open, Pid, PidfdFlags};

    if pid == self::pid() {
        return true;
    }
    let Some(p) = Pid::from_raw(pid as i32) else { return true };
    match pidfd_open(p, PidfdFlags::empty()) {
        Err(Errno::SRCH) => false,
        Err(_) => !matches!(rustix::process::test_kill_process(p), Err(Errno::SRCH)),
        Ok(fd) => {
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
            !matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
        }
    }
}
