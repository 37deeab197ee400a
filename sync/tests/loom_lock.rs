//! loom model of `RawLock` and `RawRLock`: mutual exclusion (a loom `UnsafeCell`
//! touched only under the lock) and no lost wake-up (a sleeper never missed
//! shows up as a loom deadlock).
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use mproc_sync::{RawLock, RawRLock};

fn threads() -> usize {
    if std::env::var_os("MPROC_LOOM_QUICK").is_some() {
        2
    } else {
        3
    }
}

#[test]
fn lock_mutual_exclusion_no_lost_wakeup() {
    loom::model(|| {
        let n = threads();
        let shared = Arc::new((RawLock::new(), UnsafeCell::new(0_usize)));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || {
                    let (lock, cell) = &*shared;
                    assert!(lock.lock(None).is_some());
                    // SAFETY: only the lock holder touches the cell; loom reports
                    // any concurrent access, which is what this model checks.
                    cell.with_mut(|v| unsafe { *v += 1 });
                    assert!(lock.unlock());
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let (lock, cell) = &*shared;
        // SAFETY: every other thread has been joined.
        assert_eq!(cell.with(|v| unsafe { *v }), n);
        assert!(lock.holder().is_none());
    });
}

#[test]
fn rlock_reentry_and_exclusion() {
    loom::model(|| {
        let shared = Arc::new((RawRLock::new(), UnsafeCell::new(0_usize)));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || {
                    let (lock, cell) = &*shared;
                    assert!(lock.lock(None).unwrap().is_some());
                    assert!(lock.try_lock().unwrap(), "the owner re-enters without waiting");
                    // SAFETY: only the lock holder touches the cell; loom reports
                    // any concurrent access, which is what this model checks.
                    cell.with_mut(|v| unsafe { *v += 1 });
                    lock.unlock().unwrap();
                    assert!(lock.is_owned());
                    lock.unlock().unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // SAFETY: every other thread has been joined.
        assert_eq!(shared.1.with(|v| unsafe { *v }), 2);
    });
}
