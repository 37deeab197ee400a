//! `Bytes` and `PodVec` through manager proxies (value, list, dict, queue)
//! across real processes: a forked child stores, the parent reads back.

use std::time::Duration;

use mproc_ipc::{Bytes, PayloadError, PodVec};
use mproc_manager::{Manager, ManagerError, ProxyType, ValueProxy};
use mproc_testkit::{finish, fork_process};

const T: Duration = Duration::from_secs(60);

const ONE: usize = usize::MAX;
/// Empty, one element, 4 KiB, 1 MiB. 16 MiB is above the server's request
/// frame cap: see `sixteen_mib_round_trips_or_is_refused_by_the_frame_cap`.
const SIZES: [usize; 4] = [0, ONE, 4 << 10, 1 << 20];

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

#[test]
fn payloads_through_value_list_dict_and_queue_proxies() {
    let manager = Manager::start().unwrap();
    let value = manager.value(Bytes::new()).unwrap();
    let list = manager.list::<PodVec<f64>>().unwrap();
    let dict = manager.dict::<u32, PodVec<u32>>().unwrap();
    let queue = manager.queue::<Bytes>().unwrap();
    let done = manager.queue::<u32>().unwrap();
    let (v, l, d, q, k) = (value.clone(), list.clone(), dict.clone(), queue.clone(), done.clone());
    let mut child = fork_process(30, move || {
        for (i, size) in SIZES.into_iter().enumerate() {
            let ok = v.set(bytes(size)).is_ok()
                && l.append(f64s(size)).is_ok()
                && d.insert(i as u32, u32s(size)).is_ok()
                && q.put(bytes(size)).is_ok();
            if !ok {
                return 1;
            }
            // The parent reads the value before the next set.
            if k.get_timeout(Duration::from_secs(20)).is_err() {
                return 2;
            }
        }
        0
    });
    for (i, size) in SIZES.into_iter().enumerate() {
        let got = queue.get_timeout(T).unwrap();
        assert!(got == bytes(size), "queue, size {size}: {got:?}");
        assert!(value.get().unwrap() == bytes(size), "value, size {size}");
        assert!(list.get(i as i64).unwrap() == f64s(size), "list, size {size}");
        assert!(dict.get(&(i as u32)).unwrap() == Some(u32s(size)), "dict, size {size}");
        done.put(i as u32).unwrap();
    }
    assert_eq!(finish(&mut child, T), 0);
}

/// 16 MiB of payload plus the request's header is above the server's request
/// frame cap (16 MiB today): refused with a typed error naming both sizes,
/// after which the connection still works. With a larger cap it must round-trip.
#[test]
fn sixteen_mib_round_trips_or_is_refused_by_the_frame_cap() {
    let manager = Manager::start().unwrap();
    let queue = manager.queue::<Bytes>().unwrap();
    let big = bytes(16 << 20);
    match queue.put_ref(&big) {
        Ok(()) => assert!(queue.get_timeout(T).unwrap() == big),
        Err(ManagerError::FrameTooLarge { len, max }) => assert!(len > 16 << 20 && max < len, "{len} {max}"),
        Err(other) => panic!("16 MiB put: {other:?}"),
    }
    queue.put(bytes(4 << 10)).unwrap();
    assert!(queue.get_timeout(T).unwrap() == bytes(4 << 10));
}

/// A value stored as `f64`s read through a proxy of `u32`s (another client's
/// view of the same object) is [`ManagerError::Payload`] naming both element
/// types, never reinterpreted bytes.
#[test]
fn pod_vec_of_another_element_type_is_a_payload_error() {
    let mut manager = Manager::start().unwrap();
    let value = manager.value(f64s(4 << 10)).unwrap();
    let as_u32s: ValueProxy<PodVec<u32>> = ValueProxy::from_handle(value.object().clone());
    // The server holds the array as Python's `array.array('d')`: the cause
    // names both typecodes.
    match as_u32s.get() {
        Err(ManagerError::Payload(PayloadError::ArrayTypecode { expected: 'I', got: 'd', type_name })) => {
            assert!(type_name.contains("PodVec<u32>"), "{type_name}")
        }
        other => panic!("f64s read as u32s: {other:?}"),
    }
    assert_eq!(value.get().unwrap(), f64s(4 << 10));
    manager.shutdown().unwrap();
}
