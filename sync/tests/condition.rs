//! `Condition` across forked processes: notify, notify(n), notify_all wake the
//! right number; Python's error cases.

mod common;

use std::time::{Duration, Instant};

use common::{fork, reap_all_ok, until, Counter};
use mproc_sync::{CondLock, Condition, Lock, SyncError};

#[test]
fn wait_without_the_lock_is_an_error() {
    let c = Condition::new().unwrap();
    assert!(matches!(c.wait(Some(Duration::ZERO)), Err(SyncError::NotOwner { .. })));
    assert!(matches!(c.notify(1), Err(SyncError::NotOwner { .. })));
    let c = Condition::with_lock(Lock::new().unwrap()).unwrap();
    assert!(matches!(c.notify_all(), Err(SyncError::NotOwner { .. })));
}

#[test]
fn timeout_returns_false_and_keeps_the_lock() {
    let c = Condition::new().unwrap();
    let _g = c.lock().unwrap();
    let t = Instant::now();
    assert!(!c.wait(Some(Duration::from_millis(20))).unwrap());
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
    assert!(c.wait(Some(Duration::from_secs(20))).unwrap());
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
                let ok = c.wait(Some(Duration::from_secs(20))).unwrap();
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
    assert!(c.acquire(true, None).unwrap());
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
            if !c2.wait_for(|| items2.get() > 0, Some(Duration::from_secs(10))).unwrap() {
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
