//! The messages between rank 0 and the worker ranks, as bytes. No MPI here: the framing
//! is tested on its own, and MPI carries the bytes with one tag per message kind.
//!
//! | tag | from → to | body |
//! | --- | --- | --- |
//! | [`TAG_TASK`] | 0 → worker | task id `u64` LE, [`RemoteTask`] (16 bytes), encoded input |
//! | [`TAG_RESULT`] | worker → 0 | task id `u64` LE, status `u8`, then the encoded result (status 0) or the failed item `u32` LE (`u32::MAX`: none) and the message in UTF-8 (status 1) |
//! | [`TAG_STOP`] | 0 → worker | empty: the pool closed, leave the serve loop |

use mproc_pool::remote::RemoteTask;
use mproc_pool::PoolError;

/// A task for a worker.
pub const TAG_TASK: i32 = 1;
/// A task's outcome, back to rank 0.
pub const TAG_RESULT: i32 = 2;
/// The pool closed: the worker leaves its serve loop.
pub const TAG_STOP: i32 = 3;

/// Receives a probed message of bytes into a buffer of its size.
#[cfg(feature = "mpi")]
pub fn receive(msg: mpi::point_to_point::Message, status: &mpi::point_to_point::Status) -> Vec<u8> {
    use mpi::datatype::Equivalence;
    let len = status.count(u8::equivalent_datatype());
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    msg.matched_receive_into(&mut buf[..]);
    buf
}

const TASK_HEADER: usize = 8 + 16;
const RESULT_HEADER: usize = 8 + 1;

/// A task message: header then input, in one buffer (one copy of the input).
pub fn encode_task(id: u64, task: RemoteTask, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TASK_HEADER + input.len());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&task.to_bytes());
    out.extend_from_slice(input);
    out
}

/// The id, task and input of a task message.
pub fn decode_task(msg: &[u8]) -> Result<(u64, RemoteTask, &[u8]), WireError> {
    let (Some(id), Some(task)) = (msg.first_chunk::<8>(), msg.get(8..).and_then(<[u8]>::first_chunk::<16>)) else {
        return Err(WireError::ShortTask { len: msg.len() });
    };
    Ok((u64::from_le_bytes(*id), RemoteTask::from_bytes(*task), &msg[TASK_HEADER..]))
}

/// The start of a result message; the worker's task appends the encoded result to it.
pub fn result_header(id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(0);
    out
}

/// A task's outcome at rank 0: the result message and where the encoded result lies
/// in it, or the failure.
pub type Outcome = Result<(Vec<u8>, std::ops::Range<usize>), PoolError>;

/// What rank 0 hands the call waiting for a result message from rank `from`: the task
/// id and its outcome (the message and the range of its encoded result, or the
/// failure). A message that does not frame but names its task ends that task's call
/// with [`PoolError::Malformed`], naming the rank; one that names no task is `Err`,
/// for the caller to report and drop.
pub fn outcome_of(msg: Vec<u8>, from: usize) -> Result<(u64, Outcome), WireError> {
    match decode_result(&msg) {
        Ok((id, outcome)) => Ok((id, outcome.map(|range| (msg, range)))),
        Err(e) => match e.task() {
            Some(id) => Ok((id, Err(PoolError::Malformed { rank: from, detail: e.to_string() }))),
            None => Err(e),
        },
    }
}

/// A failure message for task `id`.
pub fn encode_failure(id: u64, item: Option<usize>, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(RESULT_HEADER + 4 + message.len());
    out.extend_from_slice(&id.to_le_bytes());
    out.push(1);
    let item = item.and_then(|i| u32::try_from(i).ok()).unwrap_or(u32::MAX);
    out.extend_from_slice(&item.to_le_bytes());
    out.extend_from_slice(message.as_bytes());
    out
}

