//! proptest: the queues (one process) against sequential models: a `Queue`
//! against a bounded `VecDeque` under random try_put / try_get / qsize / close
//! sequences; a `JoinableQueue` against a `VecDeque` plus a count of
//! unfinished tasks; a `SimpleQueue` against a `VecDeque`.

use std::collections::VecDeque;

use std::time::Duration;

use mproc_ipc::{JoinableQueue, Queue, QueueBuilder, QueueError, SimpleQueue};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    TryPut(Vec<u8>),
    TryGet,
    Qsize,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::TryPut),
        6 => Just(Op::TryGet),
        2 => Just(Op::Qsize),
        1 => Just(Op::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_a_bounded_vecdeque(maxsize in 1usize..9, ops in proptest::collection::vec(op(), 1..120)) {
        let q = Queue::<Vec<u8>>::builder().maxsize(maxsize).max_item_bytes(32).build::<Vec<u8>>().unwrap();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut closed = false;
        for op in ops {
            match op {
                Op::TryPut(item) => {
                    let encoded = item.len() + 1; // a one-byte length prefix below 128
                    let r = q.try_put(item.clone());
                    if closed {
                        let e = r.unwrap_err();
                        prop_assert!(matches!(e.error(), QueueError::Closed), "{e}");
                        prop_assert_eq!(e.into_item(), item);
                    } else if encoded > 32 {
                        let e = r.unwrap_err();
                        let ok = matches!(e.error(), QueueError::TooLarge { size, limit: 32 } if *size == encoded);
                        prop_assert!(ok, "{}", e);
                        prop_assert_eq!(e.into_item(), item);
                    } else if model.len() == maxsize {
                        let e = r.unwrap_err();
                        let ok = matches!(e.error(), QueueError::Full { maxsize: m } if *m == maxsize);
                        prop_assert!(ok, "{}", e);
                        prop_assert_eq!(e.into_item(), item);
                    } else {
                        prop_assert!(r.is_ok());
                        model.push_back(item);
                    }
                }
                Op::TryGet => match (q.try_get(), closed, if closed { None } else { model.pop_front() }) {
                    (Err(QueueError::Closed), true, _) => {}
                    (Ok(got), false, Some(want)) => prop_assert_eq!(got, want),
                    (Err(QueueError::Empty), false, None) => {}
                    (got, _, want) => prop_assert!(false, "try_get gave {:?}, the model {:?} (closed {})", got, want, closed),
                },
                Op::Qsize => {
                    prop_assert_eq!(q.qsize(), model.len());
                    prop_assert_eq!(q.empty(), model.is_empty());
                    prop_assert_eq!(q.full(), model.len() == maxsize);
                }
                Op::Close => {
                    q.close();
                    closed = true;
                }
            }
        }
    }

    #[test]
    fn joinable_queue_counts_tasks_like_the_model(
        maxsize in 1usize..6,
        ops in proptest::collection::vec(0u8..4, 1..80),
    ) {
        let q = JoinableQueue::<u32>::with_maxsize(maxsize).unwrap();
        let mut items: VecDeque<u32> = VecDeque::new();
        let mut unfinished = 0usize;
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                0 => {
                    let r = q.try_put(i as u32);
                    if items.len() == maxsize {
                        prop_assert!(r.unwrap_err().is_full());
                    } else {
                        prop_assert!(r.is_ok());
                        items.push_back(i as u32);
                        unfinished += 1;
                    }
                }
                1 => match (q.try_get(), items.pop_front()) {
                    (Ok(got), Some(want)) => prop_assert_eq!(got, want),
                    (Err(QueueError::Empty), None) => {}
                    (got, want) => prop_assert!(false, "try_get gave {:?}, the model {:?}", got, want),
                },
                2 => {
                    // Done only for tasks taken out; the model allows any count up to `unfinished`.
                    let r = q.task_done();
                    if unfinished == 0 {
                        prop_assert!(matches!(r, Err(QueueError::TaskDoneTooOften)));
                    } else {
                        prop_assert!(r.is_ok());
                        unfinished -= 1;
                    }
                }
                _ => {
                    prop_assert_eq!(q.join_timeout(Duration::ZERO).is_ok(), unfinished == 0);
                    prop_assert_eq!(q.unfinished_tasks(), unfinished);
                    prop_assert_eq!(q.qsize(), items.len());
                }
            }
        }
    }

    #[test]
    fn simple_queue_is_a_fifo(ops in proptest::collection::vec(proptest::option::of(any::<i64>()), 1..100)) {
        let q: SimpleQueue<i64> = QueueBuilder::new().maxsize(128).build_simple().unwrap();
        let mut model: VecDeque<i64> = VecDeque::new();
        for op in ops {
            match op {
                Some(v) => {
                    q.put(v).unwrap();
                    model.push_back(v);
                }
                None => match (q.try_get(), model.pop_front()) {
                    (Ok(got), Some(want)) => prop_assert_eq!(got, want),
                    (Err(QueueError::Empty), None) => {}
                    (got, want) => prop_assert!(false, "try_get gave {:?}, the model {:?}", got, want),
                },
            }
            prop_assert_eq!(q.empty(), model.is_empty());
        }
    }
}

