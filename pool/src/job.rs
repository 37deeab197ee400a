//! Jobs: what the collector does with the results of the units it receives.
//!
//! A job is one user call (`apply_async`, `map_async`, an `imap` iterator). It is
//! split into units (one argument, or one chunk of arguments); every unit carries
//! an `Arc<dyn Job>` back to its job, and the collector hands each unit's outcome
//! to [`Job::deliver`]. Decoding happens there, on the collector thread.

use std::collections::VecDeque;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use mproc_shm::sys::{lock, IgnorePoison};
use serde::de::DeserializeOwned;

use crate::result::Slot;
use crate::task::Failure;
use crate::{PoolError, WorkerExit};

/// What became of one unit.
pub(crate) enum Delivery<'a> {
    /// The encoded result.
    Done(&'a [u8]),
    /// The call panicked (or its data could not be decoded in the worker).
    Failed(Failure),
    /// The worker died while holding the unit.
    Lost(WorkerExit),
    /// The pool was terminated, or could not run the unit at all.
    Cancelled(PoolError),
}

impl Delivery<'_> {
    /// The error for a failed delivery of the unit covering `items`.
    fn into_error(self, items: Option<Range<usize>>) -> PoolError {
        match self {
            Delivery::Done(_) => unreachable!("not an error"),
            Delivery::Failed(f) => {
                let item = items.and_then(|r| f.item.map(|i| r.start + i));
                f.into_error(item)
            }
            Delivery::Lost(exit) => PoolError::WorkerLost { exit, items },
            Delivery::Cancelled(e) => e,
        }
    }
}

/// The receiving end of a user call.
pub(crate) trait Job: Send + Sync {
    /// Takes the outcome of unit `chunk`, which covers input `items` (for
    /// map-like jobs).
    fn deliver(&self, chunk: u32, items: Option<Range<usize>>, d: Delivery<'_>);
}

/// Decodes a result (for map-like jobs, a chunk's results, whose first input
/// item is `items.start`).
fn decode<T: DeserializeOwned>(bytes: &[u8], items: Option<&Range<usize>>) -> Result<T, PoolError> {
    decode_result(bytes, items.map(|r| r.start))
}

/// Decodes a result of type `T` (for map-like jobs, a chunk's `Vec` of results,
/// whose first input item is `first_item`): a `PodVec` of another element type is
/// [`PoolError::Payload`], anything else that does not decode [`PoolError::Decode`].
pub(crate) fn decode_result<T: DeserializeOwned>(bytes: &[u8], first_item: Option<usize>) -> Result<T, PoolError> {
    mproc_ipc::payload::clear_decode_error();
    postcard::from_bytes(bytes).map_err(|source| match mproc_ipc::payload::take_decode_error() {
        Some(cause) => PoolError::Payload(cause),
        None => PoolError::Decode { type_name: std::any::type_name::<T>(), len: bytes.len(), item: first_item, source },
    })
}

/// `callback` / `error_callback`, run on the collector thread before the result
/// is made ready (as CPython does). A panicking callback is contained.
pub(crate) struct Callbacks<T> {
    pub(crate) ok: Box<dyn FnOnce(&T) + Send>,
    pub(crate) err: Box<dyn FnOnce(&PoolError) + Send>,
}

fn finish<T>(slot: &Slot<T>, callbacks: &Mutex<Option<Callbacks<T>>>, value: Result<T, PoolError>) {
    if slot.is_set() {
        return;
    }
    if let Some(cb) = lock(callbacks).take() {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| match &value {
            Ok(v) => (cb.ok)(v),
            Err(e) => (cb.err)(e),
        }));
    }
    slot.set(value);
}

/// One call, one result.
pub(crate) struct ApplyJob<R> {
    pub(crate) slot: Arc<Slot<R>>,
    pub(crate) callbacks: Mutex<Option<Callbacks<R>>>,
}

impl<R: DeserializeOwned + Send> Job for ApplyJob<R> {
    fn deliver(&self, _chunk: u32, items: Option<Range<usize>>, d: Delivery<'_>) {
        let value = match d {
            Delivery::Done(bytes) => decode(bytes, items.as_ref()),
            d => Err(d.into_error(items)),
        };
        finish(&self.slot, &self.callbacks, value);
    }
}

/// `map` / `starmap`: chunks in, one `Vec` out, in input order.
pub(crate) struct MapJob<R> {
    pub(crate) slot: Arc<Slot<Vec<R>>>,
    pub(crate) callbacks: Mutex<Option<Callbacks<Vec<R>>>>,
    parts: Mutex<MapParts<R>>,
}

struct MapParts<R> {
    parts: Vec<Option<Vec<R>>>,
    remaining: usize,
}

