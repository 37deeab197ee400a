//! Twin of seed 000 §2.1 示例代码2 "通过Semaphore来控制并发任务数量" —
//! `Semaphore(2)` over four processes: at most two hold it at once, so the
//! four one-nap tasks take two naps — and of seed 004 "Semaphore" (five
//! workers with growing naps).
//!
//! Naps: 100 ms instead of 1 s; seed 004's `i * 2` s are `i * 20` ms.
//! Run: `cargo run -p mproc --example semaphore`.

use std::time::{Duration, Instant};

use mproc::prelude::*;

fn f1(s: &Semaphore, msg: &str) {
    s.acquire().expect("acquire");
    println!("hello: {msg} {}", std::process::id());
    std::thread::sleep(Duration::from_millis(100));
    println!("end!");
    s.release().expect("release");
}

fn worker(s: &Semaphore, i: u64) {
    // The RAII form: the permit is given back when it drops.
    let _permit = s.permit().expect("permit");
    println!("{} acquire", current_process().name());
    std::thread::sleep(Duration::from_millis(i * 20));
    println!("{} release", current_process().name());
}

fn main() -> mproc::Result<()> {
    // Seed 000.
    let beg = Instant::now();
    let s = Semaphore::new(2)?;
    let mut process = Vec::new();
    for j in 0..4 {
        let msg = format!("this is {j}");
        let s = s.clone();
        process.push(Process::new(move || f1(&s, &msg)));
    }
    for p in &mut process {
        p.start()?;
    }
    for p in &mut process {
        p.join()?;
    }
    println!("{:.3}", beg.elapsed().as_secs_f64());

    // Seed 004.
    let s = Semaphore::new(2)?;
    let mut workers = Vec::new();
    for i in 0..5 {
        let s = s.clone();
        let mut p = Process::builder().name(format!("Process-{}", i + 1)).target(move || worker(&s, i)).build();
        p.start()?;
        workers.push(p);
    }
    for p in &mut workers {
        p.join()?;
    }
    Ok(())
}
