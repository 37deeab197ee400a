//! `Synchronized<T>` (Python's `Value('q', 0)`) across forked processes, and
//! spawn tokens of every primitive.

mod common;

use std::time::Duration;

use common::{fork, reap_all_ok};
use mproc_shm::{Exports, Segment, Share};
use mproc_sync::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Synchronized, SynchronizedArray,
};

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
    l.acquire().unwrap();
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

#[test]
fn array_n_processes_m_locked_increments_exact() {
    // Python: with arr.get_lock(): for i in range(len(arr)): arr[i] += 1
    const N: usize = 4;
    const M: u64 = 2_000;
    let a = SynchronizedArray::<u64>::zeroed(8).unwrap();
    let pids: Vec<_> = (0..N)
        .map(|_| {
            let a = a.clone();
            fork(60, move || {
                for _ in 0..M {
                    // Each element is read and written separately: a lost update
                    // would show if the guard did not exclude the other processes.
                    let mut g = a.lock().unwrap();
                    for x in g.iter_mut() {
                        let v = *x;
                        std::hint::black_box(());
                        *x = v + 1;
                    }
                }
                0
            })
        })
        .collect();
    reap_all_ok(&pids, Duration::from_secs(60));
    assert_eq!(a.to_vec().unwrap(), vec![N as u64 * M; 8]);
}

#[test]
fn array_get_set_errors_and_lock() {
    let a = SynchronizedArray::from_slice(&[1_i32, 2, 3]).unwrap();
    assert_eq!(a.len(), 3);
    a.set(1, 20).unwrap();
    assert_eq!(a.get(1).unwrap(), 20);
    let e = a.get(3).unwrap_err().to_string();
    assert!(e.contains('3'), "{e}");
    assert!(a.set(5, 0).is_err());
    assert!(a.copy_from_slice(&[1, 2]).unwrap_err().to_string().contains('2'));
    a.copy_from_slice(&[7, 8, 9]).unwrap();
    let l = a.get_lock();
    let held = l.lock().unwrap();
    assert!(a.try_lock().is_err());
    assert!(a.lock_timeout(Duration::from_millis(10)).is_err());
    drop(held);
    assert_eq!(&*a.lock().unwrap(), &[7, 8, 9]);
    let b = round_trip(&a);
    b.set(0, -1).unwrap();
    assert_eq!(a.to_vec().unwrap(), vec![-1, 8, 9]);
    let _g = b.lock().unwrap();
    assert!(a.try_lock().is_err(), "the imported handle shares the lock");
}
