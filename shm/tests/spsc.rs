//! `SpscRing`: single-process behaviour, errors, and real cross-process traffic.

mod common;

use std::time::{Duration, Instant};

use common::{check_msg, fill_msg, make_msg, msg_len};
use mproc_shm::ring::{RingError, SpscRing};
use mproc_shm::{Exports, Segment, Share, ShmError};
use mproc_testkit::{fork, wait_child, Exit};

/// Messages sent across processes (shrunk in debug builds, which are ~20x slower).
const COUNT: u64 = if cfg!(debug_assertions) { 1_000_000 } else { 4_000_000 };

#[test]
fn smoke() {
    let ring = SpscRing::new(1024).unwrap();
    assert_eq!(ring.capacity(), 1024);
    assert_eq!(ring.max_message(), 504);
    let (mut tx, mut rx) = ring.split();
    assert!(ring.is_empty());
    assert_eq!(rx.try_pop().unwrap(), None);
    tx.try_push(b"hello").unwrap();
    tx.try_push(b"").unwrap();
    assert_eq!(ring.len_bytes(), 16 + 8);
    assert_eq!(rx.try_pop().unwrap().as_deref(), Some(&b"hello"[..]));
    let mut buf = vec![1, 2, 3];
    assert!(rx.try_pop_into(&mut buf).unwrap());
    assert!(buf.is_empty());
    assert!(!rx.try_pop_into(&mut buf).unwrap());
    assert!(ring.is_empty());
}

#[test]
fn errors_name_the_sizes() {
    assert!(matches!(SpscRing::new(0), Err(ShmError::ZeroSize { what: "SpscRing capacity" })));
    assert!(matches!(SpscRing::new(usize::MAX), Err(ShmError::TooLarge { size: usize::MAX, .. })));
    let ring = SpscRing::new(100).unwrap(); // rounded up to 128
    assert_eq!(ring.capacity(), 128);
    let (mut tx, _rx) = ring.split();
    let err = tx.try_push(&[0; 57]).unwrap_err();
    assert_eq!(err, RingError::TooLarge { len: 57, max: 56 });
    assert!(err.to_string().contains("57") && err.to_string().contains("56"));
    tx.try_push(&[0; 56]).unwrap(); // 64-byte record
    tx.try_push(&[0; 56]).unwrap(); // fills the ring
    assert_eq!(tx.try_push(&[]).unwrap_err(), RingError::Full { len: 0, free: 0 });
}

