//! serde in and out of [`Value`]: `to_value`, `from_value`, and `Serialize`/`Deserialize`
//! for `Value` itself.
//!
//! Rust to Python, as a Python reader sees it:
//!
//! | Rust (serde data model)            | Python                                  |
//! |------------------------------------|-----------------------------------------|
//! | `bool`                             | `bool`                                  |
//! | integers (`u64`/`i128` beyond `i64` too) | `int`                             |
//! | `f32`, `f64`                       | `float`                                 |
//! | `char`, `String`, `&str`           | `str`                                   |
//! | bytes (`serde_bytes`, `ipc::Bytes`) | `bytes`                                |
//! | a typed array (`ipc::PodVec<f64>` …, see [`ARRAY_NEWTYPE`]) | `array.array` |
//! | `None`, `()`, unit struct          | `None`                                  |
//! | `Some(v)`, newtype struct          | `v`                                     |
//! | `Vec<T>`, sequences, sets          | `list`                                  |
//! | tuples, tuple structs              | `tuple`                                 |
//! | maps, structs                      | `dict` (a struct's keys are its field names) |
//! | unit variant `E::A`                | `'A'`                                   |
//! | other variants `E::A(x)`, `E::A { f }` | `{'A': x}`, `{'A': {'f': …}}`       |
//!
//! Python to Rust is the reverse (an `array.array` of another typecode than the typed
//! array's is an error naming both), plus: `bytes` and `bytearray` also fill a `Vec<u8>`;
//! `set`, `frozenset` and `tuple` fill any sequence; an `int` fills a `f64`. A `Value`
//! inside a typed structure (`(String, Value)`, `Vec<Value>`) keeps every Python type
//! (tuple, bytearray, set, exception …) both ways.

use std::cell::RefCell;
use std::fmt;

use num_bigint::BigInt;
use serde::de::{self, DeserializeOwned, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{self, Serialize};
use serde::Deserialize;

use crate::array::ARRAY_NEWTYPE;
use crate::error::{PickleError, Result};
use crate::value::{Dict, Set, Value};
use crate::value::{Proxy, Token};

// Newtype-struct names that carry a Python type through serde's data model. Any other
// serializer sees an ordinary newtype struct and writes the inner value.
const BYTEARRAY: &str = "\0mproc_pickle::bytearray";
const SET: &str = "\0mproc_pickle::set";
const FROZENSET: &str = "\0mproc_pickle::frozenset";
const BIGINT: &str = "\0mproc_pickle::int";
const EXCEPTION: &str = "\0mproc_pickle::exception";
/// A `Value::Array` as `(typecode, bytes)`, its typecode kept exactly (`'l'` is not `'q'`).
const ARRAY_VALUE: &str = "\0mproc_pickle::array_value";
const TOKEN: &str = "\0mproc_pickle::token";
const PROXY: &str = "\0mproc_pickle::proxy";
/// Asks the value deserializer to hand its `Value` over whole (see [`TAKEN`]).
const WHOLE: &str = "\0mproc_pickle::value";

thread_local! {
    /// A `Value` handed from [`ValueDeserializer`] to `Value`'s own `Deserialize` impl,
    /// which serde's visitor interface has no way to pass directly. Set and taken within
    /// one call (`deserialize_newtype_struct(WHOLE)` → `visit_str(WHOLE)`).
    static TAKEN: RefCell<Option<Value>> = const { RefCell::new(None) };
}

/// Converts any `Serialize` value into a [`Value`] (see the module table for the mapping).
///
/// ```
/// use mproc_pickle::{to_value, Value};
///
/// let v = to_value(&(1u8, "a", vec![2.5])).unwrap();
/// assert_eq!(v, Value::Tuple(vec![Value::Int(1), Value::from("a"), Value::List(vec![Value::Float(2.5)])]));
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    value.serialize(ValueSerializer)
}

/// Converts a [`Value`] into any `DeserializeOwned` type.
///
/// ```
/// use mproc_pickle::{from_value, Value};
///
/// let v = Value::Tuple(vec![Value::Int(7), Value::from("x")]);
/// let (n, s): (u64, String) = from_value(v).unwrap();
/// assert_eq!((n, s.as_str()), (7, "x"));
/// ```
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(ValueDeserializer(value))
}

// ---------------------------------------------------------------------------------------
// Value: Serialize and Deserialize.

impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq, SerializeTuple};
        match self {
            Value::None => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::BigInt(b) => s.serialize_newtype_struct(BIGINT, &b.to_string()),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(t) => s.serialize_str(t),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::ByteArray(b) => s.serialize_newtype_struct(BYTEARRAY, &BytesRef(b)),
            Value::Array { typecode, data } => {
                let mut code = [0; 4];
                s.serialize_newtype_struct(ARRAY_VALUE, &(&*typecode.encode_utf8(&mut code), BytesRef(data)))
            }
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Tuple(items) => {
                let mut tuple = s.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            Value::Dict(d) => {
                let mut map = s.serialize_map(Some(d.len()))?;
                for (k, v) in d {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Set(members) => s.serialize_newtype_struct(SET, &SetRef(members)),
            Value::FrozenSet(members) => s.serialize_newtype_struct(FROZENSET, &SetRef(members)),
            Value::Exception { module, name, args } => {
                s.serialize_newtype_struct(EXCEPTION, &(module, name, TupleRef(args)))
            }
            Value::Token(t) => s.serialize_newtype_struct(TOKEN, &TokenRef(t)),
            Value::Proxy(p) => s.serialize_newtype_struct(
                PROXY,
                &(&p.proxytype, TokenAsValue(&p.token), &p.serializer, DictRef(&p.kwds)),
            ),
        }
    }
}

struct TokenRef<'a>(&'a Token);

impl Serialize for TokenRef<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (&self.0.typeid, &self.0.address, &self.0.id).serialize(s)
    }
}

/// A token inside a proxy, tagged as one.
struct TokenAsValue<'a>(&'a Token);

impl Serialize for TokenAsValue<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(TOKEN, &TokenRef(self.0))
    }
}

struct DictRef<'a>(&'a Dict);

impl Serialize for DictRef<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct SetRef<'a>(&'a Set);

impl Serialize for SetRef<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

struct TupleRef<'a>(&'a [Value]);

impl Serialize for TupleRef<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for item in self.0 {
            t.serialize_element(item)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_newtype_struct(WHOLE, ValueVisitor)
    }
}

