//! CPython's manager protocol, server side: what a `BaseManager`/`SyncManager` client of
//! `multiprocessing.managers` sends after the authkey handshake, served from the same
//! object table as Rust clients.
//!
//! Every frame is a pickle. A request is `(ident, methodname, args, kwds)`; a reply is
//! `('#RETURN', value)`, `('#ERROR', exception)` (a Python exception: `queue.Empty`,
//! `KeyError`, `IndexError` …) or `('#TRACEBACK', text)`. A connection starts at the
//! server's level (`ident` is `None`): `dummy`, `create`, `incref`, `decref`,
//! `number_of_objects`, `debug_info`, `shutdown`, and `accept_connection`, after which
//! the connection carries a proxy's method calls (`ident` names the object).
//!
//! Safety: the pickles are decoded by `mproc_pickle`, which builds data only and refuses
//! any global off its allow-list (a pickle naming `os.system` gets a `'#TRACEBACK'`
//! reply naming it, and the connection goes on being served).
//!
//! Proxies as values. A proxy a Python client passes (`manager.Condition(lock)`, `d['k'] =
//! lock`) arrives as `RebuildProxy(proxytype, Token(typeid, address, id), …)`, which the
//! codec reads as data ([`Value::Proxy`]); stored, it goes back to any client as it came,
//! and that client's Python rebuilds the proxy. The server's own methods that take a
//! token (`get_methods`) read it so too. A method CPython marks in `method_to_typeid` —
//! a dict's `__iter__` — answers `('#PROXY', (exposed, token))` naming a new `Iterator`
//! object, which the client's proxy then iterates.
//!
//! Differences from CPython's server: object idents are the server's object ids in hex;
//! references taken by Python clients are counted together (as CPython counts them) and
//! never released by a disconnect; a lock held by a Python connection that closes is
//! released. An object named by a proxy that a client passed in is kept for the server's
//! lifetime (CPython keeps it in `id_to_local_proxy_obj`). A proxy is taken to name this
//! server's object when its ident does, since the server does not know the address
//! clients reach it by; so `Condition(lock)` takes a lock of this server only (CPython's
//! would call a lock on another server through the proxy). The token of a `'#PROXY'`
//! reply carries no address (`None`): CPython's client puts in the address it called. A
//! dict's `Iterator` holds the keys taken at `iter(d)`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mproc_pickle::{Proxy, Token, MAX_DEPTH};

use crate::error::{ManagerError, Result};
use crate::net::Transport;
use crate::objects::iterator::{IteratorObject, ITERATOR};
use crate::registry::{typeids, CONDITION_LOCK_KW};
use crate::state::ServerState;
use crate::value::{bad, dumps, loads, python_exception, Args, Dict, Value};
use crate::wire::ObjectId;

/// The first byte of every pickle of protocol 2 or later (`PROTO`).
pub(crate) const PICKLE_PROTO: u8 = 0x80;

/// The client id under which the server counts Python clients' references.
const PYTHON_CLIENT: u64 = u64::MAX;

/// The client id under which the server holds the objects that proxies passed to it name.
const PROXIED: u64 = u64::MAX - 1;

/// Owner ids of Python connections (a lock's holder), one per connection.
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1 << 63);

/// One decoded request.
struct PyRequest {
    ident: Value,
    method: String,
    args: Args,
}

fn parse(frame: &[u8]) -> Result<PyRequest> {
    let bad = |what: &str| ManagerError::BadRequest { reason: format!("not a manager request: {what}") };
    let Value::Tuple(parts) = loads(frame)? else { return Err(bad("not a tuple")) };
    let [ident, method, args, kwds]: [Value; 4] = parts.try_into().map_err(|_| bad("not 4 items"))?;
    let method = match method {
        Value::Str(s) => s,
        other => return Err(bad(&format!("method name {other}"))),
    };
    let args = match args {
        Value::Tuple(a) | Value::List(a) => a,
        other => return Err(bad(&format!("args {other}"))),
    };
    let kwds = match kwds {
        Value::Dict(d) => d,
        Value::None => Dict::new(),
        other => return Err(bad(&format!("kwds {other}"))),
    };
    Ok(PyRequest { ident, method, args: Args { args, kwds } })
}

/// An object ident as CPython's client sends it back: the hex string `create` gave.
fn object_id(ident: &Value) -> Result<ObjectId> {
    match ident {
        Value::Str(s) => ObjectId::from_str_radix(s, 16)
            .map_err(|_| ManagerError::BadRequest { reason: format!("bad object ident {s:?}") }),
        other => Err(ManagerError::BadRequest { reason: format!("bad object ident {other}") }),
    }
}

fn ident_of(id: ObjectId) -> Value {
    Value::Str(format!("{id:x}"))
}

fn reply(kind: &str, v: Value) -> Value {
    Value::Tuple(vec![Value::from(kind), v])
}

