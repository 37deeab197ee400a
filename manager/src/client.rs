//! The client side of the wire: a per-process pool of connections to each server, and
//! the reference-holding [`Handle`] every proxy wraps.
//!
//! Connections are pooled per process, not per thread: a call takes an idle connection
//! (or opens one, sending `Hello` with this process's client id), uses it, and puts it
//! back — so concurrent threads never share a connection and a blocking call blocks
//! only its own thread. After a fork the child finds the pool stamped with its parent's
//! pid and starts afresh: it never writes on its parent's sockets. The server counts
//! references per client id (one per process) and releases them all when the process's
//! last connection closes — which the kernel does for a process that dies.
//!
//! Fork safety: the process-wide tables here (idle connections, known servers, client
//! id) sit behind mutexes that a `pthread_atfork` handler takes before every `fork(2)`
//! and releases after it in parent and child, so a child forked while another thread
//! makes manager calls finds them unlocked and consistent (not held by a thread that
//! does not exist in the child).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::error::{ManagerError, Result};
use crate::net::Conn;
use crate::object::lock;
use crate::value::{from_value, Dict, Value};
use crate::wire::{from_bytes, to_bytes, unexpected, ObjectId, Reply, Request, Response, ServerStats, MAX_FRAME};

#[cfg(feature = "tokio")]
#[path = "asyncio/client.rs"]
mod asyncio;

/// How to reach a server.
#[derive(Clone)]
pub(crate) enum Endpoint {
    /// A socket (Unix or TCP) with the authkey handshake.
    Socket { address: crate::Address, authkey: Arc<[u8]> },
    /// An in-process server (unit tests): each connection is a thread.
    #[cfg(test)]
    Memory(Arc<crate::state::ServerState>),
}

/// A server as seen by this process: its endpoint and idle connections.
///
/// Targets reached by socket are also listed in this process's table of known
/// servers ([`remember`]), so a proxy decoded here reuses the target (and its pooled
/// connections) instead of opening a second set, and finds the authkey to use.
pub(crate) struct Target {
    pub endpoint: Endpoint,
    serial: u64,
    /// Set once the server is known to be shut down: dropping proxies skips `DecRef`.
    pub closed: AtomicBool,
    /// Set when the server is CPython's (see `crate::cpython`).
    python: AtomicBool,
    /// Whether connections to a server of this crate may move to shared memory.
    transport: crate::ClientTransport,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

impl Target {
    pub fn new(endpoint: Endpoint) -> Arc<Self> {
        Target::with_transport(endpoint, crate::ClientTransport::Auto)
    }

    /// A target whose connections use `transport`.
    pub fn with_transport(endpoint: Endpoint, transport: crate::ClientTransport) -> Arc<Self> {
        Arc::new(Target {
            endpoint,
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            closed: AtomicBool::new(false),
            python: AtomicBool::new(false),
            transport,
        })
    }

    /// Opens an authenticated connection, with nothing sent on it yet.
    fn connect_bare(&self) -> Result<Conn> {
        Ok(match &self.endpoint {
            Endpoint::Socket { address, authkey } => crate::net::connect(address, authkey)?,
            #[cfg(test)]
            Endpoint::Memory(state) => crate::memory::connect(state.clone()),
        })
    }

    /// Finds out whether the server is this crate's or CPython's, and fails if it is
    /// not there or refuses the authkey.
    pub fn probe(&self) -> Result<()> {
        let mut conn = self.connect_bare()?;
        let flavor = crate::cpython::probe(&mut conn, client_id()?)?;
        self.python.store(flavor == crate::cpython::Flavor::Python, Ordering::Relaxed);
        Ok(())
    }

    /// True if the server is CPython's.
    pub fn is_python(&self) -> bool {
        self.python.load(Ordering::Relaxed)
    }

