//! The server core: the object table, references counted per client, and the request
//! loop that serves one connection. Transport-agnostic: see `net::Transport`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{ManagerError, Result};
use crate::net::Transport;
use crate::object::{lock, CallCtx, Object};
use crate::registry::Registry;
use crate::value::{Args, Value};
use crate::wire::{from_bytes, to_bytes, CallRef, ObjectId, Reply, Request, Response, ServerStats};

struct Entry {
    obj: Arc<dyn Object>,
    /// References summed over clients.
    refs: u64,
}

#[derive(Default)]
struct Client {
    connections: u64,
    /// object → references this client holds
    refs: HashMap<ObjectId, u64>,
}

#[derive(Default)]
struct Table {
    next_id: ObjectId,
    objects: HashMap<ObjectId, Entry>,
    clients: HashMap<u64, Client>,
}

impl Table {
    /// Drops `n` references of `client` to `id`; returns the object if it died.
    fn drop_refs(&mut self, id: ObjectId, n: u64) -> Option<Arc<dyn Object>> {
        let entry = self.objects.get_mut(&id)?;
        entry.refs = entry.refs.saturating_sub(n);
        if entry.refs == 0 {
            return self.objects.remove(&id).map(|e| e.obj);
        }
        None
    }
}

/// Everything a server holds; shared by its connection threads.
pub(crate) struct ServerState {
    registry: Registry,
    table: Mutex<Table>,
    shutdown: AtomicBool,
    /// Open connections served over a shared-memory pipe (see `crate::local`).
    pub(crate) shared_memory: AtomicU64,
    /// Run once when a `Shutdown` request arrives (wakes the accept loop).
    on_shutdown: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl ServerState {
    pub fn new(registry: Registry) -> Arc<Self> {
        Arc::new(ServerState {
            registry,
            table: Mutex::new(Table { next_id: 1, ..Table::default() }),
            shutdown: AtomicBool::new(false),
            shared_memory: AtomicU64::new(0),
            on_shutdown: Mutex::new(None),
        })
    }

    pub fn set_on_shutdown(&self, f: Box<dyn FnOnce() + Send>) {
        *lock(&self.on_shutdown) = Some(f);
    }

    pub fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Runs the shutdown hook, once; called after the `Shutdown` reply went out, so the
    /// server process does not exit before its client has the answer.
    fn wake_after_shutdown(&self) {
        let hook = lock(&self.on_shutdown).take();
        if let Some(f) = hook {
            f();
        }
    }

    pub fn stats(&self) -> ServerStats {
        let t = lock(&self.table);
        ServerStats {
            objects: t.objects.len() as u64,
            clients: t.clients.len() as u64,
            connections: t.clients.values().map(|c| c.connections).sum(),
            references: t.clients.values().flat_map(|c| c.refs.values()).sum(),
            shared_memory: self.shared_memory.load(Ordering::Relaxed),
        }
    }

    fn open(&self, client: u64) {
        lock(&self.table).clients.entry(client).or_default().connections += 1;
    }

    /// A connection of `client` closed; with its last one, its references go.
    fn close(&self, client: u64) {
        let (dead, all) = {
            let mut t = lock(&self.table);
            let Some(c) = t.clients.get_mut(&client) else { return };
            c.connections -= 1;
            if c.connections > 0 {
                return;
            }
            let c = t.clients.remove(&client).unwrap_or_default();
            let dead: Vec<_> = c.refs.into_iter().filter_map(|(id, n)| t.drop_refs(id, n)).collect();
            let all: Vec<_> = t.objects.values().map(|e| e.obj.clone()).collect();
            (dead, all)
        };
        // Locks the gone client held are released, outside the table lock.
        for obj in all.iter().chain(dead.iter()) {
            obj.client_gone(client);
        }
    }

    /// Creates an object of `typeid`; `client` holds one reference to it.
    pub fn create(&self, client: u64, typeid: &str, args: Args) -> Result<(ObjectId, Arc<dyn Object>)> {
        let lookup = |id| lock(&self.table).objects.get(&id).map(|e| e.obj.clone());
        let obj = self.registry.create(typeid, args, &lookup)?;
        Ok((self.insert(client, obj.clone()), obj))
    }

    /// Adds an object made outside the registry (an `Iterator` a method answered with);
    /// `client` holds one reference to it.
    pub fn insert(&self, client: u64, obj: Arc<dyn Object>) -> ObjectId {
        let mut t = lock(&self.table);
        let id = t.next_id;
        t.next_id += 1;
        t.objects.insert(id, Entry { obj, refs: 1 });
        *t.clients.entry(client).or_default().refs.entry(id).or_default() += 1;
        id
    }

    /// The live object `id`, if there is one.
    pub fn object(&self, id: ObjectId) -> Option<Arc<dyn Object>> {
        lock(&self.table).objects.get(&id).map(|e| e.obj.clone())
    }

    /// Runs `method` of object `id` for `(client, thread)`. `#GETVALUE`, `__str__` and
    /// `__repr__` work on every object, as CPython's server's fallbacks do.
    pub fn call(
        &self,
        (client, thread): (u64, u64),
        id: ObjectId,
        method: &str,
        args: Args,
        alive: &dyn Fn() -> bool,
    ) -> Result<Value> {
        let obj = self.object(id).ok_or(ManagerError::NoSuchObject { id })?;
        Self::call_on(&obj, (client, thread), id, method, args, alive)
    }

    /// [`call`](ServerState::call) on the object already looked up.
    fn call_on(
        obj: &Arc<dyn Object>,
        (client, thread): (u64, u64),
        id: ObjectId,
        method: &str,
        args: Args,
        alive: &dyn Fn() -> bool,
    ) -> Result<Value> {
        if matches!(method, "__str__" | "__repr__") {
            return Ok(Value::Str(obj.repr()));
        }
        let ctx = CallCtx { client, thread, alive };
        // A panicking method (user code) must not take the connection down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.call(&ctx, method, args)));
        result.unwrap_or_else(|payload| {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(ManagerError::Remote { message: format!("method of object {id} panicked: {msg}") })
        })
    }

    /// Adds a reference of `client` to `id`.
    pub fn incref(&self, client: u64, id: ObjectId) -> Result<()> {
        let mut t = lock(&self.table);
        let entry = t.objects.get_mut(&id).ok_or(ManagerError::NoSuchObject { id })?;
        entry.refs += 1;
        *t.clients.entry(client).or_default().refs.entry(id).or_default() += 1;
        Ok(())
    }

    /// Drops a reference of `client` to `id`.
    pub fn decref(&self, client: u64, id: ObjectId) -> Result<()> {
        let dead = {
            let mut t = lock(&self.table);
            let held = t.clients.get_mut(&client).and_then(|c| c.refs.get_mut(&id));
            match held {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    if *n == 0 {
                        t.clients.get_mut(&client).map(|c| c.refs.remove(&id));
                    }
                }
                _ => {
                    return Err(ManagerError::BadRequest {
                        reason: format!("client holds no reference to object {id} to drop"),
                    })
                }
            }
            t.drop_refs(id, 1)
        };
        drop(dead);
        Ok(())
    }

