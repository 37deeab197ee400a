//! Ring throughput and latency between two processes, with the physical limits
//! in the same groups: `memcpy` of the message size, and a raw cache-line
//! ping-pong between two processes.
//!
//! Groups `spsc_8`, `spsc_64`, `spsc_4k`, `mpmc_8`, `mpmc_64`, `mpmc_4k`: one
//! iteration is one message from a producer process to a consumer process
//! (function `mproc`; `mproc-peek` for SPSC read in place by `peek`), or one
//! `memcpy` of the same size (`limit-memcpy`).
//! Group `spsc_latency`: one iteration is one 64-byte one-way hop to a spinning
//! reader (it yields only after 256 idle spins) (`mproc`), or one hop of a cache line (`limit-pingpong`).
//!
//! Run: `cargo bench -p mproc-shm --bench rings -- --warm-up-time 0.5 --measurement-time 2`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mproc_shm::ring::{MpmcRing, SpscRing};
use mproc_shm::Segment;

/// The SPSC ring's capacity, and the rotating destination of the `memcpy` limit. 1 MiB
/// rather than 256 KiB: with 4 KiB messages a deeper ring lets each side stream
/// longer between head/tail exchanges (spsc_4k: 377 ns a message with 256 KiB in a
/// quick run; 204 ns against a 146 ns memcpy with 1 MiB in a default run).
const RING_BYTES: usize = 1 << 20;

/// Forks a child that runs `f` and `_exit`s; it has a 60 s watchdog.
fn fork_child(f: impl FnOnce()) -> libc::pid_t {
    mproc_testkit::fork(60, || {
        f();
        0
    })
}

/// Waits for a child, which finishes its fixed work (or its watchdog fires).
fn reap(pid: libc::pid_t) {
    let exit = mproc_testkit::wait(pid);
    assert_eq!(exit, mproc_testkit::Exit::Code(0), "bench child failed");
}

