//! loom models of `ShmBox`'s state word (phase, holder pid, ticket), moved
//! only by compare-and-swap:
//!
//! 1. A token is claimed exactly once: two receivers of one token (a box sent
//!    twice) and the sender taking it back after a failed send race; after
//!    the winner sends it on, the old token is refused and the new one claimed
//!    once.
//! 2. Recycling: the holder drops its box (HELD → FREE) while the creator's
//!    allocator tries to take the segment and the creator's trim tries to
//!    retire it: at most one of them gets it, never while it is held, and a
//!    token of the earlier round, replayed meanwhile, is refused.
//! 3. A holder that died: the creator's allocator and a process retiring it
//!    (its own trim, or a receiver that found the creator dead) race to take
//!    the segment over: exactly one wins.
//! 4. Hand-over of the data: what the holder wrote before it sent the box
//!    (relaxed stores, as a user's writes are) is what a receiver whose claim
//!    wins reads, with the state word as the only synchronisation.
//!
//! Each thread that gets the segment counts itself into `owners` and checks
//! it is alone.
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::atomic::AtomicUsize;
use loom::thread;
use mproc_shm::__testing::box_state as st;
use mproc_shm::primitive::{AtomicU64, Ordering};

const CREATOR: u32 = 1;
const RECEIVER: u32 = 2;
const OTHER: u32 = 3;

/// Counts an owner in; panics if another one is in.
fn own(owners: &AtomicUsize) {
    assert_eq!(owners.fetch_add(1, Ordering::AcqRel), 0, "two owners at once");
}

fn disown(owners: &AtomicUsize) {
    owners.fetch_sub(1, Ordering::AcqRel);
}

#[test]
fn one_token_is_claimed_exactly_once() {
    loom::model(|| {
        let word = Arc::new(AtomicU64::new(st::created(CREATOR)));
        let sent = st::send(&word, st::created(CREATOR)).unwrap();
        let receivers: Vec<_> = [RECEIVER, OTHER]
            .into_iter()
            .map(|me| {
                let w = word.clone();
                thread::spawn(move || st::claim(&w, sent, me))
            })
            .collect();
        let sender_took_it_back = st::claim(&word, sent, CREATOR);
        let won: Vec<Option<u64>> = receivers.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<u64> = won.iter().flatten().copied().chain(sender_took_it_back).collect();
        assert_eq!(winners.len(), 1, "receivers {won:?}, sender {sender_took_it_back:?}");
        let held = winners[0];
        assert_eq!(word.load(Ordering::Relaxed), held);
        // The owner sends it on: the first token is stale now.
        let next = st::send(&word, held).unwrap();
        let w = word.clone();
        let forwarded = thread::spawn(move || st::claim(&w, next, RECEIVER));
        let stale = st::claim(&word, sent, OTHER);
        assert!(forwarded.join().unwrap().is_some() && stale.is_none());
    });
}

#[test]
fn a_released_segment_goes_to_one_new_owner_and_old_tokens_fail() {
    loom::model(|| {
        let word = Arc::new(AtomicU64::new(st::created(CREATOR)));
        let owners = Arc::new(AtomicUsize::new(0));
        let data = Arc::new(AtomicU64::new(0));
        // Round 1: the creator sends, the receiver claims.
        let sent = st::send(&word, st::created(CREATOR)).unwrap();
        let held = st::claim(&word, sent, RECEIVER).unwrap();
        own(&owners);

        // The receiver uses the box, then drops it.
        let receiver = {
            let (word, owners, data) = (word.clone(), owners.clone(), data.clone());
            thread::spawn(move || {
                data.store(1, Ordering::Relaxed);
                disown(&owners);
                assert!(st::release(&word, held));
            })
        };
        // The creator's allocator: one look at the word, as `take` does.
        let allocator = {
            let (word, owners, data) = (word.clone(), owners.clone(), data.clone());
            thread::spawn(move || {
                let seen = word.load(Ordering::Acquire);
                let took = st::take_free(&word, seen, CREATOR)?;
                // The receiver's writes are visible to the next owner (read
                // before `own`, whose counter would order them by itself).
                assert_eq!(data.load(Ordering::Relaxed), 1);
                own(&owners);
                Some(took)
            })
        };
        // The creator's trim (another thread of it), and a replayed token of
        // round 1.
        let seen = word.load(Ordering::Acquire);
        let retired = st::phase(seen) == st::FREE && st::retire(&word, seen);
        if retired {
            own(&owners);
        }
        assert!(st::claim(&word, sent, OTHER).is_none(), "a token of round 1");
        receiver.join().unwrap();
        let took = allocator.join().unwrap();
        assert!(!(retired && took.is_some()), "retired and reused");
        let end = word.load(Ordering::Relaxed);
        match took {
            Some(w) => assert_eq!((end, st::holder(w), st::ticket(w)), (w, CREATOR, 4)),
            None if retired => assert_eq!(end, st::RETIRED),
            None => assert_eq!(st::phase(end), st::FREE),
        }
    });
}

#[test]
fn a_dead_holders_segment_is_taken_over_once() {
    loom::model(|| {
        // Held by a receiver that died (it runs nothing).
        let word = Arc::new(AtomicU64::new(st::created(CREATOR)));
        let sent = st::send(&word, st::created(CREATOR)).unwrap();
        let held = st::claim(&word, sent, RECEIVER).unwrap();
        let dead = |pid: u32| pid != RECEIVER;
        let owners = Arc::new(AtomicUsize::new(0));
        let allocator = {
            let (word, owners) = (word.clone(), owners.clone());
            thread::spawn(move || {
                let seen = word.load(Ordering::Acquire);
                if st::phase(seen) == st::HELD {
                    st::reclaim_dead(&word, seen, dead);
                }
                let seen = word.load(Ordering::Acquire);
                let took = st::take_free(&word, seen, CREATOR).is_some();
                if took {
                    own(&owners);
                }
                took
            })
        };
        let seen = word.load(Ordering::Acquire);
        if seen == held {
            st::reclaim_dead(&word, seen, dead);
        }
        let seen = word.load(Ordering::Acquire);
        let retired = st::phase(seen) == st::FREE && st::retire(&word, seen);
        if retired {
            own(&owners);
        }
        let took = allocator.join().unwrap();
        assert!(took ^ retired, "taken {took}, retired {retired}: exactly one takes it over");
    });
}

#[test]
fn the_senders_writes_reach_the_receiver_through_the_word_alone() {
    loom::model(|| {
        let word = Arc::new(AtomicU64::new(st::created(CREATOR)));
        let data = Arc::new(AtomicU64::new(0));
        // The token's value is known in advance (the next ticket), so the
        // receiver needs no carrier: nothing but the word orders the two.
        let token = {
            let probe = AtomicU64::new(st::created(CREATOR));
            st::send(&probe, st::created(CREATOR)).unwrap()
        };
        let sender = {
            let (word, data) = (word.clone(), data.clone());
            thread::spawn(move || {
                data.store(7, Ordering::Relaxed);
                assert_eq!(st::send(&word, st::created(CREATOR)), Some(token));
            })
        };
        if st::claim(&word, token, RECEIVER).is_some() {
            assert_eq!(data.load(Ordering::Relaxed), 7, "claimed, but the holder's write is not seen");
        }
        sender.join().unwrap();
    });
}
