//! `mpi_pool_map`: one item of `map(identity)` over 100,000-item maps, on the MPI pool
//! with 2 ranks on this machine (`mpiexec -n 2`: rank 0 and one worker), beside the local
//! `Pool(2)`. Two ranks, not three: MPICH's ranks poll while they wait, so a third rank on
//! this 2-core machine takes a core from the worker (measured: 0.4 µs per item with
//! `-n 3`, 0.03 µs with `-n 2`).
//!
//! The MPI row runs this very binary under `mpiexec`: started with `--mpi-rank-job N`, it
//! is an MPI program whose rank 0 times maps covering N items and prints the time; the
//! MPI start-up is outside the figure, as the pool start is for the local pool.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use mproc_pool::Pool;

const MAP_ITEMS: u64 = 100_000;
const JOB_FLAG: &str = "--mpi-rank-job";

fn identity(x: u64) -> u64 {
    x
}

/// Runs maps of `MAP_ITEMS` until `iters` items are covered; the time scaled to `iters`.
fn per_item(iters: u64, mut round: impl FnMut(u64)) -> Duration {
    let rounds = iters.div_ceil(MAP_ITEMS).max(1);
    // Workers up and warm, buffers grown to a full map's size: the local pool is warm
    // from the samples before, and each MPI sample is a fresh `mpiexec` job.
    round(MAP_ITEMS);
    let start = Instant::now();
    for _ in 0..rounds {
        round(MAP_ITEMS);
    }
    start.elapsed().mul_f64(iters as f64 / (rounds * MAP_ITEMS) as f64)
}

/// The MPI job: rank 0 prints `elapsed_ns <n>` for `iters` items.
fn rank_job(iters: u64) {
    let out = mproc_mpi::main(|pool| {
        per_item(iters, |n| {
            let out = pool.map(identity, 0..n).expect("map");
            assert_eq!(out.len() as u64, n);
        })
    })
    .expect("MPI job");
    if let Some(d) = out {
        println!("elapsed_ns {}", d.as_nanos());
    }
}

fn mpi_pool_map(c: &mut Criterion) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut g = c.benchmark_group("mpi_pool_map");
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            let out = Command::new("mpiexec")
                .args(["-n", "2"])
                .arg(&exe)
                .args([JOB_FLAG, &iters.to_string()])
                .output()
                .expect("run mpiexec");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "mpiexec: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let ns: u64 = stdout
                .lines()
                .find_map(|l| l.strip_prefix("elapsed_ns "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("no elapsed_ns in the job's output: {stdout}"));
            Duration::from_nanos(ns)
        })
    });
    let pool = Pool::new(2).expect("pool");
    g.bench_function("local-pool", |b| {
        b.iter_custom(|iters| {
            per_item(iters, |n| {
                let out = pool.map(identity, 0..n).expect("map");
                assert_eq!(out.len() as u64, n);
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = mpi_pool_map
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == JOB_FLAG) {
        let iters = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(MAP_ITEMS);
        rank_job(iters);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
