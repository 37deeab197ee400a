//! Pool behaviour across real (forked) worker processes.
//!
//! Every blocking call has a timeout, and each test runs under a watchdog that
//! aborts the test binary instead of letting it hang.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::T;
use mproc_pool::{Pool, PoolError};
use mproc_testkit::{is_gone, undecodable, watchdog, Undecodable};

mod common;

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn getpid() -> u32 {
    std::process::id()
}

/// Sleeps `ms`, then reports (pid, start, end) in ns since the epoch.
fn timed_sleep(ms: u64) -> (u32, u64, u64) {
    let start = now_ns();
    std::thread::sleep(Duration::from_millis(ms));
    (getpid(), start, now_ns())
}

fn pid_of(_: ()) -> u32 {
    getpid()
}

/// Checks the tutorial's waves: with `n` workers and `n + 1` tasks, the first `n`
/// run at once in distinct workers, and the last starts only after one of them
/// ended, in the worker that ran it.
fn check_waves(n: usize, runs: &[(u32, u64, u64)]) {
    let mut by_start = runs.to_vec();
    by_start.sort_by_key(|r| r.1);
    let (first, last) = by_start.split_at(n);
    let last = last[0];
    let first_pids: HashSet<u32> = first.iter().map(|r| r.0).collect();
    assert_eq!(first_pids.len(), n, "first wave in {n} distinct workers: {runs:?}");
    let latest_start = first.iter().map(|r| r.1).max().unwrap();
    let earliest_end = first.iter().map(|r| r.2).min().unwrap();
    assert!(latest_start < earliest_end, "first wave ran concurrently: {runs:?}");
    let freed_by = first.iter().find(|r| r.0 == last.0).expect("last task ran in a first-wave worker");
    assert!(last.1 >= freed_by.2, "last task started after its worker's first task ended: {runs:?}");
}

#[test]
fn pool_of_three_runs_four_tasks_in_two_waves() {
    let _w = watchdog(60);
    let pool = Pool::new(3).unwrap();
    let rs: Vec<_> = (0..4).map(|_| pool.apply_async(timed_sleep, 300).unwrap()).collect();
    let runs: Vec<_> = rs.into_iter().map(|r| r.get_timeout(T).unwrap()).collect();
    check_waves(3, &runs);
}

#[test]
fn pool_of_four_runs_five_tasks_in_two_waves() {
    let _w = watchdog(60);
    let pool = Pool::new(4).unwrap();
    let runs = pool.map_chunked(timed_sleep, [200; 5], 1).unwrap();
    check_waves(4, &runs);
}

fn slow_square(x: u64) -> u64 {
    // Later tasks finish first, so order comes from the pool, not from timing.
    std::thread::sleep(Duration::from_millis(5 * (10 - x)));
    x * x
}

#[test]
fn apply_async_results_read_back_in_order() {
    let _w = watchdog(60);
    let pool = Pool::new(3).unwrap();
    let rs: Vec<_> = (0..10).map(|x| pool.apply_async(slow_square, x).unwrap()).collect();
    let got: Vec<u64> = rs.into_iter().map(|r| r.get_timeout(T).unwrap()).collect();
    assert_eq!(got, (0..10).map(|x| x * x).collect::<Vec<_>>());
}

fn pid_after_sleep(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    getpid()
}

