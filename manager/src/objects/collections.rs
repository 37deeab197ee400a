//! `list`, `Array`, `dict`, `Namespace` and `Value`: containers of [`Value`]s behind a
//! mutex, with CPython's method names. Every call runs under the object's lock, so each
//! is atomic (a `reverse` or `sort` is one call, not one per item).

use std::sync::Mutex;

use crate::error::{ManagerError, Result};
use crate::object::{lock, no_method, CallCtx, Object};
use crate::value::{as_i64, bad, items_of, py_repr, py_sort, Args, Dict, Value};

/// Resolves a Python-style index (negative counts from the end).
fn resolve(index: i64, len: usize) -> Result<usize> {
    let i = if index < 0 { index + len as i64 } else { index };
    if i < 0 || i >= len as i64 {
        return Err(ManagerError::IndexOutOfRange { index, len: len as u64 });
    }
    Ok(i as usize)
}

fn index_arg(args: &Args, pos: usize, name: &str) -> Result<i64> {
    let v = args.req(pos, name)?;
    as_i64(v).ok_or_else(|| bad(name, v, "list indices must be integers"))
}

/// Renders a sequence as Python's `repr` does.
fn repr_seq(open: &str, items: &[Value], close: &str) -> String {
    let inner: Vec<String> = items.iter().map(py_repr).collect();
    format!("{open}{}{close}", inner.join(", "))
}

/// `items * n`, refusing a result past the frame cap (Python's `MemoryError`).
fn repeat(items: &[Value], n: usize) -> Result<Vec<Value>> {
    if items.len().saturating_mul(n) > crate::wire::MAX_FRAME {
        return Err(ManagerError::InvalidArgument {
            argument: format!("n = {n}"),
            reason: "the list would be too large".into(),
        });
    }
    Ok((0..n).flat_map(|_| items.iter().cloned()).collect())
}

/// The methods CPython's `ListProxy` calls, plus `clear` and `#GETVALUE`.
const LIST_METHODS: &[&str] = &[
    "__add__",
    "__contains__",
    "__delitem__",
    "__getitem__",
    "__len__",
    "__mul__",
    "__reversed__",
    "__rmul__",
    "__setitem__",
    "append",
    "count",
    "extend",
    "index",
    "insert",
    "pop",
    "remove",
    "reverse",
    "sort",
    "__imul__",
    "clear",
];

/// The methods CPython's `ArrayProxy` calls.
const ARRAY_METHODS: &[&str] = &["__len__", "__getitem__", "__setitem__"];

/// A `list` (growable) or an `Array` (fixed length, items of one typecode).
pub(crate) struct ListObject {
    typeid: String,
    /// `None` for a list; `Some(typecode)` for an Array (`None` typecode: any item).
    array: Option<Option<char>>,
    items: Mutex<Vec<Value>>,
}

impl ListObject {
    /// A list holding `items`.
    pub fn list(typeid: &str, items: Vec<Value>) -> Self {
        ListObject { typeid: typeid.to_string(), array: None, items: Mutex::new(items) }
    }

    /// An `Array(typecode, items)`: `typecode` as Python's `array` module names it
    /// (`'i'`, `'d'` …), or `None` for items of any type (a Rust `ArrayProxy<T>`).
    pub fn array(typeid: &str, typecode: Option<char>, items: Vec<Value>) -> Result<Self> {
        let items = items.into_iter().map(|v| coerce(typecode, v)).collect::<Result<_>>()?;
        Ok(ListObject { typeid: typeid.to_string(), array: Some(typecode), items: Mutex::new(items) })
    }
}

/// An item stored into an array of `typecode`: ints for integer codes, floats (an int
/// converts) for `'f'`/`'d'`; Python's `TypeError` otherwise.
fn coerce(typecode: Option<char>, v: Value) -> Result<Value> {
    match typecode {
        None => Ok(v),
        Some('f' | 'd') => match v {
            Value::Float(_) => Ok(v),
            Value::Int(i) => Ok(Value::Float(i as f64)),
            other => Err(bad("item", &other, "must be real number")),
        },
        Some('u') => match v {
            Value::Str(ref s) if s.chars().count() == 1 => Ok(v),
            other => Err(bad("item", &other, "array item must be unicode character")),
        },
        Some(_) => match v {
            Value::Int(_) => Ok(v),
            Value::Bool(b) => Ok(Value::Int(i64::from(b))),
            other => Err(bad("item", &other, "an integer is required")),
        },
    }
}