    /// Every live object (a Python connection closing lets go of the locks it held).
    pub fn all_objects(&self) -> Vec<Arc<dyn Object>> {
        lock(&self.table).objects.values().map(|e| e.obj.clone()).collect()
    }

    /// Stops serving: later requests get `Disconnected`.
    pub fn shut_down(&self) {
        self.request_shutdown();
    }

    /// Runs the shutdown hook after the reply to a shutdown request went out.
    pub fn after_shutdown_reply(&self) {
        self.wake_after_shutdown();
    }

    /// Decodes and runs one request frame of `client`.
    pub fn handle(&self, client: u64, frame: &[u8], alive: &dyn Fn() -> bool) -> Response {
        let req: Request = from_bytes(frame).map_err(|e| ManagerError::BadRequest { reason: e.to_string() })?;
        match req {
            Request::Hello { .. } | Request::Local { .. } | Request::HelloAsync { .. } => {
                Err(ManagerError::BadRequest { reason: "Hello sent twice on one connection".into() })
            }
            Request::Create { typeid, args } => {
                if !self.registry.contains(&typeid) {
                    return Err(ManagerError::UnknownTypeid { typeid });
                }
                let (id, _) = self.create(client, &typeid, rust_args(&args)?)?;
                Ok(Reply::Created { id, typeid })
            }
            Request::Call { id, thread, method, args } => {
                // One look into the table (its lock, its hash) per call.
                let obj = self.object(id).ok_or(ManagerError::NoSuchObject { id })?;
                let v = Self::call_on(&obj, (client, thread), id, &method, rust_args(&args)?, alive)?;
                Ok(Reply::Value(crate::compact::pack_value(&v)?))
            }
            Request::IncRef { id } => self.incref(client, id).map(|()| Reply::Done),
            Request::DecRef { id } => self.decref(client, id).map(|()| Reply::Done),
            Request::Stats => Ok(Reply::Stats(self.stats())),
            Request::Shutdown => {
                self.request_shutdown();
                Ok(Reply::Done)
            }
        }
    }

