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

mod common;
use common::{connection_rtt, fork_child, reap, socketpair_rtt};

fn socket_rtt(c: &mut Criterion) {
    let mut g = c.benchmark_group("socket_rtt");
    let (here, there) = Connection::pair().unwrap();
    connection_rtt(&mut g, "mproc", here, there);
    socketpair_rtt(&mut g);
    g.finish();
}

/// `socket_tput`: one 8 B message from a producer process to a consumer
/// process. The producer is told how many to send, then sends them back to
/// back; the time is taken until the last one is received.
fn socket_tput(c: &mut Criterion) {
    let mut g = c.benchmark_group("socket_tput");

    let (mut here, mut there) = Connection::pair().unwrap();
    let pid = fork_child(Some(here.as_raw_fd()), move || {
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
    let pid = fork_child(Some(here.as_raw_fd()), move || {
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
