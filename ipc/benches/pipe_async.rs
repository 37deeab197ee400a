//! `pipe_rtt_async`: one 64 B round trip between two processes, awaited on a
//! current-thread tokio runtime (feature `tokio`); the echo peer is a forked
//! child using the blocking calls.
//!
//! - `mproc`: [`mproc_ipc::pipe`] (shared-memory rings), `send_bytes_async` +
//!   `recv_bytes_async`;
//! - `mproc-socketpair`: the same calls on a socketpair [`Connection`];
//! - `tokio-unixstream`: a `tokio::net::UnixStream`, `write_all` + `read_exact`
//!   of the raw 64 bytes (no framing) — the reference the async pipe must match.
#![allow(missing_docs)] // the criterion group macro generates an undocumented fn

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use mproc_ipc::Connection;

mod common;
use common::{fork_child, reap, MSG};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn connection_rtt_async(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    mut here: Connection,
    mut there: Connection,
) {
    let pid = fork_child(Some(here.as_raw_fd()), move || {
        let mut buf = [0u8; MSG];
        while let Ok(n) = there.recv_bytes_into(&mut buf) {
            if there.send_bytes(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let rt = runtime();
    c.bench_function(id, |b| {
        let msg = [7u8; MSG];
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    here.send_bytes_async(&msg).await.unwrap();
                    let got = here.recv_bytes_async().await.unwrap();
                    debug_assert_eq!(got.len(), MSG);
                }
                t.elapsed()
            })
        })
    });
    drop(here);
    reap(pid);
}

fn pipe_rtt_async(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe_rtt_async");

    let (here, there) = mproc_ipc::pipe(true).unwrap();
    connection_rtt_async(&mut g, "mproc", here, there);

    let (here, there) = Connection::pair().unwrap();
    connection_rtt_async(&mut g, "mproc-socketpair", here, there);

    // tokio's own Unix stream, raw bytes.
    let (here, mut there) = UnixStream::pair().unwrap();
    let pid = fork_child(Some(here.as_raw_fd()), move || {
        let mut buf = [0u8; MSG];
        while there.read_exact(&mut buf).is_ok() {
            if there.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let rt = runtime();
    here.set_nonblocking(true).unwrap();
    let mut here = rt.block_on(async { tokio::net::UnixStream::from_std(here).unwrap() });
    g.bench_function("tokio-unixstream", |b| {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let msg = [7u8; MSG];
        let mut buf = [0u8; MSG];
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    here.write_all(&msg).await.unwrap();
                    here.read_exact(&mut buf).await.unwrap();
                }
                t.elapsed()
            })
        })
    });
    drop(here);
    reap(pid);
    g.finish();
}

criterion_group!(benches, pipe_rtt_async);
criterion_main!(benches);
