//! Twin of seed 004 "Event" (the timed worker): a child runs a periodic task
//! while an [`Event`](mproc::Event) is set and blocks while it is clear; the
//! parent switches it on, off, on and off again.
//!
//! The tutorial watches the wall clock (seconds past 10 and 30) and ticks once
//! a second; this twin ticks every 20 ms and switches after a number of ticks
//! (counted in shared memory), so it takes well under a second. At the end the
//! worker, which loops forever as in the tutorial, is terminated.
//! Run: `cargo run -p mproc --example event_timer`.

use std::time::{Duration, Instant, SystemTime};

use mproc::prelude::*;

const TICK: Duration = Duration::from_millis(20);

fn work(e: &Event, ticks: &RawValue<u32>) {
    loop {
        e.wait(); // blocks while the flag is clear
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        println!("[S] this is my timed task! {:.2}", now.as_secs_f64() % 60.0);
        ticks.set(ticks.get() + 1); // only this process writes it
        std::thread::sleep(TICK);
    }
}

/// Waits (at most 10 s) until the worker has ticked `n` times in all.
fn until_ticks(ticks: &RawValue<u32>, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ticks.get() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() -> mproc::Result<()> {
    let e = Event::new()?;
    let ticks = RawValue::new(0_u32)?;
    let mut p = Process::builder()
        .name("child")
        .target({
            let (e, ticks) = (e.clone(), ticks.clone());
            move || work(&e, &ticks)
        })
        .build();
    p.start()?;
    println!("[F] child unblocked");
    e.set();
    until_ticks(&ticks, 3);
    println!("[F] child blocked");
    e.clear();
    std::thread::sleep(5 * TICK);
    e.set();
    println!("[F] started again");
    until_ticks(&ticks, 6);
    e.clear();
    println!("[F] stopped again");
    p.terminate()?;
    p.join()?;
    Ok(())
}
