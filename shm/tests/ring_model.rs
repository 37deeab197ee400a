//! proptest models: random single-threaded op sequences on both rings, checked
//! against a `VecDeque` (and, for the SPSC ring, the byte arithmetic of its spec),
//! through wrap-around and the full and empty edges.

use std::collections::VecDeque;

use mproc_shm::ring::{MpmcRing, RingError, SpscRing};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Push a message of `len % (max + 1)` bytes filled with `byte`.
    Push {
        len: usize,
        byte: u8,
    },
    /// Pop (with `try_pop`, `try_pop_into` or `peek`+`release`, by `how % 3`).
    Pop {
        how: u8,
    },
    /// Reserve and abandon (SPSC), or peek and keep (both).
    Abandon {
        len: usize,
    },
    Peek,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => (any::<usize>(), any::<u8>()).prop_map(|(len, byte)| Op::Push { len, byte }),
            3 => any::<u8>().prop_map(|how| Op::Pop { how }),
            1 => any::<usize>().prop_map(|len| Op::Abandon { len }),
            1 => Just(Op::Peek),
        ],
        1..400,
    )
}

/// Bytes a record of `len` takes: an 8-byte length word and the padded payload.
fn record(len: usize) -> u64 {
    8 + len.next_multiple_of(8) as u64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(debug_assertions) { 128 } else { 512 }, ..ProptestConfig::default() })]

    #[test]
    fn spsc_matches_model(cap_log in 6u32..9, ops in ops()) {
        let ring = SpscRing::new(1 << cap_log).unwrap();
        let cap = ring.capacity() as u64;
        let max = ring.max_message();
        prop_assert_eq!(max as u64, cap / 2 - 8);
        let (mut tx, mut rx) = ring.split();
        // The model: messages with the bytes each advanced `tail` by.
        let mut model: VecDeque<(Vec<u8>, u64)> = VecDeque::new();
        let (mut head, mut tail) = (0u64, 0u64);
        let mut buf = Vec::new();
        for op in ops {
            match op {
                Op::Push { len, byte } => {
                    let len = len % (max + 1);
                    let msg = vec![byte; len];
                    let index = tail % cap;
                    let need = if record(len) <= cap - index { record(len) } else { cap - index + record(len) };
                    let fits = tail + need - head <= cap;
                    if model.is_empty() {
                        prop_assert!(fits, "an empty ring takes any message up to max_message");
                    }
                    match tx.try_push(&msg) {
                        Ok(()) => {
                            prop_assert!(fits);
                            tail += need;
                            model.push_back((msg, need));
                        }
                        Err(RingError::Full { len: l, free }) => {
                            prop_assert!(!fits);
                            prop_assert_eq!((l, free as u64), (len, cap - (tail - head)));
                        }
                        Err(e) => prop_assert!(false, "unexpected {}", e),
                    }
                    prop_assert_eq!(tx.try_push(&vec![0; max + 1]), Err(RingError::TooLarge { len: max + 1, max }));
                }
                Op::Pop { how } => {
                    let got = match how % 3 {
                        0 => rx.try_pop().unwrap(),
                        1 => rx.try_pop_into(&mut buf).unwrap().then(|| buf.clone()),
                        _ => rx.peek().unwrap().map(|g| { let v = g.to_vec(); g.release(); v }),
                    };
                    let want = model.pop_front();
                    prop_assert_eq!(got, want.as_ref().map(|(m, _)| m.clone()));
                    head += want.map_or(0, |(_, need)| need);
                }
                Op::Abandon { len } => {
                    if let Ok(mut g) = tx.reserve(len % (max + 1)) {
                        g.fill(0xAB);
                    }
                }
                Op::Peek => {
                    let got = rx.peek().unwrap().map(|g| g.to_vec());
                    prop_assert_eq!(got, model.front().map(|(m, _)| m.clone()));
                }
            }
            prop_assert_eq!(ring.len_bytes() as u64, tail - head);
            prop_assert_eq!(ring.is_empty(), model.is_empty());
        }
    }

    #[test]
    fn mpmc_matches_model(slots_log in 0u32..4, max in 1usize..40, ops in ops()) {
        let ring = MpmcRing::new(1 << slots_log, max).unwrap();
        let slots = ring.capacity();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut buf = Vec::new();
        for op in ops {
            let (push, len, byte, how) = match op {
                Op::Push { len, byte } => (true, len, byte, 0),
                Op::Abandon { len } => (true, len, 0, 0),
                Op::Pop { how } => (false, 0, 0, how),
                Op::Peek => (false, 0, 0, 1),
            };
            if push {
                let msg = vec![byte; len % (max + 1)];
                match ring.try_push(&msg) {
                    Ok(()) => {
                        prop_assert!(model.len() < slots);
                        model.push_back(msg);
                    }
                    Err(RingError::Full { free, .. }) => {
                        prop_assert_eq!(model.len(), slots);
                        prop_assert_eq!(free, 0);
                    }
                    Err(e) => prop_assert!(false, "unexpected {}", e),
                }
                prop_assert_eq!(ring.try_push(&vec![0; max + 1]), Err(RingError::TooLarge { len: max + 1, max }));
            } else {
                let got = if how % 2 == 0 {
                    ring.try_pop().unwrap()
                } else {
                    ring.try_pop_into(&mut buf).unwrap().then(|| buf.clone())
                };
                prop_assert_eq!(got, model.pop_front());
            }
            prop_assert_eq!(ring.len(), model.len());
            prop_assert_eq!(ring.is_empty(), model.is_empty());
        }
    }
}
