//! Twin of seed 000 §2.2.2 "通过Manager管理共享状态": a list that lives in a
//! manager server process; children append to it through a proxy, and the
//! parent sees every item.
//!
//! Run: `cargo run -p mproc --example manager_list`.

use mproc::prelude::*;
use mproc::ListProxy;

fn f1(l: &ListProxy<u32>, args: u32) {
    println!("processing start..");
    l.append(args).expect("append");
    println!("processing end.. {}", l.len().expect("len"));
}

fn main() -> mproc::Result<()> {
    let mgr = Manager::start()?;
    let l = mgr.list::<u32>()?;
    let mut p: Vec<Process> = (0..3)
        .map(|i| {
            let l = l.clone();
            Process::new(move || f1(&l, i))
        })
        .collect();
    for j in &mut p {
        j.start()?;
    }
    for j in &mut p {
        j.join()?;
    }
    let items = l.snapshot()?;
    println!("{:?} {}", items, l.len()?);
    Ok(())
}
