//! [`PayloadError`] between processes of one program: what a pool worker
//! sends back when a task's argument does not decode, so that the caller gets
//! the typed error, naming both element types, and not a message.
//!
//! The error's names are `&'static str`s (type names, element kinds, reasons).
//! On receipt, a name this crate knows (the element kinds, the reasons) maps to
//! its own static string; any other (the receiving type's name) is kept once
//! per distinct name in a process-wide table of at most [`KEPT_NAMES`], past
//! which it reads as [`NAME_NOT_KEPT`]. A program has few such names, so the
//! table stays small however many errors arrive.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{kind_name, PayloadError, PRIMITIVES};

/// The most distinct names a process keeps from received errors.
pub const KEPT_NAMES: usize = 256;

/// What a name reads as once [`KEPT_NAMES`] are kept.
pub const NAME_NOT_KEPT: &str = "(a type whose name was not kept)";

/// The reasons [`PayloadError::Malformed`] gives (see `Bytes::view`).
const REASONS: [&str; 2] = ["bytes follow the byte string", "the length prefix is bad or longer than the bytes"];

/// [`PayloadError`] with borrowed names, as it travels (postcard).
#[derive(Serialize, Deserialize)]
enum Wire<'a> {
    ElementSize { type_name: &'a str, expected: u64, got: u64 },
    ElementKind { type_name: &'a str, expected: &'a str, got: &'a str },
    ArrayTypecode { type_name: &'a str, expected: char, got: char },
    Length { len: u64, elem_size: u64 },
    BigEndian { type_name: &'a str },
    Malformed { type_name: &'a str, len: u64, reason: &'a str },
}

static KEPT: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// `name` as a `&'static str`: this crate's own string for a known name, else
/// the kept copy (made on first sight, up to [`KEPT_NAMES`]).
fn keep(name: &str) -> &'static str {
    let known = PRIMITIVES.iter().map(|p| p.0).chain([kind_name(0), kind_name(u8::MAX), "Bytes"]).chain(REASONS);
    if let Some(k) = known.into_iter().find(|k| *k == name) {
        return k;
    }
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = kept.iter().find(|k| **k == name) {
        return k;
    }
    if kept.len() >= KEPT_NAMES {
        return NAME_NOT_KEPT;
    }
    let k: &'static str = Box::leak(name.to_owned().into_boxed_str());
    kept.push(k);
    k
}

impl PayloadError {
    /// The error's encoding for another process of this program, which reads it
    /// back with [`from_wire`](Self::from_wire).
    ///
    /// ```
    /// use mproc_ipc::PayloadError;
    /// let e = PayloadError::ElementSize { type_name: "PodVec<u32>", expected: 4, got: 8 };
    /// assert_eq!(PayloadError::from_wire(&e.to_wire()), Some(e));
    /// assert_eq!(PayloadError::from_wire(&[0xff, 1]), None);
    /// ```
    pub fn to_wire(&self) -> Vec<u8> {
        let wire = match *self {
            PayloadError::ElementSize { type_name, expected, got } => {
                Wire::ElementSize { type_name, expected: expected as u64, got }
            }
            PayloadError::ElementKind { type_name, expected, got } => Wire::ElementKind { type_name, expected, got },
            PayloadError::ArrayTypecode { type_name, expected, got } => {
                Wire::ArrayTypecode { type_name, expected, got }
            }
            PayloadError::Length { len, elem_size } => Wire::Length { len: len as u64, elem_size: elem_size as u64 },
            PayloadError::BigEndian { type_name } => Wire::BigEndian { type_name },
            PayloadError::Malformed { type_name, len, reason } => {
                Wire::Malformed { type_name, len: len as u64, reason }
            }
        };
        postcard::to_allocvec(&wire).expect("a PayloadError encodes")
    }

    /// Reads an error [`to_wire`](Self::to_wire) wrote; `None` for bytes that
    /// are not one (or sizes that do not fit this host).
    pub fn from_wire(bytes: &[u8]) -> Option<PayloadError> {
        let size = |n: u64| usize::try_from(n).ok();
        Some(match postcard::from_bytes::<Wire<'_>>(bytes).ok()? {
            Wire::ElementSize { type_name, expected, got } => {
                PayloadError::ElementSize { type_name: keep(type_name), expected: size(expected)?, got }
            }
            Wire::ElementKind { type_name, expected, got } => {
                PayloadError::ElementKind { type_name: keep(type_name), expected: keep(expected), got: keep(got) }
            }
            Wire::ArrayTypecode { type_name, expected, got } => {
                PayloadError::ArrayTypecode { type_name: keep(type_name), expected, got }
            }
            Wire::Length { len, elem_size } => PayloadError::Length { len: size(len)?, elem_size: size(elem_size)? },
            Wire::BigEndian { type_name } => PayloadError::BigEndian { type_name: keep(type_name) },
            Wire::Malformed { type_name, len, reason } => {
                PayloadError::Malformed { type_name: keep(type_name), len: size(len)?, reason: keep(reason) }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_and_known_names_stay_static() {
        let all = [
            PayloadError::ElementSize { type_name: "mproc_ipc::payload::PodVec<u32>", expected: 4, got: 8 },
            PayloadError::ElementKind { type_name: "PodVec<f32>", expected: "f32", got: "u32" },
            PayloadError::ArrayTypecode { type_name: "PodVec<i32>", expected: 'i', got: 'd' },
            PayloadError::Length { len: 7, elem_size: 2 },
            PayloadError::BigEndian { type_name: "PodVec<Point>" },
            PayloadError::Malformed { type_name: "Bytes", len: 2, reason: REASONS[1] },
        ];
        for e in all {
            assert_eq!(PayloadError::from_wire(&e.to_wire()), Some(e));
        }
        let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!kept.iter().any(|k| ["f32", "u32", REASONS[1]].contains(k)), "known names are not kept: {kept:?}");
    }

    #[test]
    fn a_name_is_kept_once() {
        let a = keep("some::Type<for_the_kept_test>");
        let b = keep(&String::from("some::Type<for_the_kept_test>"));
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for bytes in [&[][..], &[9], &[0, 200], &[0, 3, b'a', b'b']] {
            assert_eq!(PayloadError::from_wire(bytes), None, "{bytes:?}");
        }
    }
}