#[test]
fn full_and_empty_edges_with_wrap_around() {
    let ring = SpscRing::new(64).unwrap(); // max message 24
    let (mut tx, mut rx) = ring.split();
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    // Lengths 0..=24 cycle through every alignment of the wrap point.
    for round in 0..2_000u64 {
        loop {
            let len = ((next_in * 7 + round) % 25) as usize;
            let msg: Vec<u8> = (0..len).map(|i| (next_in as u8).wrapping_add(i as u8)).collect();
            match tx.try_push(&msg) {
                Ok(()) => next_in += 1,
                Err(RingError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(next_in > next_out, "a push into an empty ring must succeed");
        let take = 1 + round % 3;
        for _ in 0..take {
            let Some(m) = rx.try_pop().unwrap() else { break };
            assert!(m.iter().enumerate().all(|(i, &b)| b == (next_out as u8).wrapping_add(i as u8)));
            next_out += 1;
        }
    }
    while let Some(m) = rx.try_pop().unwrap() {
        assert!(m.iter().enumerate().all(|(i, &b)| b == (next_out as u8).wrapping_add(i as u8)));
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
    assert!(ring.is_empty());
}

#[test]
fn zero_copy_grants() {
    let ring = SpscRing::new(256).unwrap();
    let (mut tx, mut rx) = ring.split();
    // An abandoned reservation publishes nothing.
    tx.reserve(10).unwrap().fill(0xee);
    assert!(ring.is_empty());
    let mut g = tx.reserve(4).unwrap();
    g.copy_from_slice(b"abcd");
    g.commit();
    // A dropped read grant leaves the message in place.
    assert_eq!(&*rx.peek().unwrap().unwrap(), b"abcd");
    let g = rx.peek().unwrap().unwrap();
    assert_eq!(&*g, b"abcd");
    g.release();
    assert!(rx.peek().unwrap().is_none());
}

#[test]
fn placed_in_a_segment_and_attached() {
    let seg = Segment::anonymous(8192).unwrap();
    let off = SpscRing::ALIGN * 2;
    assert!(SpscRing::footprint(1000).unwrap() <= 8192 - off);
    let ring = SpscRing::new_in(&seg, off, 1000).unwrap();
    let (mut tx, _) = ring.split();
    tx.try_push(b"placed").unwrap();
    let again = SpscRing::attach(&seg, off).unwrap();
    assert_eq!(again.capacity(), 1024);
    assert_eq!(again.consumer().try_pop().unwrap().as_deref(), Some(&b"placed"[..]));
    // A zeroed place is not a ring; an out-of-range one is refused.
    assert!(matches!(SpscRing::attach(&seg, 4096), Err(ShmError::LayoutMismatch { .. })));
    assert!(matches!(SpscRing::new_in(&seg, 4096, 8192), Err(ShmError::OutOfBounds { .. })));
    assert!(matches!(SpscRing::new_in(&seg, 8, 64), Err(ShmError::Misaligned { .. })));
}

#[test]
fn share_tokens_round_trip() {
    let ring = SpscRing::new(512).unwrap();
    let (tx, rx) = ring.split();
    let mut ex = Exports::new();
    let t_tx = postcard::to_allocvec(&tx.export(&mut ex).unwrap()).unwrap();
    let t_rx = postcard::to_allocvec(&rx.export(&mut ex).unwrap()).unwrap();
    assert_eq!(ex.fds().len(), 1, "both ends live in one arena segment");
    drop((tx, rx));
    let mut tx = mproc_shm::ring::Producer::import(postcard::from_bytes(&t_tx).unwrap()).unwrap();
    let mut rx = mproc_shm::ring::Consumer::import(postcard::from_bytes(&t_rx).unwrap()).unwrap();
    tx.try_push(b"via token").unwrap();
    assert_eq!(rx.try_pop().unwrap().as_deref(), Some(&b"via token"[..]));
}

/// A producer child pushes COUNT self-checking messages of 16..=100 bytes; the
/// parent checks every one, in order.
#[test]
fn child_to_parent_millions_with_checksums() {
    let ring = SpscRing::new(64 << 10).unwrap();
    let (mut tx, mut rx) = ring.split();
    let child = fork(120, move || {
        let mut m = Vec::new();
        for seq in 0..COUNT {
            fill_msg(1, seq, msg_len(1, seq, 100), &mut m);
            while tx.try_push(&m).is_err() {
                std::thread::yield_now();
            }
        }
        0
    });
    let deadline = Instant::now() + Duration::from_secs(110);
    let mut buf = Vec::new();
    let mut next = 0;
    while next < COUNT {
        if rx.try_pop_into(&mut buf).unwrap() {
            assert_eq!(check_msg(&buf), Some((1, next)), "message {next} torn or out of order");
            assert_eq!(buf.len(), msg_len(1, next, 100));
            next += 1;
        } else {
            assert!(Instant::now() < deadline, "stalled at message {next}");
            std::thread::yield_now();
        }
    }
    assert_eq!(wait_child(child, Duration::from_secs(10)), Exit::Code(0));
    assert!(rx.try_pop().unwrap().is_none(), "no extra message");
}

/// The parent pushes through zero-copy grants; a consumer child peeks, checks
/// and releases, and reports by exit code.
#[test]
fn parent_to_child_zero_copy() {
    let n = COUNT / 10;
    let ring = SpscRing::new(4096).unwrap();
    let (mut tx, mut rx) = ring.split();
    let child = fork(120, move || {
        for seq in 0..n {
            loop {
                match rx.peek() {
                    Ok(Some(g)) => {
                        if check_msg(&g) != Some((2, seq)) {
                            return 3;
                        }
                        g.release();
                        break;
                    }
                    Ok(None) => std::thread::yield_now(), // not a bare spin: the test must finish on a loaded machine
                    Err(_) => return 4,
                }
            }
        }
        0
    });
    let deadline = Instant::now() + Duration::from_secs(110);
    for seq in 0..n {
        let m = make_msg(2, seq, msg_len(2, seq, 1000));
        loop {
            match tx.reserve(m.len()) {
                Ok(mut g) => {
                    g.copy_from_slice(&m);
                    g.commit();
                    break;
                }
                Err(RingError::Full { .. }) => {
                    assert!(Instant::now() < deadline, "stalled at {seq}");
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert_eq!(wait_child(child, Duration::from_secs(110)), Exit::Code(0));
}
