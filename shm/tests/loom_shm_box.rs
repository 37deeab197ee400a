//! loom model of `ShmBox`'s claim: the `receipts` word in the box's header,
//! moved by one compare-and-swap from the value a token was sent at to the
//! next. Two receivers of one token (a box sent twice) and the sender taking
//! it back after a failed send race: exactly one of them owns the box. After
//! the winner sends it on, the old token is refused and the new one claimed
//! once.
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use mproc_shm::__testing::claim_box;
use mproc_shm::primitive::{AtomicU64, Ordering};

#[test]
fn one_token_is_claimed_exactly_once() {
    loom::model(|| {
        let receipts = Arc::new(AtomicU64::new(0));
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let r = receipts.clone();
                thread::spawn(move || claim_box(&r, 0))
            })
            .collect();
        let sender_took_it_back = claim_box(&receipts, 0);
        let won: Vec<bool> = receivers.into_iter().map(|h| h.join().unwrap()).collect();
        let owners = won.iter().filter(|&&w| w).count() + sender_took_it_back as usize;
        assert_eq!(owners, 1, "receivers {won:?}, sender {sender_took_it_back}");
        assert_eq!(receipts.load(Ordering::Relaxed), 1);
        // The owner sends it on at receipts = 1: the first token is stale now.
        let next = receipts.clone();
        let forwarded = thread::spawn(move || claim_box(&next, 1));
        let stale = claim_box(&receipts, 0);
        assert!(forwarded.join().unwrap() && !stale);
    });
}
