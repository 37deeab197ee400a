//! `ShmBox` leaks nothing once its creator's process tree is gone: a sender
//! SIGKILLed after the put, a receiver SIGKILLed holding the box, a box left
//! unreceived in a queue or in a pipe, and both ends of a recycling loop
//! SIGKILLed mid-round. A box whose receiver was killed goes back to its
//! creator's pool. In a binary of its own, so that this process starts no
//! resource tracker: each creator is a forked child that starts its own, and
//! ends with it.

use std::path::Path;
use std::time::Duration;

use mproc_ipc::{pipe, Queue, QueueError};
use mproc_shm::{shm_box, ShmBox, ShmError};
use mproc_testkit::{eventually, fork, kill_and_reap, wait_child, Exit};

const LIMIT: Duration = Duration::from_secs(20);

fn exists(name: &str) -> bool {
    Path::new("/dev/shm").join(name).exists()
}

fn gone_soon(name: &str) -> bool {
    eventually(Duration::from_secs(10), || !exists(name))
}

/// SIGKILLs the calling (forked) process.
fn die() -> i32 {
    // SAFETY: the child kills itself: nothing runs after it.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    1
}

#[test]
fn boxes_do_not_outlive_their_creators_tree() {
    let names = Queue::<String>::new().unwrap();

    // 1. The sender is killed after the put: its tracker unlinks the box, and
    //    the receiver's get is a typed "gone", not a hang or a stray mapping.
    let q = Queue::<ShmBox<[u8]>>::new().unwrap();
    let sender = {
        let (q, names) = (q.clone(), names.clone());
        fork(30, move || {
            let b = ShmBox::<[u8]>::zeroed(16 << 20).unwrap();
            names.put(b.name().to_owned()).unwrap();
            q.put(b).unwrap();
            die()
        })
    };
    let name = names.get_timeout(LIMIT).unwrap();
    assert_eq!(wait_child(sender, LIMIT), Exit::Signal(libc::SIGKILL));
    assert!(gone_soon(&name), "{name} outlived its killed sender");
    assert!(matches!(q.get_timeout(LIMIT), Err(QueueError::Decode { .. })));
    assert!(
        matches!(shm_box::take_receive_error(), Some(ShmError::BoxGone { name: n }) if n == name),
        "the failed get names the box that is gone"
    );

    // 2. The receiver is killed holding the box it received: the name stays
    //    while the creator lives (the receiver owned it), and goes with it.
    let cmd = Queue::<u8>::new().unwrap();
    let creator = {
        let (q, names, cmd) = (q.clone(), names.clone(), cmd.clone());
        fork(30, move || {
            let mut b = ShmBox::<[u8]>::zeroed(1 << 20).unwrap();
            b[0] = 42;
            names.put(b.name().to_owned()).unwrap();
            q.put(b).unwrap();
            // Sent: the creator's handle is gone, the receiver owns the box.
            match cmd.get_timeout(LIMIT) {
                Ok(_) => 0,
                Err(_) => 2,
            }
        })
    };
    let name = names.get_timeout(LIMIT).unwrap();
    let receiver = {
        let (q, names) = (q.clone(), names.clone());
        fork(30, move || {
            let Ok(b) = q.get_timeout(LIMIT) else { return 2 };
            names.put(format!("got {}", b[0])).unwrap();
            std::mem::forget(b);
            die()
        })
    };
    assert_eq!(names.get_timeout(LIMIT).unwrap(), "got 42");
    assert_eq!(wait_child(receiver, LIMIT), Exit::Signal(libc::SIGKILL));
    assert!(exists(&name), "the killed receiver owned {name}; its creator's tracker has not run yet");
    cmd.put(0).unwrap();
    assert_eq!(wait_child(creator, LIMIT), Exit::Code(0));
    assert!(gone_soon(&name), "{name} outlived its creator's tree after its receiver was killed");

    // 3. Left unreceived in a queue whose creator exits normally.
    drop(q);
    let q = Queue::<ShmBox<[u64]>>::new().unwrap();
    let creator = {
        let (q, names) = (q.clone(), names.clone());
        fork(30, move || {
            let b = ShmBox::<[u64]>::zeroed(1000).unwrap();
            names.put(b.name().to_owned()).unwrap();
            q.put(b).map(|_| 0).unwrap_or(2)
        })
    };
    let name = names.get_timeout(LIMIT).unwrap();
    assert_eq!(wait_child(creator, LIMIT), Exit::Code(0));
    assert!(gone_soon(&name), "{name}, unreceived in a queue, outlived its creator");
    assert_eq!(q.qsize(), 1, "the token is still queued, its box gone");
    drop(q);

    // 4. Left unreceived in a shared-memory pipe.
    let (here, there) = pipe(true).unwrap();
    let creator = {
        let names = names.clone();
        fork(30, move || {
            let mut there = there;
            let b = ShmBox::<[u8]>::zeroed(4096).unwrap();
            names.put(b.name().to_owned()).unwrap();
            there.send(&b).map(|_| 0).unwrap_or(2)
        })
    };
    let name = names.get_timeout(LIMIT).unwrap();
    assert_eq!(wait_child(creator, LIMIT), Exit::Code(0));
    drop(here);
    assert!(gone_soon(&name), "{name}, unreceived in a pipe, outlived its creator");
}

