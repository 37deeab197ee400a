//! `Condition` across forked processes: notify, notify(n), notify_all wake the
//! right number; Python's error cases; a waiter SIGKILLed in `wait` is not
//! counted; owner death of the lock is reported by `wait_outcome`; more waiters
//! than the slot table holds.

mod common;

use std::time::{Duration, Instant};

use common::{fork, in_futex, kill_and_reap, reap, reap_all_ok, until, Counter};
use mproc_sync::{CondLock, Condition, Lock, SyncError, WAITER_SLOTS};

#[test]
fn wait_without_the_lock_is_an_error() {
    let c = Condition::new().unwrap();
    assert!(matches!(c.wait_timeout(Duration::ZERO), Err(SyncError::NotOwner { .. })));
    assert!(matches!(c.notify(1), Err(SyncError::NotOwner { .. })));
    let c = Condition::with_lock(Lock::new().unwrap()).unwrap();
    assert!(matches!(c.notify_all(), Err(SyncError::NotOwner { .. })));
}

#[test]
fn timeout_returns_false_and_keeps_the_lock() {
    let c = Condition::new().unwrap();
    let _g = c.lock().unwrap();
    let t = Instant::now();
    assert!(matches!(c.wait_timeout(Duration::from_millis(20)), Err(SyncError::Timeout { .. })));
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(c.get_lock().is_owned());
    assert_eq!(c.waiting(), 0);
}

#[test]
fn wait_releases_every_rlock_level() {
    let c = Condition::new().unwrap();
    let _a = c.lock().unwrap();
    let _b = c.lock().unwrap();
    let c2 = c.clone();
    let done = Counter::new();
    let d = done.clone();
    // The child can take the lock only while the parent waits.
    let child = fork(30, move || {
        let _g = c2.lock().unwrap();
        d.add(1);
        c2.notify(1).unwrap();
        0
    });
    c.wait_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(done.get(), 1);
    reap_all_ok(&[child], Duration::from_secs(30));
}

/// `n` processes wait; the parent notifies with `notify`; returns how many
/// were woken by it once the condition's account settles, then lets the rest go.
fn woken_by<L: CondLock + Clone>(c: Condition<L>, n: usize, notify: impl Fn(&Condition<L>) -> u32) -> u64 {
    let woke = Counter::new();
    let pids: Vec<_> = (0..n)
        .map(|_| {
            let (c, woke) = (c.clone(), woke.clone());
            fork(30, move || {
                let g = c_lock(&c);
                let ok = c.wait_timeout(Duration::from_secs(20)).is_ok();
                drop(g);
                if ok {
                    woke.add(1);
                    0
                } else {
                    1
                }
            })
        })
        .collect();
    assert!(until(Duration::from_secs(10), || c.waiting() == n as u32), "waiting {}", c.waiting());
    let g = c_lock(&c);
    let k = notify(&c);
    drop(g);
    // Exactly k leave: k are counted woken and the account says n - k still wait.
    assert!(until(Duration::from_secs(10), || woke.get() == k as u64));
    assert_eq!(c.waiting(), n as u32 - k);
    let first = woke.get();
    let g = c_lock(&c);
    assert_eq!(c.notify_all().unwrap(), n as u32 - k);
    drop(g);
    reap_all_ok(&pids, Duration::from_secs(30));
    assert_eq!(woke.get(), n as u64);
    first
}

fn c_lock<L: CondLock>(c: &Condition<L>) -> impl Drop + '_ {
    struct G<'a, L: CondLock>(&'a Condition<L>);
    impl<L: CondLock> Drop for G<'_, L> {
        fn drop(&mut self) {
            self.0.release().unwrap();
        }
    }
    c.acquire().unwrap();
    G(c)
}

#[test]
fn notify_one_wakes_one() {
    let c = Condition::new().unwrap();
    assert_eq!(woken_by(c, 3, |c| c.notify(1).unwrap()), 1);
}

#[test]
fn notify_n_wakes_n() {
    let c = Condition::new().unwrap();
    assert_eq!(woken_by(c, 5, |c| c.notify(3).unwrap()), 3);
}

