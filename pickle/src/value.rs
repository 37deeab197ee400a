//! `Value`: any Python value a pickle can carry here, with Python's equality.
//!
//! Numbers compare and hash the way Python's do, so `True`, `1` and `1.0` are one dict key
//! and `0.0 == -0.0 == 0`. Big ints are kept normalised: an int that fits an `i64` is
//! always `Value::Int`, never `Value::BigInt`, so equality never has to look at both.
//! `bytes` equals a `bytearray` with the same content and a `set` equals a `frozenset`
//! with the same members, as in Python; a `list` never equals a `tuple`.
//!
//! One deliberate difference: Python compares a NaN by identity (a dict finds the very NaN
//! object it was given, never another one), which a value type cannot do. Here every NaN
//! equals every other NaN, so `Eq` stays an equivalence and a NaN key can be found again.

use std::fmt;
use std::hash::{Hash, Hasher};

use indexmap::{IndexMap, IndexSet};
use num_bigint::BigInt;
use num_traits::{FromPrimitive, ToPrimitive};

/// A Python `dict`: insertion-ordered, keys compared with Python's equality.
pub type Dict = IndexMap<Value, Value>;

/// A Python `set` or `frozenset`: insertion-ordered, members compared with Python's equality.
pub type Set = IndexSet<Value>;

/// Any Python value the codec reads or writes.
///
/// `Value` implements serde's `Serialize` and `Deserialize`, keeping every Python type
/// through [`to_value`](crate::to_value)/[`from_value`](crate::from_value) and this crate's
/// `dumps`/`loads`. With other formats it needs a self-describing one (JSON reads back, with
/// tuples as lists); over postcard, carry `dumps_value` bytes instead.
///
/// ```
/// use mproc_pickle::{Dict, Value};
///
/// let mut d = Dict::new();
/// d.insert(Value::Int(1), Value::from("one"));
/// // Python: {1: 'one'}[True] and {1: 'one'}[1.0] both find the entry.
/// assert_eq!(d.get(&Value::Bool(true)), Some(&Value::from("one")));
/// assert_eq!(d.get(&Value::Float(1.0)), Some(&Value::from("one")));
/// ```
#[derive(Clone, Debug)]
pub enum Value {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// An `int` that fits an `i64`.
    Int(i64),
    /// An `int` outside the `i64` range (never holds one inside it: see [`Value::int`]).
    BigInt(BigInt),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `bytearray`.
    ByteArray(Vec<u8>),
    /// `list`.
    List(Vec<Value>),
    /// `tuple`.
    Tuple(Vec<Value>),
    /// `dict`.
    Dict(Dict),
    /// `set`.
    Set(Set),
    /// `frozenset`.
    FrozenSet(Set),
    /// `array.array`: a typecode (`'d'`, `'i'`, `'B'` …) and the items' bytes,
    /// little-endian. Pickled as CPython pickles it (protocol 3 on); see
    /// [`crate::ARRAY_KINDS`] for the typed arrays it maps to. Two arrays are equal when
    /// typecode and bytes are (Python also equates `array('i', [1])` with
    /// `array('d', [1.0])`; this does not).
    Array {
        /// The `array.array` typecode.
        typecode: char,
        /// The items, little-endian, a whole number of items long.
        data: Vec<u8>,
    },
    /// An instance of an allow-listed exception class, e.g. `KeyError('k')` is
    /// `{ module: "builtins", name: "KeyError", args: [Str("k")] }` and `queue.Empty()` is
    /// `{ module: "queue", name: "Empty", args: [] }`. See [`crate::ALLOWED_EXCEPTIONS`].
    Exception {
        /// The class's module: `builtins` or `queue`.
        module: String,
        /// The class's name.
        name: String,
        /// The exception's `args`.
        args: Vec<Value>,
    },
    /// A `multiprocessing.managers.Token`, read as data (a manager's `get_methods`
    /// argument, the target of a `'#PROXY'` reply).
    Token(Box<Token>),
    /// A pickled manager proxy (`RebuildProxy(proxytype, token, serializer, kwds)`), read
    /// as data: what a Python client sends when it passes a proxy to a manager.
    Proxy(Box<Proxy>),
}

impl Value {
    /// An `int` from a big integer, normalised: `Value::Int` when it fits an `i64`.
    pub fn int(n: BigInt) -> Value {
        match n.to_i64() {
            Some(small) => Value::Int(small),
            None => Value::BigInt(n),
        }
    }

    /// A builtin exception, e.g. `Value::exception("KeyError", vec![Value::from("k")])`.
    pub fn exception(name: &str, args: Vec<Value>) -> Value {
        Value::Exception { module: "builtins".to_owned(), name: name.to_owned(), args }
    }

