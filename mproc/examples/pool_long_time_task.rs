//! Twin of seed 003 "进程池" (`long_time_task`): `Pool(4)` with five tasks.
//! Tasks 0–3 start at once; task 4 waits for a free worker, then reuses its
//! process (same pid).
//!
//! Each task sleeps a random time below 300 ms (the tutorial: below 3 s).
//! Run: `cargo run -p mproc --example pool_long_time_task`.

use std::time::{Duration, Instant, SystemTime};

use mproc::prelude::*;

/// A random number in `0..1` without a dependency: the clock's nanoseconds
/// mixed with the pid and the task number.
fn random(salt: u64) -> f64 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn long_time_task(name: u32) {
    println!("Run task {name} ({})...", std::process::id());
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(random(name.into()) * 0.3));
    println!("Task {name} runs {:.2} seconds.", start.elapsed().as_secs_f64());
}

fn main() -> mproc::Result<()> {
    println!("Parent Process is {}", std::process::id());
    let p = Pool::new(4)?;
    let mut results = Vec::new();
    for i in 0..5 {
        // Not waited on one by one: asynchronous, non-blocking submission.
        results.push(p.apply_async(long_time_task, i)?);
    }
    println!("Waiting for all subprocess done");
    p.close(); // no new tasks after this
    p.join()?; // waits for every worker to finish and exit
    for r in results {
        r.get()?; // a task that panicked would report it here
    }
    println!("All subprocesses done");
    Ok(())
}
