//! `handoff_16mib`: a user's steady-state loop of hand-offs, in µs per round.
//!
//! - `mproc`: each round the sender makes a `ShmBox<[u8]>` of 16 MiB
//!   (`ShmBox::uncleared`), writes its first byte and puts it in a
//!   `Queue<ShmBox<[u8]>>`; the receiver takes it, reads that byte and drops
//!   the box. After the first round the segment is recycled: the sender's
//!   pool and the receiver's cache of mappings make the round map nothing.
//! - `queue-64b`: the same loop with a 64 B `Bytes` item made each round (all
//!   64 bytes written), the reference the target names (a hand-off should cost
//!   at most twice a small item).
//! - `queue-copy`: 16 MiB as a `Bytes` item, copied in and out of the queue:
//!   what the hand-off saves. Made once and bounced back between rounds (a
//!   new 16 MiB buffer per round would time a memset, not the queue).
//!
//! Timed end to end across two processes: from just before the sender makes
//! the item to just after the receiver has read its byte and dropped it
//! (`CLOCK_MONOTONIC`, one clock for both processes); the receiver answers
//! with that time, and the answer's trip is not counted. The sender waits for
//! the answer before the next round. CPython's row (`mp_bench.py`) hands a
//! `SharedMemory` of 16 MiB over by name through a `Queue` (made once; the
//! receiver attaches, reads one byte and closes it).
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

/// Benches `id`, the user loop: `make` builds an item and writes into it,
/// the parent puts it; a forked child takes it, reads one byte (`read`),
/// drops it, and answers with the time.
fn user_loop<T>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, make: fn(u8) -> T, read: fn(&T) -> u8)
where
    T: Serialize + DeserializeOwned,
{
    let there = Queue::<Option<T>>::new().unwrap();
    let back = Queue::<(u64, u8)>::new().unwrap();
    let pid = {
        let (there, back) = (there.clone(), back.clone());
        common::fork_child(None, move || {
            while let Ok(Some(item)) = there.get() {
                let byte = read(&item);
                drop(item);
                let t = monotonic_ns();
                if back.put((t, byte)).is_err() {
                    return;
                }
            }
        })
    };
    let mut round = 0u8;
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = 0;
            for _ in 0..iters {
                round = round.wrapping_add(1);
                let t0 = monotonic_ns();
                there.put(Some(make(round))).unwrap();
                let (t1, byte) = back.get().unwrap();
                assert_eq!(byte, round, "the receiver read the byte written this round");
                total += t1.saturating_sub(t0);
            }
            Duration::from_nanos(total)
        })
    });
    there.put(None).unwrap();
    common::reap(pid);
}

/// Benches `id`: `item` goes to a forked child and comes back, again and
/// again; `read` reads one byte of it there. Only the way there is timed.
fn bounce<T>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, item: T, read: fn(&T) -> u8)
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
    user_loop(
        &mut g,
        "mproc",
        |v| {
            let mut b = ShmBox::<[u8]>::uncleared(SIZE).unwrap();
            b[0] = v;
            b
        },
        |b| b[0],
    );
    user_loop(&mut g, "queue-64b", |v| Bytes::from(vec![v; 64]), |b| b[0]);
    bounce(&mut g, "queue-copy", Bytes::from(vec![7u8; SIZE]), |b| b[SIZE - 1]);
    g.finish();
}

criterion_group!(benches, handoff_16mib);
criterion_main!(benches);