/// A box whose receiver was SIGKILLed holding it is not lost: its creator's
/// next box of that size takes the same segment (the holder is dead), while
/// the creator lives.
#[test]
fn a_box_whose_receiver_died_goes_back_to_its_creators_pool() {
    let q = Queue::<ShmBox<[u8]>>::new().unwrap();
    let names = Queue::<String>::new().unwrap();
    let cmd = Queue::<u8>::new().unwrap();
    let creator = {
        let (q, names, cmd) = (q.clone(), names.clone(), cmd.clone());
        fork(30, move || {
            let b = ShmBox::<[u8]>::uncleared(8192).unwrap();
            let name = b.name().to_owned();
            q.put(b).unwrap();
            if cmd.get_timeout(LIMIT).is_err() {
                return 2;
            }
            // The receiver is dead, holding it: the pool takes it back.
            let again = ShmBox::<[u8]>::uncleared(8192).unwrap();
            names.put(again.name().to_owned()).unwrap();
            if again.name() != name {
                return 3;
            }
            0
        })
    };
    let receiver = {
        let (q, names) = (q.clone(), names.clone());
        fork(30, move || {
            let Ok(b) = q.get_timeout(LIMIT) else { return 2 };
            names.put(b.name().to_owned()).unwrap();
            die()
        })
    };
    let name = names.get_timeout(LIMIT).unwrap();
    assert_eq!(wait_child(receiver, LIMIT), Exit::Signal(libc::SIGKILL));
    cmd.put(0).unwrap();
    assert_eq!(names.get_timeout(LIMIT).unwrap(), name, "the dead receiver's segment was reused");
    assert_eq!(wait_child(creator, LIMIT), Exit::Code(0));
    assert!(gone_soon(&name), "{name} outlived its creator's tree");
}

/// A creator and a receiver run the recycling loop (boxes of three sizes, the
/// receiver drops or sends back) and are SIGKILLed mid-round, at two points in
/// the loop: afterwards no segment of the creator is left in `/dev/shm`.
#[test]
fn a_recycling_loop_killed_mid_round_leaks_nothing() {
    for rounds_before_kill in [50u64, 500] {
        let q = Queue::<ShmBox<[u8]>>::with_maxsize(4).unwrap();
        let back = Queue::<ShmBox<[u8]>>::with_maxsize(4).unwrap();
        let progress = Queue::<(u32, u64)>::new().unwrap();
        let creator = {
            let (q, back, progress) = (q.clone(), back.clone(), progress.clone());
            fork(60, move || {
                let me = std::process::id();
                for round in 1u64.. {
                    let size = [4096, 70_000, 1 << 20][round as usize % 3];
                    let mut b = ShmBox::<[u8]>::uncleared(size).unwrap();
                    b[0] = round as u8;
                    if q.put(b).is_err() {
                        return 2;
                    }
                    // Boxes the receiver sent back are dropped here: released
                    // into the pool while the receiver releases others.
                    while let Ok(b) = back.try_get() {
                        drop(b);
                    }
                    if round % 10 == 0 && progress.put((me, round)).is_err() {
                        return 3;
                    }
                }
                0
            })
        };
        let receiver = {
            let (q, back) = (q.clone(), back.clone());
            fork(60, move || {
                for round in 0u64.. {
                    let Ok(b) = q.get_timeout(LIMIT) else { return 2 };
                    if round % 2 == 0 {
                        drop(b);
                    } else if back.put(b).is_err() {
                        return 3;
                    }
                }
                0
            })
        };
        let creator_pid = loop {
            let (pid, round) = progress.get_timeout(LIMIT).unwrap();
            if round >= rounds_before_kill {
                break pid;
            }
        };
        assert_eq!(kill_and_reap(receiver), Exit::Signal(libc::SIGKILL));
        assert_eq!(kill_and_reap(creator), Exit::Signal(libc::SIGKILL));
        let prefix = format!("mproc-box-{creator_pid}-");
        let left = || {
            std::fs::read_dir("/dev/shm")
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        };
        assert!(
            eventually(Duration::from_secs(10), || left() == 0),
            "{} segments of the killed creator {creator_pid} outlived its tree ({rounds_before_kill} rounds)",
            left()
        );
    }
}
