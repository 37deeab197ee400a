//! Twin of seed 000 §1.5 "进程锁": a [`Lock`](mproc::Lock) around the one
//! shared screen. Ten processes write; with the lock each line comes out whole.
//!
//! Python passes `sys.stdout` along; a forked Rust child inherits stdout as
//! fd 1. The naps inside the lock are 10 ms and 20 ms instead of 0.1 s and 1 s.
//! Run: `cargo run -p mproc --example lock_output`.

use std::io::Write;
use std::time::Duration;

use mproc::prelude::*;

fn write_locked(lock: &Lock, nap: Duration, text: &str) {
    let _held = lock.lock().expect("lock");
    std::thread::sleep(nap);
    // Written in two pieces on purpose: without the lock, another process's
    // text could land between them.
    let mut out = std::io::stdout();
    let (head, tail) = text.split_at(text.len() / 2);
    let _ = out.write_all(head.as_bytes());
    let _ = out.flush();
    let _ = writeln!(out, "{tail}");
}

fn main() -> mproc::Result<()> {
    let lock = Lock::new()?;
    let mut task = Vec::new();
    for _ in 0..5 {
        let (l1, l2) = (lock.clone(), lock.clone());
        task.push(Process::new(move || write_locked(&l1, Duration::from_millis(10), "hello!!!")));
        task.push(Process::new(move || write_locked(&l2, Duration::from_millis(20), "world")));
    }
    for j in &mut task {
        j.start()?;
    }
    for j in &mut task {
        j.join()?;
    }
    Ok(())
}
