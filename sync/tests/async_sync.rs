//! `Lock::lock_async`, `Event::wait_async`, `Semaphore::acquire_async` /
//! `permit_async` (feature `tokio`): both runtimes, 1,000 tasks against
//! another process, futures dropped at random points (proptest) counting
//! units and lock state, wake-ups handed on by dropped futures, a SIGKILLed
//! holder, and the CPU cost of a long await. Awaits run under
//! `tokio::time::timeout`; blocking calls have timeouts; forked children run
//! under `fork`'s `alarm` watchdog.

mod common;

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use common::Counter;
use mproc_sync::{BoundedSemaphore, Event, Lock, Semaphore, SyncError};
use mproc_testkit::{eventually, fork, reap};
use proptest::prelude::*;

#[path = "../../testkit/src/runtime.rs"]
mod runtime;

use runtime::{current, multi, within, LIMIT};

#[test]
fn smoke_both_runtimes() {
    for rt in [current(), multi()] {
        rt.block_on(async {
            let lock = Lock::new().unwrap();
            let g = within(lock.lock_async()).await.unwrap();
            assert!(!g.owner_died());
            assert!(matches!(lock.try_lock(), Err(SyncError::WouldBlock { .. })));
            drop(g);

            let ev = Event::new().unwrap();
            ev.set();
            within(ev.wait_async()).await;

            let sem = BoundedSemaphore::new(2).unwrap();
            let p = within(sem.permit_async()).await.unwrap();
            within(sem.acquire_async()).await.unwrap();
            assert_eq!(sem.value(), 0);
            drop(p);
            sem.release().unwrap();
            assert_eq!(sem.value(), 2);
        });
    }
}

/// Tasks on one runtime take turns at a lock with a thread that uses the
/// blocking call: every increment of a plain counter happens under the lock.
#[test]
fn lock_async_excludes_tasks_and_threads_both_runtimes() {
    for rt in [current(), multi()] {
        let lock = Lock::new().unwrap();
        let counter = Counter::new();
        let (l, c) = (lock.clone(), counter.clone());
        let thread = std::thread::spawn(move || {
            for _ in 0..2000 {
                let _g = l.lock_timeout(LIMIT).unwrap();
                let v = c.get();
                c.atomic().store(v + 1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        rt.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (lock, counter) = (lock.clone(), counter.clone());
                    tokio::spawn(async move {
                        for _ in 0..250 {
                            let _g = within(lock.lock_async()).await.unwrap();
                            let v = counter.get();
                            tokio::task::yield_now().await; // hold it across an await
                            counter.atomic().store(v + 1, std::sync::atomic::Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            for t in tasks {
                within(t).await.unwrap();
            }
        });
        thread.join().unwrap();
        assert_eq!(counter.get(), 4000);
        assert!(!lock.is_locked());
    }
}

/// 1,000 tasks await one event and 1,000 await units of one semaphore; a
/// forked child sets the event and releases the units one by one.
#[test]
fn a_thousand_tasks_against_another_process() {
    const TASKS: usize = 1000;
    for rt in [current(), multi()] {
        let ev = Event::new().unwrap();
        let sem = Semaphore::new(0).unwrap();
        let ready = Counter::new();
        let (e, s, r) = (ev.clone(), sem.clone(), ready.clone());
        let child = fork(30, move || {
            // Once every task is registered (or near enough: late ones find
            // the flag set), set the event, then release one unit at a time.
            if !eventually(LIMIT, || r.get() == TASKS as u64) {
                return 1;
            }
            e.set();
            for _ in 0..TASKS {
                s.release().unwrap();
            }
            0
        });
        let taken = rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (ev, sem, ready) = (ev.clone(), sem.clone(), ready.clone());
                    tokio::spawn(async move {
                        ready.add(1);
                        within(ev.wait_async()).await;
                        within(sem.acquire_async()).await.unwrap();
                        1u64
                    })
                })
                .collect();
            let mut taken = 0;
            for t in tasks {
                taken += within(t).await.unwrap();
            }
            taken
        });
        assert_eq!(reap(child, LIMIT), 0);
        assert_eq!(taken, TASKS as u64);
        assert_eq!(sem.value(), 0, "each release went to exactly one task");
    }
}

/// A child takes the lock and is SIGKILLed while tasks await it: one task
/// gets it with `owner_died` set, as a blocking waiter would, and the others
/// then get it in turn.
#[test]
fn a_sigkilled_holder_ends_pending_lock_async() {
    let lock = Lock::new().unwrap();
    let holding = Counter::new();
    let (l, h) = (lock.clone(), holding.clone());
    let holder = fork(30, move || {
        std::mem::forget(l.lock().unwrap());
        h.add(1);
        loop {
            std::thread::park();
        }
    });
    assert!(eventually(Duration::from_secs(10), || holding.get() == 1), "the child never took the lock");
    let (died, took) = multi().block_on(async {
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let lock = lock.clone();
                tokio::spawn(async move { within(lock.lock_async()).await.unwrap().owner_died() })
            })
            .collect();
        tokio::task::yield_now().await;
        // SAFETY: our own unreaped child.
        unsafe { libc::kill(holder, libc::SIGKILL) };
        let killed = Instant::now();
        let mut died = 0;
        for t in tasks {
            died += within(t).await.unwrap() as usize;
        }
        (died, killed.elapsed())
    });
    assert_eq!(reap(holder, LIMIT), -libc::SIGKILL);
    eprintln!("lock_async owner-death recovery, 10 tasks: {took:?}");
    assert_eq!(died, 1, "exactly one task takes the lock over");
    assert!(took < Duration::from_secs(2), "recovery took {took:?}");
    assert!(!lock.is_locked());
}

