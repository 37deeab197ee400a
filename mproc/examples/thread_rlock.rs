//! Twin of seed 003 "线程的同步和通信" (`demon_rlock.py` and
//! `demon_no_rlock.py`): five threads each add 10 three times to a shared `x`,
//! nap, and print it. Holding an [`RLock`](mproc::RLock) across the adds, the
//! nap and the print, they print 30, 60, 90, 120, 150. An `RLock` may be taken
//! again by the thread that holds it (the tutorial's point: "an RLock can be
//! requested several times in one call chain"); it is released when every
//! acquire has been matched.
//!
//! Without the lock, every thread adds before any wakes, so all print 150.
//! Naps: 20 ms instead of 1 s. Run: `cargo run -p mproc --example thread_rlock`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::thread;
use std::time::Duration;

use mproc::prelude::*;

fn add_ten(x: &RawValue<i64>, lock: &RLock) {
    let _again = lock.lock().expect("re-entrant lock"); // already held: depth 2
    x.set(x.get() + 10);
}

fn main() -> mproc::Result<()> {
    let x = RawValue::new(0_i64)?;
    let lock = RLock::new()?;
    thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| {
                let _held = lock.lock().expect("lock");
                for _ in 0..3 {
                    add_ten(&x, &lock);
                }
                thread::sleep(Duration::from_millis(20));
                println!("{}", x.get());
            });
        }
    });

    println!("without a lock:");
    let x = AtomicI64::new(0);
    thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| {
                for _ in 0..3 {
                    x.fetch_add(10, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(20));
                println!("{}", x.load(Ordering::Relaxed));
                println!("---");
            });
        }
    });
    Ok(())
}
