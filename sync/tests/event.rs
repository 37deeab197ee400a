//! `Event` across forked processes.

mod common;

use std::time::{Duration, Instant};

use common::{fork, reap_all_ok, until, Counter};
use mproc_sync::{Event, SyncError};

#[test]
fn smoke() {
    let e = Event::new().unwrap();
    assert!(!e.is_set());
    e.set();
    assert!(e.is_set());
    e.wait_timeout(Duration::ZERO).unwrap();
    e.clear();
    assert!(!e.is_set());
}

#[test]
fn timeout_returns_false() {
    let e = Event::new().unwrap();
    let t = Instant::now();
    assert!(matches!(e.wait_timeout(Duration::from_millis(20)), Err(SyncError::Timeout { .. })));
    assert!(t.elapsed() >= Duration::from_millis(20));
}

#[test]
fn set_wakes_every_waiter() {
    const N: usize = 5;
    let e = Event::new().unwrap();
    let (ready, woke) = (Counter::new(), Counter::new());
    let pids: Vec<_> = (0..N)
        .map(|_| {
            let (e, ready, woke) = (e.clone(), ready.clone(), woke.clone());
            fork(30, move || {
                ready.add(1);
                if e.wait_timeout(Duration::from_secs(20)).is_ok() {
                    woke.add(1);
                    0
                } else {
                    1
                }
            })
        })
        .collect();
    assert!(until(Duration::from_secs(10), || ready.get() == N as u64));
    assert_eq!(woke.get(), 0, "nobody passes before set");
    e.set();
    reap_all_ok(&pids, Duration::from_secs(30));
    assert_eq!(woke.get(), N as u64);
}

#[test]
fn tutorial_event_hand_off() {
    // The tutorial: one process waits for the event, the other sets it after
    // doing its work; the waiter must see the work done.
    let e = Event::new().unwrap();
    let work = Counter::new();
    let (e1, w1) = (e.clone(), work.clone());
    let waiter =
        fork(30, move || if e1.wait_timeout(Duration::from_secs(20)).is_ok() && w1.get() == 42 { 0 } else { 1 });
    let (e2, w2) = (e.clone(), work.clone());
    let setter = fork(30, move || {
        w2.add(42);
        e2.set();
        0
    });
    reap_all_ok(&[waiter, setter], Duration::from_secs(30));
}

#[test]
fn ping_pong_between_two_processes() {
    let (ping, pong) = (Event::new().unwrap(), Event::new().unwrap());
    const ROUNDS: usize = 500;
    let (p1, p2) = (ping.clone(), pong.clone());
    let child = fork(30, move || {
        for _ in 0..ROUNDS {
            if p1.wait_timeout(Duration::from_secs(10)).is_err() {
                return 1;
            }
            p1.clear();
            p2.set();
        }
        0
    });
    for _ in 0..ROUNDS {
        ping.set();
        pong.wait_timeout(Duration::from_secs(10)).unwrap();
        pong.clear();
    }
    reap_all_ok(&[child], Duration::from_secs(30));
}
