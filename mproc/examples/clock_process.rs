//! Twin of seed 004 "Process" and "自定义进程": a child that prints the time
//! five times, started with a target function and then as a process type of
//! its own (`ClockProcess`, Python's `Process` subclass; here a [`Run`]).
//!
//! The interval is 30 ms instead of 3 s, and the time is printed as seconds
//! since the Unix epoch (no date library). The tutorial never joins; this twin
//! does, since Rust does not join children at exit.
//! Run: `cargo run -p mproc --example clock_process`.

use std::time::{Duration, SystemTime};

use mproc::prelude::*;

fn now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

fn worker(interval: Duration) {
    let mut n = 5;
    while n > 0 {
        println!("The time is {:.3}", now());
        std::thread::sleep(interval);
        n -= 1;
    }
}

struct ClockProcess {
    interval: Duration,
}

impl Run for ClockProcess {
    fn run(&mut self) {
        let mut n = 5;
        while n > 0 {
            println!("the time is {:.3}", now());
            std::thread::sleep(self.interval);
            n -= 1;
        }
    }
}

fn main() -> mproc::Result<()> {
    let mut p = Process::new(|| worker(Duration::from_millis(30)));
    p.start()?;
    println!("p.pid: {}", p.pid().unwrap_or(0));
    println!("p.name: {}", p.name());
    println!("p.is_alive: {}", p.is_alive());
    p.join()?;

    let mut p = Process::from_run(ClockProcess { interval: Duration::from_millis(30) });
    p.start()?;
    p.join()?;
    Ok(())
}