#[test]
fn pool_of_two_uses_two_processes_for_ten_tasks_where_ten_guarded_processes_use_ten() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    let pids: HashSet<u32> = pool.map_chunked(pid_after_sleep, [10; 10], 1).unwrap().into_iter().collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(!pids.contains(&getpid()));

    // Ten Processes guarded by Semaphore(2), by contrast, are ten processes
    // (two at a time).
    let sem = mproc_sync::Semaphore::new(2).unwrap();
    let mut procs: Vec<_> = (0..10)
        .map(|_| {
            let sem = sem.clone();
            mproc_process::Process::new(move || {
                mproc_testkit::arm_watchdog(20);
                let Ok(_permit) = sem.permit_timeout(Duration::from_secs(10)) else {
                    // SAFETY: _exit ends the child at once.
                    unsafe { libc::_exit(3) }
                };
                std::thread::sleep(Duration::from_millis(10));
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for p in &mut procs {
        p.start().unwrap();
        seen.insert(p.pid().unwrap());
    }
    for p in &mut procs {
        p.join_timeout(T).unwrap();
        assert_eq!(p.exitcode(), Some(0), "each process got a permit");
    }
    assert_eq!(seen.len(), 10);
}

const KILL_ME: u32 = 13;

fn double_or_die(x: u32) -> u32 {
    if x == KILL_ME {
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x * 2
}

#[test]
fn worker_killed_mid_task_gives_worker_lost_and_the_rest_complete() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    // Warm up on tiny tasks, so the pool pipelines many tasks per worker and the
    // killed task shares its batch with finished ones (kept by the journal).
    assert_eq!(pool.map_chunked(double_or_die, 0..KILL_ME, 1).unwrap().len(), KILL_ME as usize);
    let rs: Vec<_> = (0..30).map(|x| pool.apply_async(double_or_die, x).unwrap()).collect();
    let mut lost_pid = None;
    for (x, r) in (0..30).zip(rs) {
        match r.get_timeout(T) {
            Ok(v) => assert_eq!(v, 2 * x),
            Err(PoolError::WorkerLost { exit, items: None }) if x == KILL_ME => {
                assert_eq!(exit.signal(), Some(libc::SIGKILL), "{exit}");
                lost_pid = Some(exit.pid as u32);
            }
            Err(e) => panic!("task {x}: {e}"),
        }
    }
    let lost_pid = lost_pid.expect("the marked task was lost");
    // The pool replaced the worker and goes on.
    let pids: HashSet<u32> = pool.map_chunked(pid_after_sleep, [20; 8], 1).unwrap().into_iter().collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(!pids.contains(&lost_pid));

    // In a map, the error names the lost chunk's items.
    let err = pool.map_chunked(double_or_die, 0..40, 5).unwrap_err();
    let PoolError::WorkerLost { items, .. } = err else { panic!("{err}") };
    assert_eq!(items, Some(10..15));
    assert_eq!(pool.map(double_or_die, 20..25).unwrap(), vec![40, 42, 44, 46, 48]);
}

fn boom(x: u32) -> u32 {
    if x == 3 {
        panic!("boom on {x}");
    }
    x
}

#[test]
fn panicking_task_gives_its_message_and_the_worker_survives() {
    let _w = watchdog(60);
    let pool = Pool::new(1).unwrap();
    let before = pool.apply(pid_of, ()).unwrap();
    let err = pool.apply_async(boom, 3).unwrap().get_timeout(T).unwrap_err();
    let PoolError::TaskPanicked { message, item: None } = &err else { panic!("{err}") };
    assert!(message.contains("boom on 3"), "{message}");
    assert_eq!(pool.apply(pid_of, ()).unwrap(), before, "same worker after the panic");
    let err = pool.map_chunked(boom, 0..8, 2).unwrap_err();
    assert!(matches!(err, PoolError::TaskPanicked { item: Some(3), .. }), "{err}");
}

#[test]
fn maxtasksperchild_recycles_workers() {
    let _w = watchdog(60);
    let pool = Pool::builder().processes(1).maxtasksperchild(2).build().unwrap();
    let pids: Vec<u32> = (0..6).map(|_| pool.apply_async(pid_of, ()).unwrap().get_timeout(T).unwrap()).collect();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[2], pids[3]);
    assert_eq!(pids[4], pids[5]);
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), 3, "{pids:?}");
}

