//! The byte format between the pool and its workers.
//!
//! One message carries many units, so a burst of small tasks costs one write and
//! one read on each side instead of one per task.
//!
//! ```text
//! tasks   (parent → worker) := unit*          an empty message means "stop"
//! unit                      := trampoline i64 | func i64 | len u32 | payload[len]
//! results (worker → parent) := nanos u64 | count u32 | result{count}
//! result                    := 0 u8 | len u32 | bytes[len]                 ok: encoded R / Vec<R>
//!                            | 1 u8 | item u32 | len u32 | message[len]   panicked (item u32::MAX = none)
//!                            | 2 u8 | item u32 | arg_len u64 | len u32 | task[len] | cause
//!                                                                          argument did not decode
//! cause                     := 0 u8 | len u32 | payload_error[len]       (`PayloadError::to_wire`)
//!                            | 1 u8 | len u32 | message[len]             (postcard's error)
//! ```
//! All integers little-endian. `nanos` is the time the worker spent on the batch,
//! which the scheduler uses to decide how many units to keep in flight.

use std::ops::Range;

use crate::task::{BadArgument, Code, Failure};
use crate::ArgumentError;

/// Appends one task unit to a tasks message.
pub(crate) fn put_unit(msg: &mut Vec<u8>, code: Code, payload: &[u8]) {
    msg.extend_from_slice(&code.trampoline.to_le_bytes());
    msg.extend_from_slice(&code.func.to_le_bytes());
    msg.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    msg.extend_from_slice(payload);
}

/// The size of a unit's header in a tasks message.
#[cfg(test)]
pub(crate) const UNIT_HEADER: usize = 20;

/// A malformed message: the peer is not a pool worker (or parent) of this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<Range<usize>, Malformed> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(Malformed(what))?;
        let r = self.pos..end;
        self.pos = end;
        Ok(r)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Malformed> {
        let r = self.take(N, what)?;
        Ok(self.buf[r].try_into().expect("length checked"))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }
    /// A string with its length (u32) in front; bytes that are not UTF-8 are replaced.
    fn string(&mut self, what: &'static str) -> Result<String, Malformed> {
        let len = self.u32(what)? as usize;
        let r = self.take(len, what)?;
        Ok(String::from_utf8_lossy(&self.buf[r]).into_owned())
    }
    fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Splits a tasks message into its units: `(code, payload range)`.
pub(crate) fn units(msg: &[u8]) -> impl Iterator<Item = Result<(Code, Range<usize>), Malformed>> + '_ {
    let mut r = Reader { buf: msg, pos: 0 };
    std::iter::from_fn(move || {
        if r.done() {
            return None;
        }
        Some((|| {
            let trampoline = i64::from_le_bytes(r.array::<8>("unit trampoline")?);
            let func = i64::from_le_bytes(r.array::<8>("unit function")?);
            let len = r.u32("unit length")? as usize;
            let payload = r.take(len, "unit payload")?;
            Ok((Code { trampoline, func }, payload))
        })())
    })
}

/// Appends `bytes` with their length (u32) in front.
fn put_str(msg: &mut Vec<u8>, bytes: &[u8]) {
    msg.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    msg.extend_from_slice(bytes);
}

/// Appends a failed result: a panic (status 1) or an argument that did not
/// decode (status 2).
fn put_failure(msg: &mut Vec<u8>, f: Failure) {
    let item = f.item.map_or(u32::MAX, |i| i as u32);
    let Some(arg) = f.argument.map(|a| *a) else {
        msg.push(1);
        msg.extend_from_slice(&item.to_le_bytes());
        put_str(msg, f.message.as_bytes());
        return;
    };
    msg.push(2);
    msg.extend_from_slice(&item.to_le_bytes());
    msg.extend_from_slice(&(arg.len as u64).to_le_bytes());
    put_str(msg, arg.task.as_bytes());
    match arg.cause {
        ArgumentError::Payload(p) => {
            msg.push(0);
            put_str(msg, &p.to_wire());
        }
        ArgumentError::Format(m) => {
            msg.push(1);
            put_str(msg, m.as_bytes());
        }
    }
}

