//! `Bytes` and `PodVec` across real processes, through every ipc carrier: the
//! three queues, socket connections and shared-memory pipes; the typed error of
//! a `PodVec` received as another element type.
//!
//! Sizes: empty, one element, 4 KiB, 1 MiB and 16 MiB. A forked child sends,
//! the parent receives and compares; children run under `mproc_testkit::fork`'s 20 s
//! watchdog and every blocking call here has a timeout.

use std::fmt::Debug;
use std::time::Duration;

use mproc_ipc::{pipe, Bytes, Connection, IpcError, PayloadError, PodVec, Queue, QueueBuilder, QueueError};
use mproc_testkit::{fork, reap};
use serde::de::DeserializeOwned;
use serde::Serialize;

const REAP: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(30);

/// Payload sizes in bytes (`ONE` stands for one element of the type).
const ONE: usize = usize::MAX;
const SIZES: [usize; 5] = [0, ONE, 4 << 10, 1 << 20, 16 << 20];

fn count(bytes: usize, elem: usize) -> usize {
    if bytes == ONE {
        1
    } else {
        bytes / elem
    }
}

fn bytes(size: usize) -> Bytes {
    (0..count(size, 1)).map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8).collect()
}

fn f64s(size: usize) -> PodVec<f64> {
    (0..count(size, 8)).map(|i| i as f64 * 0.5 - 7.25).collect()
}

fn u32s(size: usize) -> PodVec<u32> {
    (0..count(size, 4)).map(|i| (i as u32).wrapping_mul(2_654_435_761)).collect()
}

/// A child puts `make(size)` for every size into a queue; the parent gets and
/// compares them.
fn through_queue<T>(make: fn(usize) -> T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    // The default item cap (64 MiB) takes every size.
    let q = Queue::<T>::with_maxsize(2).unwrap();
    let child = fork(20, || {
        for size in SIZES {
            q.put(make(size)).unwrap();
        }
        0
    });
    for size in SIZES {
        let got = q.get_timeout(LONG).unwrap();
        assert!(got == make(size), "size {size}: got {got:?}");
    }
    assert_eq!(reap(child, REAP), 0);
}

#[test]
fn queue_bytes_round_trip() {
    through_queue(bytes);
}

#[test]
fn queue_f64s_round_trip() {
    through_queue(f64s);
}

#[test]
fn queue_u32s_round_trip() {
    through_queue(u32s);
}

#[test]
fn joinable_and_simple_queues_carry_payloads() {
    let jq = QueueBuilder::new().maxsize(2).build_joinable::<PodVec<f64>>().unwrap();
    let sq = QueueBuilder::new().maxsize(2).build_simple::<Bytes>().unwrap();
    let child = fork(20, || {
        for size in SIZES {
            jq.put(f64s(size)).unwrap();
            sq.put(bytes(size)).unwrap();
        }
        0
    });
    for size in SIZES {
        let got = jq.get_timeout(LONG).unwrap();
        jq.task_done().unwrap();
        assert!(got == f64s(size), "size {size}: got {got:?}");
        let got = sq.get().unwrap();
        assert!(got == bytes(size), "size {size}: got {got:?}");
    }
    assert_eq!(reap(child, REAP), 0);
}

/// A child sends `make(size)` for every size on `tx`; the parent receives
/// and compares.
fn through_connection<T>(tx: Connection, mut rx: Connection, make: fn(usize) -> T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    // The closure owns `tx`: the parent's copy is dropped with it.
    let child = fork(20, move || {
        let mut tx = tx;
        for size in SIZES {
            tx.send(&make(size)).unwrap();
        }
        0
    });
    for size in SIZES {
        assert!(rx.poll(Some(LONG)).unwrap(), "size {size}: nothing arrived");
        let got: T = rx.recv().unwrap();
        assert!(got == make(size), "size {size}: got {got:?}");
    }
    assert!(rx.recv::<T>().unwrap_err().is_eof());
    assert_eq!(reap(child, REAP), 0);
}

#[test]
fn socket_connection_round_trips() {
    let (a, b) = Connection::pair().unwrap();
    through_connection(a, b, bytes);
    let (a, b) = Connection::pair().unwrap();
    through_connection(a, b, f64s);
    let (a, b) = Connection::pair().unwrap();
    through_connection(a, b, u32s);
}

#[test]
fn ring_pipe_round_trips() {
    let (a, b) = pipe(true).unwrap();
    through_connection(a, b, bytes);
    let (a, b) = pipe(true).unwrap();
    through_connection(a, b, f64s);
    let (a, b) = pipe(false).unwrap();
    through_connection(b, a, u32s);
}

/// `recv_bytes_with` + `Bytes::view` read a sent `Bytes` where it lies.
#[test]
fn bytes_viewed_in_place_on_both_transports() {
    for (tx, mut rx) in [Connection::pair().unwrap(), pipe(true).unwrap()] {
        let ring = rx.is_shared_memory();
        let child = fork(20, move || {
            let mut tx = tx;
            for size in SIZES {
                tx.send(&bytes(size)).unwrap();
            }
            0
        });
        for size in SIZES {
            assert!(rx.poll(Some(LONG)).unwrap());
            let same = rx.recv_bytes_with(|m| Bytes::view(m).map(|s| s == &bytes(size)[..])).unwrap().unwrap();
            assert!(same, "ring {ring}, size {size}");
        }
        assert_eq!(reap(child, REAP), 0);
    }
}

