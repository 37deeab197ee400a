//! Twin of seed 000 §1.2.2 "派生进程": a process type of your own. Python
//! subclasses `multiprocessing.Process` and overrides `run`; Rust implements
//! [`Run`](mproc::Run) for a struct and starts it with `Process::builder().run(..)`.
//!
//! The tutorial's workers sleep 1 s; these sleep 100 ms. Five workers run at
//! once, so the whole takes about one nap, not five.
//! Run: `cargo run -p mproc --example custom_process`.

use std::time::{Duration, Instant};

use mproc::prelude::*;

struct Worker;

impl Run for Worker {
    fn run(&mut self) {
        std::thread::sleep(Duration::from_millis(100));
        println!("This is {}", current_process().name());
    }
}

fn main() -> mproc::Result<()> {
    let beg = Instant::now();
    let mut jobs: Vec<Process> =
        (1..=5).map(|i| Process::builder().name(format!("Worker-{i}")).run(Worker).build()).collect();
    for j in &mut jobs {
        j.start()?;
    }
    for j in &mut jobs {
        j.join()?;
    }
    println!("Cost Time {:.3}", beg.elapsed().as_secs_f64());
    Ok(())
}
