//! loom models of the queues' blocking protocol (`ipc/src/queue/raw.rs`): a
//! `Queue` get asleep on an empty queue is woken by a put, a put asleep on a
//! full queue by a get, a `JoinableQueue` join by the last `task_done`, and a
//! `SimpleQueue` get by a put; and of the block store (`ipc/src/queue/blocks.rs`):
//! items pass whole through blocks, and the blocks a killed process leaves
//! behind are taken back (by a producer or by the idle release) while the
//! queue is in use.
//!
//! The queues live on the heap (`__testing::heap_queue`): loom's atomics cannot live in
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
    mproc_ipc::__testing::heap_queue::<u32>(&QueueBuilder::new().maxsize(maxsize).max_item_bytes(8)).unwrap()
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
        let q: JoinableQueue<u32> =
            mproc_ipc::__testing::heap_joinable_queue(&QueueBuilder::new().maxsize(2).max_item_bytes(8)).unwrap();
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
        let q: SimpleQueue<u32> =
            mproc_ipc::__testing::heap_simple_queue(&QueueBuilder::new().maxsize(1).max_item_bytes(8)).unwrap();
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
    mproc_ipc::__testing::heap_queue::<Vec<u8>>(&QueueBuilder::new().maxsize(maxsize).slot_bytes(16).max_item_bytes(60))
        .unwrap()
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

/// A producer died writing block 0 (HELD by a dead pid). With one slot and
/// two blocks, the second put needs it back: a producer takes the orphan over
/// (or the idle release frees it first, racing the producer for it), while
/// the consumer reads the other block. Both items arrive whole.
#[test]
fn orphan_of_a_dead_writer_is_taken_back() {
    if quick() {
        return;
    }
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(1);
    model.check(|| {
        let q = block_queue(1);
        mproc_ipc::__testing::forge_dead_block_writer(&q, 0);
        let putter = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(vec![1; 20]).unwrap();
                q.put(vec![2; 30]).unwrap();
            })
        };
        let releaser = {
            let q = q.clone();
            thread::spawn(move || mproc_ipc::__testing::release_idle(&q))
        };
        assert_eq!(q.get().unwrap(), vec![1; 20]);
        assert_eq!(q.get().unwrap(), vec![2; 30]);
        putter.join().unwrap();
        releaser.join().unwrap();
        assert!(q.empty());
    });
}

/// A consumer died reading the item of position 0: its block stays QUEUED(0)
/// once the ring has passed the position. A producer reclaims the slot, then
/// needs the block back for its second item (taking the orphan over, or
/// finding it freed by the idle release); the consumer gets both new items
/// whole and never the dead one's.
#[test]
fn orphan_of_a_dead_reader_is_taken_back() {
    if quick() {
        return;
    }
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(1);
    model.check(|| {
        let q = block_queue(1);
        q.put(vec![9; 20]).unwrap();
        mproc_ipc::__testing::forge_dead_reader(&q, 0);
        let putter = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(vec![1; 20]).unwrap();
                q.put(vec![2; 30]).unwrap();
            })
        };
        let releaser = {
            let q = q.clone();
            thread::spawn(move || mproc_ipc::__testing::release_idle(&q))
        };
        assert_eq!(q.get().unwrap(), vec![1; 20]);
        assert_eq!(q.get().unwrap(), vec![2; 30]);
        putter.join().unwrap();
        releaser.join().unwrap();
        assert!(q.empty());
    });
}
