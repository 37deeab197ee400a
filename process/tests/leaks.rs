//! No leaks across many start/join cycles: the fd count stays flat and no zombie
//! remains. One test in its own binary, so no other test's fds or children count.

mod common;

use common::{eventually, finish, my_zombies, DEADLINE};
use mproc_process::{entry, Entry, Process, Shared};
use mproc_shm::Segment;

const FORK_CYCLES: usize = 10_000;
const SPAWN_CYCLES: usize = if cfg!(debug_assertions) { 200 } else { 1_000 };

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn touch(seg: Shared<Segment>) {
    // SAFETY: the segment has at least one byte; the parent reads it only after join.
    unsafe { *seg.as_ptr() = seg.as_ptr().read().wrapping_add(1) };
}
static TOUCH: Entry<Shared<Segment>> = entry!(touch);

#[test]
fn fd_count_flat_and_no_zombies_across_cycles() {
    let seg = Segment::anonymous(64).unwrap();
    // Warm up lazily made state (registry, executable identity, the reaper
    // thread and its wake-up pipe).
    let mut running = Process::new(|| std::thread::sleep(std::time::Duration::from_millis(50)));
    running.start().unwrap();
    let warm_pid = running.pid().unwrap();
    drop(running);
    assert!(eventually(|| !common::proc_exists(warm_pid)));
    for _ in 0..3 {
        let mut p = Process::new(|| {});
        p.start().unwrap();
        finish(&mut p);
        let mut p = Process::builder().spawn_entry(&TOUCH, Shared(seg.clone())).build();
        p.start().unwrap();
        finish(&mut p);
    }
    let before = fd_count();
    for i in 0..FORK_CYCLES {
        let mut p = Process::new(move || {
            common::watchdog();
            if i % 3 == 1 {
                mproc_process::exit(3)
            }
        });
        p.start().unwrap();
        // Reap through every path: join, join_timeout, is_alive polling, drop.
        match i % 4 {
            0 => p.join().unwrap(),
            1 => p.join_timeout(DEADLINE).unwrap(),
            2 => {
                let end = std::time::Instant::now() + DEADLINE;
                while p.is_alive() {
                    assert!(std::time::Instant::now() < end, "child did not end");
                    std::thread::yield_now();
                }
            }
            _ => drop(p),
        }
    }
    for _ in 0..SPAWN_CYCLES {
        let mut p = Process::builder().spawn_entry(&TOUCH, Shared(seg.clone())).build();
        p.start().unwrap();
        assert_eq!(finish(&mut p), 0);
    }
    // SAFETY: every child has been joined.
    assert_eq!(unsafe { *seg.as_ptr() } as usize, (3 + SPAWN_CYCLES) % 256);
    // Dropped handles are reaped by reaper threads: give them the deadline.
    assert!(eventually(|| my_zombies().is_empty()), "zombies left: {:?}", my_zombies());
    // `<=`: the warm-up child's pidfd may still have been open at `before`.
    assert!(eventually(|| fd_count() <= before), "fds before {before}, after {}", fd_count());
    assert!(mproc_process::active_children().is_empty());
}
