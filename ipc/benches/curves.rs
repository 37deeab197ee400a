//! The cost curves: how a cost grows with the message size and with the number
//! of processes. Each point is a criterion benchmark `<system>/<x>` of the
//! curve's group; the report draws them as log-log lines.
//!
//! - `pipe_rtt_curve/{size}`: a round trip of `size` bytes to a forked echo
//!   child: `mproc` ([`mproc_ipc::pipe`]), `ipc-channel` (a bytes channel each
//!   way) and `limit-xcopy` (the message copied into shared memory and out
//!   again, each way, by two processes taking turns; `common/xcopy.rs`).
//! - `queue_curve/{size}`: `Bytes` items of `size` bytes from a forked producer
//!   to this process through a `Queue` of `maxsize` `min(64, 64 MiB / size)`
//!   (so at most 64 MiB is in flight), beside `ipc-channel`'s bytes channel and
//!   the cross-process copy limit `limit-xcopy`.
//! - `queue_procs/{n}`: 8 B items from `n` producer processes to `n` consumer
//!   processes through one `Queue<u64>`; the clock runs from the commands to
//!   the last consumer's report. With 2 cores, 4 → 4 (eight busy processes) is
//!   oversubscribed.
//!
//! The sizes are 64 B, 1 KiB, 4 KiB, 64 KiB, 1 MiB and 16 MiB.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;
use std::time::Instant;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode};
use ipc_channel::ipc;
use mproc_ipc::{Bytes, Queue};

mod common;
use common::worker::Worker;
use common::xcopy::{xcopy_rtt, XcopyStream};
use common::{fork_child, fork_echo, reap, time_rtt};

const SIZES: [usize; 6] = [64, 1 << 10, 4 << 10, 64 << 10, 1 << 20, 16 << 20];

/// Samples of equal iteration counts from 1 MiB up: a 16 MiB item takes tens of
/// milliseconds, and criterion's default (linear) sampling would run 55 of them
/// at least, where flat sampling needs one per sample.
fn sampling_for(g: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    g.sampling_mode(if size >= 1 << 20 { SamplingMode::Flat } else { SamplingMode::Auto });
}

/// The process counts of `queue_procs`: n producers and n consumers.
const PROCS: [usize; 3] = [1, 2, 4];

fn pipe_rtt_curve(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe_rtt_curve");
    for size in SIZES {
        sampling_for(&mut g, size);
        let msg = vec![7u8; size];
        let mut buf = vec![0u8; size];

        let (mut here, there) = mproc_ipc::pipe(true).unwrap();
        let pid = fork_echo(&here, there, size);
        g.bench_function(BenchmarkId::new("mproc", size), |b| {
            b.iter_custom(|iters| time_rtt(&mut here, &msg, &mut buf, iters))
        });
        drop(here);
        reap(pid);

        // One bytes channel each way; an empty message ends the echo (the
        // child inherits the parent's ends, so closing them would not).
        let (to_child, child_rx) = ipc::bytes_channel().unwrap();
        let (child_tx, from_child) = ipc::bytes_channel().unwrap();
        let pid = fork_child(None, move || {
            while let Ok(m) = child_rx.recv() {
                if m.is_empty() || child_tx.send(&m).is_err() {
                    break;
                }
            }
        });
        g.bench_function(BenchmarkId::new("ipc-channel", size), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    to_child.send(&msg).unwrap();
                    black_box(from_child.recv().unwrap());
                }
                t.elapsed()
            })
        });
        to_child.send(&[]).unwrap();
        reap(pid);

        g.bench_function(BenchmarkId::new("limit-xcopy", size), |b| b.iter_custom(|iters| xcopy_rtt(size, iters)));
    }
    g.finish();
}

fn queue_curve(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_curve");
    for size in SIZES {
        sampling_for(&mut g, size);
        let maxsize = ((64 << 20) / size).clamp(1, 64);
        let data = Queue::<Bytes>::with_maxsize(maxsize).unwrap();
        let producer = Worker::putting(&data, Bytes::from(vec![7u8; size]));
        g.bench_function(BenchmarkId::new("mproc", size), |b| {
            b.iter_custom(|iters| {
                producer.time(iters, || {
                    black_box(data.get().unwrap());
                })
            })
        });
        drop(producer);

        let (data_tx, data_rx) = ipc::bytes_channel().unwrap();
        let kept = vec![7u8; size];
        let producer = Worker::producer(move |_| data_tx.send(&kept).is_ok());
        g.bench_function(BenchmarkId::new("ipc-channel", size), |b| {
            b.iter_custom(|iters| {
                producer.time(iters, || {
                    black_box(data_rx.recv().unwrap());
                })
            })
        });
        drop(producer);

        let mut limit = XcopyStream::new(size);
        g.bench_function(BenchmarkId::new("limit-xcopy", size), |b| b.iter_custom(|iters| limit.time(iters)));
    }
    g.finish();
}

/// Worker `k`'s share of `iters` items split over `n` workers.
fn share(iters: u64, n: usize, k: usize) -> u64 {
    iters / n as u64 + u64::from((k as u64) < iters % n as u64)
}

fn queue_procs(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_procs");
    for n in PROCS {
        let data = Queue::<u64>::new().unwrap();
        let done = Queue::<u64>::new().unwrap();
        let producers: Vec<Worker> = (0..n)
            .map(|_| {
                let data = data.clone();
                Worker::producer(move |i| data.put(i).is_ok())
            })
            .collect();
        let consumers: Vec<Worker> = (0..n)
            .map(|_| {
                let (data, done) = (data.clone(), done.clone());
                Worker::fork(move |k| (0..k).all(|_| data.get().is_ok()) && done.put(k).is_ok())
            })
            .collect();
        g.bench_function(BenchmarkId::new("mproc", n), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                let mut reports = 0;
                for k in 0..n {
                    // A share of 0 would end the worker: it sits this sample out.
                    if share(iters, n, k) > 0 {
                        consumers[k].ask(share(iters, n, k));
                        producers[k].ask(share(iters, n, k));
                        reports += 1;
                    }
                }
                for _ in 0..reports {
                    black_box(done.get().unwrap());
                }
                t.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pipe_rtt_curve, queue_curve, queue_procs);
criterion_main!(benches);
