//! The pool with the spawn start method: each worker is a fresh exec of this
//! test binary, started through the pool's own spawn entry (the test registers
//! nothing). These mirror the fork tests in `pool.rs`.
//!
//! Every blocking call has a timeout, and each test runs under a watchdog.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use common::T;
use mproc_pool::{Pool, PoolBuilder, PoolError, StartMethod};
use mproc_testkit::{is_gone, watchdog};

fn spawn_builder(n: usize) -> PoolBuilder {
    Pool::builder().processes(n).start_method(StartMethod::Spawn)
}

fn getpid() -> u32 {
    std::process::id()
}

fn square(x: u64) -> u64 {
    x * x
}

fn pid_of(_: ()) -> u32 {
    getpid()
}

/// The parent's pid as this process sees it.
fn parent_pid(_: ()) -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

/// Set by one test before it starts its pool: a forked worker would see it set.
static PARENT_MARK: AtomicU64 = AtomicU64::new(0);

fn read_parent_mark(_: ()) -> u64 {
    PARENT_MARK.load(Ordering::SeqCst)
}

#[test]
fn map_apply_starmap_and_imap_run_in_spawned_workers() {
    let _w = watchdog(60);
    PARENT_MARK.store(1, Ordering::SeqCst);
    let pool = spawn_builder(2).build().unwrap();
    assert_eq!(pool.apply(read_parent_mark, ()).unwrap(), 0, "a fresh exec, not a copy of this process");
    assert_eq!(pool.map(square, 0..1000).unwrap(), (0..1000).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(pool.apply(square, 12).unwrap(), 144);
    let r = pool.apply_async(square, 5).unwrap();
    assert_eq!(r.get_timeout(T), Ok(25));
    assert_eq!(pool.starmap(|a: u64, b: String| b.repeat(a as usize), [(2, "ab".to_string())]).unwrap(), ["abab"]);
    let ordered: Vec<u64> = pool.imap(square, 0..50).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(ordered, (0..50).map(|x| x * x).collect::<Vec<_>>());
    let mut unordered: Vec<u64> = pool.imap_unordered(square, 0..50).unwrap().collect::<Result<_, _>>().unwrap();
    unordered.sort();
    assert_eq!(unordered, ordered);
    let pids: HashSet<u32> = pool.map_chunked(pid_of, vec![(); 8], 1).unwrap().into_iter().collect();
    assert!(!pids.contains(&getpid()));
    assert_eq!(pool.map_chunked(parent_pid, vec![(); 4], 1).unwrap(), vec![getpid(); 4], "workers are our children");
    pool.close();
    pool.join().unwrap();
    for pid in pids {
        assert!(is_gone(pid), "worker {pid} still exists (alive or zombie)");
    }
}

fn ident(x: u64) -> u64 {
    x
}

#[test]
fn maxtasksperchild_recycles_spawned_workers() {
    let _w = watchdog(60);
    let pool = spawn_builder(1).maxtasksperchild(2).build().unwrap();
    let pids: Vec<u32> = (0..6).map(|_| pool.apply_async(pid_of, ()).unwrap().get_timeout(T).unwrap()).collect();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[2], pids[3]);
    assert_eq!(pids[4], pids[5]);
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), 3, "{pids:?}");
}

const KILL_ME: u32 = 13;

fn double_or_die(x: u32) -> u32 {
    if x == KILL_ME {
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x * 2
}

fn boom(x: u32) -> u32 {
    if x == 3 {
        panic!("boom on {x}");
    }
    x
}

#[test]
fn spawned_worker_killed_mid_task_gives_worker_lost_and_the_rest_complete() {
    let _w = watchdog(60);
    let pool = spawn_builder(2).build().unwrap();
    let rs: Vec<_> = (0..30).map(|x| pool.apply_async(double_or_die, x).unwrap()).collect();
    let mut lost = false;
    for (x, r) in (0..30).zip(rs) {
        match r.get_timeout(T) {
            Ok(v) => assert_eq!(v, 2 * x),
            Err(PoolError::WorkerLost { exit, items: None }) if x == KILL_ME => {
                assert_eq!(exit.signal(), Some(libc::SIGKILL), "{exit}");
                lost = true;
            }
            Err(e) => panic!("task {x}: {e}"),
        }
    }
    assert!(lost, "the marked task was lost");
    let err = pool.map_chunked(double_or_die, 0..40, 5).unwrap_err();
    let PoolError::WorkerLost { items, .. } = err else { panic!("{err}") };
    assert_eq!(items, Some(10..15));
    // A panic is an error for its task only; the replaced workers go on.
    let err = pool.map_chunked(boom, 0..8, 2).unwrap_err();
    assert!(matches!(err, PoolError::TaskPanicked { item: Some(3), ref message } if message.contains("boom on 3")));
    assert_eq!(pool.map(double_or_die, 20..25).unwrap(), vec![40, 42, 44, 46, 48]);
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

#[test]
fn dropping_a_spawn_pool_kills_and_reaps_its_workers() {
    let _w = watchdog(60);
    let pool = spawn_builder(2).build().unwrap();
    let pids: HashSet<u32> = pool.map_chunked(pid_of, vec![(); 6], 1).unwrap().into_iter().collect();
    let busy = pool.apply_async(sleep_ms, 20_000).unwrap();
    drop(pool);
    assert_eq!(busy.get_timeout(T).unwrap_err(), PoolError::Terminated);
    for pid in pids {
        assert!(is_gone(pid), "worker {pid} still exists (alive or zombie)");
    }
}

/// An argument that cannot be encoded: fine for a forked worker, which gets a
/// clone, but a spawned worker needs its bytes.
#[derive(Clone, serde::Deserialize)]
struct Unencodable(u8);

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(format!("unencodable {}", self.0)))
    }
}

fn take_unencodable(_: Unencodable) {}

#[test]
fn an_initializer_argument_that_cannot_be_encoded_fails_the_build() {
    let _w = watchdog(60);
    let err = spawn_builder(1).initializer_with(take_unencodable, Unencodable(9)).build().unwrap_err();
    let PoolError::Spawn(message) = &err else { panic!("{err}") };
    // (postcard keeps no custom serde message, so the pool names the culprit.)
    assert!(message.contains("initializer's argument"), "{message}");
    // A forked worker gets a clone instead, and starts.
    let pool = Pool::builder().processes(1).initializer_with(take_unencodable, Unencodable(9)).build().unwrap();
    assert_eq!(pool.apply(ident, 5).unwrap(), 5);
}
