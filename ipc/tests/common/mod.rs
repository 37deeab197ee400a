//! Helpers the ipc tests share: a listener with silent peers (the blocking
//! and async listener tests), and the child-process chores of the tests that
//! fork or spawn a partner.

#![allow(dead_code)]

use std::net::TcpStream;
use std::os::fd::RawFd;
use std::process::Child;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mproc_ipc::{Address, Listener};

/// A keyed TCP listener with `handshake_timeout`, and a thread connecting
/// `n` peers to it that never say anything (join it for their streams; it
/// finishes once the listener has taken enough of them off its backlog, since
/// past the kernel's backlog a connect waits for an accept).
pub fn listener_with_silent_peers(n: usize, handshake_timeout: Duration) -> (Listener, JoinHandle<Vec<TcpStream>>) {
    let mut l = Listener::bind(Address::loopback(0), Some(b"key")).unwrap();
    l.set_handshake_timeout(Some(handshake_timeout));
    let Address::Tcp(sa) = l.address().clone() else { unreachable!() };
    let silent = std::thread::spawn(move || (0..n).map(|_| TcpStream::connect(sa).unwrap()).collect::<Vec<_>>());
    (l, silent)
}

/// Closes `fd` in this (forked child) process: the parent's end of a
/// connection, which the child inherited and must not hold open (else the
/// parent's close would not reach the child as end of file).
pub fn close_fd(fd: RawFd) {
    // SAFETY: closing an fd number this child inherited and does not use; the
    // Connection owning it in the parent's image is never dropped here (the
    // child leaves with `_exit`).
    unsafe { libc::close(fd) };
}

/// Waits for a child made by `mproc_testkit::spawn_entry` to exit with
/// success; fails the test if it failed, or if it is still running after
/// `limit` (then it is killed and reaped first, so no process outlives the test).
pub fn expect_spawned_success(mut child: Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "child failed: {status}");
            return;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
