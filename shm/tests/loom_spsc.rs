//! loom model of `SpscRing`: a producer and a consumer thread exchange a few
//! messages through a 64-byte ring, so pushes hit `Full` and records wrap with a
//! skip marker. Shadow cells on the data area make loom check that every byte
//! read happens after its write and every overwrite after its read.
#![cfg(loom)]

use loom::thread;
use mproc_shm::ring::SpscRing;

fn quick() -> bool {
    std::env::var_os("MPROC_LOOM_QUICK").is_some()
}

fn msg(i: usize) -> Vec<u8> {
    // Lengths 20, 9, 24: records of 32, 24 and 32 bytes in a 64-byte ring.
    let len = [20, 9, 24][i % 3];
    (0..len).map(|b| (i * 31 + b) as u8).collect()
}

#[test]
fn push_pop_wraps_without_tearing() {
    let n = if quick() { 2 } else { 3 };
    loom::model(move || {
        let ring = SpscRing::new_heap(64).unwrap();
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            for i in 0..n {
                while tx.try_push(&msg(i)).is_err() {
                    thread::yield_now();
                }
            }
        });
        for i in 0..n {
            loop {
                if let Some(m) = rx.try_pop().unwrap() {
                    assert_eq!(m, msg(i));
                    break;
                }
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(ring.is_empty());
    });
}

#[test]
fn zero_copy_grants() {
    loom::model(|| {
        let ring = SpscRing::new_heap(64).unwrap();
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            for i in 0..2 {
                loop {
                    if let Ok(mut g) = tx.reserve(msg(i).len()) {
                        g.copy_from_slice(&msg(i));
                        g.commit();
                        break;
                    }
                    thread::yield_now();
                }
            }
        });
        for i in 0..2 {
            loop {
                if let Some(g) = rx.peek().unwrap() {
                    assert_eq!(&*g, &msg(i)[..]);
                    g.release();
                    break;
                }
                thread::yield_now();
            }
        }
        producer.join().unwrap();
    });
}
