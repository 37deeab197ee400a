//! Queue `get_async` / `put_async` / `join_async` (feature `tokio`): both
//! runtimes, one producer process with 1,000 consumer tasks on one runtime,
//! futures dropped at random points (proptest) counting items, and the CPU
//! cost of a long await. Awaits run under `tokio::time::timeout`; forked
//! children under `fork_child`'s 20 s `alarm`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mproc_ipc::{JoinableQueue, Queue, SimpleQueue};
use proptest::prelude::*;

#[path = "../../testkit/src/runtime.rs"]
mod runtime;

use runtime::{current, multi, within, LIMIT};

#[test]
fn smoke_bounded_queue_both_runtimes() {
    for rt in [current(), multi()] {
        let q = Queue::<u32>::with_maxsize(4).unwrap();
        let p = q.clone();
        rt.block_on(async move {
            let producer = tokio::spawn(async move {
                for i in 0..1000 {
                    within(p.put_async(i)).await.unwrap();
                }
            });
            for i in 0..1000 {
                assert_eq!(within(q.get_async()).await.unwrap(), i);
            }
            within(producer).await.unwrap();
        });
    }
}

#[test]
fn simple_and_joinable_queues() {
    current().block_on(async {
        let s = SimpleQueue::<String>::new().unwrap();
        let s2 = s.clone();
        let t = tokio::spawn(async move { within(s2.get_async()).await.unwrap() });
        within(s.put_async("x".to_owned())).await.unwrap();
        assert_eq!(within(t).await.unwrap(), "x");

        let j = JoinableQueue::<u8>::new().unwrap();
        j.put(1).unwrap();
        j.put(2).unwrap();
        let j2 = j.clone();
        let worker = tokio::spawn(async move {
            for _ in 0..2 {
                within(j2.get_async()).await.unwrap();
                tokio::task::yield_now().await;
                j2.task_done().unwrap();
            }
        });
        within(j.join_async()).await;
        assert_eq!(j.unfinished_tasks(), 0);
        within(worker).await.unwrap();
    });
}

#[test]
fn one_producer_process_a_thousand_consumer_tasks() {
    const CONSUMERS: u64 = 1000;
    const ITEMS: u64 = 20_000;
    let q = Queue::<u64>::with_maxsize(64).unwrap();
    let p = q.clone();
    let pid = mproc_testkit::fork(20, move || {
        for i in 1..=ITEMS {
            p.put(i).unwrap();
        }
        for _ in 0..CONSUMERS {
            p.put(0).unwrap(); // one end mark per consumer
        }
        0
    });
    let get = move || {
        let q = q.clone();
        async move { q.get_async().await }
    };
    let (sum, count) = current().block_on(runtime::consume_until_zero(CONSUMERS, get));
    assert_eq!(count, ITEMS);
    assert_eq!(sum, ITEMS * (ITEMS + 1) / 2);
    assert_eq!(mproc_testkit::reap(pid, LIMIT), 0);
}

/// Measured in a forked child, so that other tests' threads do not count: the
/// child's process CPU time (its runtime thread and its futex waiter thread).
/// Also shows a forked child gets a waiter thread of its own.
#[test]
fn a_two_second_get_async_does_not_spin() {
    let q = Queue::<u32>::new().unwrap();
    // Start this process's waiter first, as a parent usually has.
    current()
        .block_on(async { assert!(tokio::time::timeout(Duration::from_millis(10), q.get_async()).await.is_err()) });
    let q2 = q.clone();
    let pid = mproc_testkit::fork(20, move || {
        let before = mproc_testkit::cpu_time();
        let rt = current();
        rt.block_on(async {
            assert!(tokio::time::timeout(Duration::from_secs(2), q2.get_async()).await.is_err());
        });
        let used = mproc_testkit::cpu_time() - before;
        eprintln!("a 2 s get_async used {used:?} of CPU");
        if used >= Duration::from_millis(20) {
            return 1;
        }
        // And the child's waiter wakes it: an item put now arrives.
        q2.put(7).unwrap();
        let got = rt.block_on(within(q2.get_async())).unwrap();
        if got == 7 {
            0
        } else {
            2
        }
    });
    assert_eq!(mproc_testkit::reap(pid, LIMIT), 0, "over 1 % of a core (1) or no wake-up in the child (2)");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// `get_async` futures polled a random number of times and dropped lose
    /// no item: every item put is received exactly once.
    #[test]
    fn dropped_get_futures_lose_nothing(polls in prop::collection::vec(0usize..4, 1..200), items in 1u32..300) {
        let q = Queue::<u32>::with_maxsize(16).unwrap();
        let p = q.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..items {
                p.put_timeout(i, LIMIT).unwrap();
            }
        });
        let rt = current();
        let _guard = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let mut got = Vec::new();
        let mut polls = polls.into_iter().cycle();
        while got.len() < items as usize {
            let n = polls.next().unwrap();
            let mut f = pin!(q.get_async());
            for _ in 0..n {
                if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                    got.push(v.unwrap());
                    break;
                }
            }
            if n == 0 {
                // Let the producer catch up without a spin: a bounded blocking get.
                got.push(q.get_timeout(LIMIT).unwrap());
            }
        }
        producer.join().unwrap();
        got.sort_unstable();
        prop_assert_eq!(got, (0..items).collect::<Vec<_>>());
        prop_assert!(q.try_get().is_err(), "no extra item");
    }
}
