//! What the ipc benches share: a forked peer, its reaping, and the 64 B round trip
//! over a `Connection` (socket or ring) and over a raw socketpair.
#![allow(dead_code)] // each bench uses part of it

pub mod xcopy;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use mproc_ipc::Connection;

/// The round-trip message size.
pub const MSG: usize = 64;

/// Forks a child that runs `f` and `_exit`s; closes `close_in_child` there first (the
/// parent's end, which the child inherited), when given.
pub fn fork_child(close_in_child: Option<RawFd>, f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the bench is single-threaded here; the child only runs `f` (channel
    // work) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: async-signal-safe calls in the child: a watchdog for a lost parent,
        // and closing an fd that is ours.
        unsafe {
            libc::alarm(600);
            if let Some(fd) = close_in_child {
                libc::close(fd);
            }
        }
        f();
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    pid
}

/// Waits for a child of ours, which exits once told to (or on end of file).
pub fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: our own unreaped child, and a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Benches `id`: a 64 B `send_bytes` + `recv_bytes_into` round trip to a forked child
/// that echoes on `there`.
pub fn connection_rtt(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut here: Connection, mut there: Connection) {
    let pid = fork_child(Some(here.as_raw_fd()), move || {
        let mut buf = [0u8; MSG];
        while let Ok(n) = there.recv_bytes_into(&mut buf) {
            if there.send_bytes(&buf[..n]).is_err() {
                break;
            }
        }
    });
    g.bench_function(id, |b| {
        let msg = [7u8; MSG];
        let mut buf = [0u8; MSG];
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                here.send_bytes(&msg).unwrap();
                here.recv_bytes_into(&mut buf).unwrap();
            }
            t.elapsed()
        })
    });
    drop(here);
    reap(pid);
}

/// Benches `socketpair`: the same round trip over a raw Unix stream pair, no framing.
pub fn socketpair_rtt(g: &mut BenchmarkGroup<'_, WallTime>) {
    let (mut here, mut there) = UnixStream::pair().unwrap();
    let pid = fork_child(Some(here.as_raw_fd()), move || {
        let mut buf = [0u8; MSG];
        while there.read_exact(&mut buf).is_ok() {
            if there.write_all(&buf).is_err() {
                break;
            }
        }
    });
    g.bench_function("socketpair", |b| {
        let msg = [7u8; MSG];
        let mut buf = [0u8; MSG];
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                here.write_all(&msg).unwrap();
                here.read_exact(&mut buf).unwrap();
            }
            t.elapsed()
        })
    });
    drop(here);
    reap(pid);
}
