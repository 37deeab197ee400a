//! `Barrier` across forked processes: lockstep passes, one index 0 per pass,
//! timeouts, abort and reset giving `BrokenBarrier`, bad arguments.

mod common;

use std::time::Duration;

use common::{fork, reap_all_ok, until, Counter};
use mproc_shm::Array;
use mproc_sync::{Barrier, SyncError};

#[test]
fn zero_parties_is_a_typed_error() {
    let e = Barrier::new(0).unwrap_err();
    assert!(matches!(e, SyncError::InvalidArgument { ref value, .. } if value == "0"), "{e}");
    assert!(Barrier::new(usize::MAX).is_err());
}

#[test]
fn thousand_passes_in_lockstep() {
    const P: usize = 3;
    const PASSES: u64 = 1000;
    let b = Barrier::new(P).unwrap();
    // Each party writes its pass number before the barrier; after it, every
    // party must see every other at the same pass (lockstep), and exactly one
    // index 0 per pass is counted.
    let passes: Array<u64> = Array::zeroed(P).unwrap();
    let zeros = Counter::new();
    let pids: Vec<_> = (0..P)
        .map(|me| {
            let (b, passes, zeros) = (b.clone(), passes.clone(), zeros.clone());
            fork(60, move || {
                for pass in 1..=PASSES {
                    passes.set(me, pass).unwrap();
                    match b.wait_timeout(Duration::from_secs(20)) {
                        Ok(0) => {
                            zeros.add(1);
                        }
                        Ok(_) => {}
                        Err(_) => return 1,
                    }
                    if (0..P).any(|p| passes.get(p).unwrap() < pass) {
                        return 2; // someone is behind: not in lockstep
                    }
                    // Second barrier: nobody races ahead to write pass + 1 while
                    // another still checks pass.
                    if b.wait_timeout(Duration::from_secs(20)).is_err() {
                        return 3;
                    }
                }
                0
            })
        })
        .collect();
    reap_all_ok(&pids, Duration::from_secs(60));
    // Zeros are counted at the first of the two barriers of each loop: one per pass.
    assert_eq!(zeros.get(), PASSES);
    assert!(!b.broken());
}

#[test]
fn action_runs_once_per_pass() {
    let runs = Counter::new();
    let r = runs.clone();
    let b = Barrier::new(2).unwrap().with_action(move || {
        r.add(1);
    });
    let b2 = b.clone();
    let child = fork(30, move || {
        for _ in 0..10 {
            if b2.wait_timeout(Duration::from_secs(10)).is_err() {
                return 1;
            }
        }
        0
    });
    for _ in 0..10 {
        b.wait_timeout(Duration::from_secs(10)).unwrap();
    }
    reap_all_ok(&[child], Duration::from_secs(30));
    assert_eq!(runs.get(), 10);
}

#[test]
fn timeout_breaks_the_barrier_for_everyone() {
    let b = Barrier::new(3).unwrap();
    let broken = Counter::new();
    let (b2, br) = (b.clone(), broken.clone());
    let child = fork(30, move || match b2.wait_timeout(Duration::from_secs(20)) {
        Err(SyncError::BrokenBarrier) => {
            br.add(1);
            0
        }
        _ => 1,
    });
    assert!(until(Duration::from_secs(10), || b.n_waiting() == 1));
    // The third party never comes: our short timeout breaks the barrier; we
    // get the timeout, the other waiter BrokenBarrier.
    match b.wait_timeout(Duration::from_millis(20)) {
        Err(SyncError::Timeout { what: "Barrier", after }) => assert_eq!(after, Duration::from_millis(20)),
        other => panic!("expected the Barrier timeout, got {other:?}"),
    }
    reap_all_ok(&[child], Duration::from_secs(30));
    assert_eq!(broken.get(), 1);
    assert!(b.broken());
    assert!(matches!(b.wait_timeout(Duration::from_secs(1)), Err(SyncError::BrokenBarrier)));
    b.reset();
    assert!(!b.broken());
}