    /// Python's name for this value's type: `"int"`, `"str"`, `"KeyError"` …
    pub fn type_name(&self) -> &str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::ByteArray(_) => "bytearray",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Array { .. } => "array",
            Value::Exception { name, .. } => name,
            Value::Token(_) => "Token",
            Value::Proxy(p) => &p.proxytype,
        }
    }

    /// The `str`, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The `int` (or `bool`, as in Python) as an `i64`, if it is one that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Bool(b) => Some(i64::from(b)),
            _ => None,
        }
    }

    /// The contents of a `bytes` or `bytearray`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) | Value::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// The items of a `list` or `tuple`.
    pub fn as_items(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The `dict`, if this is one.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value as a number, if it is one (`bool` counts, as in Python).
    fn number(&self) -> Option<Number<'_>> {
        match *self {
            Value::Bool(b) => Some(Number::Int(i64::from(b))),
            Value::Int(i) => Some(Number::Int(i)),
            Value::BigInt(ref b) => Some(Number::Big(b)),
            Value::Float(f) => Some(Number::Float(f)),
            _ => None,
        }
    }
}

/// A borrowed number, for comparing across `bool`, `int` and `float`.
#[derive(Clone, Copy)]
enum Number<'a> {
    Int(i64),
    Big(&'a BigInt),
    Float(f64),
}

