//! Twin of seed 000 §2.1 示例代码1 "进程池": `Pool(processes=3)` runs four
//! `apply_async` tasks, at most three at a time; `close()` + `join()` wait for
//! them, and each `AsyncResult::get` returns its task's value, in submission
//! order.
//!
//! Tasks sleep 100 ms instead of 3 s. A task is a `fn` item (or a closure
//! without captures); its argument and result travel with serde.
//! Run: `cargo run -p mproc --example pool_apply_async`.

use std::time::{Duration, Instant};

use mproc::prelude::*;

fn func(msg: String) -> String {
    println!("msg: {} {msg}", std::process::id());
    std::thread::sleep(Duration::from_millis(100));
    println!("end");
    format!("return msg {msg}")
}

fn main() -> mproc::Result<()> {
    let pool = Pool::new(3)?;
    let beg = Instant::now();
    let mut jobs = Vec::new();
    for i in 0..4 {
        let msg = format!("hello {i}");
        jobs.push(pool.apply_async(func, msg)?);
    }
    println!("{}", "mark!".repeat(3));
    pool.close();
    pool.join()?;
    println!("{:.3}", beg.elapsed().as_secs_f64());
    println!("sub-process done!");
    for j in jobs {
        println!("{}", j.get()?);
    }
    Ok(())
}
