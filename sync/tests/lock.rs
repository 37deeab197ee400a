//! `Lock` and `RLock` across forked processes: mutual exclusion, Python's error
//! cases, timeouts, the arena's fd economy and owner-death recovery.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{fork, reap, reap_all_ok, until, Counter};
use mproc_shm::{Segment, Value};
use mproc_sync::{Lock, RLock, SyncError};

#[test]
fn smoke() {
    let l = Lock::new().unwrap();
    let g = l.lock().unwrap();
    assert!(!g.owner_died());
    assert!(l.is_locked());
    assert!(matches!(l.try_lock(), Err(SyncError::WouldBlock { .. })));
    drop(g);
    assert!(!l.is_locked());
    assert!(l.acquire(true, None).unwrap());
    assert!(!l.acquire(false, None).unwrap());
    l.release().unwrap();
}

#[test]
fn release_unheld_is_an_error() {
    let l = Lock::new().unwrap();
    assert!(matches!(l.release(), Err(SyncError::NotHeld { what: "Lock" })));
}

#[test]
fn timeout_returns_false() {
    let l = Lock::new().unwrap();
    let _g = l.lock().unwrap();
    let t = Instant::now();
    assert!(!l.acquire(true, Some(Duration::from_millis(30))).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert!(matches!(l.lock_timeout(Duration::from_millis(1)), Err(SyncError::Timeout { .. })));
}

#[test]
fn n_processes_m_increments_exact() {
    const N: usize = 4;
    const M: u64 = if cfg!(debug_assertions) { 20_000 } else { 100_000 };
    let lock = Lock::new().unwrap();
    let value = Value::new(0_u64).unwrap();
    let pids: Vec<_> = (0..N)
        .map(|_| {
            let (lock, value) = (lock.clone(), value.clone());
            fork(60, move || {
                for _ in 0..M {
                    let _g = lock.lock().unwrap();
                    // A non-atomic read-modify-write: only the lock keeps it exact.
                    value.set(value.get() + 1);
                }
                0
            })
        })
        .collect();
    reap_all_ok(&pids, Duration::from_secs(60));
    assert_eq!(value.get(), N as u64 * M);
}

#[test]
fn any_process_may_release() {
    let l = Lock::new().unwrap();
    assert!(l.acquire(true, None).unwrap());
    let l2 = l.clone();
    let pid = fork(10, move || if l2.release().is_ok() { 0 } else { 1 });
    assert_eq!(reap(pid, Instant::now() + Duration::from_secs(10)), 0);
    assert!(!l.is_locked());
}

#[test]
fn lock_serialises_writers_lines_never_interleave() {
    // The tutorial's two writers appending to one file under a Lock.
    let path = std::env::temp_dir().join(format!("mproc-test-lock-writers-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let lock = Lock::new().unwrap();
    const LINES: usize = 200;
    let pids: Vec<_> = (0..2)
        .map(|w| {
            let (lock, path) = (lock.clone(), path.clone());
            fork(30, move || {
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
                for i in 0..LINES {
                    let _g = lock.lock().unwrap();
                    // One line in several writes: without the lock they would interleave.
                    for part in [format!("writer {w} "), format!("line {i} "), "end\n".to_owned()] {
                        f.write_all(part.as_bytes()).unwrap();
                    }
                }
                0
            })
        })
        .collect();
    reap_all_ok(&pids, Duration::from_secs(30));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * LINES);
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        assert!(parts.len() == 5 && parts[0] == "writer" && parts[2] == "line" && parts[4] == "end", "{line:?}");
    }
}

#[test]
fn ten_thousand_locks_share_a_few_segments() {
    let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let locks: Vec<Lock> = (0..10_000).map(|_| Lock::new().unwrap()).collect();
    let fds_after = std::fs::read_dir("/proc/self/fd").unwrap().count();
    // Other tests run concurrently and open fds too; 10 000 locks must not add 10 000.
    assert!(fds_after < fds_before + 100, "fds {fds_before} -> {fds_after}");
    for l in locks.iter().step_by(997) {
        drop(l.lock().unwrap());
    }
}

#[test]
fn placed_in_a_segment_and_attached() {
    let seg = Segment::anonymous(4096).unwrap();
    let a = Lock::new_in(&seg, 64).unwrap();
    let b = Lock::attach(&seg, 64).unwrap();
    let _g = a.lock().unwrap();
    assert!(b.try_lock().is_err());
    assert!(mproc_sync::Event::attach(&seg, 64).is_err(), "a Lock is not an Event");
    assert!(Lock::attach(&seg, 1024).is_err(), "zeroed bytes are not a Lock");
    assert!(Lock::new_in(&seg, 4090).is_err(), "out of bounds");
}

#[test]
fn rlock_reentrant_and_owned() {
    let l = RLock::new().unwrap();
    assert!(matches!(l.release(), Err(SyncError::NotOwner { .. })));
    let a = l.lock().unwrap();
    let b = l.try_lock().unwrap();
    assert!(l.is_owned());
    drop(b);
    assert!(l.is_owned());
    drop(a);
    assert!(!l.is_owned() && l.holder().is_none());
}

#[test]
fn rlock_release_by_another_thread_is_an_error() {
    let l = RLock::new().unwrap();
    assert!(l.acquire(true, None).unwrap());
    let l2 = l.clone();
    let r = std::thread::spawn(move || l2.release()).join().unwrap();
    assert!(matches!(r, Err(SyncError::NotOwner { .. })), "{r:?}");
    l.release().unwrap();
}

#[test]
fn rlock_release_by_another_process_is_an_error() {
    let l = RLock::new().unwrap();
    let _g = l.lock().unwrap();
    let l2 = l.clone();
    // The forked child's thread has another tid: it does not own the lock.
    let pid = fork(10, move || match l2.release() {
        Err(SyncError::NotOwner { .. }) => 0,
        _ => 1,
    });
    assert_eq!(reap(pid, Instant::now() + Duration::from_secs(10)), 0);
    assert!(l.is_owned());
}

#[test]
fn rlock_n_processes_m_increments_exact() {
    const N: usize = 3;
    const M: u64 = 5_000;
    let lock = RLock::new().unwrap();
    let value = Value::new(0_u64).unwrap();
    let pids: Vec<_> = (0..N)
        .map(|_| {
            let (lock, value) = (lock.clone(), value.clone());
            fork(60, move || {
                for _ in 0..M {
                    let _a = lock.lock().unwrap();
                    let _b = lock.lock().unwrap();
                    value.set(value.get() + 1);
                }
                0
            })
        })
        .collect();
    reap_all_ok(&pids, Duration::from_secs(60));
    assert_eq!(value.get(), N as u64 * M);
}

/// Forks a child that runs `take` (which takes a lock), says so, and waits to
/// be SIGKILLed; returns once it holds the lock.
fn fork_holder(take: impl FnOnce() + Send + 'static) -> libc::pid_t {
    let holding = Counter::new();
    let h = holding.clone();
    let pid = fork(30, move || {
        take();
        h.add(1);
        loop {
            std::thread::park();
        }
    });
    assert!(until(Duration::from_secs(10), || holding.get() == 1), "the child never took the lock");
    pid
}

/// A child takes the lock and is SIGKILLed; the parent then must get the lock
/// with `owner_died` set. Returns the recovery time.
fn owner_death(take: impl FnOnce() + Send + 'static, acquire: impl FnOnce() -> bool) -> Duration {
    let pid = fork_holder(take);
    // SAFETY: our own unreaped child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let killed = Instant::now();
    // The dead child stays a zombie until reaped: the waiter must see through that.
    assert!(acquire(), "the lock was not reported as taken over from a dead owner");
    let took = killed.elapsed();
    assert_eq!(reap(pid, Instant::now() + Duration::from_secs(10)), -libc::SIGKILL);
    took
}

#[test]
fn lock_owner_death_recovers() {
    let lock = Lock::new().unwrap();
    let l = lock.clone();
    let took = owner_death(
        move || std::mem::forget(l.lock().unwrap()),
        || {
            let g = lock.lock_timeout(Duration::from_secs(5)).unwrap();
            g.owner_died()
        },
    );
    eprintln!("Lock owner-death recovery: {took:?}");
    assert!(took < Duration::from_secs(2), "recovery took {took:?}");
    assert!(!lock.is_locked());
}

/// Non-blocking attempts also see through a dead holder: `try_lock`, Python's
/// `acquire(False)` and a zero timeout take the lock over (the kill lands
/// asynchronously, so each is polled until the holder is gone).
/// One non-blocking attempt: `Some(owner_died)` if it took the lock.
type Attempt = dyn Fn(&Lock) -> Option<bool>;

#[test]
fn try_lock_acquire_false_and_zero_timeout_take_over_from_a_dead_owner() {
    let lock = Lock::new().unwrap();
    let tries: [&Attempt; 3] = [
        &|l| l.try_lock().ok().map(|g| g.owner_died()),
        &|l| l.acquire(false, None).unwrap().then(|| l.release().is_ok()),
        &|l| l.lock_timeout(Duration::ZERO).ok().map(|g| g.owner_died()),
    ];
    for (i, attempt) in tries.into_iter().enumerate() {
        let l = lock.clone();
        owner_death(
            move || std::mem::forget(l.lock().unwrap()),
            || {
                let mut got = None;
                until(Duration::from_secs(10), || {
                    got = attempt(&lock);
                    got.is_some()
                });
                got == Some(true)
            },
        );
        assert!(!lock.is_locked(), "attempt {i} left the lock held");
    }
}

#[test]
fn lock_owner_death_python_acquire_returns_true() {
    let lock = Lock::new().unwrap();
    let l = lock.clone();
    owner_death(
        move || assert!(l.acquire(true, None).unwrap()),
        || lock.acquire(true, Some(Duration::from_secs(5))).unwrap(),
    );
    lock.release().unwrap();
}

#[test]
fn rlock_owner_death_recovers() {
    let lock = RLock::new().unwrap();
    let l = lock.clone();
    let took = owner_death(
        move || {
            std::mem::forget(l.lock().unwrap());
            std::mem::forget(l.lock().unwrap());
        },
        || {
            let g = lock.lock_timeout(Duration::from_secs(5)).unwrap();
            assert!(lock.is_owned());
            g.owner_died()
        },
    );
    eprintln!("RLock owner-death recovery: {took:?}");
    assert!(took < Duration::from_secs(2), "recovery took {took:?}");
    assert!(lock.holder().is_none(), "depth restarts at 1 after a takeover");
}

#[test]
fn owner_death_with_several_waiters_exactly_one_takes_over() {
    let lock = Lock::new().unwrap();
    let died = Counter::new();
    let done = Counter::new();
    let l = lock.clone();
    let holder = fork_holder(move || std::mem::forget(l.lock().unwrap()));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (l, died, done) = (lock.clone(), died.clone(), done.clone());
            fork(30, move || {
                let g = l.lock_timeout(Duration::from_secs(10)).unwrap();
                if g.owner_died() {
                    died.add(1);
                }
                done.add(1);
                0
            })
        })
        .collect();
    // SAFETY: our own unreaped child.
    unsafe { libc::kill(holder, libc::SIGKILL) };
    reap_all_ok(&waiters, Duration::from_secs(20));
    assert_eq!(reap(holder, Instant::now() + Duration::from_secs(5)), -libc::SIGKILL);
    assert_eq!(done.get(), 3);
    assert_eq!(died.get(), 1, "exactly one waiter takes the lock over");
}

#[test]
fn waiter_already_asleep_when_the_holder_dies_takes_over() {
    // Unlike the tests above, the waiter is asleep in the futex (seen in
    // /proc/PID/syscall) before the holder is killed: recovery must come from
    // its periodic owner check, not from a fresh acquire.
    let lock = Lock::new().unwrap();
    let got_at = Counter::new();
    let l = lock.clone();
    let holder = fork_holder(move || std::mem::forget(l.lock().unwrap()));
    let (l, g) = (lock.clone(), got_at.clone());
    let waiter = fork(30, move || {
        let guard = l.lock_timeout(Duration::from_secs(10)).unwrap();
        g.add(common::monotonic_ns());
        if guard.owner_died() {
            0
        } else {
            1
        }
    });
    assert!(until(Duration::from_secs(10), || common::in_futex(waiter)), "the waiter never slept in lock()");
    let killed_at = common::monotonic_ns();
    common::kill_and_reap(holder);
    reap_all_ok(&[waiter], Duration::from_secs(20));
    let took = Duration::from_nanos(got_at.get().saturating_sub(killed_at));
    eprintln!("Lock takeover by a sleeping waiter: {took:?} after the SIGKILL (the owner-death bound: within 200 ms)");
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    assert!(!lock.is_locked());
}
