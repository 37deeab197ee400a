//! Property tests of the `Bytes` and `PodVec` encodings: round trips from any
//! alignment, the exact wire layout, element-type mismatches always refused
//! with the sizes named, and random bytes never panicking the decoders.

use bytemuck::{Pod, Zeroable};
use mproc_ipc::payload::{clear_decode_error, take_decode_error};
use mproc_ipc::{Bytes, PayloadError, PodVec};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A plain-data struct: not a primitive, so only its size is checked.
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Point {
    x: f32,
    y: f32,
    tag: u32,
}

/// Decodes `wire` placed at byte offset `shift` of a fresh buffer, so that the
/// element bytes sit at every alignment.
fn decode_at<T: DeserializeOwned>(wire: &[u8], shift: usize) -> postcard::Result<T> {
    let mut buf = vec![0u8; shift];
    buf.extend_from_slice(wire);
    postcard::from_bytes(&buf[shift..])
}

fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn round_trip<T: Pod + PartialEq + std::fmt::Debug>(v: Vec<T>, shift: usize) -> Result<(), TestCaseError> {
    let pv = PodVec::from(v);
    let wire = postcard::to_allocvec(&pv).unwrap();
    let mut expected = varint(size_of::<T>());
    expected.push(PodVec::<T>::element_kind());
    expected.extend(varint(pv.len() * size_of::<T>()));
    expected.extend(pv.iter().flat_map(|x| bytemuck::bytes_of(x).to_vec()));
    prop_assert_eq!(&wire, &expected);
    let back: PodVec<T> = decode_at(&wire, shift).unwrap();
    prop_assert_eq!(back.as_slice().as_ptr().align_offset(align_of::<T>()), 0);
    prop_assert_eq!(back, pv);
    Ok(())
}

/// Decoding `wire` as `PodVec<T>` must fail with the sizes named when the
/// sizes differ, and the kinds named when both are primitives of one size.
fn mismatch<S: Pod, T: Pod + std::fmt::Debug>(v: Vec<S>) -> Result<(), TestCaseError> {
    let wire = postcard::to_allocvec(&PodVec::from(v)).unwrap();
    clear_decode_error();
    let got = postcard::from_bytes::<PodVec<T>>(&wire);
    prop_assert!(got.is_err(), "{} decoded as {}", std::any::type_name::<S>(), std::any::type_name::<T>());
    let e = take_decode_error().expect("a typed cause is recorded");
    if size_of::<S>() != size_of::<T>() {
        prop_assert_eq!(
            e,
            PayloadError::ElementSize {
                type_name: std::any::type_name::<PodVec<T>>(),
                expected: size_of::<T>(),
                got: size_of::<S>() as u64
            }
        );
    } else {
        prop_assert!(matches!(e, PayloadError::ElementKind { .. }), "{e:?}");
    }
    Ok(())
}

/// Random bytes decode as `T` or fail; never panic. What decodes re-encodes
/// in at most the bytes it took (postcard accepts over-long varints) and
/// decodes back to itself.
fn never_panics<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok((v, rest)) = postcard::take_from_bytes::<T>(bytes) {
        let again = postcard::to_allocvec(&v).unwrap();
        assert!(again.len() <= bytes.len() - rest.len());
        assert_eq!(postcard::from_bytes::<T>(&again).unwrap(), v);
    }
}

proptest! {
    #[test]
    fn bytes_round_trip_same_wire_as_byte_buf(v in proptest::collection::vec(any::<u8>(), 0..5000), shift in 0usize..8) {
        let b = Bytes::from(v.clone());
        let wire = postcard::to_allocvec(&b).unwrap();
        prop_assert_eq!(&wire, &postcard::to_allocvec(&serde_bytes::ByteBuf::from(v.clone())).unwrap());
        let mut expected = varint(v.len());
        expected.extend(&v);
        prop_assert_eq!(&wire, &expected);
        prop_assert_eq!(decode_at::<Bytes>(&wire, shift).unwrap(), b);
        prop_assert_eq!(Bytes::view(&wire).unwrap(), &v[..]);
        if !wire.is_empty() {
            prop_assert!(Bytes::view(&wire[..wire.len() - 1]).is_err());
        }
    }

    #[test]
    fn pod_vecs_round_trip_from_any_alignment(
        f in proptest::collection::vec(any::<f64>().prop_filter("NaN != NaN", |x| !x.is_nan()), 0..600),
        u in proptest::collection::vec(any::<u32>(), 0..600),
        h in proptest::collection::vec(any::<i16>(), 0..600),
        w in proptest::collection::vec(any::<u128>(), 0..100),
        p in proptest::collection::vec((any::<i32>(), any::<i32>(), any::<u32>()), 0..200),
        shift in 0usize..16,
    ) {
        round_trip(f, shift)?;
        round_trip(u, shift)?;
        round_trip(h, shift)?;
        round_trip(w, shift)?;
        let points = p.into_iter().map(|(x, y, tag)| Point { x: x as f32, y: y as f32, tag }).collect();
        round_trip::<Point>(points, shift)?;
    }

    #[test]
    fn other_element_types_are_refused_with_both_named(
        f in proptest::collection::vec(any::<f64>(), 0..100),
        s in proptest::collection::vec(any::<f32>(), 0..100),
    ) {
        mismatch::<f64, u32>(f.clone())?;
        mismatch::<f64, u8>(f.clone())?;
        mismatch::<f64, u64>(f.clone())?;
        mismatch::<f64, Point>(f)?;
        mismatch::<f32, u32>(s.clone())?;
        mismatch::<f32, i32>(s.clone())?;
        mismatch::<f32, f64>(s.clone())?;
        mismatch::<Point, f32>(s.iter().map(|&x| Point { x, y: x, tag: 0 }).collect())?;
    }

    #[test]
    fn random_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        never_panics::<Bytes>(&bytes);
        never_panics::<PodVec<u32>>(&bytes);
        never_panics::<PodVec<u8>>(&bytes);
        never_panics::<PodVec<Point>>(&bytes);
        let _ = Bytes::view(&bytes);
    }
}

#[test]
fn bad_lengths_are_refused() {
    // Element size 4, kind u32, then 6 bytes: not a whole number of elements.
    let wire = [4u8, 5, 6, 1, 2, 3, 4, 5, 6];
    clear_decode_error();
    assert!(postcard::from_bytes::<PodVec<u32>>(&wire).is_err());
    assert_eq!(take_decode_error(), Some(PayloadError::Length { len: 6, elem_size: 4 }));
    // A user struct of the same size as a primitive is accepted (size only).
    let wire = postcard::to_allocvec(&PodVec::from(vec![Point { x: 1.0, y: 2.0, tag: 3 }])).unwrap();
    assert!(postcard::from_bytes::<PodVec<[u32; 3]>>(&wire).is_ok());
}

#[test]
fn debug_output_is_cut_for_long_payloads() {
    let b = Bytes::from(vec![b'a'; 1000]);
    let s = format!("{b:?}");
    assert!(s.starts_with("b\"aaaa") && s.ends_with("(1000 bytes)") && s.len() < 100, "{s}");
    assert_eq!(format!("{:?}", Bytes::from(&b"a\n"[..])), "b\"a\\n\"");
    let v = PodVec::from(vec![1u32; 100]);
    assert!(format!("{v:?}").ends_with("(100 elements)"));
}