/// Blocks until a byte arrives on the socket `fd`, inherited from the test
/// (at most `T`), and returns it.
fn byte_from(fd: i32) -> u8 {
    // SAFETY: `fd` is the test's socket, inherited by this forked worker; the
    // ManuallyDrop leaves it open for the test's other tasks.
    let s = ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(fd) });
    s.set_read_timeout(Some(T)).unwrap();
    let mut b = [0u8];
    (&*s).read_exact(&mut b).unwrap();
    b[0]
}

#[test]
fn get_timeout_that_times_out_can_be_retried() {
    let _w = watchdog(60);
    let (mut gate, gate_rx) = UnixStream::pair().unwrap();
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(byte_from, gate_rx.as_raw_fd()).unwrap();
    let short = Duration::from_millis(20);
    // The task cannot finish before the byte is written.
    assert_eq!(r.get_timeout(short), Err(PoolError::Timeout(short)));
    assert!(!r.ready());
    gate.write_all(&[42]).unwrap();
    assert_eq!(r.get_timeout(T), Ok(42), "the handle survived the timeout");
    assert!(r.ready());
    assert_eq!(r.successful(), Ok(true));
    assert_eq!(r.get_timeout(T), Err(PoolError::ResultTaken), "the value is moved out once");
    pool.close();
    pool.join().unwrap();
}

fn ident(x: u64) -> u64 {
    x
}

#[test]
fn empty_map() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(ident, Vec::new()).unwrap(), Vec::<u64>::new());
    let r = pool.map_async(ident, Vec::new()).unwrap();
    assert!(r.ready());
    assert_eq!(r.get_timeout(T).unwrap(), Vec::<u64>::new());
    assert_eq!(pool.imap(ident, Vec::new()).unwrap().count(), 0);
}

fn jittered(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis((x * 7) % 5));
    x
}

#[test]
fn imap_unordered_yields_every_result_once() {
    let _w = watchdog(60);
    let pool = Pool::new(3).unwrap();
    let mut it = pool.imap_unordered(jittered, 0..50).unwrap();
    let mut got = Vec::new();
    while let Some(r) = it.next_timeout(T) {
        got.push(r.unwrap());
    }
    got.sort();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
}

#[test]
fn imap_keeps_order_and_is_lazy() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let endless = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let mut it = pool.imap_chunked(ident, endless, 3).unwrap();
    for want in 0..20 {
        assert_eq!(it.next_timeout(T).unwrap().unwrap(), want);
    }
    // At most 4 × processes chunks beyond what was consumed.
    assert!(pulled.load(Ordering::SeqCst) <= 21 + 4 * 2 * 3, "{}", pulled.load(Ordering::SeqCst));
}

#[test]
fn use_after_close_is_an_error() {
    let _w = watchdog(60);
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.join(), Err(PoolError::StillRunning));
    let r = pool.apply_async(slow_square, 9).unwrap();
    pool.close();
    assert_eq!(pool.apply_async(ident, 1).unwrap_err(), PoolError::NotRunning("closed"));
    assert_eq!(pool.map(ident, [1, 2]).unwrap_err(), PoolError::NotRunning("closed"));
    assert_eq!(pool.map(ident, []).unwrap_err(), PoolError::NotRunning("closed"));
    assert!(matches!(pool.imap(ident, [1]), Err(PoolError::NotRunning("closed"))));
    assert_eq!(r.get_timeout(T), Ok(81), "work submitted before close finishes");
    pool.join().unwrap();
    pool.terminate();
    assert_eq!(pool.apply_async(ident, 1).unwrap_err(), PoolError::NotRunning("terminated"));
}

#[test]
fn terminate_cancels_outstanding_work() {
    let _w = watchdog(60);
    let pool = Pool::new(1).unwrap();
    let running = pool.apply_async(timed_sleep, 20_000).unwrap();
    let queued = pool.apply_async(ident, 5).unwrap();
    pool.terminate();
    assert_eq!(running.get_timeout(T).unwrap_err(), PoolError::Terminated);
    assert_eq!(queued.get_timeout(T).unwrap_err(), PoolError::Terminated);
}

