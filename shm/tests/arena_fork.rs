//! The arena across `fork`: a child forked while another thread of the parent
//! holds the arena lock still allocates (a plain mutex would hang it forever).

use std::sync::mpsc;
use std::time::Duration;

use mproc_shm::arena;
use mproc_testkit::{fork, wait_child, Exit};

#[test]
fn child_forked_while_another_thread_holds_the_arena_lock_allocates() {
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let guard = mproc_shm::__testing::hold_arena_lock();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(60));
        drop(guard);
    });
    held_rx.recv_timeout(Duration::from_secs(10)).expect("the holder thread took the lock");
    let child = fork(10, || {
        // The lock word names the parent, whose holding thread is not here.
        let block = arena::alloc(100, 8).expect("alloc in the child");
        let mine = arena::usage() == (block.len(), 1);
        drop(block);
        if mine && arena::usage().0 == 0 {
            0
        } else {
            1
        }
    });
    let exit = wait_child(child, Duration::from_secs(30));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(exit, Exit::Code(0), "the child could not allocate (0: ok, 1: wrong usage, SIGALRM: hung)");
    // The parent's arena is untouched and usable.
    let block = arena::alloc(64, 64).unwrap();
    assert!(block.len() >= 64);
}
