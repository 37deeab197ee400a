//! Twin of seed 002 §Managers "Manager模块常与Pool模块一起使用" (a Manager is often
//! used together with a Pool): pool tasks take a manager proxy as an argument.
//! Each task writes its square into a shared dict and appends its pid to a shared
//! list; the parent prints what the server holds.
//!
//! A proxy travels to a pool worker like any task argument (serde): as the
//! server's address, the object id and the typeid. The worker connects with the
//! authkey it inherited (the pool forks after the manager started) and takes its
//! own reference while it holds the proxy.
//! Run: `cargo run -p mproc --example manager_pool`.

use mproc::prelude::*;
use mproc::{DictProxy, ListProxy};

fn square_into((d, pids, x): (DictProxy<u32, u32>, ListProxy<u32>, u32)) -> bool {
    d.insert(x, x * x).is_ok() && pids.append(std::process::id()).is_ok()
}

fn main() -> mproc::Result<()> {
    let mgr = Manager::start()?;
    let d = mgr.dict::<u32, u32>()?;
    let pids = mgr.list::<u32>()?;
    let pool = Pool::new(2)?;
    let ok = pool.map(square_into, (0..6).map(|x| (d.clone(), pids.clone(), x)))?;
    pool.close();
    pool.join()?;
    let mut items = d.items()?;
    items.sort_unstable();
    println!("all tasks ok: {}", ok.iter().all(|o| *o));
    println!("{items:?}");
    let mut workers = pids.snapshot()?;
    workers.sort_unstable();
    workers.dedup();
    println!(
        "written by {} worker process(es), not the parent: {}",
        workers.len(),
        !workers.contains(&std::process::id())
    );
    Ok(())
}