#[test]
fn dropping_a_running_pool_kills_and_reaps_its_workers() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    let pids: HashSet<u32> = pool.map_chunked(pid_after_sleep, [20; 6], 1).unwrap().into_iter().collect();
    let busy = pool.apply_async(timed_sleep, 20_000).unwrap();
    drop(pool);
    assert_eq!(busy.get_timeout(T).unwrap_err(), PoolError::Terminated);
    for pid in pids {
        assert!(is_gone(pid), "worker {pid} still exists (alive or zombie)");
    }
}

#[test]
fn callbacks_see_the_result_or_the_error() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let r =
        pool.apply_async_with(slow_square, 4, move |v| tx.send(Ok(*v)).unwrap(), |e| panic!("unexpected {e}")).unwrap();
    assert_eq!(rx.recv_timeout(T).unwrap(), Ok(16));
    assert_eq!(r.get_timeout(T), Ok(16));
    let r = pool
        .apply_async_with(boom, 3, |_| panic!("unexpected success"), move |e| tx2.send(Err(e.to_string())).unwrap())
        .unwrap();
    assert!(rx.recv_timeout(T).unwrap().unwrap_err().contains("boom on 3"));
    r.wait_timeout(T).expect("the callback runs before the result is ready, so wait");
    assert_eq!(r.successful(), Ok(false));
}

#[test]
fn starmap_unpacks_tuples() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.starmap(|a: u64, b: u64| a.pow(b as u32), [(2, 3), (3, 2), (10, 0)]).unwrap(), vec![8, 9, 1]);
    let r = pool.starmap_async_chunked(|s: String, n: usize| s.repeat(n), [("ab".to_string(), 2)], 1).unwrap();
    assert_eq!(r.get_timeout(T).unwrap(), vec!["abab".to_string()]);
}

#[test]
fn large_map_matches_sequential() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    let out = pool.map(slow_square_free, 0..100_000u64).unwrap();
    assert!(out.iter().enumerate().all(|(i, v)| *v == (i as u64).wrapping_mul(3)));
}

fn slow_square_free(x: u64) -> u64 {
    x.wrapping_mul(3)
}

#[test]
fn imap_started_before_close_runs_to_the_end() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    let mut it = pool.imap(ident, 0..100u64).unwrap();
    assert_eq!(it.next_timeout(T).unwrap().unwrap(), 0);
    pool.close();
    let mut got = vec![0];
    while let Some(r) = it.next_timeout(T) {
        got.push(r.unwrap());
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    drop(it);
    pool.join().unwrap();
}

#[test]
fn pool_and_results_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pool>();
    fn assert_send<T: Send>() {}
    assert_send::<mproc_pool::AsyncResult<String>>();
}

fn stall_then_pid(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    getpid()
}

/// `map_timeout`, `map_async` without a chunk size, `map_async_chunked` and
/// `AsyncResult::wait_timeout`'s typed error, with tasks in worker processes.
#[test]
fn timeout_forms_in_worker_processes() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    let pids = pool.map_timeout(stall_then_pid, [0, 0, 0, 0], T).unwrap();
    assert!(pids.iter().all(|&p| p != getpid()), "the tasks ran in workers");
    let short = Duration::from_millis(20);
    assert_eq!(pool.map_timeout(stall_then_pid, [5_000], short), Err(PoolError::Timeout(short)));
    let r = pool.map_async(stall_then_pid, [5_000]).unwrap();
    assert_eq!(r.wait_timeout(short), Err(PoolError::Timeout(short)));
    assert!(!r.ready());
    pool.terminate();

    let pool = Pool::new(2).unwrap();
    let r = pool.map_async_chunked(slow_square, 1..=6, 4).unwrap();
    r.wait_timeout(T).unwrap();
    assert_eq!(r.get_timeout(T).unwrap(), vec![1, 4, 9, 16, 25, 36]);
    assert_eq!(pool.map_async(slow_square, [7]).unwrap().get_timeout(T), Ok(vec![49]));
}

