//! `Semaphore` and `BoundedSemaphore` across forked processes.

mod common;

use std::time::{Duration, Instant};

use common::{fork, reap_all_ok, Counter};
use mproc_sync::{BoundedSemaphore, Semaphore, SyncError};

#[test]
fn smoke() {
    let s = Semaphore::new(2).unwrap();
    let a = s.permit().unwrap();
    let _b = s.try_permit().unwrap();
    assert_eq!(s.value(), 0);
    assert!(matches!(s.try_permit(), Err(SyncError::WouldBlock { .. })));
    drop(a);
    assert_eq!(s.value(), 1);
    s.release().unwrap(); // a plain semaphore may grow past its start
    assert_eq!(s.value(), 2);
}

#[test]
fn bad_values_are_typed_errors() {
    let e = Semaphore::new(u32::MAX).unwrap_err();
    assert!(matches!(e, SyncError::InvalidArgument { ref value, .. } if value == "4294967295"), "{e}");
    assert!(BoundedSemaphore::new(0).is_err());
}

#[test]
fn bounded_over_release_is_an_error() {
    let s = BoundedSemaphore::new(2).unwrap();
    assert!(matches!(s.release(), Err(SyncError::OverRelease { value: 2, bound: 2 })));
    s.acquire().unwrap();
    s.release().unwrap();
    assert!(s.release().is_err());
}

#[test]
fn timeout_returns_false() {
    let s = Semaphore::new(0).unwrap();
    let t = Instant::now();
    assert!(matches!(s.acquire_timeout(Duration::from_millis(20)), Err(SyncError::Timeout { .. })));
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(matches!(s.try_acquire(), Err(SyncError::WouldBlock { .. })));
    assert!(matches!(s.permit_timeout(Duration::from_millis(1)), Err(SyncError::Timeout { .. })));
}

/// `workers` processes each take the semaphore `rounds` times; a shared gauge
/// records the most holders at once.
fn max_concurrency(bound: u32, workers: usize, rounds: usize) -> u64 {
    let sem = Semaphore::new(bound).unwrap();
    let (inside, most) = (Counter::new(), Counter::new());
    let pids: Vec<_> = (0..workers)
        .map(|_| {
            let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
            fork(60, move || {
                for _ in 0..rounds {
                    let _p = sem.permit().unwrap();
                    let now = inside.add(1) + 1;
                    most.max(now);
                    std::hint::spin_loop();
                    std::thread::yield_now();
                    inside.sub(1);
                }
                0
            })
        })
        .collect();
    reap_all_ok(&pids, Duration::from_secs(60));
    assert_eq!(sem.value(), bound);
    most.get()
}

#[test]
fn bound_never_exceeded() {
    let most = max_concurrency(3, 6, 2_000);
    assert!((1..=3).contains(&most), "gauge {most}");
}

#[test]
fn tutorial_semaphore_two_of_four_never_admits_a_third() {
    // The tutorial: Semaphore(2), four processes each holding it for a while.
    let most = max_concurrency(2, 4, 500);
    assert!(most <= 2, "gauge {most}");
}

#[test]
fn binary_semaphore_as_mutex_exact_count() {
    let sem = Semaphore::new(1).unwrap();
    let value = mproc_shm::Value::new(0_u64).unwrap();
    const M: u64 = 10_000;
    let pids: Vec<_> = (0..3)
        .map(|_| {
            let (sem, value) = (sem.clone(), value.clone());
            fork(60, move || {
                for _ in 0..M {
                    let _p = sem.permit().unwrap();
                    value.set(value.get() + 1);
                }
                0
            })
        })
        .collect();
    reap_all_ok(&pids, Duration::from_secs(60));
    assert_eq!(value.get(), 3 * M);
}

#[test]
fn release_wakes_a_sleeper_in_another_process() {
    let sem = Semaphore::new(0).unwrap();
    let got = Counter::new();
    let pids: Vec<_> = (0..3)
        .map(|_| {
            let (sem, got) = (sem.clone(), got.clone());
            fork(30, move || {
                if sem.acquire_timeout(Duration::from_secs(20)).is_ok() {
                    got.add(1);
                    0
                } else {
                    1
                }
            })
        })
        .collect();
    for _ in 0..3 {
        sem.release().unwrap();
    }
    reap_all_ok(&pids, Duration::from_secs(30));
    assert_eq!(got.get(), 3);
    assert_eq!(sem.value(), 0);
}