#[test]
fn notify_all_wakes_all() {
    let c = Condition::with_lock(Lock::new().unwrap()).unwrap();
    assert_eq!(woken_by(c, 4, |c| c.notify_all().unwrap()), 4);
}

#[test]
fn producer_consumer_with_wait_for() {
    let c = Condition::new().unwrap();
    let items = Counter::new();
    const N: u64 = 200;
    let (c2, items2) = (c.clone(), items.clone());
    let consumer = fork(30, move || {
        for _ in 0..N {
            let _g = c2.lock().unwrap();
            if c2.wait_for_timeout(|| items2.get() > 0, Duration::from_secs(10)).is_err() {
                return 1;
            }
            items2.sub(1);
        }
        0
    });
    for _ in 0..N {
        let _g = c.lock().unwrap();
        items.add(1);
        c.notify(1).unwrap();
    }
    reap_all_ok(&[consumer], Duration::from_secs(30));
    assert_eq!(items.get(), 0);
}

#[test]
fn waiter_killed_in_wait_is_not_counted() {
    let c = Condition::new().unwrap();
    let woke = Counter::new();
    let c1 = c.clone();
    let victim = fork(30, move || {
        let _g = c1.lock().unwrap();
        c1.wait().unwrap();
        0
    });
    assert!(until(Duration::from_secs(10), || c.waiting() == 1 && in_futex(victim)), "the victim never waited");
    let (c2, w) = (c.clone(), woke.clone());
    let live = fork(30, move || {
        let _g = c2.lock().unwrap();
        if c2.wait_timeout(Duration::from_secs(20)).is_ok() {
            w.add(1);
            0
        } else {
            1
        }
    });
    assert!(until(Duration::from_secs(10), || c.waiting() == 2), "waiting {}", c.waiting());
    kill_and_reap(victim);
    assert_eq!(c.waiting(), 1, "a dead waiter is still counted");
    {
        let _g = c.lock().unwrap();
        assert_eq!(c.notify(1).unwrap(), 1);
    }
    reap_all_ok(&[live], Duration::from_secs(30));
    assert_eq!(woke.get(), 1, "notify(1) did not wake the live waiter");
    let _g = c.lock().unwrap();
    assert_eq!(c.waiting(), 0);
    assert_eq!(c.notify_all().unwrap(), 0, "notify_all counted the dead waiter");
    assert!(
        matches!(c.wait_timeout(Duration::from_millis(50)), Err(SyncError::Timeout { .. })),
        "a phantom notification was left over"
    );
}

#[test]
fn notify_all_skips_dead_waiters_and_wakes_every_live_one() {
    // Two live waiters around a dead one: notify_all returns exactly 2, both
    // wake, and nothing is left for a later wait.
    let c = Condition::with_lock(Lock::new().unwrap()).unwrap();
    let woke = Counter::new();
    let waiter = |c: Condition<Lock>, woke: Counter| {
        fork(30, move || {
            let g = c_lock(&c);
            let ok = c.wait_timeout(Duration::from_secs(20)).is_ok();
            drop(g);
            woke.add(ok as u64);
            0
        })
    };
    let a = waiter(c.clone(), woke.clone());
    assert!(until(Duration::from_secs(10), || c.waiting() == 1));
    let c1 = c.clone();
    let victim = fork(30, move || {
        let _g = c_lock(&c1);
        c1.wait().unwrap();
        0
    });
    assert!(until(Duration::from_secs(10), || c.waiting() == 2 && in_futex(victim)));
    let b = waiter(c.clone(), woke.clone());
    assert!(until(Duration::from_secs(10), || c.waiting() == 3));
    kill_and_reap(victim);
    {
        let _g = c_lock(&c);
        assert_eq!(c.notify_all().unwrap(), 2);
    }
    reap_all_ok(&[a, b], Duration::from_secs(30));
    assert_eq!(woke.get(), 2);
    let _g = c_lock(&c);
    assert_eq!(c.notify(1).unwrap(), 0);
    assert!(matches!(c.wait_timeout(Duration::from_millis(20)), Err(SyncError::Timeout { .. })));
}

