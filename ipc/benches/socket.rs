//! `socket_rtt`: one 64 B round trip between two processes over a socket-backed
//! `Connection` pair (`mproc`) against a raw `socketpair` with no framing
//! (`socketpair`). The echo peer is a forked child.
//!
//! `socket_tput`: one 8 B message, producer process → consumer process, where
//! the read buffer lets one `read(2)` deliver many messages.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mproc_ipc::Connection;

const MSG: usize = 64;

/// Forks a child that runs `echo` and `_exit`s; closes `close_in_child` there.
fn fork_echo(close_in_child: i32, echo: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the child only echoes on a socket and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: async-signal-safe calls in the child; the fd is ours to close.
        unsafe {
            libc::alarm(300);
            libc::close(close_in_child);
        }
        echo();
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    pid
}

fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: our own child, which exits once its socket reports EOF.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

fn socket_rtt(c: &mut Criterion) {
    let mut g = c.benchmark_group("socket_rtt");

    let (mut here, mut there) = Connection::pair().unwrap();
    let pid = fork_echo(here.as_raw_fd(), move || {
        while let Ok(m) = there.recv_bytes() {
            if there.send_bytes(&m).is_err() {
                break;
            }
        }
    });
    g.bench_function("mproc", |b| {
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

    let (mut here, mut there) = UnixStream::pair().unwrap();
    let pid = fork_echo(here.as_raw_fd(), move || {
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
    g.finish();
}

/// `socket_tput`: one 8 B message from a producer process to a consumer
/// process. The producer is told how many to send, then sends them back to
/// back; the time is taken until the last one is received.
fn socket_tput(c: &mut Criterion) {
    let mut g = c.benchmark_group("socket_tput");

    let (mut here, mut there) = Connection::pair().unwrap();
    let pid = fork_echo(here.as_raw_fd(), move || {
        while let Ok(n) = there.recv::<u64>() {
            for i in 0..n {
                if there.send_bytes(&i.to_le_bytes()).is_err() {
                    return;
                }
            }
        }
    });
    g.bench_function("mproc", |b| {
        let mut buf = [0u8; 8];
        b.iter_custom(|iters| {
            let t = Instant::now();
            here.send(&iters).unwrap();
            for _ in 0..iters {
                here.recv_bytes_into(&mut buf).unwrap();
            }
            t.elapsed()
        })
    });
    drop(here);
    reap(pid);

    let (mut here, mut there) = UnixStream::pair().unwrap();
    let pid = fork_echo(here.as_raw_fd(), move || {
        let mut n = [0u8; 8];
        while there.read_exact(&mut n).is_ok() {
            for i in 0..u64::from_le_bytes(n) {
                if there.write_all(&i.to_le_bytes()).is_err() {
                    return;
                }
            }
        }
    });
    g.bench_function("socketpair", |b| {
        let mut buf = [0u8; 8];
        b.iter_custom(|iters| {
            let t = Instant::now();
            here.write_all(&iters.to_le_bytes()).unwrap();
            for _ in 0..iters {
                here.read_exact(&mut buf).unwrap();
            }
            t.elapsed()
        })
    });
    drop(here);
    reap(pid);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = socket_rtt, socket_tput
}
criterion_main!(benches);