/// A result message as the task id and either the encoded result (the message's tail,
/// at `RESULT_HEADER..`) or the failure.
pub fn decode_result(msg: &[u8]) -> Result<(u64, Result<std::ops::Range<usize>, PoolError>), WireError> {
    let (Some(id), Some(&status)) = (msg.first_chunk::<8>(), msg.get(8)) else {
        return Err(WireError::ShortResult { len: msg.len() });
    };
    let id = u64::from_le_bytes(*id);
    match status {
        0 => Ok((id, Ok(RESULT_HEADER..msg.len()))),
        1 => {
            let Some(item) = msg.get(RESULT_HEADER..).and_then(<[u8]>::first_chunk::<4>) else {
                return Err(WireError::ShortFailure { id, len: msg.len() });
            };
            let item = u32::from_le_bytes(*item);
            let message = String::from_utf8_lossy(&msg[RESULT_HEADER + 4..]).into_owned();
            Ok((id, Err(PoolError::TaskPanicked { message, item: (item != u32::MAX).then_some(item as usize) })))
        }
        status => Err(WireError::UnknownStatus { id, status }),
    }
}

/// A message between the ranks that does not frame as its tag says; names what is wrong
/// and, where the message got that far, the task it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A task message shorter than its header (task id and task).
    #[error("task message of {len} bytes is shorter than its {TASK_HEADER}-byte header")]
    ShortTask {
        /// The message's length in bytes.
        len: usize,
    },
    /// A result message shorter than its header (task id and status).
    #[error("result message of {len} bytes is shorter than its {RESULT_HEADER}-byte header")]
    ShortResult {
        /// The message's length in bytes.
        len: usize,
    },
    /// A failure result too short to hold the failed item.
    #[error("failure message of task {id} has {len} bytes, fewer than the {}-byte header with its item", RESULT_HEADER + 4)]
    ShortFailure {
        /// The task the message answers.
        id: u64,
        /// The message's length in bytes.
        len: usize,
    },
    /// A result message whose status byte is neither 0 (result) nor 1 (failure).
    #[error("result message of task {id} has unknown status {status}")]
    UnknownStatus {
        /// The task the message answers.
        id: u64,
        /// The status byte.
        status: u8,
    },
}

