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

/// The id, task and input of a task message; `None` for a message too short to be one.
pub fn decode_task(msg: &[u8]) -> Option<(u64, RemoteTask, &[u8])> {
    if msg.len() < TASK_HEADER {
        return None;
    }
    let id = u64::from_le_bytes(msg[..8].try_into().ok()?);
    let task = RemoteTask::from_bytes(msg[8..TASK_HEADER].try_into().ok()?);
    Some((id, task, &msg[TASK_HEADER..]))
}

/// The start of a result message; the worker's task appends the encoded result to it.
pub fn result_header(id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(0);
    out
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
pub fn decode_result(msg: &[u8]) -> Result<(u64, Result<std::ops::Range<usize>, PoolError>), String> {
    if msg.len() < RESULT_HEADER {
        return Err(format!("result message of {} bytes is shorter than its {RESULT_HEADER}-byte header", msg.len()));
    }
    let id = u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"));
    match msg[8] {
        0 => Ok((id, Ok(RESULT_HEADER..msg.len()))),
        1 if msg.len() >= RESULT_HEADER + 4 => {
            let item = u32::from_le_bytes(msg[RESULT_HEADER..RESULT_HEADER + 4].try_into().expect("4 bytes"));
            let message = String::from_utf8_lossy(&msg[RESULT_HEADER + 4..]).into_owned();
            Ok((id, Err(PoolError::TaskPanicked { message, item: (item != u32::MAX).then_some(item as usize) })))
        }
        s => Err(format!("result message with unknown status {s}")),
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
        assert_eq!(decode_task(&msg), Some((7, t, &b"abc"[..])));
        assert_eq!(decode_task(&msg[..10]), None);
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
        assert!(decode_result(b"short").is_err());
        let mut bad = result_header(1);
        bad[8] = 9;
        assert!(decode_result(&bad).unwrap_err().contains("unknown status 9"));
    }
}
