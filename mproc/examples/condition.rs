//! Twin of seed 000 §3.1 "Condition条件阻塞": process 1 works under the
//! condition's lock, waits halfway (which releases the lock); process 2 then
//! takes the lock, does all its work, and notifies; process 1 finishes.
//!
//! The tutorial relies on starting `go1` first ("the order of these two lines
//! must not change"); this twin makes the order certain by starting `go2` only
//! once `go1` holds the lock (an [`Event`](mproc::Event) says so). Naps: 10 ms
//! instead of 1 s. Run: `cargo run -p mproc --example condition`.

use std::time::Duration;

use mproc::prelude::*;

const NAP: Duration = Duration::from_millis(10);

fn go1(cond: &Condition, holding: &Event) {
    let _held = cond.lock().expect("lock");
    holding.set();
    for i in 0..8 {
        std::thread::sleep(NAP);
        println!("process-id: {} {i} go11", std::process::id());
        if i == 5 {
            // Releases the lock while waiting, takes it back before returning.
            cond.wait().expect("wait");
        }
    }
}

fn go2(cond: &Condition) {
    let _held = cond.lock().expect("lock");
    for i in 0..7 {
        std::thread::sleep(NAP);
        println!("process-id: {} {i}", std::process::id());
    }
    cond.notify(1).expect("notify");
}

fn main() -> mproc::Result<()> {
    let cond = Condition::new()?;
    let holding = Event::new()?;
    let mut p1 = Process::new({
        let (cond, holding) = (cond.clone(), holding.clone());
        move || go1(&cond, &holding)
    });
    let mut p2 = Process::new({
        let cond = cond.clone();
        move || go2(&cond)
    });
    p1.start()?;
    holding.wait();
    p2.start()?;
    p1.join()?;
    p2.join()?;
    Ok(())
}
