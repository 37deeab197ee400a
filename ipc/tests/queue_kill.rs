//! Kill test: `Queue` producers and consumers SIGKILLed at random points,
//! hundreds of times. Checks that no torn or duplicated item is ever delivered,
//! that the survivors finish, and that at most each killed process's in-flight
//! item is lost.
//!
//! Every item carries a unique id (producer index, sequence number) and a
//! checksum over its id and payload. Producers record in a shared array how
//! many items they have put; consumers verify each item and forward its id to
//! a results queue that the parent drains. The parent keeps two producers and
//! two consumers alive, killing one at a random moment and starting a
//! replacement, `KILLS` times; then it stops the producers, sends each
//! consumer a `None`, and checks the ids. Items range from a few bytes (in a
//! ring slot) to over 1 MiB (in a block of the queue's memfd); at the end the
//! drained queue must hold no block any more (no leaked block).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mproc_ipc::{Queue, QueueBuilder, SimpleQueue};
use mproc_shm::Array;
use mproc_sync::Event;
use mproc_testkit::{fork, kill_and_reap, reap};
use serde::{Deserialize, Serialize};

const KILLS: usize = 300;
const MAX_PRODUCERS: usize = KILLS + 8;
const LONG: Duration = Duration::from_secs(20);
/// A consumer exit code: it received an item whose checksum is wrong.
const TORN: i32 = 3;

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    producer: u32,
    seq: u32,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    sum: u64,
}

