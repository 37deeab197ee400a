//! Twin of seed 003 "线程的同步和通信" (the `Event` talk of John and Smith):
//! two threads take turns through one [`Event`](mproc::Event) — `set` to
//! speak, `wait` to listen, `clear` to take the floor back.
//!
//! mproc's `Event` works between processes; here it works between threads of
//! one process just as well. Naps: 50 ms instead of 1 s.
//! Run: `cargo run -p mproc --example thread_event_talk`.

use std::thread;
use std::time::Duration;

use mproc::prelude::*;

const NAP: Duration = Duration::from_millis(50);

fn john(evt: &Event) {
    evt.wait();
    println!("John :Good morning");
    evt.clear();
    thread::sleep(NAP);
    evt.set();
    thread::sleep(NAP);
    evt.wait();
    println!("John :I am fine, thank you");
}

fn smith(evt: &Event) {
    println!("Smith :Good Morning");
    evt.set();
    thread::sleep(NAP);
    evt.wait();
    println!("Smith :How are you?");
    evt.clear();
    thread::sleep(NAP);
    evt.set();
}

fn main() -> mproc::Result<()> {
    let evt = Event::new()?;
    thread::scope(|s| {
        s.spawn(|| john(&evt));
        s.spawn(|| smith(&evt));
    });
    Ok(())
}