/// A child takes the lock while the parent waits, notifies, and is SIGKILLed
/// holding the lock: the parent's wait takes the lock over and says so.
#[test]
fn wait_outcome_reports_a_lock_holder_that_died() {
    let c = Condition::new().unwrap();
    let g = c.lock().unwrap();
    let c2 = c.clone();
    let child = fork(30, move || {
        std::mem::forget(c2.lock().unwrap());
        c2.notify(1).unwrap();
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGKILL) };
        1
    });
    let w = c.wait_outcome(Some(Duration::from_secs(20))).unwrap();
    assert!(w.notified());
    assert!(w.owner_died(), "{w:?}");
    assert!(c.get_lock().is_owned());
    drop(g);
    assert!(c.get_lock().holder().is_none());
    assert_eq!(reap(child, Instant::now() + Duration::from_secs(10)), -libc::SIGKILL);
}

#[test]
fn wait_for_outcome_over_a_lock_reports_a_holder_that_died() {
    let c = Condition::with_lock(Lock::new().unwrap()).unwrap();
    let items = Counter::new();
    let g = c.lock().unwrap();
    let (c2, items2) = (c.clone(), items.clone());
    let child = fork(30, move || {
        std::mem::forget(c2.lock().unwrap());
        items2.add(1);
        c2.notify_all().unwrap();
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGKILL) };
        1
    });
    let w = c.wait_for_outcome(|| items.get() > 0, Some(Duration::from_secs(20))).unwrap();
    assert!(w.notified(), "the predicate never held");
    assert!(w.owner_died(), "{w:?}");
    assert!(!g.owner_died(), "the guard taken before the wait was clean");
    drop(g);
    assert!(!c.get_lock().is_locked());
    assert_eq!(reap(child, Instant::now() + Duration::from_secs(10)), -libc::SIGKILL);
}

#[test]
fn more_waiters_than_slots_all_wake_exactly() {
    // Threads of one process (the RLock tells them apart): the ones past the
    // slot table use the overflow count; notify(n) still releases exactly n.
    let n = WAITER_SLOTS + 6;
    let c = Condition::new().unwrap();
    let woke = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (c, woke) = (c.clone(), woke.clone());
            std::thread::spawn(move || {
                let _g = c.lock().unwrap();
                let ok = c.wait_timeout(Duration::from_secs(20)).is_ok();
                woke.fetch_add(ok as usize, std::sync::atomic::Ordering::SeqCst);
            })
        })
        .collect();
    let woken = || woke.load(std::sync::atomic::Ordering::SeqCst);
    assert!(until(Duration::from_secs(10), || c.waiting() == n as u32), "waiting {}", c.waiting());
    {
        let _g = c.lock().unwrap();
        assert_eq!(c.notify(5).unwrap(), 5);
    }
    assert!(until(Duration::from_secs(10), || woken() == 5));
    assert_eq!(c.waiting(), n as u32 - 5);
    {
        let _g = c.lock().unwrap();
        assert_eq!(c.notify_all().unwrap(), n as u32 - 5);
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(woken(), n);
    assert_eq!(c.waiting(), 0);
}

#[test]
fn over_a_lock_ownership_is_per_process() {
    // Documented: a Lock records no thread, so another thread of the holding
    // process passes the ownership check (CPython's check is weaker still);
    // another process does not.
    let c = Condition::with_lock(Lock::new().unwrap()).unwrap();
    let g = c.lock().unwrap();
    let c1 = c.clone();
    let from_thread = std::thread::spawn(move || c1.notify(1).map_err(|e| e.to_string())).join().unwrap();
    assert_eq!(from_thread, Ok(0));
    let c2 = c.clone();
    let child = fork(30, move || match c2.notify(1) {
        Err(SyncError::NotOwner { .. }) => 0,
        _ => 1,
    });
    reap_all_ok(&[child], Duration::from_secs(20));
    drop(g);
}
