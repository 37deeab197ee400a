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
//! Differences from CPython's server: object idents are the server's object ids in hex;
//! references taken by Python clients are counted together (as CPython counts them) and
//! never released by a disconnect; a lock held by a Python connection that closes is
//! released. `get_methods` and proxies passed as arguments (a `Token` in the pickle) are
//! refused, since the codec does not read `multiprocessing.managers.Token`; so is
//! iterating a dict proxy (`__iter__` returns a proxy).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{ManagerError, Result};
use crate::net::Transport;
use crate::state::ServerState;
use crate::value::{dumps, loads, python_exception, Args, Dict, Value};
use crate::wire::ObjectId;

/// The first byte of every pickle of protocol 2 or later (`PROTO`).
pub(crate) const PICKLE_PROTO: u8 = 0x80;

/// The client id under which the server counts Python clients' references.
const PYTHON_CLIENT: u64 = u64::MAX;

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
                    match state.call((owner, 0), id, &req.method, req.args, &alive) {
                        Ok(v) => reply("#RETURN", v),
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
            let args = Args { args: req.args.args[1..].to_vec(), kwds: req.args.kwds.clone() };
            let (id, obj) = state.create(PYTHON_CLIENT, &typeid, args)?;
            let exposed = obj.exposed().iter().map(|m| Value::from(*m)).collect();
            Value::Tuple(vec![ident_of(id), Value::Tuple(exposed)])
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