    /// Serves one Rust client's connection until it closes (or the server shuts
    /// down): its first frame, `first`, must be `Hello` (or `HelloAsync`), then each
    /// request frame gets one response frame. `crate::python::serve_connection`
    /// tells Rust and Python clients apart and hands the Rust ones here.
    pub fn serve_rust(&self, t: &mut dyn Transport, first: Vec<u8>) {
        let (client, check_alive) = match from_bytes::<Request>(&first) {
            Ok(Request::Hello { client }) => (client, false),
            Ok(Request::HelloAsync { client }) => (client, true),
            Ok(_) => {
                let _ = reply(t, &Err(ManagerError::BadRequest { reason: "the first request must be Hello".into() }));
                return;
            }
            Err(e) => {
                let _ = reply(t, &Err(ManagerError::BadRequest { reason: e.to_string() }));
                return;
            }
        };
        self.open(client);
        // Kept across requests: a call's request is read into `frame`, its value
        // packed into `value` and its response into `out`, with no allocation once
        // they have grown (up to `KEEP_BUFFER`).
        let (mut frame, mut value, mut out) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let got = t.recv_with(&mut |f| {
                frame.clear();
                frame.extend_from_slice(f);
            });
            match got {
                Ok(()) => {}
                Err(e @ ManagerError::FrameTooLarge { .. }) => {
                    // The stream is out of step after a refused frame: answer and hang up.
                    let _ = reply(t, &Err(e));
                    break;
                }
                Err(_) => break,
            }
            if self.is_shut_down() {
                let _ = reply(t, &Err(ManagerError::Disconnected { reason: "the manager server shut down".into() }));
                break;
            }
            if check_alive && !t.alive() {
                // The client hung up after sending (a dropped async call): run
                // nothing on its behalf, so a `get` takes no item it cannot receive.
                break;
            }
            out.clear();
            let encoded = {
                let alive = || t.alive() && !self.is_shut_down();
                match CallRef::decode(&frame) {
                    Some(call) => self.serve_call(client, call, &alive, &mut value, &mut out),
                    None => encode_response(&self.handle(client, &frame, &alive), &mut out),
                }
            };
            let sent = encoded.and_then(|()| t.send(&out));
            if self.is_shut_down() {
                self.wake_after_shutdown();
                break;
            }
            if sent.is_err() {
                break;
            }
            // A big frame's buffers go with it, not for the connection's life.
            for b in [&mut frame, &mut value, &mut out] {
                if b.capacity() > KEEP_BUFFER {
                    *b = Vec::new();
                }
            }
        }
        self.close(client);
    }

    /// Runs a method call and appends its response frame to `out` (`value` is
    /// scratch space for the method's packed value).
    fn serve_call(
        &self,
        client: u64,
        call: Result<CallRef<'_>>,
        alive: &dyn Fn() -> bool,
        value: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let ran = call.map_err(|e| ManagerError::BadRequest { reason: e.to_string() }).and_then(|call| {
            let obj = self.object(call.id).ok_or(ManagerError::NoSuchObject { id: call.id })?;
            let v = Self::call_on(&obj, (client, call.thread), call.id, call.method, rust_args(call.args)?, alive)?;
            value.clear();
            crate::compact::pack_value_into(&v, value)
        });
        match ran {
            Ok(()) => crate::wire::encode_value_reply(value, out),
            Err(e) => encode_response(&Err(e), out),
        }
    }
}

/// A connection's buffers bigger than this are freed after their request.
const KEEP_BUFFER: usize = 64 << 10;

/// Appends `resp`'s frame to `out`; a response that cannot be encoded becomes the
/// error that says so.
fn encode_response(resp: &Response, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&match to_bytes(resp) {
        Ok(b) => b,
        Err(e) => to_bytes(&Response::Err(e))?,
    });
    Ok(())
}

fn reply(t: &mut dyn Transport, resp: &Response) -> Result<()> {
    let bytes = match to_bytes(resp) {
        Ok(b) => b,
        Err(e) => to_bytes(&Response::Err(e))?,
    };
    t.send(&bytes)
}

/// Decodes a Rust client's `(args_tuple, kwds_dict)`, compact or pickled.
fn rust_args(bytes: &[u8]) -> Result<Args> {
    crate::compact::unpack_args(bytes).map(|(args, kwds)| Args { args, kwds })
}
