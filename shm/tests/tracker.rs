//! The resource tracker: a named segment (or a tracked directory) whose creator
//! is SIGKILLed is removed once the creator's process tree is gone; a segment
//! dropped normally is unlinked at once. One test function, in a test binary of its own, so that this process
//! starts no tracker before the forked creator starts its own.

use std::path::Path;
use std::time::Duration;

use mproc_shm::Segment;
use mproc_testkit::{eventually, fork, wait_child, Exit};

#[test]
fn named_segments_do_not_outlive_a_killed_creator() {
    let name = format!("mproc-test-tracker-{}", std::process::id());
    let path = Path::new("/dev/shm").join(&name);
    let _ = Segment::unlink(&name);
    // The child creates the segment (starting its own tracker) and dies by
    // SIGKILL without unlinking it.
    let child = {
        let name = name.clone();
        fork(10, move || {
            let seg = Segment::create(&name, 4096).expect("create");
            std::mem::forget(seg);
            // SAFETY: the child kills itself: nothing runs after it.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            1
        })
    };
    assert_eq!(wait_child(child, Duration::from_secs(20)), Exit::Signal(libc::SIGKILL));
    assert!(
        eventually(Duration::from_secs(10), || !path.exists()),
        "{} still exists after its creator was killed",
        path.display()
    );

    // A tracked directory with a socket in it, its creator killed: removed.
    let dir = std::env::temp_dir().join(format!("mproc-test-tracked-{}", std::process::id()));
    let child = {
        let dir = dir.clone();
        fork(10, move || {
            std::fs::create_dir(&dir).expect("mkdir");
            let l = std::os::unix::net::UnixListener::bind(dir.join("s.sock")).expect("bind");
            mproc_shm::tracker::track_dir(&dir);
            std::mem::forget(l);
            // SAFETY: the child kills itself: nothing runs after it.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            1
        })
    };
    assert_eq!(wait_child(child, Duration::from_secs(20)), Exit::Signal(libc::SIGKILL));
    assert!(
        eventually(Duration::from_secs(10), || !dir.exists()),
        "{} still exists after its creator was killed",
        dir.display()
    );

    // Dropped normally: unlinked at once, and the tracker forgets it.
    let seg = Segment::create(&name, 4096).unwrap();
    assert!(path.exists());
    drop(seg);
    assert!(!path.exists());
    // Unlinked explicitly, then dropped: no error, nothing left.
    let seg = Segment::create(&name, 4096).unwrap();
    Segment::unlink(&name).unwrap();
    drop(seg);
    assert!(!path.exists());
}
