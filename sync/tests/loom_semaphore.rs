//! loom model of `RawSemaphore`: the bound holds and no sleeper is left behind
//! while units are free (the baton-passing rule of `semaphore.rs`).
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use mproc_sync::RawSemaphore;

fn quick() -> bool {
    std::env::var_os("MPROC_LOOM_QUICK").is_some()
}

#[test]
fn bound_holds() {
    loom::model(|| {
        let n = if quick() { 2 } else { 3 };
        let shared = Arc::new((RawSemaphore::new(1, false).unwrap(), AtomicUsize::new(0)));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || {
                    let (sem, inside) = &*shared;
                    assert!(sem.acquire(None));
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders of a unit");
                    inside.fetch_sub(1, Ordering::SeqCst);
                    sem.release().unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(shared.0.value(), 1);
    });
}

#[test]
fn releases_wake_every_sleeper() {
    // Two sleepers on an empty semaphore, two releases from a third thread:
    // both must get through (a lost wake-up is a loom deadlock).
    loom::model(|| {
        let sem = Arc::new(RawSemaphore::new(0, false).unwrap());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let sem = sem.clone();
                thread::spawn(move || assert!(sem.acquire(None)))
            })
            .collect();
        sem.release().unwrap();
        sem.release().unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(sem.value(), 0);
    });
}