/// In a forked child (so other tests' threads do not count): 2 s awaiting a
/// lock another live process holds (an owner poll every 50 ms), then 2 s
/// awaiting an event, each cost under 1 % of a core — runtime thread and
/// futex waiter thread together.
#[test]
fn a_two_second_await_does_not_spin() {
    let lock = Lock::new().unwrap();
    let ev = Event::new().unwrap();
    let _held = lock.lock().unwrap();
    let (l, e) = (lock.clone(), ev.clone());
    let pid = fork(30, move || {
        let rt = current();
        let mut code = 0;
        for (what, bit) in [("lock_async", 1), ("wait_async", 2)] {
            let before = mproc_testkit::cpu_time();
            rt.block_on(async {
                let two = Duration::from_secs(2);
                let timed_out = match what {
                    "lock_async" => tokio::time::timeout(two, l.lock_async()).await.is_err(),
                    _ => tokio::time::timeout(two, e.wait_async()).await.is_err(),
                };
                assert!(timed_out, "{what} resolved");
            });
            let used = mproc_testkit::cpu_time() - before;
            eprintln!("a 2 s {what} used {used:?} of CPU");
            if used >= Duration::from_millis(20) {
                code |= bit;
            }
        }
        code
    });
    assert_eq!(reap(pid, LIMIT), 0, "over 1 % of a core: 1 = lock_async, 2 = wait_async (bits)");
}

/// The tid of the calling thread.
fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// The system call thread `tid` of this process is blocked in, with its
/// arguments (`/proc/self/task/TID/syscall`).
fn syscall_of(tid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The futex waiter thread's tid, once it runs under its name (a new thread
/// names itself when it starts).
fn waiter_tid() -> Option<i32> {
    std::fs::read_dir("/proc/self/task").unwrap().flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        (comm.trim() == "mproc-futex-wai").then(|| task.file_name().to_str()?.parse().ok()).flatten()
    })
}

/// The waiter thread is asleep in `futex_waitv` on the kick word and `words`
/// more.
fn waiter_sleeps_on(words: usize) -> bool {
    let Some(tid) = waiter_tid() else { return false };
    let call = syscall_of(tid);
    call.first().map(String::as_str) == Some("449") && call.get(2) == Some(&format!("0x{:x}", words + 1))
}

