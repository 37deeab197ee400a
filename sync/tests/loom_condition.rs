//! loom model of `RawCondition`: no lost notify, `notify(1)` releases exactly
//! one waiter, and a waiter giving up races a notify without losing or
//! inventing a notification. Under loom the condition has one waiter slot
//! (`WAITER_SLOTS`), so two waiters exercise both the slot path and the
//! overflow count.
#![cfg(loom)]

use std::time::Instant;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use mproc_sync::{RawCondition, RawLock, RawRLock, WAITER_SLOTS};

#[test]
fn no_lost_notify() {
    // Classic hand-off: the waiter waits for `ready` under the lock; the
    // notifier sets it under the lock and notifies. A lost notify deadlocks.
    loom::model(|| {
        let shared = Arc::new((RawRLock::new(), RawCondition::new(), AtomicBool::new(false)));
        let s = shared.clone();
        let waiter = thread::spawn(move || {
            let (lock, cond, ready) = &*s;
            lock.lock(None).unwrap();
            while !ready.load(Ordering::Relaxed) {
                cond.wait(lock, None).unwrap();
            }
            lock.unlock().unwrap();
        });
        let (lock, cond, ready) = &*shared;
        lock.lock(None).unwrap();
        ready.store(true, Ordering::Relaxed);
        cond.notify(lock, 1).unwrap();
        lock.unlock().unwrap();
        waiter.join().unwrap();
    });
}

#[test]
fn notify_one_per_ticket_two_waiters() {
    // Two waiters each need a ticket; the notifier hands out two, each with
    // notify(1). No waiter may be left asleep with a ticket free (lost notify),
    // and the waits that report "notified" match what notify granted.
    loom::model(|| {
        let shared = Arc::new((RawRLock::new(), RawCondition::new(), AtomicUsize::new(0), AtomicUsize::new(0)));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = shared.clone();
                thread::spawn(move || {
                    let (lock, cond, tickets, notified) = &*s;
                    lock.lock(None).unwrap();
                    while tickets.load(Ordering::Relaxed) == 0 {
                        if cond.wait(lock, None).unwrap() {
                            notified.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tickets.fetch_sub(1, Ordering::Relaxed);
                    lock.unlock().unwrap();
                })
            })
            .collect();
        let (lock, cond, tickets, notified) = &*shared;
        let mut granted = 0;
        for _ in 0..2 {
            lock.lock(None).unwrap();
            tickets.fetch_add(1, Ordering::Relaxed);
            granted += cond.notify(lock, 1).unwrap() as usize;
            lock.unlock().unwrap();
        }
        for w in waiters {
            w.join().unwrap();
        }
        lock.lock(None).unwrap();
        assert_eq!(notified.load(Ordering::Relaxed), granted, "notified waits != notifications granted");
        assert_eq!(cond.waiting(), 0);
        lock.unlock().unwrap();
    });
}

#[test]
fn no_lost_notify_over_a_plain_lock() {
    loom::model(|| {
        let shared = Arc::new((RawLock::new(), RawCondition::new(), AtomicBool::new(false)));
        let s = shared.clone();
        let waiter = thread::spawn(move || {
            let (lock, cond, ready) = &*s;
            assert!(lock.lock(None).is_some());
            while !ready.load(Ordering::Relaxed) {
                cond.wait(lock, None).unwrap();
            }
            assert!(lock.unlock());
        });
        let (lock, cond, ready) = &*shared;
        assert!(lock.lock(None).is_some());
        ready.store(true, Ordering::Relaxed);
        cond.notify(lock, 1).unwrap();
        assert!(lock.unlock());
        waiter.join().unwrap();
    });
}

#[test]
fn giving_up_races_notify_and_the_accounts_agree() {
    // The waiter's deadline has passed: it registers, releases the lock and
    // takes it back at once, while the notifier may notify in between. The
    // waiter reports "notified" exactly when notify granted it a notification,
    // and nothing is left over for a later wait (no phantom signal).
    assert_eq!(WAITER_SLOTS, 1);
    loom::model(|| {
        let shared = Arc::new((RawRLock::new(), RawCondition::new(), AtomicUsize::new(0)));
        let s = shared.clone();
        let waiter = thread::spawn(move || {
            let (lock, cond, _) = &*s;
            lock.lock(None).unwrap();
            let notified = cond.wait(lock, Some(Instant::now())).unwrap();
            lock.unlock().unwrap();
            notified
        });
        let (lock, cond, granted) = &*shared;
        lock.lock(None).unwrap();
        granted.store(cond.notify(lock, 1).unwrap() as usize, Ordering::Relaxed);
        lock.unlock().unwrap();
        let notified = waiter.join().unwrap();
        assert_eq!(notified, granted.load(Ordering::Relaxed) == 1, "wait's result disagrees with notify's count");
        lock.lock(None).unwrap();
        assert_eq!(cond.waiting(), 0);
        assert_eq!(cond.notify(lock, 1).unwrap(), 0, "a notification was left over");
        assert!(!cond.wait(lock, Some(Instant::now())).unwrap(), "phantom notification");
        lock.unlock().unwrap();
    });
}
