//! Twin of seed 003 "多线程" (`loop` in `LoopThread`): start a named thread,
//! join it. Threads need nothing from mproc; the name plays the part of
//! `threading.current_thread().name` (Rust calls the main thread `main`).
//!
//! Naps: 10 ms instead of 1 s. Run: `cargo run -p mproc --example thread_loop`.

use std::thread;
use std::time::Duration;

fn name() -> String {
    thread::current().name().unwrap_or("<unnamed>").to_owned()
}

fn run_loop() {
    println!("thread {} is running...", name());
    let mut n = 0;
    while n < 5 {
        n += 1;
        println!("thread {} >>> {n}", name());
        thread::sleep(Duration::from_millis(10));
    }
    println!("thread {} ended.", name());
}

fn main() -> std::io::Result<()> {
    println!("thread {} is running...", name());
    let t = thread::Builder::new().name("LoopThread".into()).spawn(run_loop)?;
    t.join().expect("LoopThread panicked");
    println!("thread {} ended.", name());
    Ok(())
}
