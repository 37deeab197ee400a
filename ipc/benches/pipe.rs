//! `pipe_rtt`: one 64 B round trip between two processes (the echo peer is a
//! forked child), Python's `Pipe()` ping-pong:
//!
//! - `mproc`: [`mproc_ipc::pipe`], shared-memory rings with futex wake-ups;
//! - `ipc-channel`: a pair of `ipc_channel::ipc::bytes_channel`s;
//! - `socketpair`: a raw Unix stream pair, no framing;
//! - `limit-pingpong`: the physical limit, a counter in a shared page that the
//!   two processes bump in turn (one cache-line transfer each way).
//!
//! `pipe_rtt_oversubscribed`: the same round trip with a CPU hog (a process
//! spinning at the same priority) on every core, so that the two ends compete
//! with more runnable threads than CPUs: `mproc` beside the `socketpair`
//! round trip, whose ends sleep in the kernel while they wait.
#![allow(missing_docs)] // the criterion group macro generates an undocumented fn

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

mod common;
use common::{connection_rtt, fork_child, reap, socketpair_rtt, MSG};

/// A counter at the start of a `MAP_SHARED | MAP_ANONYMOUS` page, inherited by
/// forked children. The page is never unmapped.
fn shared_word() -> &'static AtomicU64 {
    // SAFETY: a fresh anonymous shared mapping; nothing aliases it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap failed");
    // SAFETY: the page is zeroed (a valid AtomicU64), page-aligned, and never
    // unmapped, so the reference is valid for the rest of the process.
    unsafe { &*(p as *const AtomicU64) }
}

fn pipe_rtt(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe_rtt");

    // mproc: the ring pipe.
    let (here, there) = mproc_ipc::pipe(true).unwrap();
    connection_rtt(&mut g, "mproc", here, there);

    // ipc-channel: one bytes channel each way; an empty message ends the echo
    // (the child inherits the parent's ends, so closing them would not).
    let (to_child, child_rx) = ipc_channel::ipc::bytes_channel().unwrap();
    let (child_tx, from_child) = ipc_channel::ipc::bytes_channel().unwrap();
    let pid = fork_child(None, move || {
        while let Ok(m) = child_rx.recv() {
            if m.is_empty() || child_tx.send(&m).is_err() {
                break;
            }
        }
    });
    g.bench_function("ipc-channel", |b| {
        let msg = [7u8; MSG];
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                to_child.send(&msg).unwrap();
                let m = from_child.recv().unwrap();
                debug_assert_eq!(m.len(), MSG);
            }
            t.elapsed()
        })
    });
    to_child.send(&[]).unwrap();
    reap(pid);

    // socketpair: raw bytes, no framing.
    socketpair_rtt(&mut g);

    // limit-pingpong: the parent writes odd values, the child answers with the
    // next even one; u64::MAX ends it.
    let word = shared_word();
    let pid = fork_child(None, move || {
        let mut spins = 0u32;
        loop {
            let v = word.load(Ordering::Acquire);
            if v == u64::MAX {
                break;
            }
            if v % 2 == 1 {
                word.store(v + 1, Ordering::Release);
            } else {
                spins = spins.wrapping_add(1);
                if spins % 4096 == 0 {
                    std::thread::yield_now();
                }
                std::hint::spin_loop();
            }
        }
    });
    let mut next = 1u64;
    g.bench_function("limit-pingpong", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                word.store(next, Ordering::Release);
                let mut spins = 0u32;
                while word.load(Ordering::Acquire) != next + 1 {
                    spins = spins.wrapping_add(1);
                    if spins % 4096 == 0 {
                        // Only matters on an overloaded machine: let the peer run.
                        std::thread::yield_now();
                    }
                    std::hint::spin_loop();
                }
                next += 2;
            }
            t.elapsed()
        })
    });
    word.store(u64::MAX, Ordering::Release);
    reap(pid);
    g.finish();
}

/// Forks one CPU hog per core: children that spin until killed.
fn start_hogs() -> Vec<libc::pid_t> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (0..cores)
        .map(|_| {
            fork_child(None, || {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect()
}

/// Kills and reaps the hogs.
fn stop_hogs(hogs: Vec<libc::pid_t>) {
    for pid in hogs {
        // SAFETY: `pid` is our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
    }
}

fn pipe_rtt_oversubscribed(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe_rtt_oversubscribed");
    let hogs = start_hogs();
    let (here, there) = mproc_ipc::pipe(true).unwrap();
    connection_rtt(&mut g, "mproc", here, there);
    socketpair_rtt(&mut g);
    stop_hogs(hogs);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = pipe_rtt, pipe_rtt_oversubscribed
}
criterion_main!(benches);