impl Number<'_> {
    fn equals(self, other: Number<'_>) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            // Normalised: a BigInt is never equal to an i64.
            (Number::Int(_), Number::Big(_)) | (Number::Big(_), Number::Int(_)) => false,
            (Number::Big(a), Number::Big(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Number::Float(f), other) | (other, Number::Float(f)) => {
                // Exact comparison, as Python does: the float must be integral and equal.
                if f.fract() != 0.0 || !f.is_finite() {
                    return false;
                }
                match other {
                    Number::Int(i) => BigInt::from_f64(f) == Some(BigInt::from(i)),
                    Number::Big(b) => BigInt::from_f64(f).as_ref() == Some(b),
                    Number::Float(_) => unreachable!("float pairs are matched above"),
                }
            }
        }
    }

    fn hash<H: Hasher>(self, state: &mut H) {
        // Equal numbers must hash alike: integral floats hash as the int they equal.
        state.write_u8(0);
        match self {
            Number::Int(i) => i.hash(state),
            Number::Big(b) => b.hash(state),
            Number::Float(f) if f.is_finite() && f.fract() == 0.0 => match BigInt::from_f64(f).map(Value::int) {
                Some(Value::Int(i)) => i.hash(state),
                Some(Value::BigInt(b)) => b.hash(state),
                _ => unreachable!("a finite integral float converts to an int"),
            },
            Number::Float(f) if f.is_nan() => state.write_u64(u64::MAX),
            Number::Float(f) => {
                state.write_u8(1);
                f.to_bits().hash(state);
            }
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            return a.equals(b);
        }
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a) | Value::ByteArray(a), Value::Bytes(b) | Value::ByteArray(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => a == b,
            (Value::Dict(a), Value::Dict(b)) => a == b,
            (Value::Set(a) | Value::FrozenSet(a), Value::Set(b) | Value::FrozenSet(b)) => a == b,
            (Value::Array { typecode: t1, data: d1 }, Value::Array { typecode: t2, data: d2 }) => t1 == t2 && d1 == d2,
            (
                Value::Exception { module: m1, name: n1, args: a1 },
                Value::Exception { module: m2, name: n2, args: a2 },
            ) => m1 == m2 && n1 == n2 && a1 == a2,
            (Value::Token(a), Value::Token(b)) => a == b,
            (Value::Proxy(a), Value::Proxy(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if let Some(n) = self.number() {
            return n.hash(state);
        }
        match self {
            Value::None => state.write_u8(1),
            Value::Str(s) => {
                state.write_u8(2);
                s.hash(state);
            }
            Value::Bytes(b) | Value::ByteArray(b) => {
                state.write_u8(3);
                b.hash(state);
            }
            Value::Array { typecode, data } => {
                state.write_u8(9);
                typecode.hash(state);
                data.hash(state);
            }
            Value::List(items) => {
                state.write_u8(4);
                items.hash(state);
            }
            Value::Tuple(items) => {
                state.write_u8(5);
                items.hash(state);
            }
            Value::Dict(d) => {
                // Order-insensitive, as the equality is; Python refuses to hash a dict.
                state.write_u8(6);
                state.write_usize(d.len());
            }
            Value::Set(s) | Value::FrozenSet(s) => {
                // Order-insensitive: a sum of member hashes.
                state.write_u8(7);
                let mut sum = 0u64;
                for member in s {
                    let mut h = std::hash::DefaultHasher::new();
                    member.hash(&mut h);
                    sum = sum.wrapping_add(h.finish());
                }
                state.write_u64(sum);
            }
            Value::Exception { module, name, args } => {
                state.write_u8(8);
                module.hash(state);
                name.hash(state);
                args.hash(state);
            }
            Value::Token(t) => {
                state.write_u8(9);
                t.hash(state);
            }
            Value::Proxy(p) => {
                // The keyword arguments (a dict) are left out, as a dict's entries are.
                state.write_u8(10);
                p.proxytype.hash(state);
                p.token.hash(state);
            }
            Value::Bool(_) | Value::Int(_) | Value::BigInt(_) | Value::Float(_) => {
                unreachable!("numbers are hashed above")
            }
        }
    }
}

impl fmt::Display for Value {
    /// Python's `repr`, near enough for error messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        fn set<'a>(f: &mut fmt::Formatter<'_>, items: impl Iterator<Item = &'a Value>) -> fmt::Result {
            for (i, v) in items.enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::BigInt(b) => write!(f, "{b}"),
            Value::Float(x) if x.is_nan() => f.write_str("nan"),
            Value::Float(x) if x.is_infinite() => f.write_str(if *x > 0.0 { "inf" } else { "-inf" }),
            Value::Float(x) if x.fract() == 0.0 && x.abs() < 1e16 => write!(f, "{x:.1}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "b{:?}", String::from_utf8_lossy(b)),
            Value::ByteArray(b) => write!(f, "bytearray(b{:?})", String::from_utf8_lossy(b)),
            Value::Array { typecode, data } => write!(f, "array({typecode:?}, <{} bytes>)", data.len()),
            Value::List(items) => {
                f.write_str("[")?;
                seq(f, items)?;
                f.write_str("]")
            }
            Value::Tuple(items) => {
                f.write_str("(")?;
                seq(f, items)?;
                f.write_str(if items.len() == 1 { ",)" } else { ")" })
            }
            Value::Dict(d) => {
                f.write_str("{")?;
                for (i, (k, v)) in d.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Set(s) if s.is_empty() => f.write_str("set()"),
            Value::Set(s) => {
                f.write_str("{")?;
                set(f, s.iter())?;
                f.write_str("}")
            }
            Value::FrozenSet(s) => {
                f.write_str("frozenset({")?;
                set(f, s.iter())?;
                f.write_str("})")
            }
            Value::Exception { name, args, .. } => {
                write!(f, "{name}(")?;
                seq(f, args)?;
                f.write_str(")")
            }
            // As CPython's `Token.__repr__` and (near enough) `BaseProxy.__repr__`.
            Value::Token(t) => {
                write!(
                    f,
                    "Token(typeid={}, address={}, id={})",
                    Value::from(t.typeid.as_str()),
                    t.address,
                    Value::from(t.id.as_str())
                )
            }
            Value::Proxy(p) => {
                write!(f, "<{} object, typeid {} at {}>", p.proxytype, Value::from(p.token.typeid.as_str()), p.token.id)
            }
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<u64> for Value {
    fn from(u: u64) -> Value {
        match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(BigInt::from(u)),
        }
    }
}

impl From<BigInt> for Value {
    fn from(b: BigInt) -> Value {
        Value::int(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::List(items)
    }
}

impl From<Dict> for Value {
    fn from(d: Dict) -> Value {
        Value::Dict(d)
    }
}

/// `multiprocessing.managers.Token`: which object of which manager server a proxy names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    /// The typeid the object was created as (`"Lock"`, `"dict"`, `"Iterator"` …).
    pub typeid: String,
    /// The server's address as Python holds it: `(host, port)` for TCP, a path for a
    /// Unix socket.
    pub address: Value,
    /// The object's ident on that server (CPython's is `id(obj)` in hex).
    pub id: String,
}

/// A manager proxy as CPython pickles one: `RebuildProxy(proxytype, token, serializer, kwds)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy class's name in `multiprocessing.managers` (`"AcquirerProxy"`,
    /// `"DictProxy"`, `"AutoProxy"` …): one of [`PROXY_TYPES`](crate::PROXY_TYPES).
    pub proxytype: String,
    /// The object it names.
    pub token: Token,
    /// The serializer the proxy talks with (`"pickle"`).
    pub serializer: String,
    /// Keyword arguments of the rebuilt proxy (`exposed` for an `AutoProxy`).
    pub kwds: Dict,
}

impl Token {
    /// A token from its three fields.
    pub fn new(typeid: impl Into<String>, address: Value, id: impl Into<String>) -> Token {
        Token { typeid: typeid.into(), address, id: id.into() }
    }
}
