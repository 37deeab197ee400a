//! Property tests: `BoundedSemaphore`, `RLock` and `Event` against sequential
//! models, over random operation sequences in one thread.

use proptest::prelude::*;

use mproc_sync::{BoundedSemaphore, Event, RLock, SyncError};

#[derive(Debug, Clone)]
enum SemOp {
    TryAcquire,
    Release,
}

#[derive(Debug, Clone)]
enum LockOp {
    TryLock,
    Release,
}

#[derive(Debug, Clone)]
enum EventOp {
    Set,
    Clear,
    Poll,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bounded_semaphore_matches_a_counter(bound in 1_u32..5, ops in prop::collection::vec(prop_oneof![Just(SemOp::TryAcquire), Just(SemOp::Release)], 0..64)) {
        let s = BoundedSemaphore::new(bound).unwrap();
        let mut model = bound;
        for op in ops {
            match op {
                SemOp::TryAcquire => {
                    let got = s.try_acquire().is_ok();
                    prop_assert_eq!(got, model > 0);
                    if got { model -= 1; }
                }
                SemOp::Release => {
                    let r = s.release();
                    if model == bound {
                        let over_release = matches!(r, Err(SyncError::OverRelease { .. }));
                        prop_assert!(over_release);
                    } else {
                        prop_assert!(r.is_ok());
                        model += 1;
                    }
                }
            }
            prop_assert_eq!(s.value(), model);
        }
    }

    #[test]
    fn rlock_matches_a_depth_counter(ops in prop::collection::vec(prop_oneof![Just(LockOp::TryLock), Just(LockOp::Release)], 0..64)) {
        let l = RLock::new().unwrap();
        let mut depth = 0_u32;
        for op in ops {
            match op {
                LockOp::TryLock => {
                    prop_assert!(l.try_acquire().is_ok());
                    depth += 1;
                }
                LockOp::Release => {
                    let r = l.release();
                    if depth == 0 {
                        let not_owner = matches!(r, Err(SyncError::NotOwner { .. }));
                        prop_assert!(not_owner);
                    } else {
                        prop_assert!(r.is_ok());
                        depth -= 1;
                    }
                }
            }
            prop_assert_eq!(l.is_owned(), depth > 0);
            prop_assert_eq!(l.raw().depth(), depth);
        }
    }

    #[test]
    fn event_matches_a_flag(ops in prop::collection::vec(prop_oneof![Just(EventOp::Set), Just(EventOp::Clear), Just(EventOp::Poll)], 0..64)) {
        let e = Event::new().unwrap();
        let mut flag = false;
        for op in ops {
            match op {
                EventOp::Set => { e.set(); flag = true; }
                EventOp::Clear => { e.clear(); flag = false; }
                EventOp::Poll => prop_assert_eq!(e.wait_timeout(std::time::Duration::ZERO).is_ok(), flag),
            }
            prop_assert_eq!(e.is_set(), flag);
        }
    }
}