#[test]
fn abort_and_reset_wake_waiters_with_broken_barrier() {
    for abort in [true, false] {
        let b = Barrier::new(3).unwrap();
        let broken = Counter::new();
        let pids: Vec<_> = (0..2)
            .map(|_| {
                let (b, br) = (b.clone(), broken.clone());
                fork(30, move || match b.wait_timeout(Duration::from_secs(20)) {
                    Err(SyncError::BrokenBarrier) => {
                        br.add(1);
                        0
                    }
                    _ => 1,
                })
            })
            .collect();
        assert!(until(Duration::from_secs(10), || b.n_waiting() == 2));
        if abort {
            b.abort();
        } else {
            b.reset();
        }
        reap_all_ok(&pids, Duration::from_secs(30));
        assert_eq!(broken.get(), 2);
        assert_eq!(b.broken(), abort);
    }
}

#[test]
fn usable_again_after_reset() {
    let b = Barrier::new(2).unwrap();
    b.abort();
    b.reset();
    let b2 = b.clone();
    let child = fork(30, move || if b2.wait_timeout(Duration::from_secs(10)).is_ok() { 0 } else { 1 });
    b.wait_timeout(Duration::from_secs(10)).unwrap();
    reap_all_ok(&[child], Duration::from_secs(30));
}

#[test]
fn party_killed_in_wait_breaks_the_barrier_for_the_others() {
    // The survivor waits without a timeout: it must still get BrokenBarrier
    // (the dead party is found by the survivor's periodic check), not hang.
    let b = Barrier::new(3).unwrap();
    let b1 = b.clone();
    let victim = fork(30, move || {
        let _ = b1.wait();
        0
    });
    assert!(until(Duration::from_secs(10), || b.n_waiting() == 1 && common::in_futex(victim)));
    let (b2, broke_at) = (b.clone(), Counter::new());
    let at = broke_at.clone();
    let survivor = fork(30, move || match b2.wait() {
        Err(SyncError::BrokenBarrier) => {
            at.add(common::monotonic_ns());
            0
        }
        _ => 1,
    });
    assert!(until(Duration::from_secs(10), || b.n_waiting() == 2 && common::in_futex(survivor)));
    let killed_at = common::monotonic_ns();
    common::kill_and_reap(victim);
    reap_all_ok(&[survivor], Duration::from_secs(20));
    eprintln!("Barrier broken {:?} after a party's SIGKILL", Duration::from_nanos(broke_at.get() - killed_at));
    assert!(b.broken());
    assert!(matches!(b.wait_timeout(Duration::from_secs(5)), Err(SyncError::BrokenBarrier)));
    // The dead party is no longer counted: reset completes and a full pass of
    // the live parties goes through.
    b.reset();
    assert!(!b.broken());
    assert_eq!(b.n_waiting(), 0);
    pass_of_three(&b);
}

/// Three live processes (the parent and two children) pass `b` once.
fn pass_of_three(b: &Barrier) {
    let zeros = Counter::new();
    let pids: Vec<_> = (0..2)
        .map(|_| {
            let (b, z) = (b.clone(), zeros.clone());
            fork(30, move || match b.wait_timeout(Duration::from_secs(20)) {
                Ok(i) => {
                    z.add((i == 0) as u64);
                    0
                }
                Err(_) => 1,
            })
        })
        .collect();
    let i = b.wait_timeout(Duration::from_secs(20)).unwrap();
    zeros.add((i == 0) as u64);
    reap_all_ok(&pids, Duration::from_secs(30));
    assert_eq!(zeros.get(), 1);
}

#[test]
fn reset_after_a_party_died_in_wait_completes() {
    // The barrier is broken while a dead party is still counted in it (the
    // first version then stayed RESETTING forever, waiting for the dead party to
    // leave, and every later wait hung); reset must drop the dead party.
    let b = Barrier::new(3).unwrap();
    let b1 = b.clone();
    let victim = fork(30, move || {
        let _ = b1.wait();
        0
    });
    assert!(until(Duration::from_secs(10), || b.n_waiting() == 1 && common::in_futex(victim)));
    common::kill_and_reap(victim);
    b.abort();
    assert!(b.broken());
    b.reset();
    assert!(!b.broken());
    assert_eq!(b.n_waiting(), 0, "the dead party is still counted");
    pass_of_three(&b);
    assert!(!b.broken());
}
