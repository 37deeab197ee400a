//! What the ipc benches share: a forked peer, its reaping, and the 64 B round trip
//! over a `Connection` (socket or ring) and over a raw socketpair; `worker` forks
//! the producers the throughput benches ask for items, `xcopy` measures the
//! cross-process copy limit.
#![allow(dead_code)] // each bench uses part of it

pub mod worker;
pub mod xcopy;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use mproc_ipc::Connection;

/// The round-trip message size.
pub const MSG: usize = 64;

/// Forks a child (with a 600 s watchdog for a lost parent) that runs `f` and
/// `_exit`s; closes `close_in_child` there first (the parent's end, which the
/// child inherited), when given. The bench is single-threaded here.
pub fn fork_child(close_in_child: Option<RawFd>, f: impl FnOnce()) -> libc::pid_t {
    mproc_testkit::fork(600, || {
        if let Some(fd) = close_in_child {
            // SAFETY: the fd is the parent's end, inherited: no object of this
            // child uses or closes it again.
            unsafe { libc::close(fd) };
        }
        f();
        0
    })
}

/// Waits for a child of ours, which exits once told to (or on end of file).
pub fn reap(pid: libc::pid_t) {
    mproc_testkit::wait(pid);
}

/// Benches `id`: a 64 B `send_bytes` + `recv_bytes_into` round trip to a forked child
/// that echoes on `there`.
pub fn connection_rtt(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut here: Connection, there: Connection) {
    let pid = fork_echo(&here, there, MSG);
    g.bench_function(id, |b| {
        let msg = [7u8; MSG];
        let mut buf = [0u8; MSG];
        b.iter_custom(|iters| time_rtt(&mut here, &msg, &mut buf, iters))
    });
    drop(here);
    reap(pid);
}

/// Forks a child that echoes each message (of at most `size` bytes) it receives on
/// `there`, until `here` (the parent's end) is dropped.
pub fn fork_echo(here: &Connection, mut there: Connection, size: usize) -> libc::pid_t {
    fork_child(Some(here.as_raw_fd()), move || {
        let mut buf = vec![0u8; size];
        while let Ok(n) = there.recv_bytes_into(&mut buf) {
            if there.send_bytes(&buf[..n]).is_err() {
                break;
            }
        }
    })
}

/// The time of `iters` round trips of `msg` from `here` to an echoing peer and back
/// into `buf`.
pub fn time_rtt(here: &mut Connection, msg: &[u8], buf: &mut [u8], iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        here.send_bytes(msg).unwrap();
        here.recv_bytes_into(buf).unwrap();
    }
    t.elapsed()
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
