//! Twin of seed 003 "multiprocessing" (the first three `Process` examples):
//! start a child with an argument and join it (`run_proc`); two children print
//! their pid and their parent's (`func_one`/`func_two`); and `join` decides
//! what runs before what (`Jack` is joined before `Mick` starts).
//!
//! The 2 s naps are 50 ms. Run: `cargo run -p mproc --example process_basics`.

use std::time::Duration;

use mproc::prelude::*;

fn run_proc(name: &str) {
    println!("Run child process {name} ({})...", std::process::id());
}

fn func_one() {
    println!("This is son_one");
    println!("son_one:{}  father:{}", std::process::id(), std::os::unix::process::parent_id());
}

fn func_two() {
    println!("This is son_two");
    println!("son_two:{}  father:{}", std::process::id(), std::os::unix::process::parent_id());
}

fn named(which: &str, name: &str) {
    println!("My name is {name}");
    std::thread::sleep(Duration::from_millis(50));
    println!("This is {which}");
}

fn main() -> mproc::Result<()> {
    // run_proc
    println!("Parent process {}.", std::process::id());
    let mut p = Process::new(|| run_proc("test"));
    println!("Child process will start");
    p.start()?;
    p.join()?; // waits for the child: the usual way to synchronise with it
    println!("Child process end.");

    // func_one / func_two
    let mut p_one = Process::new(func_one);
    let mut p_two = Process::new(func_two);
    p_one.start()?;
    p_two.start()?;
    println!("son:{}  father:{}", std::process::id(), std::os::unix::process::parent_id());
    p_one.join()?;
    p_two.join()?;

    // Jack and Mick
    let mut p_one = Process::new(|| named("func_one", "Jack"));
    let mut p_two = Process::new(|| named("func_two", "Mick"));
    p_one.start()?;
    p_one.join()?; // the main process waits for func_one to end before going on
    p_two.start()?;
    println!("I am main process");
    p_two.join()?;
    Ok(())
}