/// Spins a little, then yields: on a machine with fewer free cores than bench
/// processes, a waiter that only spins burns the timeslice its peer needs.
#[derive(Default)]
struct Backoff(u32);
impl Backoff {
    #[inline]
    fn snooze(&mut self) {
        if self.0 < 256 {
            self.0 += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Two shared control words: [0] the child is ready, [1] the child is done.
struct Control(Segment);
impl Control {
    fn new() -> Control {
        Control(Segment::anonymous(4096).unwrap())
    }
    fn word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: words 0..8 lie in the page-aligned segment, alive with self.
        unsafe { &*(self.0.as_ptr().add(i * 64) as *const AtomicU64) }
    }
    fn wait(&self, i: usize, value: u64) {
        let mut b = Backoff::default();
        while self.word(i).load(Ordering::Acquire) != value {
            b.snooze();
        }
    }
}

fn spsc_throughput(iters: u64, size: usize) -> Duration {
    let ring = SpscRing::new(RING_BYTES).unwrap();
    let (mut tx, mut rx) = ring.split();
    let ctl = Control::new();
    let child_ctl = Control(ctl.0.clone());
    let child = fork_child(move || {
        child_ctl.word(0).store(1, Ordering::Release);
        let mut buf = Vec::with_capacity(size);
        for _ in 0..iters {
            let mut b = Backoff::default();
            while !rx.try_pop_into(&mut buf).unwrap() {
                b.snooze();
            }
        }
        black_box(&buf);
        child_ctl.word(1).store(1, Ordering::Release);
    });
    ctl.wait(0, 1);
    let msg = vec![7u8; size];
    let start = Instant::now();
    for _ in 0..iters {
        let mut b = Backoff::default();
        while tx.try_push(&msg).is_err() {
            b.snooze();
        }
    }
    ctl.wait(1, 1);
    let t = start.elapsed();
    reap(child);
    t
}

/// As `spsc_throughput`, but zero-copy on the consumer side: it peeks and reads
/// one word of every cache line of the message in place (pulling every line
/// across), then releases, instead of copying the message out.
fn spsc_throughput_peek(iters: u64, size: usize) -> Duration {
    let ring = SpscRing::new(RING_BYTES).unwrap();
    let (mut tx, mut rx) = ring.split();
    let ctl = Control::new();
    let child_ctl = Control(ctl.0.clone());
    let child = fork_child(move || {
        child_ctl.word(0).store(1, Ordering::Release);
        let mut sum = 0u64;
        for _ in 0..iters {
            let mut b = Backoff::default();
            loop {
                if let Some(g) = rx.peek().unwrap() {
                    sum = g.iter().step_by(64).fold(sum, |a, &x| a.wrapping_add(x as u64));
                    g.release();
                    break;
                }
                b.snooze();
            }
        }
        black_box(sum);
        child_ctl.word(1).store(1, Ordering::Release);
    });
    ctl.wait(0, 1);
    let msg = vec![7u8; size];
    let start = Instant::now();
    for _ in 0..iters {
        let mut b = Backoff::default();
        while tx.try_push(&msg).is_err() {
            b.snooze();
        }
    }
    ctl.wait(1, 1);
    let t = start.elapsed();
    reap(child);
    t
}

fn mpmc_throughput(iters: u64, size: usize) -> Duration {
    let ring = MpmcRing::new(1024, size).unwrap();
    let ctl = Control::new();
    let (child_ctl, child_ring) = (Control(ctl.0.clone()), ring.clone());
    let child = fork_child(move || {
        child_ctl.word(0).store(1, Ordering::Release);
        let mut buf = Vec::with_capacity(size);
        for _ in 0..iters {
            let mut b = Backoff::default();
            while !child_ring.try_pop_into(&mut buf).unwrap() {
                b.snooze();
            }
        }
        black_box(&buf);
        child_ctl.word(1).store(1, Ordering::Release);
    });
    ctl.wait(0, 1);
    let msg = vec![7u8; size];
    let start = Instant::now();
    for _ in 0..iters {
        let mut b = Backoff::default();
        while ring.try_push(&msg).is_err() {
            b.snooze();
        }
    }
    ctl.wait(1, 1);
    let t = start.elapsed();
    reap(child);
    t
}

/// `iters` copies of `size` bytes into a rotating `RING_BYTES` destination, the
/// footprint of the SPSC ring above.
fn memcpy(iters: u64, size: usize) -> Duration {
    let src = vec![7u8; size];
    let mut dst = vec![0u8; RING_BYTES.max(size)];
    let slots = dst.len() / size;
    let start = Instant::now();
    for i in 0..iters as usize {
        let at = (i % slots) * size;
        dst[at..at + size].copy_from_slice(black_box(&src));
    }
    black_box(&dst);
    start.elapsed()
}

fn throughput(c: &mut Criterion) {
    for (name, size) in [("8", 8usize), ("64", 64), ("4k", 4096)] {
        for ring in ["spsc", "mpmc"] {
            let mut g = c.benchmark_group(format!("{ring}_{name}"));
            g.sample_size(10).throughput(Throughput::Bytes(size as u64));
            g.bench_function(BenchmarkId::new("mproc", size), |b| {
                b.iter_custom(
                    |iters| if ring == "spsc" { spsc_throughput(iters, size) } else { mpmc_throughput(iters, size) },
                )
            });
            if ring == "spsc" {
                g.bench_function(BenchmarkId::new("mproc-peek", size), |b| {
                    b.iter_custom(|iters| spsc_throughput_peek(iters, size))
                });
            }
            g.bench_function(BenchmarkId::new("limit-memcpy", size), |b| b.iter_custom(|iters| memcpy(iters, size)));
            g.finish();
        }
    }
}

/// `iters` one-way hops of a 64-byte message: ceil(iters / 2) round trips
/// through two SPSC rings, each reader spinning.
fn spsc_latency(iters: u64) -> Duration {
    let (ping, pong) = (SpscRing::new(4096).unwrap(), SpscRing::new(4096).unwrap());
    let (mut ping_tx, mut ping_rx) = ping.split();
    let (mut pong_tx, mut pong_rx) = pong.split();
    let trips = iters.div_ceil(2);
    let child = fork_child(move || {
        for _ in 0..trips {
            let mut b = Backoff::default();
            loop {
                if let Some(g) = ping_rx.peek().unwrap() {
                    let mut w = pong_tx.reserve(g.len()).unwrap();
                    w.copy_from_slice(&g);
                    w.commit();
                    g.release();
                    break;
                }
                b.snooze();
            }
        }
    });
    let msg = [5u8; 64];
    let start = Instant::now();
    for _ in 0..trips {
        ping_tx.try_push(&msg).unwrap();
        let mut b = Backoff::default();
        loop {
            if let Some(g) = pong_rx.peek().unwrap() {
                black_box(&*g);
                g.release();
                break;
            }
            b.snooze();
        }
    }
    let t = start.elapsed();
    reap(child);
    t
}

/// `iters` hops of one cache line between two processes: the parent writes odd
/// values, the child answers with the next even one.
fn pingpong(iters: u64) -> Duration {
    let ctl = Control::new();
    let child_ctl = Control(ctl.0.clone());
    let trips = iters.div_ceil(2);
    let child = fork_child(move || {
        let w = child_ctl.word(0);
        for i in 0..trips {
            let mut b = Backoff::default();
            while w.load(Ordering::Acquire) != 2 * i + 1 {
                b.snooze();
            }
            w.store(2 * i + 2, Ordering::Release);
        }
    });
    let w = ctl.word(0);
    let start = Instant::now();
    for i in 0..trips {
        w.store(2 * i + 1, Ordering::Release);
        let mut b = Backoff::default();
        while w.load(Ordering::Acquire) != 2 * i + 2 {
            b.snooze();
        }
    }
    let t = start.elapsed();
    reap(child);
    t
}

fn latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_latency");
    g.sample_size(10);
    g.bench_function("mproc", |b| b.iter_custom(spsc_latency));
    g.bench_function("limit-pingpong", |b| b.iter_custom(pingpong));
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    latency(&mut c);
    c.final_summary();
}
