//! Lock benchmarks (BENCHMARKS.md): `lock_uncontended`, `value_contended`, and
//! `event_pingpong`. One iteration is one operation; cross-process cases use
//! `iter_custom` with a forked partner process.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mproc_shm::Segment;
use mproc_sync::{Event, Lock, Synchronized};

/// A `PTHREAD_PROCESS_SHARED` mutex and a counter in a shared segment.
///
/// Laid out as C's `struct { pthread_mutex_t m; uint64_t v; }`: the counter
/// right after the mutex, in its cache line, as `Synchronized<u64>` keeps its
/// value right after its lock word — so both sides of `value_contended` move
/// the same number of cache lines per hand-over.
struct PthreadShared {
    seg: Segment,
}

/// Where the counter sits: just past the mutex (40 bytes on x86-64 glibc).
const PTHREAD_COUNTER: usize = std::mem::size_of::<libc::pthread_mutex_t>().next_multiple_of(8);
const _: () = assert!(PTHREAD_COUNTER + 8 <= 64, "mutex and counter share one cache line");

impl PthreadShared {
    fn new() -> PthreadShared {
        let seg = Segment::anonymous(4096).unwrap();
        // SAFETY: the segment is 4096 zeroed bytes, page aligned: room for a
        // pthread_mutex_t at 0 and a u64 right after it; nobody else uses them yet.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            assert_eq!(libc::pthread_mutex_init(seg.as_ptr().cast(), &attr), 0);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        PthreadShared { seg }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.seg.as_ptr().cast()
    }

    fn counter(&self) -> *mut u64 {
        // SAFETY: PTHREAD_COUNTER + 8 is inside the 4096-byte segment, 8-aligned.
        unsafe { self.seg.as_ptr().add(PTHREAD_COUNTER).cast() }
    }

    #[inline]
    fn increment(&self) {
        // SAFETY: the mutex was initialised process-shared; the counter is touched
        // only while it is held.
        unsafe {
            libc::pthread_mutex_lock(self.mutex());
            *self.counter() += 1;
            libc::pthread_mutex_unlock(self.mutex());
        }
    }
}

/// A start flag in shared memory, so both processes begin together.
fn flag(seg: &Segment) -> &AtomicU32 {
    // SAFETY: offset 256 of a 4096-byte, page-aligned segment; AtomicU32 has u32's layout.
    unsafe { &*seg.as_ptr().add(256).cast::<AtomicU32>() }
}

/// Runs `work(n)` in a forked child and in this process at once; returns the
/// elapsed time of the parent's part.
fn in_two_processes(n: u64, work: impl Fn(u64)) -> Duration {
    let seg = Segment::anonymous(4096).unwrap();
    let go = flag(&seg);
    // The bench process is single-threaded here; the child only spins and runs
    // `work` on shared memory.
    let pid = mproc_testkit::fork(120, || {
        go.fetch_add(1, Ordering::SeqCst);
        while go.load(Ordering::SeqCst) < 2 {
            std::hint::spin_loop();
        }
        work(n);
        0
    });
    while go.load(Ordering::SeqCst) < 1 {
        std::hint::spin_loop();
    }
    let t = Instant::now();
    go.fetch_add(1, Ordering::SeqCst);
    work(n);
    let exit = mproc_testkit::wait(pid);
    let elapsed = t.elapsed();
    assert_eq!(exit, mproc_testkit::Exit::Code(0), "partner failed");
    elapsed
}

fn lock_uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_uncontended");
    let lock = Lock::new().unwrap();
    g.bench_function("mproc", |b| b.iter(|| drop(black_box(&lock).lock().unwrap())));
    // The limit is what any futex lock must do: one compare-exchange to take
    // the word, and one atomic read-modify-write to free it, since the release
    // has to learn in the same instruction whether a waiter has gone to sleep
    // (a plain store, then a load of the word, can miss a waiter that parks in
    // between, and a fence to order them costs as much as the swap). On x86 the
    // two are `lock cmpxchg` and `xchg`, exactly the lock's fast path. The word
    // sits in a shared mapping, as the lock's does. A plain release store (a
    // spinlock's unlock, which cannot have sleepers) would make the limit one
    // locked instruction cheaper than any lock whose waiters sleep.
    let seg = Segment::anonymous(4096).unwrap();
    let word = flag(&seg);
    g.bench_function("limit-cas", |b| {
        b.iter(|| {
            let w = black_box(word);
            while w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {}
            black_box(w.swap(0, Ordering::Release));
        })
    });
    let m = std::sync::Mutex::new(0_u64);
    g.bench_function("std-mutex", |b| b.iter(|| drop(black_box(&m).lock().unwrap())));
    let p = PthreadShared::new();
    g.bench_function("pthread-shared", |b| {
        b.iter(|| {
            // SAFETY: a process-shared mutex initialised above.
            unsafe {
                libc::pthread_mutex_lock(black_box(p.mutex()));
                libc::pthread_mutex_unlock(p.mutex());
            }
        })
    });
    g.finish();
}

fn value_contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("value_contended");
    // One iteration = one locked increment; the two processes do half each.
    // Each side gets a fresh page with its lock word and counter in the first
    // cache line (the `Synchronized` at offset 0: header, lock word at 24, value
    // at 32), so neither shares a line with anything else.
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            let seg = Segment::anonymous(4096).unwrap();
            let v = Synchronized::new_in(&seg, 0, 0_u64).unwrap();
            let half = iters.div_ceil(2);
            let t = in_two_processes(half, |n| {
                for _ in 0..n {
                    *v.lock().unwrap() += 1;
                }
            });
            assert_eq!(v.get().unwrap(), 2 * half);
            t
        })
    });
    g.bench_function("pthread-shared", |b| {
        b.iter_custom(|iters| {
            let p = PthreadShared::new();
            let half = iters.div_ceil(2);
            let t = in_two_processes(half, |n| {
                for _ in 0..n {
                    p.increment();
                }
            });
            // SAFETY: both processes are done with the counter.
            assert_eq!(unsafe { *p.counter() }, 2 * half);
            t
        })
    });
    g.finish();
}

fn event_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("event_pingpong");
    // One iteration = one round trip: set the peer's event, wait for ours.
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            let (ping, pong) = (Event::new().unwrap(), Event::new().unwrap());
            let seg = Segment::anonymous(4096).unwrap();
            // SAFETY: offset 512 of a 4096-byte segment; AtomicU64 has u64's layout.
            let role = unsafe { &*seg.as_ptr().add(512).cast::<AtomicU64>() };
            in_two_processes(iters, |n| {
                // The first process to get here is the pinger.
                let pinger = role.fetch_add(1, Ordering::SeqCst) == 0;
                let (mine, theirs) = if pinger { (&pong, &ping) } else { (&ping, &pong) };
                for _ in 0..n {
                    if pinger {
                        theirs.set();
                        mine.wait_timeout(Duration::from_secs(10)).unwrap();
                        mine.clear();
                    } else {
                        mine.wait_timeout(Duration::from_secs(10)).unwrap();
                        mine.clear();
                        theirs.set();
                    }
                }
            })
        })
    });
    g.finish();
}

/// The criterion group (its generated function carries no doc).
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, lock_uncontended, value_contended, event_pingpong);
}
criterion_main!(group::benches);
