//! loom models of the wake-up protocol of `pipe` (`mproc_ipc::__testing::Bell`)
//! over a real `SpscRing`: a writer publishes a message and rings; a reader
//! finds the ring empty, arms the bell, looks again and sleeps. The futex is
//! loom's model from `mproc-sync`, where a timed wait sleeps until woken, so
//! a lost wake-up shows up as a deadlock. Also modelled: the `poll(2)` sleep
//! of `wait`, whose wake-up is a doorbell byte (a counter here), and a writer
//! waiting for room in a full ring; and the presence hints (`Presence`) that
//! gate the reader's spin, which must never cost a wake-up.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use mproc_ipc::__testing::{Bell, Presence};
use mproc_shm::ring::SpscRing;
use mproc_sync::futex;
use mproc_sync::primitive::{AtomicU32, Ordering};

fn quick() -> bool {
    std::env::var_os("MPROC_LOOM_QUICK").is_some()
}

/// The reader of a pipe: pops `n` messages, sleeping on `bell` between them
/// exactly as `pipe.rs` does (arm, look again, sleep, disarm).
fn read_n(rx: &mut mproc_shm::ring::Consumer, bell: &Bell, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < n {
        if let Some(m) = rx.try_pop().unwrap() {
            got.push(m);
            continue;
        }
        let ring = rx.ring().clone();
        bell.wait_once(|| !ring.is_empty(), None);
    }
    got
}

#[test]
fn a_futex_sleeper_is_never_left_asleep() {
    let n = if quick() { 1 } else { 2 };
    loom::model(move || {
        let ring = SpscRing::new_heap(64).unwrap();
        let (mut tx, mut rx) = ring.split();
        let bell = Arc::new(Bell::new());
        let b = bell.clone();
        let writer = thread::spawn(move || {
            for i in 0..n {
                tx.try_push(&[i as u8; 3]).unwrap();
                let rang = b.ring();
                assert!(!rang.poll, "nobody polls in this model");
            }
        });
        let got = read_n(&mut rx, &bell, n);
        assert_eq!(got, (0..n).map(|i| vec![i as u8; 3]).collect::<Vec<_>>());
        writer.join().unwrap();
    });
}

#[test]
fn a_poll_sleeper_always_gets_a_doorbell_byte() {
    loom::model(|| {
        let ring = SpscRing::new_heap(64).unwrap();
        let (mut tx, mut rx) = ring.split();
        let bell = Arc::new(Bell::new());
        // The doorbell socket: bytes written, and a futex to sleep on them.
        let socket = Arc::new(AtomicU32::new(0));
        let (b, s) = (bell.clone(), socket.clone());
        let writer = thread::spawn(move || {
            tx.try_push(b"msg").unwrap();
            if b.ring().poll {
                s.fetch_add(1, Ordering::Release);
                futex::wake(&s, 1);
            }
        });
        // `wait`: announce the poll sleep, look at the ring, poll the socket.
        bell.arm_poll();
        if rx.ring().is_empty() {
            while socket.load(Ordering::Acquire) == 0 {
                futex::wait(&socket, 0, None);
            }
        }
        bell.disarm_poll();
        // Woken by the byte, or saw the message: either way it is there.
        assert_eq!(rx.try_pop().unwrap().as_deref(), Some(&b"msg"[..]));
        writer.join().unwrap();
    });
}

#[test]
fn a_writer_waiting_for_room_is_woken() {
    loom::model(|| {
        // 64-byte ring: two 24-byte messages (32-byte records) fill it.
        let ring = SpscRing::new_heap(64).unwrap();
        let (mut tx, mut rx) = ring.split();
        tx.try_push(&[1; 24]).unwrap();
        tx.try_push(&[2; 24]).unwrap();
        let room = Arc::new(Bell::new());
        let r = room.clone();
        let reader = thread::spawn(move || {
            let m = rx.try_pop().unwrap().unwrap();
            r.ring();
            m
        });
        // The writer, as `pipe.rs`'s push: on Full, snapshot the bytes in use
        // and retry; on Full again, wait for `head` to move past the snapshot.
        let mut used = None;
        loop {
            match tx.try_push(&[3; 24]) {
                Ok(()) => break,
                Err(_) => match used.take() {
                    None => used = Some(tx.ring().len_bytes()),
                    Some(used) => {
                        let ring = tx.ring().clone();
                        room.wait_once(|| ring.len_bytes() < used, None);
                    }
                },
            }
        }
        assert_eq!(reader.join().unwrap(), vec![1; 24]);
    });
}

/// The reader as `wait_for` does it: spins (two looks here) only while the
/// peer's presence says it may run (awake, not on the reader's CPU), then
/// sleeps marked asleep. The writer meanwhile marks itself asleep and awake
/// (an end waiting for something else), publishes, rings, and marks the
/// reader awake when the ring found it asleep. Whatever the hints say when
/// the reader looks, the message is received: the hints decide only how the
/// reader waits, never whether it is woken.
#[test]
fn presence_hints_never_cost_a_wake_up() {
    let n = if quick() { 1 } else { 2 };
    loom::model(move || {
        let ring = SpscRing::new_heap(64).unwrap();
        let (mut tx, mut rx) = ring.split();
        let bell = Arc::new(Bell::new());
        // presence[0]: the reader's, presence[1]: the writer's.
        let presence = Arc::new([Presence::new(), Presence::new()]);
        let (b, p) = (bell.clone(), presence.clone());
        let writer = thread::spawn(move || {
            for i in 0..n {
                p[1].fall_asleep();
                p[1].awake_on(Some(i as u32));
                tx.try_push(&[i as u8]).unwrap();
                if b.ring().futex {
                    p[0].wake();
                }
            }
        });
        let (me, peer) = (&presence[0], &presence[1]);
        for i in 0..n {
            me.awake_on(Some(0));
            let mut got = rx.try_pop().unwrap();
            if got.is_none() && !peer.asleep() && peer.cpu() != Some(0) {
                for _ in 0..2 {
                    thread::yield_now();
                    got = rx.try_pop().unwrap();
                    if got.is_some() {
                        break;
                    }
                }
            }
            while got.is_none() {
                me.fall_asleep();
                let r = rx.ring().clone();
                bell.wait_once(|| !r.is_empty(), None);
                me.wake();
                got = rx.try_pop().unwrap();
            }
            assert_eq!(got, Some(vec![i as u8]));
        }
        writer.join().unwrap();
    });
}
