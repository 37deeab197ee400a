//! `queue_tput`: 8 B items from a producer process to a consumer process, ns
//! per item: mproc's `Queue<u64>` (`mproc`), an `ipc-channel` channel
//! (`ipc-channel`), a raw Unix `socketpair` with one `write(2)` per item and a
//! buffered reader (`socketpair`), and, as the in-process reference,
//! `crossbeam-channel` between two threads (`crossbeam`).
//!
//! `queue_bytes_tput`: the same with 4 KiB items (`serde_bytes::ByteBuf`, which
//! postcard encodes as one length and a copy), against the cross-process copy
//! limit (`limit-xcopy`, below), with an in-process `memcpy` of 4 KiB into a
//! rotating destination the size of the queue's ring as a reference for scale
//! (`ref-memcpy`: no cross-process queue can reach it). As in
//! CPython's benchmark, which puts one `bytes` object again and again, the
//! producer sends one buffer it keeps: mproc with `put_ref`, `ipc-channel` with
//! its bytes channel, the socketpair with `write(2)`. The consumer owns each
//! item it receives (a fresh buffer per item, except the socketpair's reader).
//!
//! `queue_large_1m`, `queue_large_16m`: 1 MiB and 16 MiB items (`ByteBuf`)
//! through a default `Queue::new()` (a slot holds a reference, the item lives
//! in a block of the queue's memfd), through `ipc-channel`'s bytes channel, and
//! the cross-process copy limit (`limit-xcopy`, `XcopyStream` in
//! `common/xcopy.rs`, the same for every group that moves items of one size):
//! two processes, an SPSC ring in shared memory, `memcpy` in and `memcpy` out
//! into a buffer allocated per item, as `get` allocates.
//!
//! The producer is a forked child told over a command queue how many items to
//! send (`common/worker.rs`); the time runs from the command to the last item
//! received.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;
use std::io::{BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use ipc_channel::ipc;
use mproc_ipc::{Queue, QueueBuilder};
use serde_bytes::ByteBuf;

mod common;
use common::reap;
use common::worker::Worker;
use common::xcopy::XcopyStream;

const BIG: usize = 4096;
/// The 4 KiB queue's bound: a ring of about 1 MiB, as the SPSC ring bench uses.
const BIG_SLOTS: usize = 256;

/// mproc: a forked producer puts each item with `put(&data, i)` (false: stop).
fn mproc_case<T, F>(g: &mut BenchmarkGroup<'_, WallTime>, data: Queue<T>, put: F)
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: Fn(&Queue<T>, u64) -> bool,
{
    let producer = {
        let data = data.clone();
        Worker::producer(move |i| put(&data, i))
    };
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            producer.time(iters, || {
                black_box(data.get().unwrap());
            })
        })
    });
}

/// ipc-channel: a forked producer calls `send(i)` per item (false: stop), the
/// parent `recv()` per item.
fn ipc_channel_case(g: &mut BenchmarkGroup<'_, WallTime>, send: impl FnMut(u64) -> bool, mut recv: impl FnMut()) {
    let producer = Worker::producer(send);
    g.bench_function("ipc-channel", |b| b.iter_custom(|iters| producer.time(iters, &mut recv)));
}

/// A raw socketpair: the producer writes each item with its own `write(2)`
/// (as a queue's put must make it visible at once); the consumer reads through
/// a buffer.
fn socketpair_case(g: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    let (here, mut there) = UnixStream::pair().unwrap();
    let here_fd = here.as_raw_fd();
    let pid = common::fork_child(None, move || {
        // SAFETY: closing the parent's end, inherited by fork, in the child.
        unsafe { libc::close(here_fd) };
        let mut n = [0u8; 8];
        let item = vec![7u8; size];
        while there.read_exact(&mut n).is_ok() {
            for _ in 0..u64::from_le_bytes(n) {
                if there.write_all(&item).is_err() {
                    return;
                }
            }
        }
    });
    let mut writer = here.try_clone().unwrap();
    let mut reader = BufReader::with_capacity(64 << 10, here);
    g.bench_function("socketpair", |b| {
        let mut buf = vec![0u8; size];
        b.iter_custom(|iters| {
            let t = Instant::now();
            writer.write_all(&iters.to_le_bytes()).unwrap();
            for _ in 0..iters {
                reader.read_exact(&mut buf).unwrap();
                black_box(&buf);
            }
            t.elapsed()
        })
    });
    drop(writer);
    drop(reader);
    reap(pid);
}

