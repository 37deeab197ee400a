//! The server's value model: every object holds `mproc_pickle::Value`s, and every method
//! takes Python-style positional and keyword arguments ([`Args`]) and returns a `Value`.
//! Rust proxies convert their `T` to and from `Value` with serde and carry it pickled
//! inside postcard frames; Python clients send pickles. So both kinds of client share one
//! object, with Python's equality (`1 == 1.0 == True` as a dict key) and ordering.

use std::cmp::Ordering;
use std::time::Duration;

pub use mproc_pickle::{Dict, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ManagerError, Result};
use crate::wire::MAX_FRAME;

/// Converts a Rust value to a [`Value`].
pub(crate) fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    mproc_pickle::to_value(value).map_err(|e| ManagerError::Encode { reason: e.to_string() })
}

/// Converts a [`Value`] to a Rust value.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    mproc_ipc::payload::clear_decode_error();
    mproc_pickle::from_value(value).map_err(|e| match mproc_ipc::payload::take_decode_error() {
        Some(cause) => ManagerError::Payload(cause),
        None => ManagerError::Decode { reason: e.to_string() },
    })
}

/// Pickles a [`Value`].
pub(crate) fn dumps(value: &Value) -> Result<Vec<u8>> {
    mproc_pickle::dumps_value(value).map_err(|e| ManagerError::Encode { reason: e.to_string() })
}

/// Unpickles a [`Value`] (refusing any global off the codec's allow-list).
pub(crate) fn loads(bytes: &[u8]) -> Result<Value> {
    mproc_pickle::loads_value_capped(bytes, MAX_FRAME).map_err(|e| ManagerError::BadRequest { reason: e.to_string() })
}

/// The arguments of one call: Python's `*args` and `**kwds`.
#[derive(Debug, Default)]
pub(crate) struct Args {
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwds: Dict,
}

impl Args {
    /// The argument at `pos` or named `name`, if given.
    pub fn opt(&self, pos: usize, name: &str) -> Option<&Value> {
        self.args.get(pos).or_else(|| self.kwds.get(&Value::from(name)))
    }

    /// The argument at `pos` or named `name`; `InvalidArgument` naming it when missing.
    pub fn req(&self, pos: usize, name: &str) -> Result<&Value> {
        self.opt(pos, name).ok_or_else(|| ManagerError::InvalidArgument {
            argument: name.to_string(),
            reason: "missing required argument".into(),
        })
    }

    /// A bool argument (Python truthiness of ints and bools), `default` when absent.
    pub fn flag(&self, pos: usize, name: &str, default: bool) -> Result<bool> {
        match self.opt(pos, name) {
            None => Ok(default),
            Some(v) => truthy(v).ok_or_else(|| bad(name, v, "expected a bool")),
        }
    }

    /// A timeout in seconds (`None` or absent: no limit); a negative one is refused,
    /// except `-1` where `allow_minus_one` (a lock's "no timeout").
    pub fn timeout(&self, pos: usize, name: &str, allow_minus_one: bool) -> Result<Option<Duration>> {
        match self.opt(pos, name) {
            None | Some(Value::None) => Ok(None),
            Some(v) => {
                let secs = as_f64(v).ok_or_else(|| bad(name, v, "expected a number of seconds"))?;
                if allow_minus_one && secs == -1.0 {
                    return Ok(None);
                }
                if secs < 0.0 || secs.is_nan() {
                    return Err(bad(name, v, "must be a non-negative number"));
                }
                Ok(Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)))
            }
        }
    }

    /// An int argument, `default` when absent.
    pub fn int(&self, pos: usize, name: &str, default: i64) -> Result<i64> {
        match self.opt(pos, name) {
            None => Ok(default),
            Some(v) => as_i64(v).ok_or_else(|| bad(name, v, "expected an int")),
        }
    }
}

/// `InvalidArgument` naming an argument and its value.
pub(crate) fn bad(name: &str, v: &Value, reason: &str) -> ManagerError {
    ManagerError::InvalidArgument { argument: format!("{name} = {v}"), reason: reason.to_string() }
}

/// An int (or bool) as `i64`.
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A number as `f64`.
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        Value::Int(i) => Some(*i as f64),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Python's truthiness for the values a flag argument takes.
pub(crate) fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::None => Some(false),
        Value::Float(f) => Some(*f != 0.0),
        _ => None,
    }
}

/// The items of an iterable argument (`list.extend`, `dict.update` …).
pub(crate) fn items_of(v: &Value, name: &str) -> Result<Vec<Value>> {
    match v {
        Value::List(items) | Value::Tuple(items) => Ok(items.clone()),
        Value::Set(s) | Value::FrozenSet(s) => Ok(s.iter().cloned().collect()),
        Value::Dict(d) => Ok(d.keys().cloned().collect()),
        Value::Str(s) => Ok(s.chars().map(|c| Value::Str(c.to_string())).collect()),
        Value::Bytes(b) | Value::ByteArray(b) => Ok(b.iter().map(|x| Value::Int(i64::from(*x))).collect()),
        other => Err(bad(name, other, "not iterable")),
    }
}

/// Python's `<` ordering, or `None` where Python raises `TypeError` (e.g. `1 < "a"`).
pub(crate) fn py_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return match (x, y) {
            (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
            (x, y) => x.f().partial_cmp(&y.f()),
        };
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bytes(x) | Value::ByteArray(x), Value::Bytes(y) | Value::ByteArray(y)) => Some(x.cmp(y)),
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            for (p, q) in x.iter().zip(y) {
                if p != q {
                    return py_cmp(p, q);
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

impl Num {
    fn f(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }
}

fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::I(i64::from(*b))),
        Value::Int(i) => Some(Num::I(*i)),
        Value::Float(f) => Some(Num::F(*f)),
        _ => None,
    }
}