impl Object for ListObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        if self.array.is_some() {
            ARRAY_METHODS
        } else {
            LIST_METHODS
        }
    }

    fn repr(&self) -> String {
        let items = lock(&self.items);
        match self.array {
            None => repr_seq("[", &items, "]"),
            Some(code) => {
                format!("array('{}', {})", code.unwrap_or('?'), repr_seq("[", &items, "]"))
            }
        }
    }

    fn call(&self, _ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let mut items = lock(&self.items);
        // The calls an Array takes; the rest are the list's.
        match method {
            "__len__" => return Ok(Value::Int(items.len() as i64)),
            "__getitem__" => {
                let i = resolve(index_arg(&args, 0, "index")?, items.len())?;
                return Ok(items[i].clone());
            }
            "__setitem__" => {
                let i = resolve(index_arg(&args, 0, "index")?, items.len())?;
                let v = args.req(1, "value")?.clone();
                items[i] = match self.array {
                    Some(code) => coerce(code, v)?,
                    None => v,
                };
                return Ok(Value::None);
            }
            "#GETVALUE" => return Ok(Value::List(items.clone())),
            _ if self.array.is_some() => return Err(no_method(&self.typeid, method)),
            _ => {}
        }
        match method {
            "append" => items.push(args.req(0, "object")?.clone()),
            "extend" => {
                let more = items_of(args.req(0, "iterable")?, "iterable")?;
                items.extend(more);
            }
            "insert" => {
                let i = index_arg(&args, 0, "index")?;
                // Python clamps an insert position instead of raising.
                let len = items.len() as i64;
                let at = if i < 0 { (i + len).max(0) } else { i.min(len) };
                items.insert(at as usize, args.req(1, "object")?.clone());
            }
            "pop" => {
                if items.is_empty() {
                    return Err(ManagerError::IndexOutOfRange { index: args.int(0, "index", -1)?, len: 0 });
                }
                let i = resolve(args.int(0, "index", -1)?, items.len())?;
                return Ok(items.remove(i));
            }
            "remove" => {
                let x = args.req(0, "value")?;
                let at = items.iter().position(|v| v == x).ok_or(ManagerError::ValueNotFound)?;
                items.remove(at);
            }
            "__delitem__" => {
                let i = resolve(index_arg(&args, 0, "index")?, items.len())?;
                items.remove(i);
            }
            "index" => {
                let x = args.req(0, "value")?;
                let len = items.len() as i64;
                let clamp = |i: i64| if i < 0 { (i + len).max(0) } else { i.min(len) } as usize;
                let (start, stop) = (clamp(args.int(1, "start", 0)?), clamp(args.int(2, "stop", len)?));
                let at = items
                    .get(start..stop.max(start))
                    .and_then(|s| s.iter().position(|v| v == x))
                    .ok_or(ManagerError::ValueNotFound)?;
                return Ok(Value::Int((start + at) as i64));
            }
            "count" => {
                let x = args.req(0, "value")?;
                return Ok(Value::Int(items.iter().filter(|v| *v == x).count() as i64));
            }
            "__contains__" => {
                let x = args.req(0, "value")?;
                return Ok(Value::Bool(items.iter().any(|v| v == x)));
            }
            "reverse" => items.reverse(),
            "sort" => {
                if args.opt(0, "key").is_some_and(|k| *k != Value::None) {
                    return Err(ManagerError::InvalidArgument {
                        argument: "key".into(),
                        reason: "a key function cannot be sent to the manager".into(),
                    });
                }
                let reverse = args.flag(usize::MAX, "reverse", false)?;
                py_sort(&mut items, reverse)?;
            }
            "clear" => items.clear(),
            "__add__" => {
                let mut out = items.clone();
                match args.req(0, "other")? {
                    Value::List(more) => out.extend(more.iter().cloned()),
                    other => return Err(bad("other", other, "can only concatenate list to list")),
                }
                return Ok(Value::List(out));
            }
            "__mul__" | "__rmul__" => {
                let n = args.int(0, "n", 1)?.max(0) as usize;
                return Ok(Value::List(repeat(&items, n)?));
            }
            "__imul__" => {
                let n = args.int(0, "n", 1)?.max(0) as usize;
                let repeated = repeat(&items, n)?;
                *items = repeated;
                return Ok(Value::List(items.clone()));
            }
            "__reversed__" => return Ok(Value::List(items.iter().rev().cloned().collect())),
            _ => return Err(no_method(&self.typeid, method)),
        }
        Ok(Value::None)
    }
}

