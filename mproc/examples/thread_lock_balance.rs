//! Twin of seed 003 "Lock" (the bank balance): two threads deposit and
//! withdraw 100 000 times each; with a [`Lock`](mproc::Lock) around
//! `change_it` the balance ends at 0.
//!
//! The balance is a [`RawValue`](mproc::RawValue) in shared memory and the
//! lock is mproc's cross-process lock — the same code works between processes.
//! (The tutorial's unlocked version races; racing on plain memory is undefined
//! behaviour in Rust, so the twin shows only the locked one.)
//! Run: `cargo run -p mproc --example thread_lock_balance`.

use std::thread;

use mproc::prelude::*;

fn change_it(balance: &RawValue<i64>, n: i64) {
    // Deposit then withdraw: the result should be unchanged.
    balance.set(balance.get() + n);
    balance.set(balance.get() - n);
}

fn run_thread(balance: &RawValue<i64>, lock: &Lock, n: i64) {
    for _ in 0..100_000 {
        // `lock.acquire()` … `finally: lock.release()` is a guard in Rust:
        // released when it drops, even if `change_it` panics.
        let _held = lock.lock().expect("lock");
        change_it(balance, n);
    }
}

fn main() -> mproc::Result<()> {
    let balance = RawValue::new(0_i64)?;
    let lock = Lock::new()?;
    thread::scope(|s| {
        s.spawn(|| run_thread(&balance, &lock, 5));
        s.spawn(|| run_thread(&balance, &lock, 8));
    });
    println!("{}", balance.get());
    Ok(())
}
