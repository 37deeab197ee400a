//! loom models of `MpmcRing`: producers and consumers racing for slots and
//! tickets, including a ring of one slot so every message starts a new lap.
//! Shadow cells on the slots make loom check each copy against its claim.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use mproc_shm::primitive::Ordering;
use mproc_shm::ring::{MpmcRing, LOOM_DEAD_PID};

fn quick() -> bool {
    std::env::var_os("MPROC_LOOM_QUICK").is_some()
}

fn push(ring: &MpmcRing, m: &[u8]) {
    while ring.try_push(m).is_err() {
        thread::yield_now();
    }
}

fn pop(ring: &MpmcRing) -> Vec<u8> {
    loop {
        if let Some(m) = ring.try_pop().unwrap() {
            return m;
        }
        thread::yield_now();
    }
}

/// Two producers, one consumer: both messages arrive, once each, intact.
#[test]
fn two_producers_one_consumer() {
    loom::model(|| {
        let ring = Arc::new(MpmcRing::new_heap(2, 8).unwrap());
        let producers: Vec<_> = (0..2u8)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || push(&ring, &[p; 5]))
            })
            .collect();
        let mut got = vec![pop(&ring), pop(&ring)];
        got.sort();
        assert_eq!(got, vec![vec![0; 5], vec![1; 5]]);
        for p in producers {
            p.join().unwrap();
        }
        assert!(ring.is_empty());
    });
}

/// A producer whose in-place writer fails races one that succeeds: the
/// consumer gets the good message once and never the given-up one, and both
/// slots come back for the next lap.
#[test]
fn failed_writer_is_passed_over() {
    loom::model(|| {
        let ring = Arc::new(MpmcRing::new_heap(2, 8).unwrap());
        let failing = {
            let ring = ring.clone();
            thread::spawn(move || {
                ring.try_push_with(0, |slot| {
                    slot.fill(9);
                    Err::<usize, ()>(())
                })
            })
        };
        let good = {
            let ring = ring.clone();
            thread::spawn(move || push(&ring, &[1; 4]))
        };
        assert_eq!(pop(&ring), vec![1; 4]);
        assert_eq!(failing.join().unwrap(), Ok(Err(())));
        good.join().unwrap();
        // The given-up position, if still ahead, is passed over here.
        assert_eq!(ring.try_pop().unwrap(), None);
        assert!(ring.is_empty());
        push(&ring, &[2; 2]);
        push(&ring, &[3; 2]);
        assert_eq!((pop(&ring), pop(&ring)), (vec![2; 2], vec![3; 2]));
    });
}

/// One slot, so each message is a new lap of it: the producer must wait for the
/// consumer to free the slot, and the lap numbers must keep them in step.
#[test]
fn one_slot_laps() {
    let n = if quick() { 2 } else { 3 };
    loom::model(move || {
        let ring = Arc::new(MpmcRing::new_heap(1, 8).unwrap());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                for i in 0..n {
                    push(&ring, &[i; 3]);
                }
            })
        };
        for i in 0..n {
            assert_eq!(pop(&ring), vec![i; 3]);
        }
        producer.join().unwrap();
    });
}

/// One producer, two consumers racing for its two messages: each arrives once.
#[test]
fn one_producer_two_consumers() {
    loom::model(|| {
        let ring = Arc::new(MpmcRing::new_heap(2, 8).unwrap());
        let other = {
            let ring = ring.clone();
            thread::spawn(move || pop(&ring))
        };
        push(&ring, &[1; 4]);
        push(&ring, &[2; 4]);
        let mut got = vec![pop(&ring), other.join().unwrap()];
        got.sort();
        assert_eq!(got, vec![vec![1; 4], vec![2; 4]]);
    });
}

/// A slot state word, as tabled in `mpmc.rs`: lap, state (1 WRITING, 3 READING), pid.
fn state_word(lap: u32, state: u64, pid: u32) -> u64 {
    (lap as u64) << 32 | state << 30 | pid as u64
}

/// A producer died after claiming position 0 (before even moving `tail`): the
/// consumer must skip its slot while a live producer pushes two messages, the
/// second of which needs the skipped slot back.
#[test]
fn dead_writer_skipped_while_pushing() {
    loom::model(|| {
        let ring = Arc::new(MpmcRing::new_heap(2, 8).unwrap());
        mproc_shm::__testing::slot_state(&ring, 0).store(state_word(0, 1, LOOM_DEAD_PID), Ordering::SeqCst);
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                push(&ring, &[7]);
                push(&ring, &[8]);
            })
        };
        assert_eq!(pop(&ring), vec![7]);
        assert_eq!(pop(&ring), vec![8]);
        producer.join().unwrap();
        assert!(ring.try_pop().unwrap().is_none());
    });
}

/// A consumer died mid-copy of the only slot's message: a producer reclaims the
/// slot while a live consumer helps `head` past the dead one's position.
#[test]
fn dead_reader_reclaimed_by_producer() {
    loom::model(|| {
        let ring = Arc::new(MpmcRing::new_heap(1, 8).unwrap());
        ring.try_push(&[1]).unwrap();
        mproc_shm::__testing::slot_state(&ring, 0).store(state_word(0, 3, LOOM_DEAD_PID), Ordering::SeqCst);
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || push(&ring, &[9]))
        };
        assert_eq!(pop(&ring), vec![9]);
        producer.join().unwrap();
        assert!(ring.try_pop().unwrap().is_none());
    });
}
