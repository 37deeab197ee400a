//! The resource tracker: unlinks the named segments of processes that died
//! without unlinking them (SIGKILL, `abort`), as CPython's `resource_tracker`
//! does, so `/dev/shm` does not fill with orphans; it also removes directories
//! registered with [`track_dir`] (a manager's socket directory).
//!
//! The first [`Segment::create`](crate::Segment::create) in a process forks a
//! small tracker process and keeps the write end of a pipe to it. Creating a
//! named segment writes `R <name>` to the pipe, unlinking it writes
//! `U <name>`; each line is one `write(2)` of less than `PIPE_BUF` bytes, so
//! lines from many processes never interleave. Children forked later inherit
//! the write end and report to the same tracker; spawned (exec'd) children
//! start their own (the fd is close-on-exec). When every holder of the write
//! end has exited — however it died — the tracker reads end of file, unlinks
//! every name still registered, and exits.
//!
//! So a named segment outlives its creator only while other processes of the
//! same tree run. A segment meant to outlive the whole program is made with
//! [`Segment::create_untracked`](crate::Segment::create_untracked) (CPython
//! 3.13's `track=False`): the tracker never hears of it.
//!
//! The tracker is forked from a possibly multi-threaded process, so it runs only
//! system calls and plain memory work: it closes every inherited descriptor
//! but its pipe (holding a peer's socket open would hide that peer's end of
//! file), ignores SIGINT and SIGTERM (a Ctrl-C to the process group must not
//! kill it before it cleans up), and leaves with `_exit`.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::pidlock::PidLock;

/// The write end of the pipe to this process tree's tracker: `None` until the
/// first named segment; `Some(None)` when no tracker could start (no cleanup
/// then, never an error).
static TRACKER: PidLock<Option<Option<OwnedFd>>> = PidLock::new(None);

/// Reports that this process created the named segment `name`.
pub(crate) fn register(name: &str) {
    send(b'R', name.as_bytes());
}

/// Reports that the named segment `name` was unlinked.
pub(crate) fn unregister(name: &str) {
    send(b'U', name.as_bytes());
}

/// The longest directory path the tracker takes (a line stays under `PIPE_BUF`).
const MAX_PATH: usize = 1024;

/// Asks the tracker to remove the directory `dir` — the files directly in it,
/// then the directory — if this process tree dies before
/// [`untrack_dir`] is called: for a private directory holding a socket, such
/// as a manager's. A path longer than 1024 bytes or containing a newline is not
/// tracked.
pub fn track_dir(dir: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let p = dir.as_os_str().as_bytes();
    if p.len() <= MAX_PATH && !p.contains(&b'\n') {
        send(b'D', p);
    }
}

/// Withdraws [`track_dir`]: the caller removed `dir` itself.
pub fn untrack_dir(dir: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let p = dir.as_os_str().as_bytes();
    if p.len() <= MAX_PATH && !p.contains(&b'\n') {
        send(b'E', p);
    }
}

fn send(op: u8, what: &[u8]) {
    // A name is at most 250 bytes (checked by `check_name`), a path at most
    // MAX_PATH: one line < PIPE_BUF, written atomically.
    let mut line = Vec::with_capacity(what.len() + 3);
    line.extend_from_slice(&[op, b' ']);
    line.extend_from_slice(what);
    line.push(b'\n');
    let me = rustix::process::getpid().as_raw_nonzero().get() as u32;
    // Taken over from a parent thread that was mid-start: whatever it left is
    // either a working pipe (shared with the parent, as after any fork) or
    // nothing, and then this process starts its own tracker.
    let (mut t, _) = TRACKER.lock(me);
    if t.is_none() && matches!(op, b'R' | b'D') {
        *t = Some(start());
    }
    if let Some(Some(fd)) = t.as_ref() {
        // A dead tracker (EPIPE; Rust programs ignore SIGPIPE) only means no
        // cleanup: never an error for the caller.
        let _ = rustix::io::write(fd, &line);
    }
}

/// Forks the tracker; the write end of its pipe, or `None` if it could not start.
fn start() -> Option<OwnedFd> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()?;
    // SAFETY: the child runs only `tracker_main` (system calls and a Vec of
    // names) and leaves with `_exit`; it never returns into the caller.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => tracker_main(read.as_raw_fd()),
        p if p > 0 => {
            drop(read);
            Some(write)
        }
        _ => None,
    }
}

/// The tracker process: collect names until end of file, then unlink them.
fn tracker_main(read: i32) -> ! {
    // SAFETY: signal dispositions and descriptor closing in a freshly forked
    // child that owns its whole fd table; `read` stays open.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        close_all_but(read);
    }
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut dirs: Vec<Vec<u8>> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a stack buffer from our own pipe.
        let n = unsafe { libc::read(read, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            break;
        }
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        pending.extend_from_slice(&buf[..n as usize]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let (op, name) = (line[0], &line[2.min(line.len() - 1)..line.len() - 1]);
            let list = match op {
                b'R' | b'U' => &mut names,
                b'D' | b'E' => &mut dirs,
                _ => continue,
            };
            if matches!(op, b'R' | b'D') {
                list.push(name.to_vec());
            } else if let Some(i) = list.iter().position(|n| n == name) {
                list.swap_remove(i);
            }
        }
    }
    for name in names {
        let mut path = Vec::with_capacity(name.len() + 2);
        path.push(b'/');
        path.extend_from_slice(&name);
        path.push(0);
        // SAFETY: `path` is NUL-terminated; shm_unlink of a name that is gone
        // (unlinked by another process) fails harmlessly.
        unsafe { libc::shm_unlink(path.as_ptr().cast()) };
    }
    for dir in dirs {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::path::Path::new(std::ffi::OsStr::from_bytes(&dir));
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    // SAFETY: leaving the forked child without running the parent's destructors.
    unsafe { libc::_exit(0) }
}

/// Closes every descriptor but `keep`.
///
/// # Safety
/// Only in a freshly forked child: descriptors other code owns are closed.
unsafe fn close_all_but(keep: i32) {
    // close_range(2) (Linux 5.9); a loop over /proc-free numbers otherwise.
    // SAFETY: plain system calls on descriptor numbers.
    unsafe {
        let max = libc::c_uint::MAX;
        let ok = (keep == 0 || libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32) == 0)
            && libc::syscall(libc::SYS_close_range, (keep + 1) as u32, max, 0u32) == 0;
        if !ok {
            let limit = libc::sysconf(libc::_SC_OPEN_MAX).clamp(1024, 1 << 20) as i32;
            for fd in (0..limit).filter(|&fd| fd != keep) {
                libc::close(fd);
            }
        }
    }
}
