//! Twin of seed 000 §1.3 "守护进程--daemon属性的作用": a daemon child dies with
//! its parent; a non-daemon child runs to its end.
//!
//! The tutorial's text describes a daemon (its code sets `daemon = False` on
//! both, which makes it wait 100 s): here the child named `daemon` really is
//! one. It would sleep 100 s, but the parent ends first, so its "Exiting" line
//! never appears and it is killed with the parent. The pause before starting
//! `non_daemon` is 50 ms instead of 1 s.
//! Run: `cargo run -p mproc --example daemon`.

use std::time::Duration;

use mproc::prelude::*;

fn daemon() {
    let p = current_process();
    println!("Starting: {} {}", p.name(), p.pid());
    std::thread::sleep(Duration::from_secs(100));
    println!("Exiting: {} {}", p.name(), p.pid());
}

fn non_daemon() {
    let p = current_process();
    println!("Starting: {} {}", p.name(), p.pid());
    println!("Exiting: {} {}", p.name(), p.pid());
}

fn main() -> mproc::Result<()> {
    let mut d = Process::builder().name("daemon").daemon(true).target(daemon).build();
    let mut n = Process::builder().name("non_daemon").daemon(false).target(non_daemon).build();
    d.start()?;
    std::thread::sleep(Duration::from_millis(50));
    n.start()?;
    // Rust has no atexit hook that joins non-daemon children (Python has):
    // join it by hand. The daemon is killed when this process ends.
    n.join()?;
    println!("main exits; the daemon (pid {}) dies with it", d.pid().unwrap_or(0));
    Ok(())
}
