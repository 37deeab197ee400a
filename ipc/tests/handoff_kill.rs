//! `ShmBox` leaks nothing once its creator's process tree is gone: a sender
//! SIGKILLed after the put, a receiver SIGKILLed holding the box, a box left
//! unreceived in a queue or in a pipe. One test function, in a binary of its
//! own, so that this process starts no resource tracker: each creator is a
//! forked child that starts its own, and ends with it.

use std::path::Path;
use std::time::Duration;

use mproc_ipc::{pipe, Queue, QueueError};
use mproc_shm::{shm_box, ShmBox, ShmError};
use mproc_testkit::{eventually, fork, wait_child, Exit};

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
