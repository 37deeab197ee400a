//! `queue_tput_async`: 8 B items from a producer process to a consumer that
//! awaits them with `Queue::get_async` on a current-thread tokio runtime
//! (`mproc`), beside the same consumer calling the blocking `get`
//! (`mproc-blocking`) — the target is half the blocking throughput. The
//! producer is a forked child told over a command queue how many items to put
//! (`common/worker.rs`).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use mproc_ipc::Queue;

mod common;
use common::worker::Worker;

fn queue_tput_async(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_tput_async");
    let data = Queue::<u64>::new().unwrap();
    let producer = {
        let data = data.clone();
        Worker::producer(move |i| data.put(i).is_ok())
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                producer.ask(iters);
                for _ in 0..iters {
                    black_box(data.get_async().await.unwrap());
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("mproc-blocking", |b| {
        b.iter_custom(|iters| {
            producer.time(iters, || {
                black_box(data.get().unwrap());
            })
        })
    });
    drop(producer);
    g.finish();
}

criterion_group!(benches, queue_tput_async);
criterion_main!(benches);
