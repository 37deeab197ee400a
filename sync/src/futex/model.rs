//! The loom backend: the futex contract built from loom's `Mutex` and `Condvar`.
//!
//! One mutex and condition variable stand for the kernel's hash table of wait
//! queues. `wait` checks the word under the mutex and sleeps on the condvar;
//! `wake` takes the mutex and wakes every sleeper (an over-wake is a spurious
//! wake-up, which the futex contract allows). Because the check and the sleep
//! are atomic with respect to `wake`, a lost wake-up in the code under test shows
//! up as a loom deadlock. Timeouts are not modelled: a timed wait sleeps until
//! woken, so models exercise only the wake-up paths.

use std::time::Duration;

use loom::sync::{Condvar, Mutex};

use super::{Futex, WaitOutcome};
use crate::primitive::{AtomicU32, Ordering};

loom::lazy_static! {
    static ref TABLE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
}

/// loom's model of the futex.
pub(crate) struct Model;

impl Futex for Model {
    fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) -> WaitOutcome {
        let (lock, cv) = &*TABLE;
        let guard = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return WaitOutcome::Woken;
        }
        drop(cv.wait(guard).unwrap());
        WaitOutcome::Woken
    }

    fn wake(_word: &AtomicU32, n: u32) -> usize {
        let (lock, cv) = &*TABLE;
        let _guard = lock.lock().unwrap();
        cv.notify_all();
        n as usize
    }
}