    /// Opens a fresh connection (outside the pool) and says `Hello`; to a server of
    /// this crate on this machine, the connection moves to shared memory
    /// (`crate::local`) unless the target says otherwise.
    pub fn connect(&self) -> Result<Conn> {
        match &self.endpoint {
            Endpoint::Socket { address, authkey } if !self.python.load(Ordering::Relaxed) => {
                return crate::local::connect(address, authkey, client_id()?, self.transport);
            }
            _ => {}
        }
        let mut conn = self.connect_bare()?;
        if !self.python.load(Ordering::Relaxed) {
            conn.send(&to_bytes(&Request::Hello { client: client_id()? })?)?;
        }
        Ok(conn)
    }

    /// Sends one request and waits for its response, on a pooled connection.
    pub fn call(&self, req: &Request) -> Result<Reply> {
        if self.python.load(Ordering::Relaxed) {
            return self.call_python(req);
        }
        let frame = to_bytes(req)?;
        if frame.len() > MAX_FRAME {
            // The server would refuse it and hang up; say so without sending.
            return Err(ManagerError::FrameTooLarge { len: frame.len() as u64, max: MAX_FRAME as u64 });
        }
        let mut conn = match take_idle(self.serial) {
            Some(c) => c,
            None => self.connect()?,
        };
        let resp = roundtrip(&mut conn, &frame)?;
        // A refused frame makes the server hang up: do not reuse that connection.
        if !matches!(resp, Err(ManagerError::FrameTooLarge { .. })) {
            put_idle(self.serial, conn);
        }
        resp
    }

    /// Calls `method` of object `id` for the calling thread and returns its value. To a
    /// server of this crate, the request is encoded into, and the response decoded
    /// from, memory this thread keeps ([`crate::wire::CallRef`]): no allocation but
    /// the value's own.
    pub fn call_method(&self, id: ObjectId, method: &str, args: Vec<Value>, kwds: Dict) -> Result<Value> {
        if self.python.load(Ordering::Relaxed) {
            let args = pack_args(args, kwds)?;
            return value_of(self.call(&Request::Call { id, thread: thread_id(), method: method.into(), args })?);
        }
        // Taken out for the call, so nothing the call runs can see them borrowed.
        let mut buffers = CALL_BUFFERS.with(std::cell::Cell::take);
        let value = self.call_method_with(id, method, args, kwds, &mut buffers);
        if buffers.0.capacity().max(buffers.1.capacity()) <= KEEP_BUFFER {
            CALL_BUFFERS.with(|b| b.set(buffers));
        }
        value
    }

    /// [`call_method`](Target::call_method) to a server of this crate, with the
    /// buffers for the packed arguments and the request frame.
    fn call_method_with(
        &self,
        id: ObjectId,
        method: &str,
        args: Vec<Value>,
        kwds: Dict,
        (packed, frame): &mut (Vec<u8>, Vec<u8>),
    ) -> Result<Value> {
        packed.clear();
        frame.clear();
        crate::compact::pack_args_into(args, kwds, packed)?;
        crate::wire::CallRef { id, thread: thread_id(), method, args: packed }.encode(frame)?;
        if frame.len() > MAX_FRAME {
            // The server would refuse it and hang up; say so without sending.
            return Err(ManagerError::FrameTooLarge { len: frame.len() as u64, max: MAX_FRAME as u64 });
        }
        let mut conn = match take_idle(self.serial) {
            Some(c) => c,
            None => self.connect()?,
        };
        let mut response = Err(ManagerError::Decode { reason: "no response".into() });
        conn.send(frame)
            .and_then(|()| conn.recv_with(&mut |frame| response = call_response(frame)))
            .map_err(transport_error)?;
        // A response that does not decode leaves the stream in an unknown state: the
        // connection goes with it.
        let value = response?;
        // A refused frame makes the server hang up: do not reuse that connection.
        if !matches!(value, Err(ManagerError::FrameTooLarge { .. })) {
            put_idle(self.serial, conn);
        }
        value
    }

