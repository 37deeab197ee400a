//! loom models of the queues' blocking protocol (`ipc/src/queue/raw.rs`): a
//! `Queue` get asleep on an empty queue is woken by a put, a put asleep on a
//! full queue by a get, a `JoinableQueue` join by the last `task_done`, and a
//! `SimpleQueue` get by a put.
//!
//! The queues live on the heap (`build_heap`): loom's atomics cannot live in
//! shared memory. The futex is loom's model of it (`sync/src/futex/model.rs`),
//! whose timed waits sleep until woken, so the 25 ms cap cannot hide a lost
//! wake-up: one shows up as a deadlock.
#![cfg(loom)]

use loom::thread;
use mproc_ipc::{JoinableQueue, Queue, QueueBuilder, SimpleQueue};

fn quick() -> bool {
    std::env::var_os("MPROC_LOOM_QUICK").is_some()
}

fn queue(maxsize: usize) -> Queue<u32> {
    QueueBuilder::new().maxsize(maxsize).max_item_bytes(8).build_heap::<u32>().unwrap()
}

#[test]
fn put_wakes_a_sleeping_get() {
    loom::model(|| {
        let q = queue(2);
        let getter = {
            let q = q.clone();
            thread::spawn(move || q.get().unwrap())
        };
        q.put(7).unwrap();
        assert_eq!(getter.join().unwrap(), 7);
        assert!(q.empty());
    });
}

#[test]
fn get_wakes_a_sleeping_put() {
    loom::model(|| {
        let q = queue(1);
        q.put(1).unwrap();
        let putter = {
            let q = q.clone();
            thread::spawn(move || q.put(2).unwrap())
        };
        assert_eq!(q.get().unwrap(), 1);
        putter.join().unwrap();
        assert_eq!(q.try_get().unwrap(), 2);
    });
}

#[test]
fn two_getters_each_get_one_of_two_puts() {
    // Three threads: the full run only, and with fewer preemptions than the
    // others (the state space grows fast).
    if quick() {
        return;
    }
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(1);
    model.check(|| {
        let q = queue(2);
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.get().unwrap())
            })
            .collect();
        q.put(1).unwrap();
        q.put(2).unwrap();
        let mut got: Vec<u32> = getters.into_iter().map(|g| g.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

#[test]
fn join_wakes_after_the_last_task_done() {
    loom::model(|| {
        let q: JoinableQueue<u32> = QueueBuilder::new().maxsize(2).max_item_bytes(8).build_joinable_heap().unwrap();
        q.put(5).unwrap();
        let worker = {
            let q = q.clone();
            thread::spawn(move || {
                assert_eq!(q.get().unwrap(), 5);
                q.task_done().unwrap();
            })
        };
        q.join();
        assert_eq!(q.unfinished_tasks(), 0);
        worker.join().unwrap();
    });
}

#[test]
fn simple_queue_put_wakes_a_sleeping_get() {
    loom::model(|| {
        let q: SimpleQueue<u32> = QueueBuilder::new().maxsize(1).max_item_bytes(8).build_simple_heap().unwrap();
        let getter = {
            let q = q.clone();
            thread::spawn(move || q.get().unwrap())
        };
        q.put(3).unwrap();
        assert_eq!(getter.join().unwrap(), 3);
    });
}

/// A queue whose items of over 16 bytes (the least a slot holds) go to
/// blocks: `maxsize` slots and `maxsize` + 1 blocks of 64 B.
fn block_queue(maxsize: usize) -> Queue<Vec<u8>> {
    QueueBuilder::new().maxsize(maxsize).slot_bytes(16).max_item_bytes(60).build_heap::<Vec<u8>>().unwrap()
}

/// The block protocol (`ipc/src/queue/blocks.rs`): a producer fills a block,
/// then hands it to a slot; the consumer reads it in place and frees it. loom
/// checks every block access for a happens-before edge with the one before
/// (the shadow cell per block), so a block reused while still being read, or
/// read before it was written, shows up as a data race.
#[test]
fn block_items_pass_whole_between_threads() {
    loom::model(|| {
        let q = block_queue(1);
        let getter = {
            let q = q.clone();
            thread::spawn(move || (q.get().unwrap(), q.get().unwrap()))
        };
        q.put(vec![1; 20]).unwrap();
        q.put(vec![2; 30]).unwrap();
        assert_eq!(getter.join().unwrap(), (vec![1; 20], vec![2; 30]));
        assert!(q.empty());
    });
}

/// Two producers race for the slot and the two blocks of a one-item queue
/// while a consumer frees them: each item arrives once, whole.
#[test]
fn two_block_producers_share_slots_and_blocks() {
    if quick() {
        return;
    }
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(1);
    model.check(|| {
        let q = block_queue(1);
        let putter = {
            let q = q.clone();
            thread::spawn(move || q.put(vec![1; 20]).unwrap())
        };
        let getter = {
            let q = q.clone();
            thread::spawn(move || q.get().unwrap())
        };
        q.put(vec![2; 20]).unwrap();
        let mut got = vec![getter.join().unwrap(), q.get().unwrap()];
        putter.join().unwrap();
        got.sort();
        assert_eq!(got, vec![vec![1; 20], vec![2; 20]]);
    });
}
