//! `handoff_16mib`: the time to hand a 16 MiB buffer to another process and
//! read one byte of it there, in µs.
//!
//! - `mproc`: a `ShmBox<[u8]>` of 16 MiB (filled once) put in a
//!   `Queue<ShmBox<[u8]>>`; the receiver maps it by name, claims it and reads
//!   its last byte.
//! - `queue-64b`: the same with a 64 B `Bytes` item in a default queue, the
//!   reference the target names (the hand-off should cost at most twice a
//!   small item).
//! - `queue-copy`: the same 16 MiB as a `Bytes` item, copied in and out of the
//!   queue: what the hand-off saves.
//!
//! A forked child takes each item, reads one byte, takes the time
//! (`CLOCK_MONOTONIC`, one clock for both processes) and puts the item back
//! with that time; the figure is the mean of (that time − the time just
//! before the put). The return trip is not counted, and the buffer is made and
//! filled once, outside the timing. CPython's row (`mp_bench.py`) hands a
//! `SharedMemory` of 16 MiB over by name through a `Queue` the same way.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use mproc_ipc::{Bytes, Queue};
use mproc_shm::ShmBox;
use mproc_testkit::monotonic_ns;
use serde::de::DeserializeOwned;
use serde::Serialize;

mod common;

const SIZE: usize = 16 << 20;

/// Benches `id`: `item` goes to a forked child and comes back, again and
/// again; `read` reads one byte of it there.
fn one_way<T>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, item: T, read: fn(&T) -> u8)
where
    T: Serialize + DeserializeOwned,
{
    let there = Queue::<Option<T>>::new().unwrap();
    let back = Queue::<(u64, T)>::new().unwrap();
    let pid = {
        let (there, back) = (there.clone(), back.clone());
        common::fork_child(None, move || {
            while let Ok(Some(item)) = there.get() {
                black_box(read(&item));
                let t = monotonic_ns();
                if back.put((t, item)).is_err() {
                    return;
                }
            }
        })
    };
    let mut item = Some(item);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = 0;
            for _ in 0..iters {
                let t0 = monotonic_ns();
                there.put(item.take()).unwrap();
                let (t1, it) = back.get().unwrap();
                total += t1.saturating_sub(t0);
                item = Some(it);
            }
            Duration::from_nanos(total)
        })
    });
    there.put(None).unwrap();
    common::reap(pid);
}

fn handoff_16mib(c: &mut Criterion) {
    let mut g = c.benchmark_group("handoff_16mib");
    let mut b = ShmBox::<[u8]>::zeroed(SIZE).unwrap();
    b.fill(7);
    one_way(&mut g, "mproc", b, |b| b[SIZE - 1]);
    one_way(&mut g, "queue-64b", Bytes::from(vec![7u8; 64]), |b| b[63]);
    one_way(&mut g, "queue-copy", Bytes::from(vec![7u8; SIZE]), |b| b[SIZE - 1]);
    g.finish();
}

criterion_group!(benches, handoff_16mib);
criterion_main!(benches);