    /// [`call`](Target::call) on a CPython server: method calls go on pooled
    /// connections that said `accept_connection`.
    fn call_python(&self, req: &Request) -> Result<Reply> {
        let fresh = || self.connect_bare();
        let mut on_call_conn = |f: &mut crate::cpython::CallOn<'_>| {
            let mut conn = match take_idle(self.serial) {
                Some(c) => c,
                None => {
                    let mut c = self.connect_bare()?;
                    crate::cpython::accept(&mut c)?;
                    c
                }
            };
            let r = f(&mut conn);
            // A transport failure leaves the stream in an unknown state.
            if !matches!(r, Err(ManagerError::Disconnected { .. } | ManagerError::Decode { .. })) {
                put_idle(self.serial, conn);
            }
            r
        };
        crate::cpython::request(req, &fresh, &mut on_call_conn)
    }

    pub fn stats(&self) -> Result<ServerStats> {
        match self.call(&Request::Stats)? {
            Reply::Stats(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// True if `other` reaches the same server.
    pub fn same_server(&self, other: &Target) -> bool {
        match (&self.endpoint, &other.endpoint) {
            (Endpoint::Socket { address: a, .. }, Endpoint::Socket { address: b, .. }) => a == b,
            #[cfg(test)]
            (Endpoint::Memory(a), Endpoint::Memory(b)) => Arc::ptr_eq(a, b),
            #[cfg(test)]
            _ => false,
        }
    }

    /// Drops this process's idle connections to the server.
    pub fn forget_idle(&self) {
        let mut g = pool();
        let idle = g.as_mut().and_then(|p| p.idle.remove(&self.serial));
        #[cfg(feature = "tokio")]
        let idle_async = g.as_mut().map(|p| {
            let keys: Vec<_> = p.idle_async.keys().filter(|k| k.0 == self.serial).copied().collect();
            keys.into_iter().filter_map(|k| p.idle_async.remove(&k)).collect::<Vec<_>>()
        });
        drop(g);
        drop(idle);
        #[cfg(feature = "tokio")]
        drop(idle_async);
    }
}

impl Drop for Target {
    /// The last proxy or handle of this server in this process is gone: close the idle
    /// connections (the server then releases this process's references, if any remain).
    fn drop(&mut self) {
        self.forget_idle();
    }
}

/// Sends `frame` and receives the response; transport failures become `Disconnected`.
pub(crate) fn roundtrip(conn: &mut Conn, frame: &[u8]) -> Result<Response> {
    let sent = conn.send(frame).and_then(|()| conn.recv());
    match sent {
        Ok(bytes) => from_bytes::<Response>(&bytes),
        Err(e) => Err(transport_error(e)),
    }
}

/// A failed send or receive as a call reports it: `FrameTooLarge` as it is, anything
/// else `Disconnected`.
fn transport_error(e: ManagerError) -> ManagerError {
    match e {
        e @ (ManagerError::FrameTooLarge { .. } | ManagerError::Disconnected { .. }) => e,
        e => ManagerError::Disconnected { reason: e.to_string() },
    }
}

thread_local! {
    /// A thread's buffers for its calls' packed arguments and request frames
    /// ([`Target::call_method`]), kept between calls.
    static CALL_BUFFERS: std::cell::Cell<(Vec<u8>, Vec<u8>)> = const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// Buffers bigger than this are freed after their call rather than kept.
const KEEP_BUFFER: usize = 64 << 10;

/// A call's response frame (`Ok(Reply::Value(..))` read where it lies): the call's
/// value or the server's error, or `Err` for a frame that is no response.
fn call_response(frame: &[u8]) -> Result<Result<Value>> {
    Ok(match crate::wire::decode_value_reply(frame) {
        Some(bytes) => unpack(bytes?),
        None => from_bytes::<Response>(frame)?.and_then(value_of),
    })
}

struct Pool {
    pid: u32,
    idle: HashMap<u64, Vec<Conn>>,
    /// The async calls' idle connections, by target serial and runtime: an
    /// awaited connection stays bound to the runtime that first awaited it.
    #[cfg(feature = "tokio")]
    idle_async: HashMap<(u64, tokio::runtime::Id), Vec<mproc_ipc::Connection>>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// The client id and the pid it was chosen in.
static ID: Mutex<(u32, u64)> = Mutex::new((0, 0));

/// The three process-wide locks, held by the forking thread from the `prepare` to the
/// `parent`/`child` fork handler, in the one order every path takes them (a path that
/// holds `KNOWN` may take `POOL` when it drops a target; `ID` is never nested).
struct ForkGuards {
    _id: MutexGuard<'static, (u32, u64)>,
    _known: MutexGuard<'static, Option<HashMap<crate::Address, Known>>>,
    _pool: MutexGuard<'static, Option<Pool>>,
}

thread_local! {
    static FORK_GUARDS: RefCell<Option<ForkGuards>> = const { RefCell::new(None) };
}

extern "C" fn before_fork() {
    let guards = ForkGuards { _id: lock(&ID), _known: lock(&KNOWN), _pool: lock(&POOL) };
    let _ = FORK_GUARDS.try_with(|g| *g.borrow_mut() = Some(guards));
}

extern "C" fn after_fork() {
    let _ = FORK_GUARDS.try_with(|g| g.borrow_mut().take());
}

/// Registers the fork handlers once, before this process first takes one of the locks.
/// Not a `Once`: a fork while another thread is inside `call_once` would leave the
/// child a `Once` that never completes.
fn fork_handlers() {
    // 0: not registered; 1: a thread is registering them; 2: registered.
    static STATE: AtomicU8 = AtomicU8::new(0);
    if STATE.load(Ordering::Acquire) == 2 {
        return;
    }
    if STATE.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: the handlers only lock and unlock this module's static mutexes (short
        // critical sections that never fork) and touch a thread-local of the forking
        // thread, which exists in the child too.
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
        STATE.store(2, Ordering::Release);
    }
}

fn pool() -> MutexGuard<'static, Option<Pool>> {
    fork_handlers();
    let mut g = lock(&POOL);
    let me = current_pid();
    if g.as_ref().is_some_and(|p| p.pid != me) {
        // Inherited from the parent across fork: those sockets are the parent's.
        // Leak them rather than run any drop logic on them in the child.
        if let Some(old) = g.take() {
            std::mem::forget(old);
        }
    }
    if g.is_none() {
        *g = Some(Pool {
            pid: me,
            idle: HashMap::new(),
            #[cfg(feature = "tokio")]
            idle_async: HashMap::new(),
        });
    }
    g
}

fn take_idle(serial: u64) -> Option<Conn> {
    let mut g = pool();
    g.as_mut()?.idle.get_mut(&serial)?.pop()
}

fn put_idle(serial: u64, conn: Conn) {
    let mut g = pool();
    if let Some(p) = g.as_mut() {
        p.idle.entry(serial).or_default().push(conn);
    }
}

/// What this process knows of a server it reached by socket: the authkey, and the
/// target its proxies share while any is alive.
struct Known {
    authkey: Arc<[u8]>,
    target: Weak<Target>,
}

/// This process's known servers, by address. A forked child inherits the table (its
/// memory), so it can decode proxies of every manager its parent knew at the fork;
/// a spawned child fills it from the `Share` tokens it imports.
static KNOWN: Mutex<Option<HashMap<crate::Address, Known>>> = Mutex::new(None);

/// Lists a socket target (and its authkey) as this process's way to reach its address;
/// the newest registration for an address wins.
pub(crate) fn remember(target: &Arc<Target>) {
    #[allow(irrefutable_let_patterns)] // `Endpoint::Memory` exists in unit tests only
    if let Endpoint::Socket { address, authkey } = &target.endpoint {
        fork_handlers();
        let mut g = lock(&KNOWN);
        g.get_or_insert_with(HashMap::new)
            .insert(address.clone(), Known { authkey: authkey.clone(), target: Arc::downgrade(target) });
    }
}

/// The target for `address`: the live one this process already uses if its authkey
/// matches, else a new one with `authkey` (from a spawn token) or, without one, with
/// the authkey this process already knows for the address. A process that knows no
/// authkey for it gets `Authentication` naming the address.
pub(crate) fn target_for(address: &crate::Address, authkey: Option<&[u8]>) -> Result<Arc<Target>> {
    fork_handlers();
    let mut g = lock(&KNOWN);
    let known = g.get_or_insert_with(HashMap::new);
    let known_key = known.get(address).filter(|k| authkey.is_none_or(|given| *given == *k.authkey));
    if let Some(t) = known_key.and_then(|k| k.target.upgrade()).filter(|t| !t.closed.load(Ordering::Relaxed)) {
        return Ok(t);
    }
    let key: Arc<[u8]> = match (known_key, authkey) {
        (_, Some(given)) => given.into(),
        (Some(k), None) => k.authkey.clone(),
        // Not known here: this process's authkey, which managers started
        // without one use and every process of the tree shares (a wrong key
        // fails the handshake with Authentication).
        (None, None) => mproc_process::authkey().into(),
    };
    let target = Target::new(Endpoint::Socket { address: address.clone(), authkey: key.clone() });
    known.insert(address.clone(), Known { authkey: key, target: Arc::downgrade(&target) });
    Ok(target)
}

pub(crate) use mproc_shm::sys::pid as current_pid;

/// This process's client id: random, chosen once per pid.
pub(crate) fn client_id() -> Result<u64> {
    fork_handlers();
    let mut g = lock(&ID);
    let me = current_pid();
    if g.0 != me {
        let mut b = [0u8; 8];
        random_bytes(&mut b, "the client id")?;
        *g = (me, u64::from_ne_bytes(b));
    }
    Ok(g.1)
}

#[cfg(test)]
thread_local! {
    /// Test hook: makes `random_bytes` fail on this thread, as `getrandom` might.
    pub(crate) static FAIL_RANDOM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Fills `buf` from the kernel's CSPRNG; `Io` naming `what` it was for if that fails.
pub(crate) fn random_bytes(buf: &mut [u8], what: &str) -> Result<()> {
    #[cfg(test)]
    if FAIL_RANDOM.with(|f| f.get()) {
        return Err(ManagerError::Io {
            op: format!("getrandom for {what}"),
            reason: rustix::io::Errno::NOSYS.to_string(),
        });
    }
    mproc_shm::sys::random_bytes(buf)
        .map_err(|e| ManagerError::Io { op: format!("getrandom for {what}"), reason: e.to_string() })
}

/// One reference to a server object, held by this process. Every proxy wraps one.
pub(crate) struct HandleInner {
    pub target: Arc<Target>,
    pub id: ObjectId,
    pub typeid: String,
    /// The process whose reference this is; a forked child takes its own on first use.
    pid: AtomicU32,
}

/// A shared, cloneable [`HandleInner`].
#[derive(Clone)]
pub(crate) struct Handle(pub Arc<HandleInner>);

impl Handle {
    /// Creates an object of `typeid` on the server with constructor arguments.
    pub fn create(target: &Arc<Target>, typeid: &str, args: Vec<Value>, kwds: Dict) -> Result<Handle> {
        let args = pack_args(args, kwds)?;
        match target.call(&Request::Create { typeid: typeid.to_string(), args })? {
            Reply::Created { id, typeid } => Ok(Handle(Arc::new(HandleInner {
                target: target.clone(),
                id,
                typeid,
                pid: AtomicU32::new(current_pid()),
            }))),
            other => Err(unexpected(&other)),
        }
    }

    /// A reference of this process to object `id` of `target`, which some other handle
    /// made: sends `IncRef`, so the server keeps the object while this handle lives.
    pub fn import(target: Arc<Target>, id: ObjectId, typeid: String) -> Result<Handle> {
        match target.call(&Request::IncRef { id })? {
            Reply::Done => Ok(Handle(Arc::new(HandleInner { target, id, typeid, pid: AtomicU32::new(current_pid()) }))),
            other => Err(unexpected(&other)),
        }
    }

    /// Calls `method` with positional `args` and keyword `kwds`; returns its value.
    pub fn call_value(&self, method: &str, args: Vec<Value>, kwds: Dict) -> Result<Value> {
        if let Some(incref) = self.adopt() {
            self.0.target.call(&incref)?;
            self.adopted();
        }
        self.0.target.call_method(self.0.id, method, args, kwds)
    }

    /// In a forked child, before its first call: the `IncRef` that takes this
    /// process's own reference (then [`adopted`](Handle::adopted)).
    fn adopt(&self) -> Option<Request> {
        (self.0.pid.load(Ordering::Relaxed) != current_pid()).then_some(Request::IncRef { id: self.0.id })
    }

    fn adopted(&self) {
        self.0.pid.store(current_pid(), Ordering::Relaxed);
    }

    /// The request that calls `method` on the object (the async calls send it as it
    /// is; [`call_value`](Handle::call_value) encodes it in place).
    #[cfg(feature = "tokio")]
    fn request(&self, method: &str, args: Vec<Value>, kwds: Dict) -> Result<Request> {
        Ok(Request::Call {
            id: self.0.id,
            thread: thread_id(),
            method: method.to_string(),
            args: pack_args(args, kwds)?,
        })
    }

    /// Calls `method` with positional `args` and converts the result to `R`.
    pub fn call<R: serde::de::DeserializeOwned>(&self, method: &str, args: Vec<Value>) -> Result<R> {
        from_value(self.call_value(method, args, Dict::new())?)
    }

    /// Calls `method` with positional `args`, ignoring the result.
    pub fn call_unit(&self, method: &str, args: Vec<Value>) -> Result<()> {
        self.call_value(method, args, Dict::new()).map(drop)
    }
}

/// A call's value out of its reply.
fn value_of(reply: Reply) -> Result<Value> {
    match reply {
        Reply::Value(v) => unpack(&v),
        other => Err(unexpected(&other)),
    }
}

/// A packed value; any failure is `Decode`.
fn unpack(bytes: &[u8]) -> Result<Value> {
    crate::compact::unpack_value(bytes).map_err(|e| match e {
        e @ ManagerError::Decode { .. } => e,
        e => ManagerError::Decode { reason: e.to_string() },
    })
}

/// The calling thread's id (the owner of a lock it acquires): its kernel tid, cached
/// per thread (a `gettid(2)` per call was a tenth of a local call).
fn thread_id() -> u64 {
    u64::from(mproc_shm::sys::tid())
}

/// `(args, kwds)` as a request carries them (see [`crate::compact::COMPACT`]).
fn pack_args(args: Vec<Value>, kwds: Dict) -> Result<Vec<u8>> {
    crate::compact::pack_args(args, kwds)
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        if self.pid.load(Ordering::Relaxed) == current_pid() && !self.target.closed.load(Ordering::Relaxed) {
            // Best effort: if the server is gone there is nothing to release.
            let _ = self.target.call(&Request::DecRef { id: self.id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_response_is_a_value_an_error_or_no_response_at_all() {
        let value = |v: &Value| to_bytes(&Response::Ok(Reply::Value(crate::compact::pack_value(v).unwrap()))).unwrap();
        assert_eq!(call_response(&value(&Value::Int(7))).unwrap(), Ok(Value::Int(7)));
        let list = Value::List(vec![Value::None]);
        assert_eq!(call_response(&value(&list)).unwrap(), Ok(list));
        // The server's error, and a reply of the wrong kind: answers on a sound stream.
        let err = to_bytes(&Response::Err(ManagerError::NoSuchObject { id: 3 })).unwrap();
        assert_eq!(call_response(&err).unwrap(), Err(ManagerError::NoSuchObject { id: 3 }));
        let done = to_bytes(&Response::Ok(Reply::Done)).unwrap();
        assert!(matches!(call_response(&done).unwrap(), Err(ManagerError::Decode { .. })));
        // Bytes that are no response: the connection is not to be used again.
        assert!(call_response(&[0, 1, 200]).is_err());
        assert!(call_response(&[9, 9, 9]).is_err());
        let mut long = value(&Value::None);
        long.push(0);
        assert!(call_response(&long).is_err());
    }
}
