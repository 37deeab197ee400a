//! Twin of seed 000 §1.1 and §1.2 "two functions serially, then in two
//! processes": serially the costs add up; in two processes they overlap.
//! Also shows `cpu_count()`, a process's `pid`, `name` and `is_alive()`, and
//! `active_children()`.
//!
//! The tutorial sleeps 1 s in each function; this twin sleeps 100 ms to keep
//! the run short. Run: `cargo run -p mproc --example serial_vs_processes`.

use std::time::{Duration, Instant};

use mproc::prelude::*;

const NAP: Duration = Duration::from_millis(100);

fn f1() {
    std::thread::sleep(NAP);
    println!("this is f1");
}

fn f2() {
    std::thread::sleep(NAP);
    println!("this is f2");
}

fn main() -> mproc::Result<()> {
    // §1.1: one process, one function after the other.
    let beg = Instant::now();
    f1();
    f2();
    println!("Cost time {:.3}", beg.elapsed().as_secs_f64());

    // §1.2: the same two functions in two processes at once.
    let beg = Instant::now();
    let mut m1 = Process::new(f1);
    let mut m2 = Process::new(f2);
    println!("{}", cpu_count());
    for p in [&mut m1, &mut m2] {
        p.start()?;
        let alive = p.is_alive();
        println!("{} {} {alive}", p.pid().unwrap_or(0), p.name());
    }
    let children: Vec<String> = active_children().iter().map(|c| format!("{}({})", c.name(), c.pid())).collect();
    println!("active children: [{}]", children.join(", "));
    for p in [&mut m1, &mut m2] {
        p.join()?;
    }
    println!("cost time {:.3}", beg.elapsed().as_secs_f64());
    Ok(())
}
