//! `Bytes` and `PodVec` as pool arguments and results, through forked and
//! spawned workers: empty, one element, 4 KiB, 1 MiB and 16 MiB each way.

mod common;

use common::{watchdog, T};
use mproc_ipc::{Bytes, PodVec};
use mproc_pool::{Pool, StartMethod};

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
