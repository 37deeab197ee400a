//! CPython's manager protocol, client side: a Rust [`Manager`](crate::Manager) connected
//! to a server run by Python's `multiprocessing.managers` (`BaseManager` or
//! `SyncManager`). Each of this crate's requests becomes what CPython's own client sends:
//!
//! - `Create` → `(None, 'create', (typeid, *args), kwds)` on a fresh connection, which
//!   answers `(ident, exposed)`; the reference `create` took is this handle's.
//! - `Call` → `(ident, method, args, kwds)` on a connection that first sent
//!   `(None, 'accept_connection', (name,), {})`; such connections are pooled.
//! - `IncRef`/`DecRef` → `incref`/`decref` on a fresh connection; `Stats` →
//!   `number_of_objects`; `Shutdown` → `shutdown`.
//!
//! Replies `('#RETURN', v)` are values; `('#ERROR', exception)` map to [`ManagerError`]
//! variants (`queue.Empty` → `QueueEmpty`, `KeyError` → `KeyMissing` …, others
//! `PythonException`); `('#TRACEBACK', text)` is `PythonTraceback`.
//!
//! How a server is told to be CPython's: [`probe`] sends this crate's `Hello` and
//! `Stats`; this crate's server answers with a postcard reply, CPython's with a pickled
//! `'#TRACEBACK'` (it cannot unpickle the frame), whose first byte is `0x80`.
//!
//! A `('#PROXY', (exposed, token))` reply — a method CPython marks in `method_to_typeid`
//! answers with a new object — naming an `Iterator` (a dict's `__iter__`) is drained into
//! a list, one `__next__` call per item on the same connection, and the reference the
//! server took for the reply is dropped; so `__iter__` answers a list here, as it does
//! on this crate's server. A proxy of another typeid is an error naming it (its
//! reference dropped too).
//!
//! Limits: a CPython server owns an `RLock`/`Condition` by the connection that acquired
//! it, and pooled connections are not tied to threads, so use those from one thread at a
//! time; this crate's own methods (`#insert` of `DictProxy::insert`, `get_value`,
//! `join` with a timeout) do not exist there.

use mproc_pickle::Token;

use crate::error::{ManagerError, Result};
use crate::net::Conn;
use crate::objects::iterator::ITERATOR;
use crate::value::{dumps, loads, Dict, Value};
use crate::wire::{from_bytes, to_bytes, ObjectId, Reply, Request, Response, ServerStats};

/// Which protocol a server speaks, as [`probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// This crate's server.
    Rust,
    /// CPython's `multiprocessing.managers.Server`.
    Python,
}

/// Finds out which protocol the server at the other end of `conn` (authenticated,
/// nothing sent yet) speaks.
pub(crate) fn probe(conn: &mut Conn, client: u64) -> Result<Flavor> {
    conn.send(&to_bytes(&Request::Hello { client })?)?;
    conn.send(&to_bytes(&Request::Stats)?)?;
    let reply = conn.recv()?;
    if reply.first() == Some(&crate::python::PICKLE_PROTO) {
        return Ok(Flavor::Python);
    }
    let _: Response = from_bytes(&reply)?;
    Ok(Flavor::Rust)
}

fn ident(id: ObjectId) -> Value {
    Value::Str(format!("{id:x}"))
}

fn parse_ident(v: &Value) -> Result<ObjectId> {
    match v {
        Value::Str(s) => ObjectId::from_str_radix(s, 16)
            .map_err(|_| ManagerError::Decode { reason: format!("object ident {s:?} is not hex") }),
        other => Err(ManagerError::Decode { reason: format!("object ident {other}") }),
    }
}

/// What a method call answered: a value, or a new object's token (`'#PROXY'`).
enum Answer {
    Value(Value),
    Proxy(Token),
}

/// Sends one request and maps the reply.
fn roundtrip(conn: &mut Conn, id: Value, method: &str, args: Vec<Value>, kwds: Dict) -> Result<Answer> {
    let req = Value::Tuple(vec![id, Value::from(method), Value::Tuple(args), Value::Dict(kwds)]);
    conn.send(&dumps(&req)?)?;
    let frame = conn.recv()?;
    let reply = loads(&frame).map_err(|e| ManagerError::Decode { reason: e.to_string() })?;
    let Value::Tuple(mut parts) = reply else {
        return Err(ManagerError::Decode { reason: "a reply that is not a tuple".into() });
    };
    let (Some(v), Some(Value::Str(kind)), true) = (parts.pop(), parts.pop(), parts.is_empty()) else {
        return Err(ManagerError::Decode { reason: "a reply that is not (kind, value)".into() });
    };
    match kind.as_str() {
        "#RETURN" => Ok(Answer::Value(v)),
        "#ERROR" => Err(error_of(v)),
        "#TRACEBACK" | "#UNSERIALIZABLE" => Err(ManagerError::PythonTraceback { traceback: v.to_string() }),
        "#PROXY" => match v {
            Value::Tuple(parts) => match <[Value; 2]>::try_from(parts) {
                Ok([_, Value::Token(token)]) => Ok(Answer::Proxy(*token)),
                _ => Err(ManagerError::Decode { reason: "a #PROXY reply that is not (exposed, token)".into() }),
            },
            other => Err(ManagerError::Decode { reason: format!("a #PROXY reply carrying {other}") }),
        },
        other => Err(ManagerError::Decode { reason: format!("unknown reply kind {other:?}") }),
    }
}

/// Sends one request to which the answer is a value.
pub(crate) fn dispatch(conn: &mut Conn, id: Value, method: &str, args: Vec<Value>, kwds: Dict) -> Result<Value> {
    match roundtrip(conn, id, method, args, kwds)? {
        Answer::Value(v) => Ok(v),
        Answer::Proxy(token) => Err(unsupported_proxy(method, &token)),
    }
}

