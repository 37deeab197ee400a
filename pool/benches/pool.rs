//! Pool throughput: `pool_map` (one item of `Pool(2).map(identity)`) and
//! `pool_apply_async` (one `apply_async` + `get`, many submitted then all read);
//! and `pool_start`: a `Pool(2)` built, one task run, closed and joined, with
//! fork workers and with spawn workers (an exec of this bench binary each).
//!
//! One criterion iteration is one item / one task: each measurement runs whole
//! maps of `MAP_ITEMS` items (or batches of `APPLY_BATCH` tasks) and scales the
//! time to the iteration count criterion asked for.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mproc_pool::{Pool, StartMethod};
use rayon::prelude::*;

const MAP_ITEMS: u64 = 100_000;
const APPLY_BATCH: u64 = 10_000;

fn identity(x: u64) -> u64 {
    x
}

/// Runs `batch`-sized rounds until `iters` items are covered; the time scaled to
/// exactly `iters` items.
fn per_item(iters: u64, batch: u64, mut round: impl FnMut(u64)) -> Duration {
    let rounds = iters.div_ceil(batch).max(1);
    let start = Instant::now();
    for _ in 0..rounds {
        round(batch);
    }
    start.elapsed().mul_f64(iters as f64 / (rounds * batch) as f64)
}

fn pool_map(c: &mut Criterion) {
    let pool = Pool::new(2).expect("pool");
    let mut g = c.benchmark_group("pool_map");
    g.sample_size(10);
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            per_item(iters, MAP_ITEMS, |n| {
                let out = pool.map(identity, 0..n).expect("map");
                assert_eq!(out.len() as u64, n);
            })
        })
    });
    g.bench_function("rayon", |b| {
        b.iter_custom(|iters| {
            per_item(iters, MAP_ITEMS, |n| {
                let out: Vec<u64> = (0..n).into_par_iter().map(identity).collect();
                assert_eq!(out.len() as u64, n);
            })
        })
    });
    g.finish();
}

fn pool_apply_async(c: &mut Criterion) {
    let pool = Pool::new(2).expect("pool");
    let mut g = c.benchmark_group("pool_apply_async");
    g.sample_size(10);
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            per_item(iters, APPLY_BATCH.min(iters), |n| {
                let rs: Vec<_> = (0..n).map(|x| pool.apply_async(identity, x).expect("submit")).collect();
                for (x, r) in (0..n).zip(rs) {
                    assert_eq!(r.get().expect("get"), x);
                }
            })
        })
    });
    g.finish();
}

fn pool_start(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool_start");
    g.sample_size(10);
    for (name, method) in [("fork", StartMethod::Fork), ("spawn", StartMethod::Spawn)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let pool = Pool::builder().processes(2).start_method(method).build().expect("pool");
                assert_eq!(pool.apply(identity, 7).expect("apply"), 7);
                pool.close();
                pool.join().expect("join");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pool_map, pool_apply_async, pool_start);
criterion_main!(benches);
