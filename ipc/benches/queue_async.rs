//! `queue_tput_async`: 8 B items from a producer process to a consumer that
//! awaits them with `Queue::get_async` on a current-thread tokio runtime
//! (`mproc`), beside the same consumer calling the blocking `get`
//! (`mproc-blocking`) — the target is half the blocking throughput. The
//! producer is a forked child told over a command queue how many items to put.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use mproc_ipc::Queue;

mod common;
use common::reap;

fn queue_tput_async(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_tput_async");
    let data = Queue::<u64>::new().unwrap();
    let cmd = Queue::<u64>::with_maxsize(4).unwrap();
    let pid = {
        let (cmd, data) = (cmd.clone(), data.clone());
        common::fork_child(None, move || {
            while let Ok(n) = cmd.get() {
                if n == 0 {
                    return;
                }
                for i in 0..n {
                    if data.put(i).is_err() {
                        return;
                    }
                }
            }
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                cmd.put(iters).unwrap();
                for _ in 0..iters {
                    black_box(data.get_async().await.unwrap());
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("mproc-blocking", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            cmd.put(iters).unwrap();
            for _ in 0..iters {
                black_box(data.get().unwrap());
            }
            t.elapsed()
        })
    });
    cmd.put(0).unwrap();
    reap(pid);
    g.finish();
}

criterion_group!(benches, queue_tput_async);
criterion_main!(benches);