/// FNV-1a over the id, the length and every 61st payload byte (the payload is
/// compared whole besides).
fn checksum(producer: u32, seq: u32, payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let sampled = payload.iter().step_by(61);
    let len = (payload.len() as u64).to_le_bytes();
    for b in producer.to_le_bytes().iter().chain(&seq.to_le_bytes()).chain(&len).chain(sampled) {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Mostly small items (in ring slots or small blocks), one in 8 of 64 KiB and
/// one in 8 of over 1 MiB (large blocks), the first large one early in each
/// producer's life. The payload varies per 512-byte run (filled fast, so a
/// producer gets far between kills), and a run torn at any page shows.
fn item(producer: u32, seq: u32) -> Item {
    let small = (seq as usize * 7919 + producer as usize * 31) % 600;
    let len = match seq % 8 {
        1 => (1 << 20) + small,
        5 => (64 << 10) + small,
        _ => small,
    };
    let mut payload = vec![0u8; len];
    for (run, bytes) in payload.chunks_mut(512).enumerate() {
        bytes.fill((run as u32 ^ seq ^ producer.rotate_left(3)) as u8);
    }
    Item { producer, seq, sum: checksum(producer, seq, &payload), payload }
}

/// Small xorshift: the kill schedule.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn spawn_producer(work: &Queue<Option<Item>>, done: &Array<u64>, stop: &Event, p: usize) -> libc::pid_t {
    let (work, done, stop) = (work.clone(), done.clone(), stop.clone());
    fork(20, move || {
        let mut seq = 0u32;
        while !stop.is_set() {
            match work.put_timeout(Some(item(p as u32, seq)), LONG) {
                Ok(()) => {}
                Err(e) if e.error().is_timeout() => continue,
                Err(_) => return 1,
            }
            seq += 1;
            if done.set(p, seq as u64).is_err() {
                return 2;
            }
        }
        0
    })
}

fn spawn_consumer(work: &Queue<Option<Item>>, results: &SimpleQueue<(u32, u32)>) -> libc::pid_t {
    let (work, results) = (work.clone(), results.clone());
    fork(20, move || loop {
        match work.get_timeout(LONG) {
            Ok(Some(it)) => {
                if it.sum != checksum(it.producer, it.seq, &it.payload)
                    || it.payload != item(it.producer, it.seq).payload
                {
                    return TORN;
                }
                if results.put((it.producer, it.seq)).is_err() {
                    return 2;
                }
            }
            Ok(None) => return 0,
            Err(_) => return 1,
        }
    })
}

#[test]
fn queue_survives_sigkilled_producers_and_consumers() {
    // 48-byte slots (a default queue's): all but the tiniest items take
    // blocks, the part of the queue a kill can leave orphans in.
    let work = QueueBuilder::new().maxsize(32).slot_bytes(48).build::<Option<Item>>().unwrap();
    let results = SimpleQueue::<(u32, u32)>::new().unwrap();
    let done = Array::<u64>::zeroed(MAX_PRODUCERS).unwrap();
    let stop = Event::new().unwrap();
    let mut delivered: HashSet<(u32, u32)> = HashSet::new();
    let drain = |delivered: &mut HashSet<(u32, u32)>| {
        while let Ok(id) = results.try_get() {
            assert!(delivered.insert(id), "item {id:?} delivered twice");
        }
    };

    let mut next_producer = 0;
    let mut producers: Vec<libc::pid_t> = (0..2)
        .map(|_| {
            next_producer += 1;
            spawn_producer(&work, &done, &stop, next_producer - 1)
        })
        .collect();
    let mut consumers: Vec<libc::pid_t> = (0..2).map(|_| spawn_consumer(&work, &results)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut killed_consumers, mut killed_producers) = (0, 0);
    let started = Instant::now();
    for _ in 0..KILLS {
        drain(&mut delivered);
        // A random moment: a short busy wait, so the victim is mid-operation
        // at a point the schedule does not choose.
        let until = Instant::now() + Duration::from_micros(rng.next() % 1500);
        while Instant::now() < until {
            drain(&mut delivered);
        }
        let victim = (rng.next() % 4) as usize;
        if victim < 2 {
            let status = kill_and_reap(producers[victim]).code();
            assert_eq!(status, -libc::SIGKILL, "a producer exited on its own with {status}");
            killed_producers += 1;
            next_producer += 1;
            producers[victim] = spawn_producer(&work, &done, &stop, next_producer - 1);
        } else {
            let status = kill_and_reap(consumers[victim - 2]).code();
            assert_eq!(status, -libc::SIGKILL, "a consumer exited with {status} (3: a torn item)");
            killed_consumers += 1;
            consumers[victim - 2] = spawn_consumer(&work, &results);
        }
    }
    // The survivors finish: producers stop, each consumer gets a None.
    stop.set();
    for p in producers {
        assert_eq!(reap(p, LONG), 0, "a surviving producer failed");
    }
    for _ in 0..consumers.len() {
        let mut sentinel = None;
        let deadline = Instant::now() + LONG;
        // Drain while putting: the consumers may be blocked on a full results queue.
        loop {
            match work.put_timeout(sentinel.take(), Duration::from_millis(10)) {
                Ok(()) => break,
                Err(e) => sentinel = e.into_item(),
            }
            drain(&mut delivered);
            assert!(Instant::now() < deadline, "could not hand the consumers their None");
        }
    }
    let mut exited = 0;
    let deadline = Instant::now() + LONG;
    while exited < consumers.len() {
        drain(&mut delivered);
        for c in consumers.iter_mut().filter(|c| **c != 0) {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            if unsafe { libc::waitpid(*c, &mut status, libc::WNOHANG) } == *c {
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "a surviving consumer failed");
                *c = 0;
                exited += 1;
            }
        }
        assert!(Instant::now() < deadline, "the surviving consumers did not finish");
        std::hint::spin_loop();
    }
    drain(&mut delivered);
    assert!(work.empty());
    // No block is left behind: an idle getter takes back the orphans of the
    // killed processes and the warm blocks: every block is free and cold.
    // What memory stays is the ring's slots and the pages of small blocks
    // (up to 1 KiB each here, which are never punched).
    assert!(work.get_timeout(mproc_ipc::queue::IDLE_RELEASE + Duration::from_millis(50)).unwrap_err().is_timeout());
    let left = mproc_ipc::__testing::blocks_not_cold(&work);
    assert_eq!(left, 0, "{left} blocks still in use, warm or orphaned in the drained queue");
    let held = work.shared_memory_bytes();
    assert!(held < 256 << 10, "the drained queue still holds {held} bytes");

    // Every item a producer recorded as put was delivered, except at most one
    // in flight per killed consumer; nothing delivered was never produced.
    let done = done.to_vec();
    let mut lost = 0u64;
    for (p, &n) in done.iter().enumerate().take(next_producer) {
        for seq in 0..n as u32 {
            lost += u64::from(!delivered.contains(&(p as u32, seq)));
        }
    }
    for &(p, seq) in &delivered {
        // A producer killed after its put returned, before recording it: one more.
        assert!((seq as u64) <= done[p as usize], "item ({p}, {seq}) was never put");
    }
    assert!(
        lost <= killed_consumers,
        "{lost} items lost for {killed_consumers} killed consumers ({killed_producers} killed producers)"
    );
    let total: u64 = done.iter().sum();
    let large = delivered.iter().filter(|&&(p, seq)| item(p, seq).payload.len() > 1 << 20).count();
    assert!(large > 20, "only {large} items of over 1 MiB went through");
    assert!(total > KILLS as u64, "too few items went through ({total}) to mean anything");
    eprintln!(
        "{} kills ({killed_producers} producers, {killed_consumers} consumers), {total} items put, {} delivered ({large} of over 1 MiB), {lost} lost, {held} bytes held after, in {:?}",
        KILLS,
        delivered.len(),
        started.elapsed()
    );
}