impl WireError {
    /// The task the bad message answers, when its header got that far.
    pub fn task(&self) -> Option<u64> {
        match *self {
            WireError::ShortFailure { id, .. } | WireError::UnknownStatus { id, .. } => Some(id),
            WireError::ShortTask { .. } | WireError::ShortResult { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(x: u8) -> u8 {
        x
    }

    #[test]
    fn task_round_trip() {
        let t = RemoteTask::apply(id);
        let msg = encode_task(7, t, b"abc");
        assert_eq!(decode_task(&msg), Ok((7, t, &b"abc"[..])));
        assert_eq!(decode_task(&msg[..TASK_HEADER]), Ok((7, t, &b""[..])));
    }

    #[test]
    fn a_short_task_names_its_length() {
        let msg = encode_task(7, RemoteTask::apply(id), b"abc");
        for len in [0, 7, 8, 10, TASK_HEADER - 1] {
            let e = decode_task(&msg[..len]).expect_err("short");
            assert_eq!(e, WireError::ShortTask { len });
            assert_eq!(e.task(), None);
            assert!(e.to_string().contains(&format!("of {len} bytes")), "{e}");
        }
    }

    #[test]
    fn result_and_failure_round_trip() {
        let mut ok = result_header(9);
        ok.extend_from_slice(b"xyz");
        let (i, r) = decode_result(&ok).unwrap();
        assert_eq!((i, &ok[r.unwrap()]), (9, &b"xyz"[..]));
        let (i, r) = decode_result(&encode_failure(3, Some(5), "boom")).unwrap();
        assert_eq!((i, r), (3, Err(PoolError::TaskPanicked { message: "boom".into(), item: Some(5) })));
        let (_, r) = decode_result(&encode_failure(3, None, "x")).unwrap();
        assert!(matches!(r, Err(PoolError::TaskPanicked { item: None, .. })));
    }

    #[test]
    fn a_bad_result_names_its_task_length_or_status() {
        let e = decode_result(b"short").expect_err("short");
        assert_eq!(e, WireError::ShortResult { len: 5 });
        assert!(e.to_string().contains("of 5 bytes"), "{e}");
        assert_eq!(e.task(), None);

        let failure = encode_failure(4, Some(1), "x");
        let e = decode_result(&failure[..RESULT_HEADER + 2]).expect_err("short failure");
        assert_eq!(e, WireError::ShortFailure { id: 4, len: RESULT_HEADER + 2 });
        assert_eq!(e.task(), Some(4));
        assert!(e.to_string().contains("task 4 has 11 bytes"), "{e}");

        let mut bad = result_header(1);
        bad[8] = 9;
        let e = decode_result(&bad).expect_err("unknown status");
        assert_eq!(e, WireError::UnknownStatus { id: 1, status: 9 });
        assert_eq!(e.task(), Some(1));
        assert_eq!(e.to_string(), "result message of task 1 has unknown status 9");
    }

    #[test]
    fn a_malformed_result_ends_its_task_with_an_error_naming_the_rank() {
        let mut ok = result_header(9);
        ok.extend_from_slice(b"xyz");
        let (id, outcome) = outcome_of(ok, 2).unwrap();
        let (msg, range) = outcome.unwrap();
        assert_eq!((id, &msg[range]), (9, &b"xyz"[..]));

        let mut bad = result_header(5);
        bad[8] = 7;
        let (id, outcome) = outcome_of(bad, 3).unwrap();
        assert_eq!(id, 5);
        match outcome {
            Err(e @ PoolError::Malformed { rank: 3, .. }) => {
                assert_eq!(
                    e.to_string(),
                    "malformed result message from rank 3: result message of task 5 has unknown status 7"
                )
            }
            other => panic!("expected Malformed from rank 3, got {other:?}"),
        }

        let failure = encode_failure(4, None, "boom");
        let (id, outcome) = outcome_of(failure[..RESULT_HEADER + 1].to_vec(), 1).unwrap();
        assert!(matches!((id, outcome), (4, Err(PoolError::Malformed { rank: 1, .. }))));

        assert_eq!(outcome_of(b"short".to_vec(), 1).map(|_| ()), Err(WireError::ShortResult { len: 5 }));
    }

    proptest::proptest! {
        /// Any bytes decode to a value or a `WireError` that matches them, never a panic.
        #[test]
        fn any_bytes_decode_or_name_what_is_wrong(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            match decode_task(&msg) {
                Ok((id, _, input)) => {
                    proptest::prop_assert_eq!(&id.to_le_bytes()[..], &msg[..8]);
                    proptest::prop_assert_eq!(input, &msg[TASK_HEADER..]);
                }
                Err(e) => proptest::prop_assert_eq!(e, WireError::ShortTask { len: msg.len() }),
            }
            match decode_result(&msg) {
                Ok((_, Ok(range))) => proptest::prop_assert!(msg[8] == 0 && range == (RESULT_HEADER..msg.len())),
                Ok((_, Err(_))) => proptest::prop_assert!(msg[8] == 1 && msg.len() >= RESULT_HEADER + 4),
                Err(WireError::ShortResult { len }) => proptest::prop_assert!(len == msg.len() && len < RESULT_HEADER),
                Err(WireError::ShortFailure { len, .. }) => proptest::prop_assert!(msg[8] == 1 && len < RESULT_HEADER + 4),
                Err(WireError::UnknownStatus { status, .. }) => proptest::prop_assert!(status > 1 && status == msg[8]),
                Err(e) => proptest::prop_assert!(false, "unexpected {e}"),
            }
        }

        /// What is encoded decodes to the same values.
        #[test]
        fn encoded_messages_round_trip(id in proptest::num::u64::ANY, input in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                       item in proptest::option::of(0usize..1_000_000), message in ".{0,40}") {
            let t = RemoteTask::apply(super::tests::id);
            let msg = encode_task(id, t, &input);
            proptest::prop_assert_eq!(decode_task(&msg), Ok((id, t, &input[..])));
            let failure = encode_failure(id, item, &message);
            let expected = Err(PoolError::TaskPanicked { message: message.clone(), item });
            proptest::prop_assert_eq!(decode_result(&failure), Ok((id, expected)));
        }
    }
}