/// Builds a `Value` from any self-describing format (lossy beyond the serde data model:
/// tuples arrive as lists), or takes it whole from [`ValueDeserializer`].
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any Python value")
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i128<E>(self, v: i128) -> std::result::Result<Value, E> {
        Ok(Value::int(BigInt::from(v)))
    }

    fn visit_u128<E>(self, v: u128) -> std::result::Result<Value, E> {
        Ok(Value::int(BigInt::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        if v == WHOLE {
            if let Some(value) = TAKEN.with(|t| t.borrow_mut().take()) {
                return Ok(value);
            }
        }
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Value, E> {
        if v == WHOLE {
            return self.visit_str(&v);
        }
        Ok(Value::Str(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> std::result::Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::None)
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::None)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut dict = Dict::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry()? {
            dict.insert(k, v);
        }
        Ok(Value::Dict(dict))
    }
}

// ---------------------------------------------------------------------------------------
// Serializer: Rust → Value.

/// The serde `Serializer` that builds a [`Value`].
struct ValueSerializer;

fn variant_dict(variant: &str, payload: Value) -> Value {
    let mut d = Dict::with_capacity(1);
    d.insert(Value::from(variant), payload);
    Value::Dict(d)
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = PickleError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value> {
        Ok(Value::int(BigInt::from(v)))
    }
    fn serialize_u8(self, v: u8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value> {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value> {
        Ok(Value::int(BigInt::from(v)))
    }
    fn serialize_f32(self, v: f32) -> Result<Value> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value> {
        Ok(Value::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value> {
        Ok(Value::None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::None)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value> {
        Ok(Value::None)
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<Value> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Result<Value> {
        let inner = v.serialize(self)?;
        let mismatch = || PickleError::Serde(format!("a {} cannot carry {}", &name[1..], inner.type_name()));
        Ok(match name {
            BYTEARRAY => match inner {
                Value::Bytes(b) => Value::ByteArray(b),
                _ => return Err(mismatch()),
            },
            SET | FROZENSET => match inner {
                Value::List(items) | Value::Tuple(items) => {
                    let members: Set = items.into_iter().collect();
                    if name == SET {
                        Value::Set(members)
                    } else {
                        Value::FrozenSet(members)
                    }
                }
                _ => return Err(mismatch()),
            },
            BIGINT => match &inner {
                Value::Str(digits) => match digits.parse::<BigInt>() {
                    Ok(n) => Value::int(n),
                    Err(_) => return Err(mismatch()),
                },
                _ => return Err(mismatch()),
            },
            ARRAY_NEWTYPE => match inner {
                Value::Tuple(parts) => match parts.as_slice() {
                    [Value::Int(size), Value::Int(kind), Value::Bytes(_)] => {
                        match crate::array::typecode_of_kind(*kind & !i64::from(crate::array::ARRAY_FROM_PYTHON)) {
                            Some(typecode) if crate::array::item_size(typecode) == usize::try_from(*size).ok() => {
                                let Some(Value::Bytes(data)) = parts.into_iter().nth(2) else { unreachable!() };
                                Value::Array { typecode, data }
                            }
                            // 128-bit and non-primitive elements have no typecode: the triple.
                            _ => Value::Tuple(parts),
                        }
                    }
                    _ => return Err(PickleError::Serde("a malformed array".to_owned())),
                },
                _ => return Err(mismatch()),
            },
            ARRAY_VALUE => match inner {
                Value::Tuple(mut parts) if parts.len() == 2 => match (parts.pop(), parts.pop()) {
                    (Some(Value::Bytes(data)), Some(Value::Str(code))) => match code.chars().next() {
                        Some(typecode) if code.chars().count() == 1 => Value::Array { typecode, data },
                        _ => return Err(PickleError::Serde(format!("a malformed array typecode {code:?}"))),
                    },
                    _ => return Err(PickleError::Serde("a malformed array".to_owned())),
                },
                _ => return Err(mismatch()),
            },
            EXCEPTION => match inner {
                Value::Tuple(mut parts) if parts.len() == 3 => {
                    let args = parts.pop();
                    let name = parts.pop();
                    let module = parts.pop();
                    match (module, name, args) {
                        (Some(Value::Str(module)), Some(Value::Str(name)), Some(Value::Tuple(args))) => {
                            Value::Exception { module, name, args }
                        }
                        _ => return Err(PickleError::Serde("a malformed exception".to_owned())),
                    }
                }
                _ => return Err(mismatch()),
            },
            TOKEN => match inner {
                Value::Tuple(parts) => Value::Token(Box::new(token_of(parts)?)),
                _ => return Err(mismatch()),
            },
            PROXY => match inner {
                Value::Tuple(parts) if parts.len() == 4 => {
                    let mut parts = parts.into_iter();
                    match (parts.next(), parts.next(), parts.next(), parts.next()) {
                        (
                            Some(Value::Str(proxytype)),
                            Some(Value::Token(token)),
                            Some(Value::Str(serializer)),
                            Some(Value::Dict(kwds)),
                        ) => Value::Proxy(Box::new(Proxy { proxytype, token: *token, serializer, kwds })),
                        _ => return Err(PickleError::Serde("a malformed proxy".to_owned())),
                    }
                }
                _ => return Err(mismatch()),
            },
            _ => inner,
        })
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value> {
        Ok(variant_dict(variant, v.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder> {
        Ok(SeqBuilder::new(len, SeqKind::List))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder> {
        Ok(SeqBuilder::new(Some(len), SeqKind::Tuple))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqBuilder> {
        Ok(SeqBuilder::new(Some(len), SeqKind::Tuple))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder> {
        Ok(SeqBuilder::new(Some(len), SeqKind::Variant(variant)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder> {
        Ok(MapBuilder::new(len, None))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder> {
        Ok(MapBuilder::new(Some(len), None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder> {
        Ok(MapBuilder::new(Some(len), Some(variant)))
    }
}

enum SeqKind {
    List,
    Tuple,
    Variant(&'static str),
}

/// Collects a sequence, tuple or tuple variant.
struct SeqBuilder {
    items: Vec<Value>,
    kind: SeqKind,
}

impl SeqBuilder {
    fn new(len: Option<usize>, kind: SeqKind) -> SeqBuilder {
        SeqBuilder { items: Vec::with_capacity(len.unwrap_or(0).min(4096)), kind }
    }

    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.items.push(v.serialize(ValueSerializer)?);
        Ok(())
    }

    fn finish(self) -> Value {
        match self.kind {
            SeqKind::List => Value::List(self.items),
            SeqKind::Tuple => Value::Tuple(self.items),
            SeqKind::Variant(variant) => variant_dict(variant, Value::List(self.items)),
        }
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = PickleError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.push(v)
    }
    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = PickleError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.push(v)
    }
    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = PickleError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.push(v)
    }
    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SeqBuilder {
    type Ok = Value;
    type Error = PickleError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.push(v)
    }
    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

/// Collects a map, struct or struct variant.
struct MapBuilder {
    dict: Dict,
    key: Option<Value>,
    variant: Option<&'static str>,
}

impl MapBuilder {
    fn new(len: Option<usize>, variant: Option<&'static str>) -> MapBuilder {
        MapBuilder { dict: Dict::with_capacity(len.unwrap_or(0).min(4096)), key: None, variant }
    }

    fn finish(self) -> Value {
        match self.variant {
            None => Value::Dict(self.dict),
            Some(variant) => variant_dict(variant, Value::Dict(self.dict)),
        }
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = PickleError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<()> {
        self.key = Some(k.serialize(ValueSerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let key = self.key.take().ok_or_else(|| PickleError::Serde("map value before its key".to_owned()))?;
        self.dict.insert(key, v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = PickleError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.dict.insert(Value::from(key), v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for MapBuilder {
    type Ok = Value;
    type Error = PickleError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.dict.insert(Value::from(key), v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

/// The element size and kind of an array's typecode, as a typed array writes them, marked
/// as from Python (see `ARRAY_FROM_PYTHON`).
fn array_header(typecode: char) -> (u32, u8) {
    let size = crate::array::item_size(typecode).unwrap_or(0) as u32;
    (size, crate::array::kind_of_typecode(typecode).unwrap_or(0x7f) | crate::array::ARRAY_FROM_PYTHON)
}

// ---------------------------------------------------------------------------------------
// Deserializer: Value → Rust.

/// The serde `Deserializer` over an owned [`Value`].
struct ValueDeserializer(Value);

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = PickleError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::None => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::BigInt(b) => {
                if let Ok(u) = u64::try_from(&b) {
                    visitor.visit_u64(u)
                } else if let Ok(i) = i128::try_from(&b) {
                    visitor.visit_i128(i)
                } else if let Ok(u) = u128::try_from(&b) {
                    visitor.visit_u128(u)
                } else {
                    Err(PickleError::Serde(format!("int {b} is too big for any Rust integer")))
                }
            }
            Value::Float(f) => visitor.visit_f64(f),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) | Value::ByteArray(b) => visitor.visit_byte_buf(b),
            Value::Array { typecode, data } => {
                // The triple a typed array reads (see `ARRAY_NEWTYPE`).
                let (size, kind) = array_header(typecode);
                visit_seq(vec![Value::Int(size as i64), Value::Int(kind.into()), Value::Bytes(data)], visitor)
            }
            Value::List(items) | Value::Tuple(items) => visit_seq(items, visitor),
            Value::Set(members) | Value::FrozenSet(members) => visit_seq(members.into_iter().collect(), visitor),
            Value::Dict(d) => visitor.visit_map(DictAccess { entries: d.into_iter(), value: None }),
            Value::Exception { module, name, args } => {
                let mut d = Dict::with_capacity(3);
                d.insert(Value::from("module"), Value::Str(module));
                d.insert(Value::from("name"), Value::Str(name));
                d.insert(Value::from("args"), Value::Tuple(args));
                visitor.visit_map(DictAccess { entries: d.into_iter(), value: None })
            }
            Value::Token(t) => visitor.visit_map(DictAccess { entries: token_dict(*t).into_iter(), value: None }),
            Value::Proxy(p) => {
                let mut d = Dict::with_capacity(4);
                d.insert(Value::from("proxytype"), Value::Str(p.proxytype));
                d.insert(Value::from("token"), Value::Dict(token_dict(p.token)));
                d.insert(Value::from("serializer"), Value::Str(p.serializer));
                d.insert(Value::from("kwds"), Value::Dict(p.kwds));
                visitor.visit_map(DictAccess { entries: d.into_iter(), value: None })
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::None => visitor.visit_none(),
            other => visitor.visit_some(ValueDeserializer(other)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::None => visitor.visit_unit(),
            Value::Tuple(items) if items.is_empty() => visitor.visit_unit(),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value> {
        if name == WHOLE {
            // `Value`'s own impl: hand the value over whole, every Python type kept.
            TAKEN.with(|t| *t.borrow_mut() = Some(self.0));
            let result = visitor.visit_newtype_struct(WholeValue);
            TAKEN.with(|t| t.borrow_mut().take());
            return result;
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            // `Vec<u8>` without `serde_bytes` asks for a sequence.
            Value::Bytes(b) | Value::ByteArray(b) => {
                visit_seq(b.into_iter().map(|x| Value::Int(x.into())).collect(), visitor)
            }
            other => ValueDeserializer(other).deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Value::Str(variant) => visitor.visit_enum(EnumValue { variant, payload: None }),
            Value::Dict(d) if d.len() == 1 => {
                let (k, v) = d.into_iter().next().expect("one entry");
                match k {
                    Value::Str(variant) => visitor.visit_enum(EnumValue { variant, payload: Some(v) }),
                    other => Err(PickleError::Serde(format!("an enum variant named by {}", other.type_name()))),
                }
            }
            other => Err(de::Error::invalid_type(unexpected(&other), &"an enum: 'Variant' or {'Variant': value}")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf map struct identifier ignored_any
    }
}

/// Hands the taken `Value` to [`ValueVisitor::visit_str`].
struct WholeValue;

impl<'de> de::Deserializer<'de> for WholeValue {
    type Error = PickleError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_str(WHOLE)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::None => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(i) => de::Unexpected::Signed(*i),
        Value::Float(f) => de::Unexpected::Float(*f),
        Value::Str(s) => de::Unexpected::Str(s),
        Value::Bytes(b) | Value::ByteArray(b) => de::Unexpected::Bytes(b),
        Value::List(_) | Value::Tuple(_) | Value::Set(_) | Value::FrozenSet(_) => de::Unexpected::Seq,
        Value::Dict(_) => de::Unexpected::Map,
        other => de::Unexpected::Other(other.type_name()),
    }
}

fn visit_seq<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value> {
    let len = items.len();
    let mut access = SeqValues { items: items.into_iter() };
    let out = visitor.visit_seq(&mut access)?;
    if access.items.len() != 0 {
        return Err(de::Error::invalid_length(len, &"fewer elements"));
    }
    Ok(out)
}

struct SeqValues {
    items: std::vec::IntoIter<Value>,
}

impl<'de> SeqAccess<'de> for SeqValues {
    type Error = PickleError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.items.next().map(|v| seed.deserialize(ValueDeserializer(v))).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct DictAccess {
    entries: indexmap::map::IntoIter<Value, Value>,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for DictAccess {
    type Error = PickleError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(ValueDeserializer(k)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let v = self.value.take().ok_or_else(|| PickleError::Serde("map value before its key".to_owned()))?;
        seed.deserialize(ValueDeserializer(v))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumValue {
    variant: String,
    payload: Option<Value>,
}

impl<'de> EnumAccess<'de> for EnumValue {
    type Error = PickleError;
    type Variant = VariantValue;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, VariantValue)> {
        let variant = seed.deserialize(ValueDeserializer(Value::Str(self.variant)))?;
        Ok((variant, VariantValue(self.payload)))
    }
}

struct VariantValue(Option<Value>);

impl<'de> VariantAccess<'de> for VariantValue {
    type Error = PickleError;
    fn unit_variant(self) -> Result<()> {
        match self.0 {
            None | Some(Value::None) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(unexpected(&other), &"a unit variant")),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(ValueDeserializer(self.0.unwrap_or(Value::None)))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(ValueDeserializer(self.0.unwrap_or(Value::None)), visitor)
    }
    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(ValueDeserializer(self.0.unwrap_or(Value::None)), visitor)
    }
}

/// A token's fields as a dict, for a typed Rust reader.
fn token_dict(t: Token) -> Dict {
    let mut d = Dict::with_capacity(3);
    d.insert(Value::from("typeid"), Value::Str(t.typeid));
    d.insert(Value::from("address"), t.address);
    d.insert(Value::from("id"), Value::Str(t.id));
    d
}

/// A token from its serialised `(typeid, address, id)`.
fn token_of(parts: Vec<Value>) -> Result<Token> {
    let mut parts = parts.into_iter();
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Value::Str(typeid)), Some(address), Some(Value::Str(id)), None) => Ok(Token { typeid, address, id }),
        _ => Err(PickleError::Serde("a malformed token".to_owned())),
    }
}
