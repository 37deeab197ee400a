//! loom model of `RawEvent`: `set` wakes every waiter, also across a `clear`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use mproc_sync::RawEvent;

#[test]
fn set_wakes_all_waiters() {
    loom::model(|| {
        let n = if std::env::var_os("MPROC_LOOM_QUICK").is_some() { 1 } else { 2 };
        let ev = Arc::new(RawEvent::new());
        let waiters: Vec<_> = (0..n)
            .map(|_| {
                let ev = ev.clone();
                thread::spawn(move || assert!(ev.wait(None)))
            })
            .collect();
        ev.set();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(ev.is_set());
    });
}

#[test]
fn a_pulse_is_not_lost() {
    // set() then clear(): a waiter that had started waiting still returns true;
    // one that starts after the clear would wait, so the waiter here is known
    // to have started before the pulse only through the generation: it must
    // never sleep forever.
    loom::model(|| {
        let ev = Arc::new(RawEvent::new());
        let e = ev.clone();
        let waiter = thread::spawn(move || e.wait(None));
        ev.set();
        ev.clear();
        ev.set();
        assert!(waiter.join().unwrap());
    });
}
