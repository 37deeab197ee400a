//! The manager's async client (feature `tokio`): proxies awaited from
//! current-thread and multi-thread runtimes, against a started manager and
//! another process; dropped calls that lose nothing; the errors outside a
//! runtime. Awaits run under `tokio::time::timeout`; children under
//! `fork_process`'s watchdog.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mproc_manager::{Manager, ManagerError};
use mproc_testkit::{finish, fork_process};

#[path = "../../testkit/src/runtime.rs"]
mod runtime;

use runtime::{current, multi, within, LIMIT};

#[test]
fn queue_put_and_get_async_both_runtimes() {
    let manager = Manager::start().unwrap();
    for rt in [current(), multi()] {
        let q = manager.queue::<u32>().unwrap();
        let p = q.clone();
        rt.block_on(async move {
            // The consumer waits on the server before anything is put.
            let consumer = tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..100 {
                    got.push(within(q.get_async()).await.unwrap());
                }
                got
            });
            for i in 0..100 {
                within(p.put_async(i)).await.unwrap();
            }
            assert_eq!(within(consumer).await.unwrap(), (0..100).collect::<Vec<_>>());
        });
    }
}

/// 50 tasks on one runtime each await items of one server queue that a forked
/// process fills with the blocking calls; every item arrives once.
#[test]
fn tasks_await_a_queue_another_process_fills() {
    const TASKS: u64 = 50;
    const ITEMS: u64 = 2000;
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u64>().unwrap();
    let p = q.clone();
    let mut child = fork_process(30, move || {
        for i in 1..=ITEMS {
            p.put(i).unwrap();
        }
        for _ in 0..TASKS {
            p.put(0).unwrap(); // one end mark per task
        }
        0
    });
    let get = move || {
        let q = q.clone();
        async move { q.get_async().await }
    };
    let (sum, n) = multi().block_on(runtime::consume_until_zero(TASKS, get));
    assert_eq!(finish(&mut child, LIMIT), 0);
    assert_eq!(n, ITEMS);
    assert_eq!(sum, ITEMS * (ITEMS + 1) / 2);
}

/// Locks, semaphores, events, barriers, joinable queues and values awaited,
/// with another process on the other side of each.
#[test]
fn sync_proxies_async() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let sem = manager.semaphore(0).unwrap();
    let ev = manager.event().unwrap();
    let barrier = manager.barrier(2).unwrap();
    let jq = manager.joinable_queue::<u8>().unwrap();
    let value = manager.value(1u32).unwrap();
    lock.acquire().unwrap();
    let (l, s, e, b, j) = (lock.clone(), sem.clone(), ev.clone(), barrier.clone(), jq.clone());
    let mut child = fork_process(30, move || {
        // Each step waits for the parent's async side to be waiting on it.
        e.wait_timeout(LIMIT).unwrap();
        l.release().unwrap();
        s.release().unwrap();
        b.wait_timeout(LIMIT).unwrap();
        j.get_timeout(LIMIT).unwrap();
        j.task_done().unwrap();
        0
    });
    current().block_on(async {
        within(ev.set_async()).await.unwrap();
        within(ev.wait_async()).await.unwrap();
        within(lock.acquire_async()).await.unwrap(); // released by the child
        within(lock.release_async()).await.unwrap();
        within(sem.acquire_async()).await.unwrap();
        assert_eq!(sem.get_value().unwrap(), 0);
        let index = within(barrier.wait_async()).await.unwrap();
        assert!(index < 2);
        within(jq.put_async(7)).await.unwrap();
        within(jq.join_async()).await.unwrap();
        within(value.set_async(5)).await.unwrap();
        assert_eq!(within(value.get_async()).await.unwrap(), 5);
        let n = within(jq.object().call_async("qsize", vec![])).await.unwrap();
        assert_eq!(n, mproc_pickle::Value::Int(0));
    });
    assert_eq!(finish(&mut child, LIMIT), 0);
    assert!(!lock.locked().unwrap());
}

/// A `get_async` cut short takes no item put after it was dropped: whether
/// its request had not gone out, had not been run yet (the server runs no
/// request of a client that hung up), or waited on the server (which gives up
/// when its client hangs up), the item is there for the next getter. Run in
/// a forked child: a child that another test forks meanwhile would inherit
/// the dropped call's socket and keep it open, so the server would not see
/// the hang-up (as the module doc says).
#[test]
fn a_dropped_get_async_takes_no_item() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u32>().unwrap();
    let q2 = q.clone(); // the parent's reference keeps the queue until the child has its own
    let mut child = fork_process(30, move || {
        let q = q2;
        let rt = current();
        for i in 0..10 {
            let cut = rt.block_on(async { tokio::time::timeout(Duration::from_millis(50), q.get_async()).await });
            if let Ok(got) = cut {
                eprintln!("a get_async on an empty queue returned {got:?}");
                return 1;
            }
            q.put(i).unwrap();
            let got = q.get_timeout(LIMIT);
            if got != Ok(i) {
                eprintln!("iteration {i}: the next get after a dropped get_async: {got:?}");
                return 2;
            }
        }
        0
    });
    assert_eq!(finish(&mut child, LIMIT), 0, "1: a get on an empty queue returned; 2: a dropped get took the item");
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let manager = Manager::start().unwrap();
    let ev = manager.event().unwrap();
    let mut fut = pin!(ev.wait_async());
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Err(ManagerError::Unsupported { what })) => assert!(what.contains("runtime"), "{what}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
