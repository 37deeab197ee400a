//! `payload_*`: byte and numeric items from a producer process to a consumer
//! process through a `Queue` (`maxsize` 64, the producer `put_ref`s one item
//! it keeps, as CPython's benchmark puts one object again and again), in MB/s
//! of payload, against the cross-process copy limit (`limit-xcopy`: two
//! processes, an SPSC ring in shared memory, one `memcpy` in and one out;
//! `XcopyStream` in `common/xcopy.rs`).
//!
//! The limit is `XcopyStream`, the same for every group that moves items of
//! one size (`queue_bytes_tput`, `queue_large_*`, `queue_curve`): its producer
//! is forked once per row and asked for each sample's items, its consumer
//! allocates each item's buffer as `get` does. It runs right after the `mproc`
//! row, so that the two see the machine in the same state.
//!
//! - `payload_bytes_{4k,64k,1m}`: `mproc` is `Queue<Bytes>`; `bytes-get-with`
//!   the same queue read in place with `Queue::get_with`; `vec-u8` is
//!   `Queue<Vec<u8>>`, which serde encodes byte by byte (shown as it is).
//! - `payload_f64_{4k,64k,1m}`: `mproc` is `Queue<PodVec<f64>>`.
//!
//! CPython's rows (`xtask/python/mp_bench.py`) are its `Queue` of `bytes` and
//! of `array.array('d')` of the same sizes.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use mproc_ipc::{Bytes, PodVec, Queue};
use serde::de::DeserializeOwned;
use serde::Serialize;

mod common;
use common::worker::Worker;
use common::xcopy::XcopyStream;

/// The queue's bound, as in CPython's run.
const MAXSIZE: usize = 64;

const SIZES: [(&str, usize); 3] = [("4k", 4 << 10), ("64k", 64 << 10), ("1m", 1 << 20)];

/// Benches `id`: a forked producer `put_ref`s `item` as often as the parent
/// asks; the parent gets each, owning it.
fn queue_case<T>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, item: T)
where
    T: Serialize + DeserializeOwned,
{
    let data: Queue<T> = Queue::with_maxsize(MAXSIZE).unwrap();
    let producer = Worker::putting(&data, item);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            producer.time(iters, || {
                black_box(data.get().unwrap());
            })
        })
    });
}

/// Benches `bytes-get-with`: as `queue_case` with `Bytes`, but the parent
/// reads each item in place with `Queue::get_with` (summing one byte of
/// each 4 KiB page, so that the bytes are touched) instead of copying it out.
fn bytes_get_with_case(g: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    let data = Queue::<Bytes>::with_maxsize(MAXSIZE).unwrap();
    let producer = Worker::putting(&data, Bytes::from(vec![7u8; size]));
    g.bench_function("bytes-get-with", |b| {
        b.iter_custom(|iters| {
            producer.time(iters, || {
                black_box(data.get_with(|b| b.iter().step_by(4096).map(|&x| u64::from(x)).sum::<u64>()).unwrap());
            })
        })
    });
}

/// Benches `limit-xcopy`: `size`-byte items through an [`XcopyStream`].
fn limit_case(g: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    let mut stream = XcopyStream::new(size);
    g.bench_function("limit-xcopy", |b| b.iter_custom(|iters| stream.time(iters)));
}

fn payload(c: &mut Criterion) {
    for (name, size) in SIZES {
        let mut g = c.benchmark_group(format!("payload_bytes_{name}"));
        queue_case(&mut g, "mproc", Bytes::from(vec![7u8; size]));
        limit_case(&mut g, size);
        bytes_get_with_case(&mut g, size);
        queue_case(&mut g, "vec-u8", vec![7u8; size]);
        g.finish();

        let mut g = c.benchmark_group(format!("payload_f64_{name}"));
        queue_case(&mut g, "mproc", PodVec::from(vec![0.5f64; size / 8]));
        limit_case(&mut g, size);
        g.finish();
    }
}

criterion_group!(benches, payload);
criterion_main!(benches);