/// Builds a results message; `finish` fills in the header.
pub(crate) struct ResultsWriter {
    msg: Vec<u8>,
    count: u32,
}

impl ResultsWriter {
    pub(crate) fn new(mut msg: Vec<u8>) -> ResultsWriter {
        msg.clear();
        msg.resize(12, 0);
        ResultsWriter { msg, count: 0 }
    }

    /// Appends one result; `run` appends the encoded value to the buffer it is given.
    pub(crate) fn push(&mut self, run: impl FnOnce(&mut Vec<u8>) -> Result<(), Failure>) {
        let at = self.msg.len();
        self.msg.extend_from_slice(&[0, 0, 0, 0, 0]);
        match run(&mut self.msg) {
            Ok(()) => {
                let len = (self.msg.len() - at - 5) as u32;
                self.msg[at + 1..at + 5].copy_from_slice(&len.to_le_bytes());
            }
            Err(f) => {
                self.msg.truncate(at);
                put_failure(&mut self.msg, f);
            }
        }
        self.count += 1;
    }

    /// The number of results in the message.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// The bytes of the results pushed since the message was `len` bytes long.
    pub(crate) fn since(&self, len: usize) -> &[u8] {
        &self.msg[len..]
    }

    /// The message's length so far.
    pub(crate) fn len(&self) -> usize {
        self.msg.len()
    }

    /// The finished message.
    pub(crate) fn finish(&mut self, nanos: u64) -> &[u8] {
        self.msg[0..8].copy_from_slice(&nanos.to_le_bytes());
        self.msg[8..12].copy_from_slice(&self.count.to_le_bytes());
        &self.msg
    }

    /// Starts the next message, reusing the buffer.
    pub(crate) fn reset(&mut self) {
        self.msg.truncate(12);
        self.count = 0;
    }
}

/// One result as read by the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The encoded value lies at this range of the message.
    Ok(Range<usize>),
    /// The call failed.
    Failed(Failure),
}

/// Parses a results message: the worker's time on the batch and the outcomes.
pub(crate) fn results(msg: &[u8]) -> Result<(u64, Vec<Outcome>), Malformed> {
    let mut r = Reader { buf: msg, pos: 0 };
    let nanos = u64::from_le_bytes(r.array::<8>("results time")?);
    let count = r.u32("results count")? as usize;
    let outcomes = entries_from(&mut r)?;
    if outcomes.len() != count {
        return Err(Malformed("results count does not match the results"));
    }
    Ok((nanos, outcomes))
}

/// Parses results laid end to end (no header), as in a worker's journal; the
/// ranges are relative to `bytes`.
pub(crate) fn entries(bytes: &[u8]) -> Result<Vec<Outcome>, Malformed> {
    entries_from(&mut Reader { buf: bytes, pos: 0 })
}