/// A `FUTEX_WAKE(1)` of a release may pick the waiter thread (one more
/// sleeper on the word) instead of a blocking waiter. Whether the future it
/// was for is dropped before the release or after the waiter thread woke it,
/// the wake-up reaches the blocking waiter, which has no timeout of its own
/// in the semaphore's slow path: without the hand-on it would sleep on.
#[test]
fn a_dropped_future_never_swallows_a_wake_up() {
    for drop_before_release in [true, false] {
        let sem = Semaphore::new(0).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut fut: Pin<Box<dyn Future<Output = _>>> = Box::pin(sem.acquire_async());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        // The waiter thread sleeps on the word first, so the kernel's FIFO
        // picks it for the release's one wake-up.
        assert!(eventually(LIMIT, || waiter_sleeps_on(1)), "the waiter thread never slept on the word");
        let s = sem.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let blocked = std::thread::spawn(move || {
            tx.send(gettid()).unwrap();
            s.acquire_timeout(Duration::from_secs(10)).map(|()| Instant::now())
        });
        let tid = rx.recv_timeout(LIMIT).unwrap();
        assert!(
            eventually(LIMIT, || syscall_of(tid).first().map(String::as_str) == Some("202")),
            "the blocking waiter never slept"
        );
        if drop_before_release {
            drop(fut);
            sem.release().unwrap();
        } else {
            sem.release().unwrap();
            // The waiter thread woke the future (its entry is gone): it is
            // ready at its next poll; drop it instead.
            assert!(eventually(LIMIT, || !waiter_sleeps_on(1)));
            drop(fut);
        }
        let released = Instant::now();
        let got = blocked.join().unwrap().expect("the blocking waiter never got the unit");
        let after = got.saturating_duration_since(released);
        eprintln!("drop before release: {drop_before_release}; the blocking waiter got the unit after {after:?}");
        assert!(after < Duration::from_secs(2), "the wake-up was swallowed ({after:?})");
        assert_eq!(sem.value(), 0);
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Poll future `i` (if it exists; else start it).
    Poll(usize),
    /// Drop future `i`.
    Drop(usize),
    /// Give back one taken unit (semaphore) or the held lock.
    Release,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0usize..6).prop_map(Op::Poll),
            1 => (0usize..6).prop_map(Op::Drop),
            1 => Just(Op::Release),
        ],
        1..120,
    )
}

type Slot<'a, T> = Option<Pin<Box<dyn Future<Output = T> + 'a>>>;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `permit_async` futures polled and dropped at random points: the units
    /// free plus the permits held always equal the units there are, and once
    /// everything is dropped all are back.
    #[test]
    fn dropped_permit_futures_lose_no_unit(units in 0u32..3, ops in ops()) {
        let sem = Semaphore::new(units).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut futs: Vec<Slot<'_, _>> = (0..6).map(|_| None).collect();
        let mut permits = Vec::new();
        for op in ops {
            match op {
                Op::Poll(i) => {
                    let f = futs[i].get_or_insert_with(|| Box::pin(sem.permit_async()));
                    if let Poll::Ready(p) = f.as_mut().poll(&mut cx) {
                        permits.push(p.unwrap());
                        futs[i] = None;
                    }
                }
                Op::Drop(i) => futs[i] = None,
                Op::Release => drop(permits.pop()),
            }
            prop_assert_eq!(sem.value() + permits.len() as u32, units);
        }
        drop(futs);
        drop(permits);
        prop_assert_eq!(sem.value(), units);
    }

    /// `lock_async` futures polled and dropped at random points: the lock is
    /// held exactly while a guard exists, and free once everything is dropped.
    #[test]
    fn dropped_lock_futures_never_leave_it_held(ops in ops()) {
        let lock = Lock::new().unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut futs: Vec<Slot<'_, _>> = (0..6).map(|_| None).collect();
        let mut guard = None;
        for op in ops {
            match op {
                Op::Poll(i) => {
                    let f = futs[i].get_or_insert_with(|| Box::pin(lock.lock_async()));
                    if let Poll::Ready(g) = f.as_mut().poll(&mut cx) {
                        prop_assert!(guard.is_none(), "two guards at once");
                        guard = Some(g.unwrap());
                        futs[i] = None;
                    }
                }
                Op::Drop(i) => futs[i] = None,
                Op::Release => guard = None,
            }
            prop_assert_eq!(lock.is_locked(), guard.is_some());
        }
        drop(futs);
        drop(guard);
        prop_assert!(!lock.is_locked());
        prop_assert!(lock.try_lock().is_ok());
    }
}

#[test]
fn wait_async_sees_a_pulse() {
    current().block_on(async {
        let ev = Event::new().unwrap();
        let e = ev.clone();
        let mut waiter = pin!(ev.wait_async());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        e.set();
        e.clear();
        // The generation moved: the waiter resolves although the flag is clear.
        within(waiter).await;
        assert!(!ev.is_set());
    });
}