/// The methods of CPython's `DictProxy`, in its order.
const DICT_METHODS: &[&str] = &[
    "__contains__",
    "__delitem__",
    "__getitem__",
    "__iter__",
    "__len__",
    "__setitem__",
    "clear",
    "copy",
    "get",
    "items",
    "keys",
    "pop",
    "popitem",
    "setdefault",
    "update",
    "values",
];

/// A `dict`: insertion-ordered, keys compared as Python compares them (`1 == 1.0`).
pub(crate) struct DictObject {
    typeid: String,
    map: Mutex<Dict>,
}

impl DictObject {
    pub fn new(typeid: &str, init: Dict) -> Self {
        DictObject { typeid: typeid.to_string(), map: Mutex::new(init) }
    }
}

fn key_missing(k: &Value) -> ManagerError {
    ManagerError::KeyMissing { key: py_repr(k) }
}

/// The pairs of `dict.update`'s argument: a dict, or an iterable of pairs.
pub(crate) fn pairs_of(v: &Value) -> Result<Vec<(Value, Value)>> {
    match v {
        Value::Dict(d) => Ok(d.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        other => items_of(other, "other")?
            .into_iter()
            .map(|p| match p {
                Value::List(kv) | Value::Tuple(kv) if kv.len() == 2 => {
                    let mut kv = kv.into_iter();
                    Ok((kv.next().unwrap_or(Value::None), kv.next().unwrap_or(Value::None)))
                }
                p => Err(bad("item", &p, "dictionary update sequence element must be a pair")),
            })
            .collect(),
    }
}

impl Object for DictObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        DICT_METHODS
    }

    fn repr(&self) -> String {
        py_repr(&Value::Dict(lock(&self.map).clone()))
    }

    fn call(&self, _ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let mut map = lock(&self.map);
        Ok(match method {
            "__getitem__" => {
                let k = args.req(0, "key")?;
                map.get(k).cloned().ok_or_else(|| key_missing(k))?
            }
            "__setitem__" => {
                map.insert(args.req(0, "key")?.clone(), args.req(1, "value")?.clone());
                Value::None
            }
            // A Rust client's `insert`: `(replaced, old value)`, as `HashMap::insert` tells.
            "#insert" => match map.insert(args.req(0, "key")?.clone(), args.req(1, "value")?.clone()) {
                Some(old) => Value::Tuple(vec![Value::Bool(true), old]),
                None => Value::Tuple(vec![Value::Bool(false), Value::None]),
            },
            "__delitem__" => {
                let k = args.req(0, "key")?;
                map.shift_remove(k).ok_or_else(|| key_missing(k))?;
                Value::None
            }
            "__contains__" => Value::Bool(map.contains_key(args.req(0, "key")?)),
            // The keys; a Python client gets them behind an `Iterator` proxy (`#PROXY`).
            "__iter__" => Value::List(map.keys().cloned().collect()),
            "__len__" => Value::Int(map.len() as i64),
            "get" => map
                .get(args.req(0, "key")?)
                .cloned()
                .unwrap_or_else(|| args.opt(1, "default").cloned().unwrap_or(Value::None)),
            "setdefault" => {
                let k = args.req(0, "key")?.clone();
                let default = args.opt(1, "default").cloned().unwrap_or(Value::None);
                map.entry(k).or_insert(default).clone()
            }
            "pop" => {
                let k = args.req(0, "key")?;
                match (map.shift_remove(k), args.opt(1, "default")) {
                    (Some(v), _) => v,
                    (None, Some(d)) => d.clone(),
                    (None, None) => return Err(key_missing(k)),
                }
            }
            "popitem" => match map.pop() {
                Some((k, v)) => Value::Tuple(vec![k, v]),
                None => return Err(ManagerError::KeyMissing { key: "popitem(): dictionary is empty".into() }),
            },
            "update" => {
                if let Some(other) = args.args.first() {
                    for (k, v) in pairs_of(other)? {
                        map.insert(k, v);
                    }
                }
                for (k, v) in &args.kwds {
                    map.insert(k.clone(), v.clone());
                }
                Value::None
            }
            "keys" => Value::List(map.keys().cloned().collect()),
            "values" => Value::List(map.values().cloned().collect()),
            "items" => Value::List(map.iter().map(|(k, v)| Value::Tuple(vec![k.clone(), v.clone()])).collect()),
            "clear" => {
                map.clear();
                Value::None
            }
            "copy" | "#GETVALUE" => Value::Dict(map.clone()),
            _ => return Err(no_method(&self.typeid, method)),
        })
    }
}