#[test]
fn pod_vec_of_another_size_is_a_typed_error_naming_both() {
    for (tx, mut rx) in [Connection::pair().unwrap(), pipe(true).unwrap()] {
        let child = fork(20, move || {
            let mut tx = tx;
            tx.send(&f64s(4 << 10)).unwrap();
            tx.send(&PodVec::from(vec![1.0f32, 2.0])).unwrap();
            tx.send(&u32s(4 << 10)).unwrap();
            0
        });
        assert!(rx.poll(Some(LONG)).unwrap());
        match rx.recv::<PodVec<u32>>() {
            Err(IpcError::Payload(PayloadError::ElementSize { expected: 4, got: 8, type_name })) => {
                assert!(type_name.contains("PodVec<u32>"), "{type_name}")
            }
            other => panic!("f64s received as u32s: {other:?}"),
        }
        let err = rx.recv::<PodVec<u32>>().unwrap_err();
        assert!(
            matches!(err, IpcError::Payload(PayloadError::ElementKind { expected: "u32", got: "f32", .. })),
            "f32s received as u32s: {err:?}"
        );
        assert!(err.to_string().contains("f32") && err.to_string().contains("u32"), "{err}");
        // The connection stays usable: the failed messages were consumed whole.
        assert_eq!(rx.recv::<PodVec<u32>>().unwrap(), u32s(4 << 10));
        assert_eq!(reap(child, REAP), 0);
    }
}

/// A frame whose sender writes `f64` samples and whose receiver reads `u32`
/// ones: what two builds of a program that changed the element type of a
/// same-named item do to each other (the queue only checks the type's name).
#[derive(Debug, PartialEq)]
struct SkewedFrame(PodVec<f64>);

impl Serialize for SkewedFrame {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for SkewedFrame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SkewedFrame, D::Error> {
        let v = PodVec::<u32>::deserialize(d)?;
        Ok(SkewedFrame(v.iter().map(|&x| f64::from(x)).collect()))
    }
}

/// Through a queue, across processes, in a slot and in a block: a `PodVec`
/// of another element type is [`QueueError::Payload`] naming both element
/// sizes, never reinterpreted bytes; the queue goes on.
#[test]
fn queue_item_of_another_element_type_is_a_payload_error_naming_both() {
    let q = Queue::<SkewedFrame>::with_maxsize(4).unwrap();
    let child = fork(20, || {
        for size in [8, 4 << 10, 1 << 20] {
            q.put(SkewedFrame(f64s(size))).unwrap();
        }
        0
    });
    for size in [8, 4 << 10, 1 << 20] {
        match q.get_timeout(LONG) {
            Err(QueueError::Payload(PayloadError::ElementSize { expected: 4, got: 8, type_name })) => {
                assert!(type_name.contains("PodVec<u32>"), "{type_name}")
            }
            other => panic!("{size} bytes of f64s taken as u32s: {other:?}"),
        }
    }
    assert_eq!(reap(child, REAP), 0);
    // The failed items were consumed whole, blocks and slots given back.
    assert!(q.try_get().unwrap_err().is_empty());
    q.put(SkewedFrame(f64s(1 << 20))).unwrap();
    assert!(matches!(q.get_timeout(LONG), Err(QueueError::Payload(PayloadError::ElementSize { .. }))));
}

#[test]
fn bytes_is_not_a_pod_vec() {
    let (mut a, mut b) = Connection::pair().unwrap();
    a.send(&Bytes::from(vec![9u8; 100])).unwrap();
    let err = b.recv::<PodVec<u64>>().unwrap_err();
    // 100 bytes: read as element size 100 (the length varint), then refused.
    assert!(matches!(err, IpcError::Payload(PayloadError::ElementSize { expected: 8, got: 100, .. })), "{err:?}");
}

#[test]
fn vec_u8_and_bytes_decode_each_other() {
    // Same wire shape (a length, then the bytes) in postcard: a receiver may
    // switch to Bytes without its sender doing so.
    let (mut a, mut b) = Connection::pair().unwrap();
    a.send(&vec![1u8, 2, 3]).unwrap();
    assert_eq!(b.recv::<Bytes>().unwrap(), [1u8, 2, 3]);
    a.send(&Bytes::from(vec![4u8, 5])).unwrap();
    assert_eq!(b.recv::<Vec<u8>>().unwrap(), vec![4u8, 5]);
}

/// `Queue<Bytes>::get_with` hands the bytes in place, for every size, across
/// processes; `get_with_timeout` and `try_get_with` report an empty queue.
#[test]
fn queue_of_bytes_read_in_place() {
    let q = Queue::<Bytes>::with_maxsize(2).unwrap();
    let child = fork(20, || {
        for size in SIZES {
            q.put(bytes(size)).unwrap();
        }
        0
    });
    for size in SIZES {
        let same = q.get_with_timeout(LONG, |b| b == &bytes(size)[..]).unwrap();
        assert!(same, "size {size}");
    }
    assert!(q.try_get_with(|_| ()).unwrap_err().is_empty());
    assert!(q.get_with_timeout(Duration::from_millis(10), |_| ()).unwrap_err().is_timeout());
    assert_eq!(reap(child, REAP), 0);
}
