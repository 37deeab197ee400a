//! A segment made with `Segment::create_untracked` outlives its creator's
//! process tree, while a tracked one made beside it is removed. One test
//! function, in a test binary of its own, so that this process starts no
//! tracker before the forked creator starts its own (else the creator's tree
//! would include this process and never die first).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{fork_child, wait_child, Exit};
use mproc_shm::Segment;

/// Unlinks the untracked segment however the test ends: the leak gate checks
/// `/dev/shm`.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Segment::unlink(&self.0);
    }
}

#[test]
fn untracked_segment_survives_its_creators_tree() {
    let tracked = format!("mproc-test-tracked-seg-{}", std::process::id());
    let untracked = format!("mproc-test-untracked-seg-{}", std::process::id());
    let _ = Segment::unlink(&tracked);
    let _ = Segment::unlink(&untracked);
    let _cleanup = Unlink(untracked.clone());
    let child = {
        let (tracked, untracked) = (tracked.clone(), untracked.clone());
        fork_child(10, move || {
            let a = Segment::create(&tracked, 4096).expect("create");
            let b = Segment::create_untracked(&untracked, 4096).expect("create_untracked");
            // SAFETY: the child is the only process mapping `b` now.
            unsafe { b.as_ptr().add(100).write(0x5a) };
            std::mem::forget((a, b));
            // SAFETY: the child kills itself: nothing runs after it.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            1
        })
    };
    assert_eq!(wait_child(child, Duration::from_secs(20)), Exit::Signal(libc::SIGKILL));
    // The tree's tracker has run its cleanup once the tracked segment is gone.
    let tracked_path = Path::new("/dev/shm").join(&tracked);
    let end = Instant::now() + Duration::from_secs(10);
    while tracked_path.exists() {
        assert!(Instant::now() < end, "{} outlived its tree's tracker", tracked_path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
    let untracked_path = Path::new("/dev/shm").join(&untracked);
    assert!(untracked_path.exists(), "the untracked segment was removed with its tree");
    let seg = Segment::open(&untracked).unwrap();
    // SAFETY: the writer is dead; the byte is in range.
    assert_eq!(unsafe { seg.as_ptr().add(100).read() }, 0x5a);
    drop(seg);
    assert!(untracked_path.exists(), "dropping an opened handle does not unlink");
    Segment::unlink(&untracked).unwrap();
    assert!(!untracked_path.exists());

    // Bad input is a typed error naming it, as for `create`.
    assert!(Segment::create_untracked("has/slash", 4096).is_err());
    let again = Segment::create_untracked(&untracked, 4096).unwrap();
    assert!(matches!(Segment::create_untracked(&untracked, 4096), Err(mproc_shm::ShmError::Exists { .. })));
    drop(again);
}
