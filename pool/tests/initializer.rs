//! The pool's initializer (Python's `initializer` and `initargs`), each test
//! run once per start method: forked workers and spawned ones (fresh execs of
//! this test binary, through the pool's own spawn entry) must behave alike.
//!
//! Every blocking call has a timeout, and each test runs under a watchdog.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use common::T;
use mproc_ipc::Queue;
use mproc_pool::{Pool, PoolBuilder, PoolError, StartMethod};
use mproc_process::Shared;
use mproc_testkit::watchdog;

/// Both start methods, in the order the tests run them.
const START_METHODS: [StartMethod; 2] = [StartMethod::Fork, StartMethod::Spawn];

fn builder(n: usize, method: StartMethod) -> PoolBuilder {
    Pool::builder().processes(n).start_method(method)
}

fn getpid() -> u32 {
    std::process::id()
}

fn ident(x: u64) -> u64 {
    x
}

static INITIALIZED: AtomicU64 = AtomicU64::new(0);

fn init_worker() {
    INITIALIZED.store(7777, Ordering::SeqCst);
}

fn read_initialized(_: ()) -> u64 {
    INITIALIZED.load(Ordering::SeqCst)
}

#[test]
fn initializer_state_is_visible_to_tasks() {
    let _w = watchdog(120);
    for method in START_METHODS {
        let pool = builder(2, method).initializer(init_worker).build().unwrap();
        let seen = pool.map_chunked(read_initialized, vec![(); 6], 1).unwrap();
        assert_eq!(seen, vec![7777; 6], "{method:?}");
        assert_eq!(INITIALIZED.load(Ordering::SeqCst), 0, "{method:?}: the initializer ran in the workers only");
    }
}

static INIT_TAG: AtomicU64 = AtomicU64::new(0);

/// Records the argument in a static the tasks read, and reports this worker's
/// pid and the argument through the queue it was given.
fn record_init((q, tag): (Shared<Queue<(u32, u64)>>, u64)) {
    INIT_TAG.store(tag, Ordering::SeqCst);
    q.put((getpid(), tag)).unwrap();
}

fn read_tag(_: ()) -> (u32, u64) {
    (getpid(), INIT_TAG.load(Ordering::SeqCst))
}

#[test]
fn initializer_with_gives_every_worker_its_argument() {
    let _w = watchdog(120);
    for method in START_METHODS {
        let q = Queue::new().unwrap();
        let pool = builder(3, method).initializer_with(record_init, (Shared(q.clone()), 4242)).build().unwrap();
        let mut init_pids = HashSet::new();
        for _ in 0..3 {
            let (pid, tag) = q.get_timeout(T).unwrap();
            assert_eq!(tag, 4242, "{method:?}");
            init_pids.insert(pid);
        }
        assert_eq!(init_pids.len(), 3, "{method:?}: each worker ran the initializer once: {init_pids:?}");
        assert!(!init_pids.contains(&getpid()), "{method:?}");
        for (pid, tag) in pool.map_chunked(read_tag, vec![(); 12], 1).unwrap() {
            assert_eq!(tag, 4242, "{method:?}: worker {pid}'s tasks see its initializer's argument");
            assert!(
                init_pids.contains(&pid),
                "{method:?}: task ran in worker {pid}, which did not report its initializer"
            );
        }
        assert_eq!(INIT_TAG.load(Ordering::SeqCst), 0, "{method:?}: the initializer ran in the workers only");
        pool.close();
        pool.join().unwrap();
    }
}

fn failing_init() {
    panic!("no database today");
}

#[test]
fn a_panicking_initializer_stops_the_pool_instead_of_respawning_forever() {
    let _w = watchdog(120);
    for method in START_METHODS {
        let pool = builder(2, method).initializer(failing_init).build().unwrap();
        let err = match pool.apply_async(ident, 1) {
            Ok(r) => r.get_timeout(T).unwrap_err(),
            Err(e) => e,
        };
        let PoolError::InitializerFailed { message, .. } = &err else { panic!("{method:?}: {err}") };
        assert!(message.contains("no database today"), "{method:?}: {message}");
        // Later submissions fail at once with the same cause.
        assert!(matches!(pool.apply_async(ident, 2), Err(PoolError::InitializerFailed { .. })), "{method:?}");
        pool.join().unwrap();
    }
}
