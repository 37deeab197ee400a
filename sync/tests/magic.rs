//! A primitive's header and a ring's header carry different magics: neither
//! attaches as the other (both once used `MPRS`).

use mproc_shm::sys::magic;
use mproc_shm::{Segment, ShmError, SpscRing};
use mproc_sync::{Lock, SyncError};

#[test]
fn an_spsc_ring_does_not_attach_as_a_lock() {
    let seg = Segment::anonymous(8192).unwrap();
    let _ring = SpscRing::new_in(&seg, 0, 1024).unwrap();
    match Lock::attach(&seg, 0) {
        Err(SyncError::Shm(ShmError::LayoutMismatch { what: "Lock", offset: 0, detail, .. })) => {
            assert!(detail.contains(&format!("{:#010x}", magic::SPSC_RING.word)), "{detail}");
            assert!(detail.contains(magic::SPSC_RING.name), "names what it found: {detail}");
        }
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
}

#[test]
fn a_lock_does_not_attach_as_an_spsc_ring() {
    let seg = Segment::anonymous(8192).unwrap();
    let _lock = Lock::new_in(&seg, 0).unwrap();
    match SpscRing::attach(&seg, 0) {
        Err(ShmError::LayoutMismatch { what: "SpscRing", offset: 0, detail, .. }) => {
            assert!(detail.contains(&format!("{:#010x}", magic::SYNC_PRIMITIVE.word)), "{detail}");
            assert!(detail.contains(magic::SYNC_PRIMITIVE.name), "names what it found: {detail}");
        }
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
}