/// Sorts `items` stably by Python's ordering; `InvalidArgument` (Python's `TypeError`)
/// for items that do not compare.
pub(crate) fn py_sort(items: &mut [Value], reverse: bool) -> Result<()> {
    let mut failed: Option<(Value, Value)> = None;
    items.sort_by(|a, b| {
        let o = py_cmp(a, b).unwrap_or_else(|| {
            if failed.is_none() {
                failed = Some((a.clone(), b.clone()));
            }
            Ordering::Equal
        });
        if reverse {
            o.reverse()
        } else {
            o
        }
    });
    match failed {
        Some((a, b)) => Err(ManagerError::InvalidArgument {
            argument: format!("{a} < {b}"),
            reason: format!("'<' not supported between '{}' and '{}'", a.type_name(), b.type_name()),
        }),
        None => Ok(()),
    }
}

/// The Python exception a Python client gets for a server error (`('#ERROR', e)`), or
/// `None` when the error is the server's own trouble (a `'#TRACEBACK'` reply).
pub(crate) fn python_exception(e: &ManagerError) -> Option<Value> {
    let ex = |name: &str, msg: String| Some(Value::exception(name, vec![Value::Str(msg)]));
    match e {
        ManagerError::QueueEmpty => {
            Some(Value::Exception { module: "queue".into(), name: "Empty".into(), args: vec![] })
        }
        ManagerError::QueueFull => Some(Value::Exception { module: "queue".into(), name: "Full".into(), args: vec![] }),
        ManagerError::IndexOutOfRange { .. } => ex("IndexError", "list index out of range".into()),
        ManagerError::KeyMissing { key } => Some(Value::exception("KeyError", vec![Value::Str(key.clone())])),
        ManagerError::AttributeMissing { name } => {
            ex("AttributeError", format!("'Namespace' object has no attribute '{name}'"))
        }
        ManagerError::ValueNotFound => ex("ValueError", "x not in list".into()),
        ManagerError::TooManyTaskDone => ex("ValueError", "task_done() called too many times".into()),
        ManagerError::NotHeld { .. } => ex("RuntimeError", e.to_string()),
        ManagerError::SemaphoreOverRelease { .. } => ex("ValueError", "Semaphore released too many times".into()),
        ManagerError::BrokenBarrier => {
            Some(Value::Exception { module: "threading".into(), name: "BrokenBarrierError".into(), args: vec![] })
        }
        ManagerError::UnknownMethod { .. } => ex("AttributeError", e.to_string()),
        ManagerError::InvalidArgument { .. } => ex("TypeError", e.to_string()),
        ManagerError::Remote { message } => ex("RuntimeError", message.clone()),
        // An exception the server raises as Python does (`StopIteration` ending a
        // client's loop), if the codec may write its class.
        ManagerError::PythonException { module, name, args }
            if mproc_pickle::ALLOWED_EXCEPTIONS.contains(&(module.as_str(), name.as_str())) =>
        {
            Some(Value::Exception {
                module: module.clone(),
                name: name.clone(),
                args: args.iter().map(|a| Value::Str(a.clone())).collect(),
            })
        }
        _ => None,
    }
}

/// Python's `repr` of a value (as `str()` of a proxy shows it).
pub(crate) fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    repr_into(v, &mut out);
    out
}

fn repr_seq(items: &[Value], open: &str, close: &str, out: &mut String) {
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        repr_into(item, out);
    }
    out.push_str(close);
}

fn repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
}

fn repr_into(v: &Value, out: &mut String) {
    match v {
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => out.push_str(&format!("{f:.1}")),
        Value::Float(f) if f.is_finite() && (f.abs() >= 1e16 || (f.abs() < 1e-4 && *f != 0.0)) => {
            // Python's exponent form: 1e+16, 1.5e-05.
            let s = format!("{f:e}");
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            out.push_str(&format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs()));
        }
        Value::Str(s) => repr_str(s, out),
        Value::Bytes(b) => {
            out.push('b');
            repr_bytes(b, out);
        }
        Value::ByteArray(b) => {
            out.push_str("bytearray(b");
            repr_bytes(b, out);
            out.push(')');
        }
        Value::List(items) => repr_seq(items, "[", "]", out),
        Value::Tuple(items) if items.len() == 1 => repr_seq(items, "(", ",)", out),
        Value::Tuple(items) => repr_seq(items, "(", ")", out),
        Value::Dict(d) => {
            out.push('{');
            for (i, (k, x)) in d.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_into(k, out);
                out.push_str(": ");
                repr_into(x, out);
            }
            out.push('}');
        }
        Value::Set(s) if s.is_empty() => out.push_str("set()"),
        Value::Set(s) => repr_seq(&s.iter().cloned().collect::<Vec<_>>(), "{", "}", out),
        Value::FrozenSet(s) if s.is_empty() => out.push_str("frozenset()"),
        Value::FrozenSet(s) => repr_seq(&s.iter().cloned().collect::<Vec<_>>(), "frozenset({", "})", out),
        Value::Exception { name, args, .. } => repr_seq(args, &format!("{name}("), ")", out),
        other => out.push_str(&other.to_string()),
    }
}

fn repr_bytes(b: &[u8], out: &mut String) {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') { b'"' } else { b'\'' };
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
}