fn unsupported_proxy(method: &str, token: &Token) -> ManagerError {
    ManagerError::Decode {
        reason: format!("{method} answered a proxy to a new {:?} object, which only an Iterator may be", token.typeid),
    }
}

/// The items of the `Iterator` object `token` names: `__next__` until `StopIteration`.
fn drain(conn: &mut Conn, token: &Token) -> Result<Value> {
    let mut items = Vec::new();
    loop {
        match roundtrip(conn, Value::Str(token.id.clone()), "__next__", Vec::new(), Dict::new()) {
            Ok(Answer::Value(v)) => items.push(v),
            Err(ManagerError::PythonException { name, .. }) if name == "StopIteration" => {
                return Ok(Value::List(items))
            }
            Ok(Answer::Proxy(inner)) => return Err(unsupported_proxy("__next__", &inner)),
            Err(e) => return Err(e),
        }
    }
}

/// A Python exception from a `'#ERROR'` reply as a [`ManagerError`].
fn error_of(exc: Value) -> ManagerError {
    let Value::Exception { module, name, args } = exc else {
        return ManagerError::Decode { reason: format!("#ERROR carrying {exc}") };
    };
    let first = args.first().map(|a| match a {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    });
    match (module.as_str(), name.as_str()) {
        ("queue", "Empty") => ManagerError::QueueEmpty,
        ("queue", "Full") => ManagerError::QueueFull,
        ("builtins", "KeyError") => {
            ManagerError::KeyMissing { key: args.first().map(Value::to_string).unwrap_or_default() }
        }
        ("builtins", "AttributeError") => {
            ManagerError::UnknownMethod { typeid: String::new(), method: first.unwrap_or_default() }
        }
        ("builtins", "ValueError") if first.as_deref().is_some_and(|m| m.contains("not in list")) => {
            ManagerError::ValueNotFound
        }
        _ => ManagerError::PythonException { module, name, args: args.iter().map(Value::to_string).collect() },
    }
}

/// Opens a connection that serves method calls (`accept_connection`).
pub(crate) fn accept(conn: &mut Conn) -> Result<()> {
    let name = format!("mproc-{}|{}", mproc_shm::sys::pid(), std::thread::current().name().unwrap_or("thread"));
    dispatch(conn, Value::None, "accept_connection", vec![Value::Str(name)], Dict::new()).map(drop)
}

/// Runs one method call on a connection that serves method calls.
pub(crate) type CallOn<'a> = dyn FnMut(&mut Conn) -> Result<Value> + 'a;

/// Runs `req` against a CPython server: `fresh` opens an authenticated connection,
/// `call_conn` is a connection that serves method calls (for `Call`).
pub(crate) fn request(
    req: &Request,
    fresh: &dyn Fn() -> Result<Conn>,
    call_conn: &mut dyn FnMut(&mut CallOn<'_>) -> Result<Value>,
) -> Result<Reply> {
    let server = |method: &str, args: Vec<Value>, kwds: Dict| -> Result<Value> {
        let mut c = fresh()?;
        dispatch(&mut c, Value::None, method, args, kwds)
    };
    match req {
        Request::Hello { .. } | Request::Local { .. } | Request::HelloAsync { .. } => Ok(Reply::Done),
        Request::Create { typeid, args } => {
            let (args, kwds) = unpack(args)?;
            let mut all = vec![Value::from(typeid.as_str())];
            all.extend(args);
            let created = server("create", all, kwds)?;
            match created {
                Value::Tuple(parts) if parts.len() == 2 => {
                    Ok(Reply::Created { id: parse_ident(&parts[0])?, typeid: typeid.clone() })
                }
                other => Err(ManagerError::Decode { reason: format!("create replied {other}") }),
            }
        }
        Request::Call { id, method, args, .. } => {
            let (args, kwds) = unpack(args)?;
            let mut once = Some((args, kwds));
            let mut proxied = None;
            let v = call_conn(&mut |c| {
                let (a, k) = once.take().unwrap_or_default();
                match roundtrip(c, ident(*id), method, a, k)? {
                    Answer::Value(v) => Ok(v),
                    Answer::Proxy(token) => {
                        let items = match token.typeid.as_str() {
                            ITERATOR => drain(c, &token),
                            _ => Err(unsupported_proxy(method, &token)),
                        };
                        proxied = Some(token);
                        items
                    }
                }
            });
            // The server's reference to the object it answered with goes, whatever came of it.
            if let Some(token) = proxied {
                let _ = server("decref", vec![Value::Str(token.id)], Dict::new());
            }
            Ok(Reply::Value(dumps(&v?)?))
        }
        Request::IncRef { id } => server("incref", vec![ident(*id)], Dict::new()).map(|_| Reply::Done),
        Request::DecRef { id } => server("decref", vec![ident(*id)], Dict::new()).map(|_| Reply::Done),
        Request::Stats => {
            let n = server("number_of_objects", vec![], Dict::new())?;
            let objects = match n {
                Value::Int(i) => i.max(0) as u64,
                _ => 0,
            };
            Ok(Reply::Stats(ServerStats { objects, ..ServerStats::default() }))
        }
        Request::Shutdown => server("shutdown", vec![], Dict::new()).map(|_| Reply::Done),
    }
}

/// Unpacks a request's `(args, kwds)` (compact or pickled: see `crate::compact::COMPACT`).
fn unpack(bytes: &[u8]) -> Result<(Vec<Value>, Dict)> {
    crate::compact::unpack_args(bytes).map_err(|e| ManagerError::Encode { reason: e.to_string() })
}
