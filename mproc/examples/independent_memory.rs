//! Twin of seed 000 §2.2.1 "进程之间的数据是相互独立的": each child appends to
//! its own copy of a global list; the parent's list stays empty.
//!
//! Run: `cargo run -p mproc --example independent_memory`.

use std::sync::Mutex;

use mproc::prelude::*;

/// The tutorial's global `l = []`.
static L: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn f1(args: u32) {
    println!("processing start..");
    let mut l = L.lock().unwrap_or_else(|p| p.into_inner());
    l.push(args);
    println!("processing end.. {}", l.len());
}

fn main() -> mproc::Result<()> {
    let mut p: Vec<Process> = (0..3).map(|i| Process::new(move || f1(i))).collect();
    for j in &mut p {
        j.start()?;
    }
    for j in &mut p {
        j.join()?;
    }
    let l = L.lock().unwrap_or_else(|p| p.into_inner());
    println!("{:?} {}", *l, l.len());
    Ok(())
}