/// The reply to a failed call: a Python exception where one fits, else a traceback text.
fn error_reply(e: &ManagerError) -> Value {
    match python_exception(e) {
        Some(exc) => reply("#ERROR", exc),
        None => {
            reply("#TRACEBACK", Value::Str(format!("Traceback (most recent call last):\n  (mproc manager)\n{e}\n")))
        }
    }
}

fn send(t: &mut dyn Transport, msg: &Value) -> Result<()> {
    let bytes = match dumps(msg) {
        Ok(b) => b,
        Err(e) => dumps(&reply("#UNSERIALIZABLE", Value::Str(format!("{e}"))))?,
    };
    t.send(&bytes)
}

/// Serves one connection until it closes (or the server shuts down), either kind of
/// client.
///
/// A Python client (CPython's `multiprocessing.managers`) is told apart by its first
/// frame: a pickle starts with the `PROTO` opcode `0x80`, which no postcard `Request`
/// does (its first byte is the variant index, 0 to 7). Such a connection is served
/// here for as long as it lasts; a Rust client's by [`ServerState::serve_rust`].
/// (The socket server does the same in `crate::local::serve_socket`, which also moves
/// local Rust clients to shared memory; this is the in-memory test transport's.)
#[cfg(test)]
pub(crate) fn serve_connection(state: &ServerState, t: &mut dyn Transport) {
    let Ok(first) = t.recv() else { return };
    if first.first() == Some(&PICKLE_PROTO) {
        serve(state, t, first);
    } else {
        state.serve_rust(t, first);
    }
}

/// Serves one Python connection, whose first frame is `first`, until it closes.
pub(crate) fn serve(state: &ServerState, t: &mut dyn Transport, first: Vec<u8>) {
    let owner = NEXT_OWNER.fetch_add(1, Ordering::Relaxed);
    let mut serving_objects = false;
    let mut frame = first;
    loop {
        let msg = match parse(&frame) {
            Err(e) => reply("#TRACEBACK", Value::Str(format!("{e}\n"))),
            Ok(req) if serving_objects => match object_id(&req.ident) {
                Err(e) => error_reply(&e),
                Ok(id) => {
                    let alive = || t.alive() && !state.is_shut_down();
                    hold_proxied(state, &req.args);
                    let key = missing_key(&req);
                    match state.call((owner, 0), id, &req.method, req.args, &alive) {
                        Ok(v) if req.method == "__iter__" => iterator_reply(state, v),
                        Ok(v) => reply("#RETURN", v),
                        Err(ManagerError::KeyMissing { .. }) if key.is_some() => {
                            reply("#ERROR", Value::exception("KeyError", key.into_iter().collect()))
                        }
                        Err(e) => error_reply(&e),
                    }
                }
            },
            Ok(req) => match server_call(state, t, req) {
                Ok(Step::Reply(v)) => reply("#RETURN", v),
                Ok(Step::AcceptConnection) => {
                    serving_objects = true;
                    reply("#RETURN", Value::None)
                }
                Ok(Step::Shutdown) => {
                    let _ = send(t, &reply("#RETURN", Value::None));
                    state.shut_down();
                    state.after_shutdown_reply();
                    break;
                }
                Err(e) => reply("#TRACEBACK", Value::Str(format!("{e}\n"))),
            },
        };
        if send(t, &msg).is_err() || state.is_shut_down() {
            break;
        }
        frame = match t.recv() {
            Ok(f) => f,
            Err(_) => break,
        };
    }
    // Locks this connection's proxies held are let go.
    for obj in state.all_objects() {
        obj.client_gone(owner);
    }
}

/// The key a `KeyError` from this call carries, as Python's dict raises it: the argument
/// of `d[k]`, `del d[k]`, `d.pop(k)`.
fn missing_key(req: &PyRequest) -> Option<Value> {
    match req.method.as_str() {
        "__getitem__" | "__delitem__" | "pop" => req.args.args.first().cloned(),
        _ => None,
    }
}

/// `('#PROXY', (exposed, token))` naming a new `Iterator` over `items` (the keys a dict's
/// `__iter__` answered); the reference `create` would take is the Python clients', which
/// the receiving client drops once its proxy holds its own.
fn iterator_reply(state: &ServerState, items: Value) -> Value {
    let Value::List(items) = items else { return reply("#RETURN", items) };
    let obj = Arc::new(IteratorObject::new(items));
    let exposed = exposed_of(&*obj);
    let id = state.insert(PYTHON_CLIENT, obj);
    let token = Token::new(ITERATOR, Value::None, format!("{id:x}"));
    reply("#PROXY", Value::Tuple(vec![exposed, Value::Token(Box::new(token))]))
}

fn exposed_of(obj: &dyn crate::object::Object) -> Value {
    Value::Tuple(obj.exposed().iter().map(|m| Value::from(*m)).collect())
}

