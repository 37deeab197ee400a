//! The OS layer across real processes: the pid cache across fork, and the
//! liveness of a live, a zombie and a reaped child.

use std::time::Duration;

use mproc_shm::sys;
use mproc_testkit::{fork, kill_and_reap, wait_child, Exit};

#[test]
fn the_pid_cache_is_refreshed_in_a_forked_child() {
    let parent = sys::pid();
    assert_eq!(parent, std::process::id());
    // Cached now: the child must not inherit the parent's value.
    let child = fork(10, || {
        // SAFETY: getpid has no preconditions.
        let real = unsafe { libc::getpid() } as u32;
        // The child's only thread is its main thread: its tid is its pid.
        i32::from(sys::pid() != real || sys::pid() == parent || sys::tid() != real)
    });
    assert_eq!(wait_child(child, Duration::from_secs(10)), Exit::Code(0));
    assert_eq!(sys::pid(), parent, "the parent's cache is untouched");
}

#[test]
fn a_live_child_is_alive_a_zombie_and_a_reaped_child_are_not() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    // The child blocks until the parent closes its write end (or the watchdog fires).
    let w_fd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let child = fork(10, || {
        // SAFETY: the child's inherited copy of the write end; nothing else in
        // the child uses that number.
        unsafe { libc::close(w_fd) };
        let mut b = [0u8; 1];
        let _ = rustix::io::read(&r, &mut b);
        0
    });
    drop(r);
    let pid = child as u32;
    assert!(sys::alive(pid), "a running child");
    drop(w);
    // Wait for its exit without reaping it: a zombie.
    let id = rustix::process::Pid::from_raw(child).unwrap();
    let st = rustix::process::waitid(
        rustix::process::WaitId::Pid(id),
        rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT,
    );
    if let Err(e) = st {
        kill_and_reap(child);
        panic!("waitid failed: {e}");
    }
    assert!(!sys::alive(pid), "a zombie is not alive");
    assert_eq!(wait_child(child, Duration::from_secs(10)), Exit::Code(0));
    assert!(!sys::alive(pid), "a reaped child is gone");
}

#[test]
fn no_process_is_not_alive_and_this_one_is() {
    assert!(sys::alive(sys::pid()));
    assert!(!sys::alive(0));
    assert!(!sys::alive(u32::MAX));
}
