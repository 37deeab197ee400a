//! Awaiting pool results (feature `tokio`): `AsyncResult` as a future,
//! `map_async` awaited, `imap`/`imap_unordered` as streams, on current-thread
//! and multi-thread runtimes; a SIGKILLed worker and a terminated pool end
//! pending futures with the blocking calls' errors. Every await has a timeout.

use std::future::{poll_fn, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;
use mproc_pool::{Pool, PoolError};

const LIMIT: Duration = Duration::from_secs(30);

fn runtimes() -> Vec<tokio::runtime::Runtime> {
    vec![
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
    ]
}

async fn within<T>(f: impl IntoFuture<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f).await.expect("an await took longer than the watchdog")
}

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

fn square(x: u64) -> u64 {
    x * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn die(_: u32) -> u32 {
    // SAFETY: the worker kills itself.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    0
}

#[test]
fn apply_map_and_streams_awaited() {
    let pool = Pool::new(2).unwrap();
    for rt in runtimes() {
        rt.block_on(async {
            assert_eq!(within(pool.apply_async(square, 9).unwrap()).await.unwrap(), 81);
            let all = within(pool.map_async(square, 0..100).unwrap()).await.unwrap();
            assert_eq!(all, (0..100).map(|x| x * x).collect::<Vec<_>>());
            let mut s = pool.imap(square, 0..50u64).unwrap();
            let mut got = Vec::new();
            while let Some(r) = within(next(&mut s)).await {
                got.push(r.unwrap());
            }
            assert_eq!(got, (0..50).map(|x| x * x).collect::<Vec<_>>());
            let mut s = pool.imap_unordered(square, 0..50u64).unwrap();
            let mut got = Vec::new();
            while let Some(r) = within(next(&mut s)).await {
                got.push(r.unwrap());
            }
            got.sort_unstable();
            assert_eq!(got, (0..50).map(|x| x * x).collect::<Vec<_>>());
        });
    }
    pool.close();
    pool.join().unwrap();
}

#[test]
fn a_thousand_results_awaited_at_once() {
    let pool = Pool::new(2).unwrap();
    for rt in runtimes() {
        let sum = rt.block_on(async {
            let tasks: Vec<_> =
                (0..1000u64).map(|i| tokio::spawn(pool.apply_async(square, i).unwrap().into_future())).collect();
            let mut sum = 0;
            for t in tasks {
                sum += within(t).await.unwrap().unwrap();
            }
            sum
        });
        assert_eq!(sum, (0..1000u64).map(|x| x * x).sum::<u64>());
    }
    pool.close();
    pool.join().unwrap();
}

#[test]
fn a_killed_worker_and_a_terminated_pool_end_pending_futures() {
    let pool = Pool::new(2).unwrap();
    for rt in runtimes() {
        rt.block_on(async {
            let r = within(pool.apply_async(die, 1).unwrap()).await;
            assert!(matches!(r, Err(PoolError::WorkerLost { .. })), "{r:?}");
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let slow = pool.apply_async(sleep_ms, 60_000).unwrap();
    let waiting = rt.spawn(slow.into_future());
    pool.terminate();
    let r = rt.block_on(within(waiting)).unwrap();
    assert_eq!(r, Err(PoolError::Terminated));
}

#[test]
fn dropped_futures_leave_the_pool_working() {
    let pool = Pool::new(2).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for i in 0..50 {
            // Poll once (registering a waker), then drop.
            let f = pool.apply_async(sleep_ms, 1).unwrap().into_future();
            let _ = tokio::time::timeout(Duration::from_micros(i), f).await;
        }
        assert_eq!(within(pool.apply_async(square, 3).unwrap()).await.unwrap(), 9);
    });
    pool.close();
    pool.join().unwrap();
}

#[test]
fn a_two_second_await_does_not_spin() {
    let pool = Pool::new(1).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r = pool.apply_async(sleep_ms, 60_000).unwrap();
    let before = mproc_testkit::thread_cpu_time();
    rt.block_on(async {
        assert!(tokio::time::timeout(Duration::from_secs(2), r.into_future()).await.is_err());
    });
    let used = mproc_testkit::thread_cpu_time() - before;
    assert!(used < Duration::from_millis(20), "a 2 s await used {used:?} of CPU (over 1 %)");
    pool.terminate();
}