/// The object of this server that `token` names.
fn local_object(state: &ServerState, token: &Token) -> Result<ObjectId> {
    let id = object_id(&Value::Str(token.id.clone()))?;
    match state.object(id) {
        Some(_) => Ok(id),
        None => Err(ManagerError::InvalidArgument {
            argument: format!("{}", Value::Token(Box::new(token.clone()))),
            reason: "names no object of this server".into(),
        }),
    }
}

/// Keeps alive every object of this server that a proxy among `args` names, since the
/// callee may store the proxy (`d['k'] = lock`) beyond the sender's own reference.
fn hold_proxied(state: &ServerState, args: &Args) {
    fn walk(state: &ServerState, v: &Value, depth: usize) {
        if depth >= MAX_DEPTH {
            return;
        }
        match v {
            Value::Proxy(p) => hold(state, p),
            Value::List(items) | Value::Tuple(items) => items.iter().for_each(|i| walk(state, i, depth + 1)),
            Value::Set(items) | Value::FrozenSet(items) => items.iter().for_each(|i| walk(state, i, depth + 1)),
            Value::Dict(d) => d.iter().for_each(|(k, v)| {
                walk(state, k, depth + 1);
                walk(state, v, depth + 1);
            }),
            _ => {}
        }
    }
    fn hold(state: &ServerState, p: &Proxy) {
        if let Ok(id) = local_object(state, &p.token) {
            // Counted, never dropped: a count, not memory, grows with each pass.
            let _ = state.incref(PROXIED, id);
        }
    }
    for v in args.args.iter().chain(args.kwds.values()) {
        walk(state, v, 0);
    }
}

/// `Condition(lock)` with a Lock or RLock proxy: the server's condition shares that
/// object's lock (keyword `#lock`, as a Rust client names it).
fn condition_lock(state: &ServerState, args: &mut Args) -> Result<()> {
    let lock =
        if args.args.is_empty() { args.kwds.shift_remove(&Value::from("lock")) } else { Some(args.args.remove(0)) };
    match lock {
        None | Some(Value::None) => Ok(()),
        Some(Value::Proxy(p)) => {
            let id = local_object(state, &p.token)?;
            args.kwds.insert(Value::from(CONDITION_LOCK_KW), Value::from(id));
            Ok(())
        }
        Some(other) => Err(bad("lock", &other, "not a Lock or RLock proxy")),
    }
}

enum Step {
    Reply(Value),
    AcceptConnection,
    Shutdown,
}

/// Runs one of the server's own methods (`ident` is `None`).
fn server_call(state: &ServerState, _t: &mut dyn Transport, req: PyRequest) -> Result<Step> {
    let arg = |i: usize| {
        req.args
            .args
            .get(i)
            .ok_or_else(|| ManagerError::BadRequest { reason: format!("{}() is missing argument {i}", req.method) })
    };
    Ok(Step::Reply(match req.method.as_str() {
        "dummy" => Value::None,
        "create" => {
            let typeid = match arg(0)? {
                Value::Str(s) => s.clone(),
                other => return Err(ManagerError::BadRequest { reason: format!("typeid {other}") }),
            };
            let mut args = Args { args: req.args.args[1..].to_vec(), kwds: req.args.kwds.clone() };
            if typeid == typeids::CONDITION {
                condition_lock(state, &mut args)?;
            }
            hold_proxied(state, &args);
            let (id, obj) = state.create(PYTHON_CLIENT, &typeid, args)?;
            Value::Tuple(vec![ident_of(id), exposed_of(&*obj)])
        }
        // get_methods(token): the methods the object's proxy may call (an AutoProxy asks).
        "get_methods" => {
            let token = match arg(0)? {
                Value::Token(t) => t,
                Value::Proxy(p) => &p.token,
                other => return Err(ManagerError::BadRequest { reason: format!("get_methods of {other}") }),
            };
            let id = local_object(state, token)?;
            let obj = state.object(id).ok_or(ManagerError::NoSuchObject { id })?;
            exposed_of(&*obj)
        }
        "incref" => {
            state.incref(PYTHON_CLIENT, object_id(arg(0)?)?)?;
            Value::None
        }
        "decref" => {
            state.decref(PYTHON_CLIENT, object_id(arg(0)?)?)?;
            Value::None
        }
        "number_of_objects" => Value::Int(state.stats().objects as i64),
        "debug_info" => {
            let s = state.stats();
            Value::Str(format!("objects={} clients={} references={}", s.objects, s.clients, s.references))
        }
        "accept_connection" => return Ok(Step::AcceptConnection),
        "shutdown" => return Ok(Step::Shutdown),
        other => {
            return Err(ManagerError::BadRequest { reason: format!("{other:?} unrecognized") });
        }
    }))
}
