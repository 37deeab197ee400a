//! The compact form of a call's arguments and a method's value between a Rust client
//! and a server of this crate: scalars as postcard after a [`COMPACT`] byte, anything
//! else pickled (see [`COMPACT`]).

use serde::{Deserialize, Serialize};

use crate::error::ManagerError;
use crate::value::{Dict, Value};
use crate::wire::from_bytes;

/// First byte of a call's arguments ([`pack_args`]) or a method's value
/// ([`pack_value`]) in the compact form; a pickle starts with `PROTO` (0x80) instead.
///
/// Between a Rust client and a server of this crate, positional arguments that are
/// all scalars (`None`, bools, `i64` ints, floats, strs, bytes) with no keywords — most
/// calls: `append(x)`, `get()`, `set(k, v)` — and a scalar return value travel as
/// postcard after this byte instead of as a pickle. Decoding an 18-byte pickle of
/// `((x,), {})` runs the pickle machine, its memo and its resolver; the compact form
/// is one postcard pass. Everything else (containers, big ints, keywords) is pickled
/// as before, and the decoders below take either form.
pub(crate) const COMPACT: u8 = 0;

/// A scalar [`Value`], borrowed, as the compact form encodes it.
#[derive(Serialize)]
enum ScalarRef<'a> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bytes(#[serde(with = "serde_bytes")] &'a [u8]),
}

/// A scalar [`Value`] decoded from the compact form (the same variants, in the same
/// order, as [`ScalarRef`]).
#[derive(Deserialize)]
enum Scalar {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl<'a> ScalarRef<'a> {
    fn of(v: &'a Value) -> Option<ScalarRef<'a>> {
        Some(match v {
            Value::None => ScalarRef::None,
            Value::Bool(b) => ScalarRef::Bool(*b),
            Value::Int(i) => ScalarRef::Int(*i),
            Value::Float(f) => ScalarRef::Float(*f),
            Value::Str(s) => ScalarRef::Str(s),
            Value::Bytes(b) => ScalarRef::Bytes(b),
            _ => return None,
        })
    }
}

impl From<Scalar> for Value {
    fn from(s: Scalar) -> Value {
        match s {
            Scalar::None => Value::None,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(f) => Value::Float(f),
            Scalar::Str(s) => Value::Str(s),
            Scalar::Bytes(b) => Value::Bytes(b),
        }
    }
}

/// A [`Value`] decoded from a [`Scalar`]'s encoding.
#[repr(transparent)]
struct AsValue(Value);

impl<'de> Deserialize<'de> for AsValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AsValue, D::Error> {
        Scalar::deserialize(d).map(|s| AsValue(s.into()))
    }
}

/// Positional scalar arguments as a postcard sequence, without a vector of them.
struct ScalarSeq<'a>(&'a [Value]);

impl Serialize for ScalarSeq<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|v| ScalarRef::of(v).unwrap_or(ScalarRef::None)))
    }
}

/// Bytes a scalar takes beyond its fixed part (for the vector's first size).
fn extra(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => 0,
    }
}

/// A call's `(args, kwds)` for a request: compact when `kwds` is empty and every
/// argument is a scalar, else pickled.
pub(crate) fn pack_args(args: Vec<Value>, kwds: Dict) -> Result<Vec<u8>, ManagerError> {
    let mut out = Vec::new();
    pack_args_into(args, kwds, &mut out)?;
    Ok(out)
}

/// [`pack_args`], appended to `out`.
pub(crate) fn pack_args_into(args: Vec<Value>, kwds: Dict, out: &mut Vec<u8>) -> Result<(), ManagerError> {
    if kwds.is_empty() && args.iter().all(|v| ScalarRef::of(v).is_some()) {
        out.reserve(16 + 10 * args.len() + args.iter().map(extra).sum::<usize>());
        out.push(COMPACT);
        return extend(&ScalarSeq(&args), out);
    }
    out.extend_from_slice(&crate::value::dumps(&Value::Tuple(vec![Value::Tuple(args), Value::Dict(kwds)]))?);
    Ok(())
}

/// Appends `value`'s postcard encoding to `out`.
fn extend<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), ManagerError> {
    *out = postcard::to_extend(value, std::mem::take(out)).map_err(ManagerError::encode)?;
    Ok(())
}

