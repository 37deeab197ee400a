//! The loom backend: the futex contract built from loom's `Mutex` and `Condvar`.
//!
//! One mutex-protected table stands for the kernel's wait queues: `wait` checks
//! the word under the mutex and, if it still holds `expected`, enqueues a
//! ticket keyed by the word's address and sleeps on the condvar until its ticket
//! is picked; `wake(n)` picks the first `n` tickets of that address. So `wake(1)`
//! wakes exactly one sleeper, as the kernel does — an over-waking model would
//! hide lost wake-ups that need a second wake. Because the check and the
//! enqueue are atomic with respect to `wake`, a lost wake-up in the code under
//! test shows up as a loom deadlock. Timeouts are not modelled: a timed wait
//! sleeps until woken, so models exercise only the wake-up paths.

use std::time::Duration;

use loom::sync::{Condvar, Mutex};

use super::{Futex, WaitOutcome};
use crate::primitive::{AtomicU32, Ordering};

#[derive(Default)]
struct Table {
    next: u64,
    /// (address, ticket) of each sleeper, in arrival order.
    queue: Vec<(usize, u64)>,
    /// Tickets picked by `wake` and not yet collected by their sleeper.
    woken: Vec<u64>,
}

loom::lazy_static! {
    static ref TABLE: (Mutex<Table>, Condvar) = (Mutex::new(Table::default()), Condvar::new());
}

/// loom's model of the futex.
pub(crate) struct Model;

impl Futex for Model {
    fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) -> WaitOutcome {
        let (lock, cv) = &*TABLE;
        let mut t = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return WaitOutcome::Woken;
        }
        let ticket = t.next;
        t.next += 1;
        t.queue.push((word as *const AtomicU32 as usize, ticket));
        loop {
            t = cv.wait(t).unwrap();
            if let Some(i) = t.woken.iter().position(|&w| w == ticket) {
                t.woken.swap_remove(i);
                return WaitOutcome::Woken;
            }
        }
    }

    fn wake(word: &AtomicU32, n: u32) -> usize {
        let (lock, cv) = &*TABLE;
        let mut t = lock.lock().unwrap();
        let addr = word as *const AtomicU32 as usize;
        let mut woken = 0;
        while woken < n as usize {
            let Some(i) = t.queue.iter().position(|&(a, _)| a == addr) else { break };
            let (_, ticket) = t.queue.remove(i);
            t.woken.push(ticket);
            woken += 1;
        }
        if woken > 0 {
            cv.notify_all();
        }
        woken
    }
}
