//! `Bytes` and `PodVec` as pool arguments and results, through forked and
//! spawned workers: empty, one element, 4 KiB, 1 MiB and 16 MiB each way.

mod common;

use common::T;
use mproc_ipc::{Bytes, PayloadError, PodVec};
use mproc_pool::{ArgumentError, Pool, PoolError, StartMethod};
use mproc_testkit::watchdog;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// The worker's answer depends on every element, so a truncated or shifted
/// argument shows in the result.
fn flip(b: Bytes) -> Bytes {
    b.iter().map(|x| !x).collect()
}

fn double(v: PodVec<f64>) -> PodVec<f64> {
    v.iter().map(|x| x * 2.0).collect()
}

fn bump(v: PodVec<u32>) -> PodVec<u32> {
    v.iter().map(|x| x.wrapping_add(1)).collect()
}

fn run(method: StartMethod) {
    let pool = Pool::builder().processes(2).start_method(method).build().unwrap();
    for size in SIZES {
        let got = pool.apply_async(flip, bytes(size)).unwrap().get_timeout(T).unwrap();
        assert!(got == flip(bytes(size)), "{method:?} size {size}: {got:?}");
        let got = pool.apply_async(double, f64s(size)).unwrap().get_timeout(T).unwrap();
        assert!(got == double(f64s(size)), "{method:?} size {size}: {got:?}");
        let got = pool.apply_async(bump, u32s(size)).unwrap().get_timeout(T).unwrap();
        assert!(got == bump(u32s(size)), "{method:?} size {size}: {got:?}");
    }
    // Many at once through map (results in order).
    let items: Vec<PodVec<u32>> = SIZES[..4].iter().map(|&s| u32s(s)).collect();
    let got = pool.map(bump, items.clone()).unwrap();
    assert!(got.into_iter().eq(items.into_iter().map(bump)), "{method:?}: map");
    pool.close();
    pool.join().unwrap();
}

#[test]
fn payloads_through_forked_workers() {
    let _w = watchdog(120);
    run(StartMethod::Fork);
}

#[test]
fn payloads_through_spawned_workers() {
    let _w = watchdog(120);
    run(StartMethod::Spawn);
}

/// An argument that encodes in the caller but, when `skewed`, does not decode
/// in the worker: written as a `PodVec<f64>` (else a `PodVec<u32>`), always
/// read as a `PodVec<u32>`.
#[derive(Debug)]
struct Arg {
    skewed: bool,
    n: usize,
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.skewed {
            PodVec::from(vec![0.5f64; self.n]).serialize(s)
        } else {
            PodVec::from(vec![1u32; self.n]).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Arg, D::Error> {
        PodVec::<u32>::deserialize(d).map(|v| Arg { skewed: false, n: v.len() })
    }
}

fn len_of(a: Arg) -> usize {
    a.n
}

fn bad_arguments(method: StartMethod) {
    let pool = Pool::builder().processes(1).start_method(method).build().unwrap();
    let err = pool.apply_async(len_of, Arg { skewed: true, n: 3 }).unwrap().get_timeout(T).unwrap_err();
    let PoolError::BadArgument { task, item: None, len, cause } = &err else { panic!("{method:?}: {err:?}") };
    assert!(task.contains("fn(") && task.contains("Arg) -> usize"), "{task}");
    assert!(*len > 24, "the encoded length, 3 f64 and a header: {len}");
    assert_eq!(
        *cause,
        ArgumentError::Payload(PayloadError::ElementSize {
            type_name: "mproc_ipc::payload::PodVec<u32>",
            expected: 4,
            got: 8
        }),
        "{method:?}"
    );
    assert!(err.to_string().contains("PodVec<u32>"), "{err}");
    // The worker lived on: the next task runs, and a bad item of a map is named.
    assert_eq!(pool.apply_async(len_of, Arg { skewed: false, n: 5 }).unwrap().get_timeout(T), Ok(5));
    let items = (0..6).map(|i| Arg { skewed: i == 4, n: i });
    let err = pool.map(len_of, items).unwrap_err();
    assert!(
        matches!(
            err,
            PoolError::BadArgument {
                item: Some(4),
                cause: ArgumentError::Payload(PayloadError::ElementSize { .. }),
                ..
            }
        ),
        "{method:?}: {err:?}"
    );
    pool.close();
    pool.join().unwrap();
}

#[test]
fn an_argument_that_does_not_decode_in_a_forked_worker_is_a_typed_error() {
    let _w = watchdog(60);
    bad_arguments(StartMethod::Fork);
}

#[test]
fn an_argument_that_does_not_decode_in_a_spawned_worker_is_a_typed_error() {
    let _w = watchdog(60);
    bad_arguments(StartMethod::Spawn);
}