/// Decodes a request's `(args, kwds)`, compact or pickled. A pickle that is not a
/// `(tuple, dict)` pair is `BadRequest`.
pub(crate) fn unpack_args(bytes: &[u8]) -> Result<(Vec<Value>, Dict), ManagerError> {
    if bytes.first() == Some(&COMPACT) {
        let args: Vec<AsValue> =
            from_bytes(&bytes[1..]).map_err(|e| ManagerError::BadRequest { reason: format!("arguments: {e}") })?;
        // The same layout: the vector is reused in place, not allocated again.
        return Ok((args.into_iter().map(|a| a.0).collect(), Dict::new()));
    }
    match crate::value::loads(bytes)? {
        Value::Tuple(mut pair) if pair.len() == 2 => match (pair.pop(), pair.pop()) {
            (Some(Value::Dict(kwds)), Some(Value::Tuple(args))) => Ok((args, kwds)),
            _ => Err(ManagerError::BadRequest { reason: "arguments are not (tuple, dict)".into() }),
        },
        other => Err(ManagerError::BadRequest { reason: format!("arguments are not (tuple, dict): {other}") }),
    }
}

/// A method's value for a reply: compact when it is a scalar, else pickled.
pub(crate) fn pack_value(v: &Value) -> Result<Vec<u8>, ManagerError> {
    let mut out = Vec::new();
    pack_value_into(v, &mut out)?;
    Ok(out)
}

/// [`pack_value`], appended to `out`.
pub(crate) fn pack_value_into(v: &Value, out: &mut Vec<u8>) -> Result<(), ManagerError> {
    match ScalarRef::of(v) {
        Some(s) => {
            out.reserve(16 + extra(v));
            out.push(COMPACT);
            extend(&s, out)
        }
        None => {
            out.extend_from_slice(&crate::value::dumps(v)?);
            Ok(())
        }
    }
}

/// Decodes a reply's value, compact or pickled.
pub(crate) fn unpack_value(bytes: &[u8]) -> Result<Value, ManagerError> {
    if bytes.first() == Some(&COMPACT) {
        return from_bytes::<Scalar>(&bytes[1..]).map(Value::from);
    }
    crate::value::loads(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::None),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan()).prop_map(Value::Float),
            ".{0,40}".prop_map(Value::Str),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(Value::Bytes),
        ]
    }

    proptest! {
        #[test]
        fn scalar_args_round_trip_compact(args in proptest::collection::vec(scalar(), 0..8)) {
            let packed = pack_args(args.clone(), Dict::new()).unwrap();
            prop_assert_eq!(packed[0], COMPACT);
            let (back, kwds) = unpack_args(&packed).unwrap();
            prop_assert_eq!(back.iter().map(Value::type_name).collect::<Vec<_>>(), args.iter().map(Value::type_name).collect::<Vec<_>>());
            prop_assert_eq!(back, args);
            prop_assert!(kwds.is_empty());
        }

        #[test]
        fn scalar_values_round_trip_compact(v in scalar()) {
            let packed = pack_value(&v).unwrap();
            prop_assert_eq!(packed[0], COMPACT);
            let back = unpack_value(&packed).unwrap();
            prop_assert_eq!(back.type_name(), v.type_name());
            prop_assert_eq!(back, v);
        }

        #[test]
        fn any_bytes_decode_to_a_value_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut compact = vec![COMPACT];
            compact.extend_from_slice(&bytes);
            let _ = unpack_args(&compact);
            let _ = unpack_value(&compact);
            let _ = unpack_args(&bytes);
            let _ = unpack_value(&bytes);
        }
    }

    #[test]
    fn containers_and_keywords_are_pickled() {
        let mut kwds = Dict::new();
        kwds.insert(Value::from("block"), Value::Bool(false));
        let packed = pack_args(vec![Value::Int(1)], kwds.clone()).unwrap();
        assert_eq!(packed[0], 0x80);
        assert_eq!(unpack_args(&packed).unwrap(), (vec![Value::Int(1)], kwds));
        let list = Value::List(vec![Value::Int(1), Value::Str("a".into())]);
        let packed = pack_args(vec![list.clone()], Dict::new()).unwrap();
        assert_eq!(packed[0], 0x80);
        assert_eq!(unpack_args(&packed).unwrap().0, vec![list.clone()]);
        let packed = pack_value(&list).unwrap();
        assert_eq!(packed[0], 0x80);
        assert_eq!(unpack_value(&packed).unwrap(), list);
    }

    #[test]
    fn compact_form_matches_its_decoder() {
        // `ScalarRef` encodes, `Scalar` decodes: one value of each variant, in order.
        let all = [
            Value::None,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(0.5),
            Value::Str("é".into()),
            Value::Bytes(vec![0, 255]),
        ];
        for v in &all {
            assert_eq!(&unpack_value(&pack_value(v).unwrap()).unwrap(), v);
        }
        assert!(matches!(unpack_value(&[COMPACT, 6]), Err(ManagerError::Decode { .. })));
        assert!(matches!(unpack_value(&[COMPACT, 0, 0]), Err(ManagerError::Decode { .. })));
    }
}
