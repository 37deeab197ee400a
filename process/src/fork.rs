//! The fork start method: `fork(2)`, then the target runs in the child.
//!
//! # Forking a multi-threaded parent
//! `fork` copies only the calling thread. A lock that another thread held at that
//! moment stays locked forever in the child: std's stdout/stderr locks, the
//! environment lock, the panic-hook lock, any `Mutex` of the program. So the
//! child, before it runs the target, takes no lock that another thread might hold:
//! it installs a fresh process registry (see `current.rs`), reports panics through
//! a hook installed in the parent beforehand that writes straight to fd 2 instead
//! of through `std::io::stderr()`, and ends with `_exit(2)` without running
//! `atexit` handlers or destructors of the parent's statics. glibc makes `malloc`
//! safe after `fork`. What the *target* does is up to it: under a threaded parent
//! (every `cargo test` binary is one) it should avoid locks shared with other
//! threads, or use the spawn start method, which starts a fresh process. Note that
//! `std::process::exit` is such a case (its clean-up takes a std-internal lock that
//! thread start and exit also take): end a fork target with [`exit`] instead.
//!
//! Under `cargo test` the child inherits the test thread's output capture, so its
//! `println!` lands in a buffer that nobody prints; panics still reach stderr.

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use mproc_shm::sys;

use crate::current::{self, ProcessInfo};
use crate::ProcessError;

/// A fork target.
pub(crate) type Target = Box<dyn FnOnce() + Send + 'static>;

/// Forks; the child runs `target` and never returns. Returns the child's pid.
pub(crate) fn fork(name: &str, daemon: bool, target: Target) -> Result<u32, ProcessError> {
    install_panic_hook();
    // Unflushed output would be written twice, once by each process.
    let _ = std::io::stdout().flush();
    let parent = current::current_process();
    let me = ProcessInfo::new(name.to_owned(), 0, daemon);
    // SAFETY: fork has no memory-safety preconditions of its own; the child below
    // only calls async-signal-safe functions, `malloc` (fork-safe in glibc), and the
    // target, and leaves through `_exit` — see the module docs.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(ProcessError::os("fork", name, std::io::Error::last_os_error())),
        0 => child(me, parent, target),
        pid => {
            // The closure (and the handles it captured) now belongs to the child.
            drop(target);
            Ok(pid as u32)
        }
    }
}

fn child(me: ProcessInfo, parent: ProcessInfo, target: Target) -> ! {
    FORKED.store(true, Ordering::Relaxed);
    if me.daemon() {
        die_with_parent(parent.pid());
    }
    current::install(ProcessInfo::new(me.name().to_owned(), sys::pid(), me.daemon()), parent);
    run_target(target)
}

/// Makes the kernel SIGKILL this process when its parent dies, and handles the
/// race where the parent died before the request was made.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked us ends, not only when
/// the whole parent process does; see [`Builder::daemon`](crate::Builder::daemon).
pub(crate) fn die_with_parent(parent_pid: u32) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory;
    // getppid and raise are async-signal-safe.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() as u32 != parent_pid {
            // The parent is gone already: behave as if the signal had come.
            libc::raise(libc::SIGKILL);
        }
    }
}

/// Runs a child's body and leaves the process: exit code 0 on return, 1 after a
/// panic (message on stderr); `std::process::exit(n)` inside gives `n`.
pub(crate) fn run_target(target: impl FnOnce()) -> ! {
    IN_CHILD.store(true, Ordering::Relaxed);
    let code = match panic::catch_unwind(AssertUnwindSafe(target)) {
        Ok(()) => 0,
        Err(payload) => {
            // Dropping a payload can panic again; the process ends anyway.
            std::mem::forget(payload);
            1
        }
    };
    exit_now(code)
}

/// True in a child started by mproc: its panics are reported by [`install_panic_hook`].
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// True in a child made by the fork start method.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Ends this process at once with exit code `code`, like Python's `os._exit`:
/// no destructors, no `atexit` handlers, no std runtime clean-up.
///
/// Prefer it to `std::process::exit` inside a **fork** target: std's exit
/// clean-up takes a std-internal lock that another thread of a multi-threaded
/// parent may have held at the fork (for instance one that was starting or ending
/// a thread), and the child would then hang instead of exiting. Outside a fork
/// child it flushes stdout first; inside one, only complete lines (stdout is
/// line-buffered) are sure to be out.
///
/// ```
/// let mut p = mproc_process::Process::new(|| mproc_process::exit(4));
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(4));
/// ```
pub fn exit(code: i32) -> ! {
    if !FORKED.load(Ordering::Relaxed) {
        let _ = std::io::stdout().flush();
    }
    exit_now(code)
}

/// Installs (once per process) the panic hook that reports a child's panic.
///
/// It is installed in the *parent*, before the first fork, and chains to the hook
/// it replaces: in the parent it defers to that hook; in a child it writes
/// `Process <name> (pid <pid>): panicked at …` straight to fd 2. Setting a hook in
/// the child instead would take std's hook lock, which a panicking thread of the
/// parent may have held at the fork — the child would hang before its target ran.
/// (If the program replaces the hook after the first start, its hook reports the
/// children's panics.)
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CHILD.load(Ordering::Relaxed) {
                let me = current::current_process();
                write_stderr(format!("Process {} (pid {}): {info}\n", me.name(), me.pid()).as_bytes());
            } else {
                prev(info);
            }
        }));
    });
}

/// `_exit(2)`: ends the process at once, without destructors or `atexit`
/// handlers, which belong to the parent's program.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Writes to fd 2 without std's stderr lock (which another thread of the parent
/// may have held at the fork).
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable buffer of `bytes.len()` bytes.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}