/// An item for the any-size model: `len` bytes made from `seed`.
fn sized_item(seed: u8, len: usize) -> serde_bytes::ByteBuf {
    let mut v = vec![seed; len];
    for (i, run) in v.chunks_mut(4096).enumerate() {
        run[0] = seed ^ i as u8;
    }
    serde_bytes::ByteBuf::from(v)
}

#[derive(Debug, Clone)]
enum SizedOp {
    TryPut(u8, usize),
    TryGet,
    GetBytes,
}

fn sized_op() -> impl Strategy<Value = SizedOp> {
    let len = prop_oneof![
        4 => 0usize..64,
        3 => 40usize..5000,
        2 => 60_000usize..70_000,
        1 => 0usize..=4 << 20,
    ];
    prop_oneof![
        6 => (any::<u8>(), len).prop_map(|(s, l)| SizedOp::TryPut(s, l)),
        4 => Just(SizedOp::TryGet),
        2 => Just(SizedOp::GetBytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Items of 0 B to 4 MiB (the cap, so the largest are refused), in slots
    /// and in blocks, against a bounded `VecDeque`.
    #[test]
    fn any_size_queue_matches_a_bounded_vecdeque(
        maxsize in 1usize..6,
        ops in proptest::collection::vec(sized_op(), 1..40),
    ) {
        const CAP: usize = 4 << 20;
        let q = QueueBuilder::new().maxsize(maxsize).max_item_bytes(CAP).build::<serde_bytes::ByteBuf>().unwrap();
        let mut model: VecDeque<(u8, usize)> = VecDeque::new();
        for op in ops {
            match op {
                SizedOp::TryPut(seed, len) => {
                    let item = sized_item(seed, len);
                    let encoded = postcard::to_allocvec(&item).unwrap().len();
                    match q.try_put(item) {
                        Ok(()) => {
                            prop_assert!(encoded <= CAP && model.len() < maxsize);
                            model.push_back((seed, len));
                        }
                        Err(e) => match e.error() {
                            QueueError::TooLarge { size, limit: CAP } => prop_assert_eq!(*size, encoded),
                            QueueError::Full { .. } => prop_assert_eq!(model.len(), maxsize),
                            other => prop_assert!(false, "try_put: {}", other),
                        },
                    }
                }
                SizedOp::TryGet => match (q.try_get(), model.pop_front()) {
                    (Ok(got), Some((seed, len))) => prop_assert!(got == sized_item(seed, len), "item of {} bytes differs", len),
                    (Err(QueueError::Empty), None) => {}
                    (got, want) => prop_assert!(false, "try_get gave {:?} bytes, the model {:?}", got.map(|g| g.len()), want),
                },
                SizedOp::GetBytes => match (q.try_get_bytes_with(|b| b.to_vec()), model.pop_front()) {
                    (Ok(got), Some((seed, len))) => {
                        prop_assert!(got == postcard::to_allocvec(&sized_item(seed, len)).unwrap());
                    }
                    (Err(QueueError::Empty), None) => {}
                    (got, want) => prop_assert!(false, "try_get_bytes_with gave {:?}, the model {:?}", got.map(|g| g.len()), want),
                },
            }
            prop_assert_eq!(q.qsize(), model.len());
        }
    }
}
