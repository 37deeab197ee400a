//! `MpmcRing`: single-process behaviour, errors, and many producer and consumer
//! processes exchanging millions of self-checking messages.

mod common;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::{check_msg, fill_msg, msg_len};
use mproc_shm::ring::{MpmcRing, RingError};
use mproc_shm::{Exports, Segment, Share, ShmError};
use mproc_testkit::{fork, wait_child, Exit};

#[test]
fn smoke() {
    let ring = MpmcRing::new(4, 32).unwrap();
    assert_eq!((ring.capacity(), ring.max_message()), (4, 32));
    assert!(ring.is_empty());
    assert_eq!(ring.try_pop().unwrap(), None);
    ring.try_push(b"a").unwrap();
    ring.try_push(b"").unwrap();
    assert_eq!(ring.len(), 2);
    assert_eq!(ring.try_pop().unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(ring.try_pop().unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(ring.try_pop().unwrap(), None);
}

#[test]
fn errors_name_the_sizes() {
    assert!(matches!(MpmcRing::new(0, 8), Err(ShmError::ZeroSize { what: "MpmcRing slots" })));
    assert!(matches!(MpmcRing::new(8, 0), Err(ShmError::ZeroSize { what: "MpmcRing max_message" })));
    assert!(matches!(MpmcRing::new(usize::MAX, 8), Err(ShmError::TooLarge { size: usize::MAX, .. })));
    let ring = MpmcRing::new(3, 10).unwrap();
    assert_eq!(ring.capacity(), 4);
    let err = ring.try_push(&[0; 11]).unwrap_err();
    assert_eq!(err, RingError::TooLarge { len: 11, max: 10 });
    assert!(err.to_string().contains("11") && err.to_string().contains("10"));
    for _ in 0..4 {
        ring.try_push(&[1; 10]).unwrap();
    }
    assert_eq!(ring.try_push(b"x").unwrap_err(), RingError::Full { len: 1, free: 0 });
}

#[test]
fn in_place_push_and_pop() {
    let ring = MpmcRing::new(2, 8).unwrap();
    let r = ring.try_push_with(3, |slot| {
        assert_eq!(slot.len(), 8);
        slot[..3].copy_from_slice(b"abc");
        Ok::<usize, ()>(3)
    });
    assert_eq!(r, Ok(Ok(())));
    assert_eq!(ring.try_pop_with(|m| m.to_vec()).unwrap().as_deref(), Some(&b"abc"[..]));
    assert_eq!(ring.try_pop_with(|m| m.len()).unwrap(), None);
    // The writer never runs on a full ring.
    ring.try_push(b"1").unwrap();
    ring.try_push(b"2").unwrap();
    let r = ring.try_push_with(5, |_| -> Result<usize, ()> { panic!("ran on a full ring") });
    assert_eq!(r, Err(RingError::Full { len: 5, free: 0 }));
}

#[test]
fn a_failed_or_panicking_writer_delivers_nothing() {
    let ring = MpmcRing::new(8, 8).unwrap();
    ring.try_push(b"before").unwrap();
    assert_eq!(
        ring.try_push_with(0, |slot| {
            slot.fill(9);
            Err("no")
        }),
        Ok(Err("no"))
    );
    assert_eq!(ring.try_push_with(0, |_| Ok::<usize, ()>(9)), Err(RingError::TooLarge { len: 9, max: 8 }));
    let unwound = std::panic::catch_unwind(|| {
        let _ = ring.try_push_with(0, |slot| -> Result<usize, ()> {
            slot.fill(7);
            panic!("writer panics");
        });
    });
    assert!(unwound.is_err());
    ring.try_push(b"after").unwrap();
    // The given-up positions hold their places until a consumer passes them.
    assert_eq!(ring.len(), 5);
    assert_eq!(ring.try_pop().unwrap().as_deref(), Some(&b"before"[..]));
    assert_eq!(ring.try_pop().unwrap().as_deref(), Some(&b"after"[..]));
    assert_eq!(ring.try_pop().unwrap(), None);
    assert!(ring.is_empty());
    // And the slots are reused on the next lap.
    for i in 0..8u8 {
        ring.try_push(&[i]).unwrap();
    }
    for i in 0..8u8 {
        assert_eq!(ring.try_pop().unwrap(), Some(vec![i]));
    }
}

#[test]
fn a_panicking_reader_consumes_the_message() {
    let ring = MpmcRing::new(2, 8).unwrap();
    ring.try_push(b"one").unwrap();
    ring.try_push(b"two").unwrap();
    let unwound = std::panic::catch_unwind(|| ring.try_pop_with(|_| panic!("reader panics")));
    assert!(unwound.is_err());
    assert_eq!(ring.try_pop().unwrap().as_deref(), Some(&b"two"[..]));
    ring.try_push(b"3").unwrap();
    ring.try_push(b"4").unwrap();
    assert_eq!(ring.len(), 2);
}

#[test]
fn wraps_many_laps_in_fifo_order() {
    let ring = MpmcRing::new(4, 16).unwrap();
    let (mut next_in, mut next_out) = (0u64, 0u64);
    for round in 0..5_000u64 {
        for _ in 0..(round % 5) {
            match ring.try_push(&next_in.to_le_bytes()[..(next_in % 9) as usize]) {
                Ok(()) => next_in += 1,
                Err(RingError::Full { .. }) => assert_eq!(next_in - next_out, 4),
                Err(e) => panic!("{e}"),
            }
        }
        for _ in 0..(round % 4) {
            match ring.try_pop().unwrap() {
                Some(m) => {
                    assert_eq!(m, &next_out.to_le_bytes()[..(next_out % 9) as usize]);
                    next_out += 1;
                }
                None => assert_eq!(next_in, next_out),
            }
        }
    }
    assert!(next_out > 4 * 1000, "the test wrapped many laps");
}

#[test]
fn placed_attached_and_shared_by_token() {
    let seg = Segment::anonymous(64 << 10).unwrap();
    let ring = MpmcRing::new_in(&seg, MpmcRing::ALIGN, 16, 100).unwrap();
    assert!(MpmcRing::footprint(16, 100).unwrap() <= (64 << 10) - MpmcRing::ALIGN);
    ring.try_push(b"placed").unwrap();
    let again = MpmcRing::attach(&seg, MpmcRing::ALIGN).unwrap();
    assert_eq!((again.capacity(), again.max_message()), (16, 100));
    assert!(matches!(MpmcRing::attach(&seg, 32 << 10), Err(ShmError::LayoutMismatch { .. })));
    let mut ex = Exports::new();
    let token = postcard::to_allocvec(&again.export(&mut ex).unwrap()).unwrap();
    let imported = MpmcRing::import(postcard::from_bytes(&token).unwrap()).unwrap();
    assert_eq!(imported.try_pop().unwrap().as_deref(), Some(&b"placed"[..]));
}

/// Messages per producer across processes (shrunk in debug builds).
const PER_PRODUCER: u64 = if cfg!(debug_assertions) { 350_000 } else { 1_000_000 };
const PRODUCERS: u32 = 3;
const CONSUMERS: usize = 3;
const MAX_MSG: usize = 120;

/// Several producer and consumer processes: every message arrives once, intact,
/// and each consumer sees each producer's messages in order.
#[test]
fn many_processes_no_loss_no_duplicate() {
    let total = PER_PRODUCER * PRODUCERS as u64;
    let ring = MpmcRing::new(256, MAX_MSG).unwrap();
    // One receipt counter per message, plus a shared "consumed" count.
    let stats = Segment::anonymous(8 + total as usize).unwrap();
    let consumed = || {
        // SAFETY: the segment is 8-aligned (page-aligned) and lives as long as `stats`.
        unsafe { &*(stats.as_ptr() as *const AtomicU64) }
    };
    let seen = |p: u32, seq: u64| {
        // SAFETY: index < total, inside the segment; AtomicU8 has u8's layout.
        unsafe { &*(stats.as_ptr().add(8 + (p as u64 * PER_PRODUCER + seq) as usize) as *const AtomicU8) }
    };
    let mut children = Vec::new();
    for c in 0..CONSUMERS {
        let ring = ring.clone();
        children.push(fork(170, move || {
            let mut last = [None::<u64>; PRODUCERS as usize];
            let mut buf = Vec::new();
            while consumed().load(Ordering::Relaxed) < total {
                if !ring.try_pop_into(&mut buf).unwrap() {
                    std::thread::yield_now();
                    continue;
                }
                let Some((p, seq)) = check_msg(&buf) else { return 10 + c as i32 };
                if p >= PRODUCERS || seq >= PER_PRODUCER || buf.len() != msg_len(p, seq, MAX_MSG) {
                    return 20;
                }
                if last[p as usize].is_some_and(|l| l >= seq) {
                    return 30; // out of order for this consumer
                }
                last[p as usize] = Some(seq);
                seen(p, seq).fetch_add(1, Ordering::Relaxed);
                consumed().fetch_add(1, Ordering::Relaxed);
            }
            0
        }));
    }
    for p in 0..PRODUCERS {
        let ring = ring.clone();
        children.push(fork(170, move || {
            let mut m = Vec::new();
            for seq in 0..PER_PRODUCER {
                fill_msg(p, seq, msg_len(p, seq, MAX_MSG), &mut m);
                loop {
                    match ring.try_push(&m) {
                        Ok(()) => break,
                        Err(RingError::Full { .. }) => std::thread::yield_now(),
                        Err(_) => return 40,
                    }
                }
            }
            0
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(175);
    for pid in children {
        let left = deadline.saturating_duration_since(Instant::now());
        assert_eq!(wait_child(pid, left), Exit::Code(0), "child {pid}");
    }
    assert_eq!(consumed().load(Ordering::Relaxed), total);
    for p in 0..PRODUCERS {
        for seq in 0..PER_PRODUCER {
            assert_eq!(seen(p, seq).load(Ordering::Relaxed), 1, "producer {p} message {seq}");
        }
    }
    assert!(ring.is_empty() && ring.try_pop().unwrap().is_none());
}