fn queue_tput(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_tput");
    mproc_case(&mut g, Queue::<u64>::new().unwrap(), |q, i| q.put(i).is_ok());
    let (data_tx, data_rx) = ipc::channel::<u64>().unwrap();
    ipc_channel_case(
        &mut g,
        move |i| data_tx.send(i).is_ok(),
        move || {
            black_box(data_rx.recv().unwrap());
        },
    );
    socketpair_case(&mut g, 8);

    // The in-process reference: two threads.
    let (cmd_tx, cmd_rx) = crossbeam_channel::bounded::<u64>(4);
    let (data_tx, data_rx) = crossbeam_channel::bounded::<u64>(4096);
    let producer = std::thread::spawn(move || {
        while let Ok(n) = cmd_rx.recv() {
            for i in 0..n {
                data_tx.send(i).unwrap();
            }
        }
    });
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            cmd_tx.send(iters).unwrap();
            for _ in 0..iters {
                black_box(data_rx.recv().unwrap());
            }
            t.elapsed()
        })
    });
    drop(cmd_tx);
    producer.join().unwrap();
    g.finish();
}

/// `iters` copies of 4 KiB into a rotating destination of the ring's size.
fn memcpy(iters: u64, ring_bytes: usize) -> Duration {
    let src = vec![7u8; BIG];
    let mut dst = vec![0u8; ring_bytes.max(BIG)];
    let slots = dst.len() / BIG;
    let start = Instant::now();
    for i in 0..iters as usize {
        let at = (i % slots) * BIG;
        dst[at..at + BIG].copy_from_slice(black_box(&src));
    }
    black_box(&dst);
    start.elapsed()
}

fn queue_bytes_tput(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_bytes_tput");
    let item = ByteBuf::from(vec![7u8; BIG]);
    // 4 KiB plus postcard's length prefix.
    let q = QueueBuilder::new().maxsize(BIG_SLOTS).slot_bytes(BIG + 8).build::<ByteBuf>().unwrap();
    mproc_case(&mut g, q, move |q, _| q.put_ref(&item).is_ok());
    // Its bytes channel: one `send(&[u8])` of a kept buffer per item.
    let (data_tx, data_rx) = ipc::bytes_channel().unwrap();
    let kept = vec![7u8; BIG];
    ipc_channel_case(
        &mut g,
        move |_| data_tx.send(&kept).is_ok(),
        move || {
            black_box(data_rx.recv().unwrap());
        },
    );
    socketpair_case(&mut g, BIG);
    let mut limit = XcopyStream::new(BIG);
    g.bench_function("limit-xcopy", |b| b.iter_custom(|iters| limit.time(iters)));
    drop(limit);
    let ring_bytes = BIG_SLOTS * (BIG + 64);
    g.bench_function("ref-memcpy", |b| b.iter_custom(|iters| memcpy(iters, ring_bytes)));
    g.finish();
}

/// One `queue_large_*` group: items of `size` bytes, 1 producer → 1 consumer.
fn queue_large(c: &mut Criterion, id: &str, size: usize) {
    let mut g = c.benchmark_group(id);
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(size as u64));
    let item = ByteBuf::from(vec![7u8; size]);
    mproc_case(&mut g, Queue::<ByteBuf>::new().unwrap(), move |q, _| q.put_ref(&item).is_ok());
    let (data_tx, data_rx) = ipc::bytes_channel().unwrap();
    let kept = vec![7u8; size];
    ipc_channel_case(
        &mut g,
        move |_| data_tx.send(&kept).is_ok(),
        move || {
            black_box(data_rx.recv().unwrap());
        },
    );
    let mut limit = XcopyStream::new(size);
    g.bench_function("limit-xcopy", |b| b.iter_custom(|iters| limit.time(iters)));
    g.finish();
}

fn queue_large_1m(c: &mut Criterion) {
    queue_large(c, "queue_large_1m", 1 << 20);
}

fn queue_large_16m(c: &mut Criterion) {
    queue_large(c, "queue_large_16m", 16 << 20);
}

criterion_group!(benches, queue_tput, queue_bytes_tput, queue_large_1m, queue_large_16m);
criterion_main!(benches);