/// Results that arrive but do not decode in the caller end the call with
/// `Decode` naming the type, the encoded length and, for chunks, the chunk's
/// first item; the pool serves on.
#[test]
fn results_that_do_not_decode_name_their_type_length_and_chunk() {
    let _w = watchdog(60);
    let pool = Pool::new(2).unwrap();
    // A u64 of 3 is one postcard byte.
    match pool.apply_async(undecodable, 3).unwrap().get_timeout(T) {
        Err(e @ PoolError::Decode { type_name, len: 1, item: None, source: postcard::Error::SerdeDeCustom }) => {
            assert_eq!(type_name, std::any::type_name::<Undecodable>());
            assert!(e.to_string().contains("1 encoded bytes as") && e.to_string().contains("Undecodable"), "{e}");
        }
        other => panic!("expected Decode of 1 byte, got {other:?}"),
    }
    // Chunks of 5 u64s below 128 are 6 bytes (a length byte, then one byte each);
    // the first to fail is chunk 0 (items 0..5) or another, whichever lands first.
    match pool.map_async_chunked(undecodable, 0..20u64, 5).unwrap().get_timeout(T) {
        Err(PoolError::Decode { type_name, len: 6, item: Some(start), .. }) => {
            assert_eq!(type_name, std::any::type_name::<Vec<Undecodable>>());
            assert!(start % 5 == 0 && start < 20, "{start}");
        }
        other => panic!("expected Decode of a 6-byte chunk, got {other:?}"),
    }
    // imap's chunks of one item: a length byte and the u64's byte.
    let mut it = pool.imap(undecodable, [100u64, 101]).unwrap();
    for i in 0..2 {
        match it.next_timeout(T) {
            Some(Err(PoolError::Decode { len: 2, item: Some(item), .. })) => assert_eq!(item, i),
            other => panic!("expected Decode of item {i}, got {other:?}"),
        }
    }
    assert_eq!(pool.map_async(ident, [1, 2]).unwrap().get_timeout(T), Ok(vec![1, 2]), "the pool serves on");
}

/// An argument type whose `Serialize` fails.
#[derive(Debug)]
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this type refuses to encode"))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Unencodable)
    }
}

fn takes_unencodable(_: Unencodable) -> u8 {
    0
}

#[test]
fn arguments_that_do_not_encode_name_their_type() {
    let _w = watchdog(60);
    let pool = Pool::new(1).unwrap();
    let want =
        PoolError::Encode { type_name: std::any::type_name::<Unencodable>(), source: postcard::Error::SerdeSerCustom };
    assert_eq!(pool.apply_async(takes_unencodable, Unencodable).unwrap_err(), want);
    assert_eq!(pool.map_async_chunked(takes_unencodable, [Unencodable, Unencodable], 2).unwrap_err(), want);
    let e = pool.imap(takes_unencodable, [Unencodable]).map(|mut it| it.next_timeout(T));
    assert!(matches!(e, Err(ref got) | Ok(Some(Err(ref got))) if *got == want), "{e:?}");
    assert!(want.to_string().contains("Unencodable"), "{want}");
}

#[test]
fn more_than_2_pow_32_chunks_is_too_many() {
    let _w = watchdog(60);
    let pool = Pool::new(1).unwrap();
    let n = (1usize << 32) + 1;
    // Zero-sized items: no memory, and `vec!` of them does not loop.
    let items = vec![(); n];
    fn unit(_: ()) {}
    let e = pool.map_async_chunked(unit, items, 1).unwrap_err();
    assert_eq!(e, PoolError::TooManyChunks { items: n, chunksize: 1, chunks: n });
    assert!(e.to_string().contains(&format!("{n} items")), "{e}");
}
