//! `Synchronized<T>` (Python's `Value('q', 0)`) across forked processes, and
//! spawn tokens of every primitive.

mod common;

use std::time::Duration;

use common::{fork, reap_all_ok};
use mproc_shm::{Exports, Segment, Share};
use mproc_sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Synchronized};

#[test]
fn n_processes_m_locked_increments_exact() {
    const N: usize = 4;
    const M: i64 = 10_000;
    let v = Synchronized::new(0_i64).unwrap();
    let pids: Vec<_> = (0..N)
        .map(|_| {
            let v = v.clone();
            fork(60, move || {
                for _ in 0..M {
                    *v.lock().unwrap() += 1;
                }
                0
            })
        })
        .collect();
    reap_all_ok(&pids, Duration::from_secs(60));
    assert_eq!(v.get().unwrap(), N as i64 * M);
}

#[test]
fn get_lock_is_the_values_lock() {
    let v = Synchronized::new(7_u32).unwrap();
    let l = v.get_lock();
    let g = l.lock().unwrap();
    assert!(v.try_lock().is_err());
    drop(g);
    // Python's pattern: with v.get_lock(): v.value += 1
    assert!(l.acquire(true, None).unwrap());
    l.release().unwrap();
    assert_eq!(v.get().unwrap(), 7);
}

#[test]
fn attach_checks_the_type() {
    let seg = Segment::anonymous(4096).unwrap();
    let a = Synchronized::new_in(&seg, 0, 5_u64).unwrap();
    assert_eq!(Synchronized::<u64>::attach(&seg, 0).unwrap().get().unwrap(), 5);
    assert!(Synchronized::<u32>::attach(&seg, 0).is_err());
    assert!(Synchronized::<i64>::attach(&seg, 0).is_err());
    // A Lock attaches to the value's lock.
    let l = Lock::attach(&seg, 0).unwrap();
    let _g = a.lock().unwrap();
    assert!(l.is_locked());
}

fn round_trip<T: Share>(x: &T) -> T {
    let mut ex = Exports::new();
    let token = x.export(&mut ex).unwrap();
    T::import(token).unwrap()
}

#[test]
fn spawn_tokens_round_trip() {
    let l = Lock::new().unwrap();
    let _g = l.lock().unwrap();
    assert!(round_trip(&l).is_locked());
    let r = RLock::new().unwrap();
    let _h = r.lock().unwrap();
    assert!(round_trip(&r).holder().is_some());
    let s = Semaphore::new(3).unwrap();
    assert_eq!(round_trip(&s).value(), 3);
    let s = BoundedSemaphore::new(2).unwrap();
    assert!(round_trip(&s).release().is_err());
    let e = Event::new().unwrap();
    e.set();
    assert!(round_trip(&e).is_set());
    let c = Condition::new().unwrap();
    let c2 = round_trip(&c);
    let _g = c.lock().unwrap();
    assert!(c2.get_lock().is_owned());
    let b = Barrier::new(4).unwrap();
    assert_eq!(round_trip(&b).parties(), 4);
    let v = Synchronized::new(9_u16).unwrap();
    assert_eq!(round_trip(&v).get().unwrap(), 9);
    assert!(round_trip(&v.get_lock()).try_lock().is_ok());
}