impl<R> MapJob<R> {
    pub(crate) fn new(chunks: usize, slot: Arc<Slot<Vec<R>>>, callbacks: Option<Callbacks<Vec<R>>>) -> MapJob<R> {
        MapJob {
            slot,
            callbacks: Mutex::new(callbacks),
            parts: Mutex::new(MapParts { parts: (0..chunks).map(|_| None).collect(), remaining: chunks }),
        }
    }
}

impl<R> MapJob<R> {
    /// Completes a map over no items.
    pub(crate) fn finish_empty(&self) {
        finish(&self.slot, &self.callbacks, Ok(Vec::new()));
    }
}

impl<R: DeserializeOwned + Send> Job for MapJob<R> {
    fn deliver(&self, chunk: u32, items: Option<Range<usize>>, d: Delivery<'_>) {
        if self.slot.is_set() {
            return; // failed already: CPython's map fails on the first failed chunk
        }
        let part = match d {
            Delivery::Done(bytes) => decode::<Vec<R>>(bytes, items.as_ref()),
            d => Err(d.into_error(items)),
        };
        let all = match part {
            Err(e) => Err(e),
            Ok(part) => {
                let mut p = lock(&self.parts);
                let slot = &mut p.parts[chunk as usize];
                if slot.is_none() {
                    *slot = Some(part);
                    p.remaining -= 1;
                }
                if p.remaining > 0 {
                    return;
                }
                let parts = std::mem::take(&mut p.parts);
                let mut all = Vec::with_capacity(parts.iter().flatten().map(Vec::len).sum());
                for part in parts.into_iter().flatten() {
                    all.extend(part);
                }
                Ok(all)
            }
        };
        finish(&self.slot, &self.callbacks, all);
    }
}

/// A finished chunk of an `imap`: its index and its results (or error).
pub(crate) type ChunkResult<R> = (u32, Result<Vec<R>, PoolError>);

/// `imap` / `imap_unordered`: chunk results queue up for the iterator.
pub(crate) struct IterJob<R> {
    /// Chunk results not yet taken, and the waker of a stream awaiting one.
    state: Mutex<(VecDeque<ChunkResult<R>>, Option<std::task::Waker>)>,
    arrived: Condvar,
}

impl<R> IterJob<R> {
    pub(crate) fn new() -> IterJob<R> {
        IterJob { state: Mutex::new((VecDeque::new(), None)), arrived: Condvar::new() }
    }

    fn find(q: &mut VecDeque<ChunkResult<R>>, want: Option<u32>) -> Option<ChunkResult<R>> {
        let pos = match want {
            None => (!q.is_empty()).then_some(0),
            Some(c) => q.iter().position(|(i, _)| *i == c),
        };
        q.remove(pos?)
    }