fn entries_from(r: &mut Reader<'_>) -> Result<Vec<Outcome>, Malformed> {
    let mut out = Vec::new();
    while !r.done() {
        let status = r.array::<1>("result status")?[0];
        match status {
            0 => {
                let len = r.u32("result length")? as usize;
                out.push(Outcome::Ok(r.take(len, "result bytes")?));
            }
            1 => {
                let item = r.u32("failure item")?;
                let message = r.string("failure message")?;
                out.push(Outcome::Failed(Failure::panic(message, (item != u32::MAX).then_some(item as usize))));
            }
            2 => {
                let item = r.u32("bad argument item")?;
                let len = u64::from_le_bytes(r.array::<8>("bad argument length")?);
                let len = usize::try_from(len).map_err(|_| Malformed("bad argument length"))?;
                let task = r.string("bad argument task")?;
                let cause = match r.array::<1>("bad argument cause")?[0] {
                    0 => {
                        let n = r.u32("payload error length")? as usize;
                        let b = r.take(n, "payload error")?;
                        let p = mproc_ipc::PayloadError::from_wire(&r.buf[b]).ok_or(Malformed("payload error"))?;
                        ArgumentError::Payload(p)
                    }
                    1 => ArgumentError::Format(r.string("bad argument message")?),
                    _ => return Err(Malformed("bad argument cause")),
                };
                let message = format!("cannot decode the argument in the worker: {cause}");
                out.push(Outcome::Failed(Failure {
                    message,
                    item: (item != u32::MAX).then_some(item as usize),
                    argument: Some(Box::new(BadArgument { task, len, cause })),
                }));
            }
            _ => return Err(Malformed("result status")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip() {
        let mut msg = Vec::new();
        let a = Code { trampoline: -5, func: 7 };
        let b = Code { trampoline: 1 << 40, func: -(1 << 40) };
        put_unit(&mut msg, a, b"hello");
        put_unit(&mut msg, b, b"");
        assert_eq!(msg.len(), 2 * UNIT_HEADER + 5);
        let got: Vec<_> = units(&msg).collect::<Result<_, _>>().unwrap();
        assert_eq!(got[0].0, a);
        assert_eq!(&msg[got[0].1.clone()], b"hello");
        assert_eq!(got[1], (b, msg.len()..msg.len()));
    }

    #[test]
    fn truncated_unit_is_malformed() {
        let mut msg = Vec::new();
        put_unit(&mut msg, Code { trampoline: 0, func: 0 }, b"hello");
        msg.pop();
        assert!(units(&msg).any(|u| u.is_err()));
    }

    #[test]
    fn results_round_trip() {
        let mut w = ResultsWriter::new(Vec::new());
        w.push(|out| {
            out.extend_from_slice(b"abc");
            Ok(())
        });
        w.push(|out| {
            out.extend_from_slice(b"partial");
            Err(Failure::panic("boom".into(), Some(4)))
        });
        w.push(|_| Err(Failure::panic("x".into(), None)));
        w.push(|_| Ok(()));
        assert_eq!(w.count(), 4);
        let msg = w.finish(99).to_vec();
        let (nanos, outs) = results(&msg).unwrap();
        assert_eq!(nanos, 99);
        assert_eq!(outs.len(), 4);
        let Outcome::Ok(r) = &outs[0] else { panic!("{:?}", outs[0]) };
        assert_eq!(&msg[r.clone()], b"abc");
        assert_eq!(outs[1], Outcome::Failed(Failure::panic("boom".into(), Some(4))));
        assert_eq!(outs[2], Outcome::Failed(Failure::panic("x".into(), None)));
        assert!(matches!(&outs[3], Outcome::Ok(r) if r.is_empty()));
        let shifted: Vec<Outcome> = outs
            .iter()
            .map(|o| match o {
                Outcome::Ok(r) => Outcome::Ok(r.start - 12..r.end - 12),
                f => f.clone(),
            })
            .collect();
        assert_eq!(entries(&msg[12..]).unwrap(), shifted);
        w.reset();
        assert_eq!(results(w.finish(0)).unwrap().1.len(), 0);
    }

    #[test]
    fn bad_arguments_round_trip_typed() {
        let bad = |item, cause: ArgumentError| Failure {
            message: format!("cannot decode the argument in the worker: {cause}"),
            item,
            argument: Some(Box::new(BadArgument {
                task: "fn(mproc_ipc::PodVec<u32>) -> u32".into(),
                len: 70_000,
                cause,
            })),
        };
        let payload = mproc_ipc::PayloadError::ElementSize { type_name: "mproc_ipc::PodVec<u32>", expected: 4, got: 8 };
        let sent =
            [bad(None, ArgumentError::Payload(payload)), bad(Some(3), ArgumentError::Format("cut short".into()))];
        let mut w = ResultsWriter::new(Vec::new());
        for f in &sent {
            w.push(|_| Err(f.clone()));
        }
        let msg = w.finish(0).to_vec();
        let outs = results(&msg).unwrap().1;
        assert_eq!(outs, sent.iter().cloned().map(Outcome::Failed).collect::<Vec<_>>());
        for cut in 13..msg.len() {
            assert!(results(&msg[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_results_are_malformed_not_panics() {
        for msg in [
            &[][..],
            &[0; 11],
            &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7],
            &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9, 0, 0, 0],
        ] {
            assert!(results(msg).is_err(), "{msg:?}");
        }
    }
}