/// The methods CPython's `NamespaceProxy` calls, plus `#GETVALUE` (the fields).
const NAMESPACE_METHODS: &[&str] = &["__getattribute__", "__setattr__", "__delattr__"];

/// A `Namespace`: named fields.
pub(crate) struct NamespaceObject {
    typeid: String,
    fields: Mutex<Dict>,
}

impl NamespaceObject {
    pub fn new(typeid: &str, init: Dict) -> Self {
        NamespaceObject { typeid: typeid.to_string(), fields: Mutex::new(init) }
    }
}

fn no_field(name: &Value) -> ManagerError {
    match name {
        Value::Str(s) => ManagerError::AttributeMissing { name: s.clone() },
        other => ManagerError::AttributeMissing { name: other.to_string() },
    }
}

fn field_name(args: &Args) -> Result<Value> {
    match args.req(0, "name")? {
        v @ Value::Str(_) => Ok(v.clone()),
        other => Err(bad("name", other, "attribute name must be string")),
    }
}

impl Object for NamespaceObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        NAMESPACE_METHODS
    }

    fn repr(&self) -> String {
        let fields = lock(&self.fields);
        let mut inner: Vec<String> = fields
            .iter()
            .map(|(k, v)| match k {
                Value::Str(s) => format!("{s}={}", py_repr(v)),
                other => format!("{}={}", py_repr(other), py_repr(v)),
            })
            .collect();
        inner.sort();
        format!("Namespace({})", inner.join(", "))
    }

    fn call(&self, _ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let mut fields = lock(&self.fields);
        match method {
            "__getattribute__" => {
                let name = field_name(&args)?;
                fields.get(&name).cloned().ok_or_else(|| no_field(&name))
            }
            "__setattr__" => {
                fields.insert(field_name(&args)?, args.req(1, "value")?.clone());
                Ok(Value::None)
            }
            "__delattr__" => {
                let name = field_name(&args)?;
                fields.shift_remove(&name).map(|_| Value::None).ok_or_else(|| no_field(&name))
            }
            "#GETVALUE" => Ok(Value::Dict(fields.clone())),
            _ => Err(no_method(&self.typeid, method)),
        }
    }
}

/// A `Value`: one value (Python's `Value(typecode, value)`; the typecode is not kept).
pub(crate) struct ValueObject {
    typeid: String,
    value: Mutex<Value>,
}

impl ValueObject {
    pub fn new(typeid: &str, init: Value) -> Self {
        ValueObject { typeid: typeid.to_string(), value: Mutex::new(init) }
    }
}

impl Object for ValueObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["get", "set"]
    }

    fn repr(&self) -> String {
        format!("Value({})", py_repr(&lock(&self.value)))
    }

    fn call(&self, _ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let mut value = lock(&self.value);
        match method {
            "get" | "#GETVALUE" => Ok(value.clone()),
            "set" => {
                *value = args.req(0, "value")?.clone();
                Ok(Value::None)
            }
            _ => Err(no_method(&self.typeid, method)),
        }
    }
}