    /// Takes chunk `want` (or any chunk, when `None`) if it is there; else
    /// keeps `cx`'s waker, which the next delivery wakes.
    #[cfg(feature = "tokio")]
    pub(crate) fn poll_take(
        &self,
        want: Option<u32>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<ChunkResult<R>> {
        let mut q = lock(&self.state);
        match Self::find(&mut q.0, want) {
            Some(part) => std::task::Poll::Ready(part),
            None => {
                q.1 = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }

    /// Takes chunk `want` (or any chunk, when `None`), waiting until `deadline`.
    pub(crate) fn take(&self, want: Option<u32>, deadline: Option<Instant>) -> Option<ChunkResult<R>> {
        let mut q = lock(&self.state);
        loop {
            if let Some(part) = Self::find(&mut q.0, want) {
                return Some(part);
            }
            match deadline {
                None => q = self.arrived.wait(q).ignore_poison(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    q = self.arrived.wait_timeout(q, d - now).ignore_poison().0;
                }
            }
        }
    }
}

impl<R: DeserializeOwned + Send> Job for IterJob<R> {
    fn deliver(&self, chunk: u32, items: Option<Range<usize>>, d: Delivery<'_>) {
        let part = match d {
            Delivery::Done(bytes) => decode::<Vec<R>>(bytes, items.as_ref()),
            d => Err(d.into_error(items)),
        };
        let waker = {
            let mut q = lock(&self.state);
            q.0.push_back((chunk, part));
            q.1.take()
        };
        self.arrived.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AsyncResult;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
        postcard::to_allocvec(v).unwrap()
    }

    #[test]
    fn map_job_joins_chunks_in_order() {
        let slot = Slot::new();
        let job = MapJob::<u32>::new(3, slot.clone(), None);
        job.deliver(2, Some(4..5), Delivery::Done(&enc(&vec![5u32])));
        job.deliver(0, Some(0..2), Delivery::Done(&enc(&vec![1u32, 2])));
        assert!(!slot.is_set());
        job.deliver(1, Some(2..4), Delivery::Done(&enc(&vec![3u32, 4])));
        assert_eq!(AsyncResult::new(slot).get_timeout(Duration::from_secs(1)), Ok(vec![1, 2, 3, 4, 5]));
    }

    #[test]
    fn map_job_fails_on_first_failed_chunk_naming_the_item() {
        let slot = Slot::new();
        let job = MapJob::<u32>::new(2, slot.clone(), None);
        job.deliver(1, Some(10..20), Delivery::Failed(Failure::panic("boom".into(), Some(3))));
        job.deliver(0, Some(0..10), Delivery::Done(&enc(&vec![0u32; 10])));
        let err = AsyncResult::new(slot).get_timeout(Duration::from_secs(1)).unwrap_err();
        assert_eq!(err, PoolError::TaskPanicked { message: "boom".into(), item: Some(13) });
    }

    #[test]
    fn lost_chunk_names_its_items() {
        let slot = Slot::new();
        let job = MapJob::<u32>::new(1, slot.clone(), None);
        let exit = WorkerExit { pid: 7, exitcode: Some(-9) };
        job.deliver(0, Some(0..4), Delivery::Lost(exit));
        let err = AsyncResult::new(slot).get_timeout(Duration::from_secs(1)).unwrap_err();
        assert_eq!(err, PoolError::WorkerLost { exit, items: Some(0..4) });
    }

    #[test]
    fn callbacks_run_once_before_ready() {
        let hits = Arc::new(AtomicUsize::new(0));
        let slot = Slot::new();
        let h = hits.clone();
        let job = ApplyJob::<u64> {
            slot: slot.clone(),
            callbacks: Mutex::new(Some(Callbacks {
                ok: Box::new(move |v| {
                    assert_eq!(*v, 9);
                    h.fetch_add(1, Ordering::SeqCst);
                }),
                err: Box::new(|_| panic!("not an error")),
            })),
        };
        job.deliver(0, None, Delivery::Done(&enc(&9u64)));
        job.deliver(0, None, Delivery::Done(&enc(&10u64)));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(AsyncResult::new(slot).get_timeout(Duration::from_secs(1)), Ok(9));
    }

    #[test]
    fn undecodable_result_is_a_decode_error() {
        let slot = Slot::new();
        let job = ApplyJob::<String> { slot: slot.clone(), callbacks: Mutex::new(None) };
        // A string of 5 bytes that has only 1.
        job.deliver(0, None, Delivery::Done(&[5, b'a']));
        let err = AsyncResult::new(slot).get_timeout(Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            err,
            PoolError::Decode {
                type_name: std::any::type_name::<String>(),
                len: 2,
                item: None,
                source: postcard::Error::DeserializeUnexpectedEnd,
            }
        );
        assert!(err.to_string().contains("2 encoded bytes as alloc::string::String"), "{err}");
    }

    #[test]
    fn undecodable_chunk_names_its_first_item_and_length() {
        let slot = Slot::new();
        let job = MapJob::<u32>::new(2, slot.clone(), None);
        job.deliver(0, Some(0..3), Delivery::Done(&enc(&vec![1u32, 2, 3])));
        // Three results announced, one there.
        job.deliver(1, Some(3..6), Delivery::Done(&[3, 7]));
        let err = AsyncResult::new(slot).get_timeout(Duration::from_secs(1)).unwrap_err();
        match err {
            PoolError::Decode {
                type_name,
                len: 2,
                item: Some(3),
                source: postcard::Error::DeserializeUnexpectedEnd,
            } => {
                assert_eq!(type_name, std::any::type_name::<Vec<u32>>())
            }
            other => panic!("expected Decode naming item 3 and 2 bytes, got {other:?}"),
        }
    }

    /// A result that is a `PodVec` of another element type (a worker of
    /// another build, or a `RemoteTask` of another signature) is the typed
    /// cause, naming both sizes.
    #[test]
    fn pod_vec_result_of_another_element_type_is_a_payload_error() {
        let slot = Slot::new();
        let job = ApplyJob::<mproc_ipc::PodVec<u32>> { slot: slot.clone(), callbacks: Mutex::new(None) };
        job.deliver(0, None, Delivery::Done(&enc(&mproc_ipc::PodVec::from(vec![1.5f64, 2.5]))));
        let got = AsyncResult::new(slot).get_timeout(Duration::from_secs(1));
        assert!(
            matches!(got, Err(PoolError::Payload(mproc_ipc::PayloadError::ElementSize { expected: 4, got: 8, .. }))),
            "{got:?}"
        );
    }

    #[test]
    fn iter_job_takes_by_chunk_or_any() {
        let job = IterJob::<u8>::new();
        job.deliver(1, Some(1..2), Delivery::Done(&enc(&vec![1u8])));
        job.deliver(0, Some(0..1), Delivery::Done(&enc(&vec![0u8])));
        assert_eq!(job.take(Some(0), None).unwrap(), (0, Ok(vec![0])));
        assert!(job.take(Some(5), Some(Instant::now())).is_none());
        assert_eq!(job.take(None, None).unwrap(), (1, Ok(vec![1])));
    }
}
