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
            prop_assert_eq!(ring.is_empty_prefetch_next(), model.is_empty());
        }
    }

    #[test]
    fn mpmc_matches_model(slots_log in 0u32..4, max in 1usize..40, ops in ops()) {
        let ring = MpmcRing::new(1 << slots_log, max).unwrap();
        let slots = ring.capacity();
        // The model: published messages, and `None` for a position a failed
        // `try_push_with` gave up, which counts until a consumer passes it.
        let mut model: VecDeque<Option<Vec<u8>>> = VecDeque::new();
        let mut buf = Vec::new();
        for op in ops {
            // Peek is a pop here: the MPMC ring has no peek.
            let op = if let Op::Peek = op { Op::Pop { how: 1 } } else { op };
            match op {
                Op::Push { len, byte } => {
                    let msg = vec![byte; len % (max + 1)];
                    // Odd bytes go through the in-place writer.
                    let r = if byte % 2 == 0 {
                        ring.try_push(&msg)
                    } else {
                        ring.try_push_with(msg.len(), |slot| {
                            assert_eq!(slot.len(), max);
                            slot[..msg.len()].copy_from_slice(&msg);
                            Ok::<usize, ()>(msg.len())
                        })
                        .map(|written| written.expect("the writer succeeds"))
                    };
                    match r {
                        Ok(()) => {
                            prop_assert!(model.len() < slots);
                            model.push_back(Some(msg));
                        }
                        Err(RingError::Full { len, free }) => {
                            prop_assert_eq!(model.len(), slots);
                            prop_assert_eq!((len, free), (msg.len(), 0));
                        }
                        Err(e) => prop_assert!(false, "unexpected {}", e),
                    }
                    prop_assert_eq!(ring.try_push(&vec![0; max + 1]), Err(RingError::TooLarge { len: max + 1, max }));
                }
                Op::Abandon { len } => {
                    // A writer that fails, or claims more than the slot holds.
                    let mut ran = false;
                    let r = ring.try_push_with(0, |_| {
                        ran = true;
                        if len % 2 == 0 { Err(len) } else { Ok(max + 1 + len % 7) }
                    });
                    match r {
                        Ok(Err(e)) => prop_assert_eq!(e, len),
                        Err(RingError::TooLarge { max: m, .. }) => prop_assert!(len % 2 == 1 && m == max),
                        Err(RingError::Full { .. }) => prop_assert!(!ran && model.len() == slots),
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                    if ran {
                        model.push_back(None);
                    }
                }
                Op::Pop { how } => {
                    let got = match how % 3 {
                        0 => ring.try_pop().unwrap(),
                        1 => ring.try_pop_into(&mut buf).unwrap().then(|| buf.clone()),
                        _ => ring.try_pop_with(<[u8]>::to_vec).unwrap(),
                    };
                    let want = loop {
                        match model.pop_front() {
                            Some(None) => continue,
                            Some(Some(msg)) => break Some(msg),
                            None => break None,
                        }
                    };
                    prop_assert_eq!(got, want);
                }
                Op::Peek => unreachable!("mapped to a pop above"),
            }
            prop_assert_eq!(ring.len(), model.len());
            prop_assert_eq!(ring.is_empty(), model.is_empty());
        }
    }
}
