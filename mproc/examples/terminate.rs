//! Twin of seed 000 §1.4 "终止进程": `terminate()` ends a child by SIGTERM, and
//! its exit code then says so (−15).
//!
//! Python prints `<Process(Process-27, stopped[SIGTERM])>`; the Rust handle's
//! `Debug` shows the same facts (name, pid, state). The child's 1 s nap is
//! 1 s here too, but it is cut short by the signal.
//! Run: `cargo run -p mproc --example terminate`.

use std::time::Duration;

use mproc::prelude::*;

fn f1() {
    println!("process begin..");
    std::thread::sleep(Duration::from_secs(1));
    println!("process end...");
}

fn main() -> mproc::Result<()> {
    let mut m = Process::new(f1);
    let alive = m.is_alive();
    println!("begin: {m:?} {alive}");
    m.start()?;
    let alive = m.is_alive();
    println!("during {m:?} {alive}");
    m.terminate()?;
    // The signal is on its way: the child may or may not have ended yet.
    let alive = m.is_alive();
    println!("terminate {m:?} {alive}");
    m.join()?;
    let alive = m.is_alive();
    println!("after: {m:?} {alive}");
    println!("exitcode: {:?}", m.exitcode());
    Ok(())
}
