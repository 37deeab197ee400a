//! A binary with its own `main` (no test harness): a spawn child runs its entry
//! before `main` and leaves, so `main` never runs twice.

use std::time::Duration;

use mproc_process::{entry, Entry, Process, Shared};
use mproc_shm::Value;

const MARK: &str = "MPROC_TEST_SPAWN_MAIN_PARENT";

fn child(count: Shared<Value<u32>>) {
    // SAFETY: alarm only arms a timer (watchdog).
    unsafe { libc::alarm(30) };
    count.set(count.get() + 1);
    std::process::exit(7);
}
static CHILD: Entry<Shared<Value<u32>>> = entry!(child);

fn main() {
    if std::env::var_os(MARK).is_some() {
        // `main` is running in a spawned child: the pre-main hook did not take over.
        std::process::exit(99);
    }
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var(MARK, "1") };
    let count = Value::<u32>::new(0).unwrap();
    for _ in 0..3 {
        let mut p = Process::builder().spawn_entry(&CHILD, Shared(count.clone())).build();
        p.start().unwrap();
        if p.join_timeout(Duration::from_secs(20)).is_err() {
            p.kill().unwrap();
            p.join().unwrap();
            panic!("spawned child did not end");
        }
        assert_eq!(p.exitcode(), Some(7), "the child ran its entry, not main");
    }
    assert_eq!(count.get(), 3);
    println!("spawn_main: 1 passed, 0 failed");
}
