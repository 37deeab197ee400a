//! What the server calls: the [`Object`] trait every served object implements, the
//! [`Served`] trait by which a user registers a type, and the call context.

use std::sync::{Condvar, MutexGuard};
use std::time::{Duration, Instant};

use mproc_shm::sys::{Deadline, IgnorePoison};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ManagerError, Result};
use crate::value::{Args, Value};
use crate::wire::{from_bytes, to_bytes};

/// A user type served by a manager (CPython's `BaseManager.register(typeid, callable)`).
///
/// The server decodes each call as `Request` — so only the variants of `Request` can run —
/// calls `dispatch`, and sends back the `Response` or the error message as
/// [`ManagerError::Remote`]. `dispatch` takes `&self` and may block (each client has its
/// own server thread); keep state behind a `Mutex` and do not hold it while blocking.
///
/// ```
/// use mproc_manager::Served;
/// use serde::{Deserialize, Serialize};
/// use std::sync::atomic::{AtomicI64, Ordering};
///
/// #[derive(Default)]
/// struct Counter(AtomicI64);
/// #[derive(Serialize, Deserialize)]
/// enum CounterCall { Add(i64), Get }
///
/// impl Served for Counter {
///     type Request = CounterCall;
///     type Response = i64;
///     fn dispatch(&self, req: CounterCall) -> Result<i64, String> {
///         Ok(match req {
///             CounterCall::Add(n) => self.0.fetch_add(n, Ordering::SeqCst) + n,
///             CounterCall::Get => self.0.load(Ordering::SeqCst),
///         })
///     }
/// }
/// ```
pub trait Served: Send + Sync + 'static {
    /// The method call, decoded from the wire.
    type Request: Serialize + DeserializeOwned;
    /// The return value, encoded onto the wire.
    type Response: Serialize + DeserializeOwned;
    /// Runs one call. An `Err` reaches the client as [`ManagerError::Remote`].
    fn dispatch(&self, req: Self::Request) -> Result<Self::Response, String>;
}

/// The server's view of a call: who makes it, and whether they are still there.
pub(crate) struct CallCtx<'a> {
    /// The calling client's id (from its `Hello`; a Python connection has its own).
    pub client: u64,
    /// The calling thread of that client (a Python connection is one thread: 0).
    pub thread: u64,
    /// True while the caller's connection is open; blocking methods check it.
    pub alive: &'a dyn Fn() -> bool,
}

/// How long a blocking server-side wait sleeps between checks that the caller is alive.
const ALIVE_CHECK: Duration = Duration::from_millis(50);

impl CallCtx<'_> {
    /// Waits on `cv` until woken, `deadline` passes (returns `timed_out = true`), or the
    /// caller disconnects (`Err(Disconnected)`, so a dead client's call does not pin a
    /// server thread forever). Spurious wakeups are the caller's loop's business.
    pub fn wait<'g, T>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'g, T>,
        deadline: Option<Instant>,
    ) -> Result<(MutexGuard<'g, T>, bool)> {
        if !(self.alive)() {
            return Err(ManagerError::Disconnected { reason: "the calling client went away".into() });
        }
        let slice = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok((guard, true));
                }
                (d - now).min(ALIVE_CHECK)
            }
            None => ALIVE_CHECK,
        };
        let (guard, _) = cv.wait_timeout(guard, slice).ignore_poison();
        if !(self.alive)() {
            return Err(ManagerError::Disconnected { reason: "the calling client went away".into() });
        }
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        Ok((guard, timed_out))
    }
}

/// Locks a mutex, ignoring poisoning (a panicking method leaves the data as it was).
pub(crate) use mproc_shm::sys::lock;

/// The deadline of a `(block, timeout)` pair, Python style.
pub(crate) fn deadline(block: bool, timeout: Option<Duration>) -> Option<Instant> {
    if !block {
        Some(Instant::now())
    } else {
        Deadline::within(timeout).instant()
    }
}

/// An object the server owns and calls. Built-ins and [`Served`] user types implement it.
///
/// Methods are named and take arguments as CPython's proxies send them (`"append"`,
/// `(item,)`), so Rust and Python clients run the same code on the same object.
pub(crate) trait Object: Send + Sync {
    /// Runs method `method` with `args`; `UnknownMethod` for a name the type lacks.
    fn call(&self, ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value>;
    /// The method names a Python client's proxy may call (the reply to `create`).
    fn exposed(&self) -> &'static [&'static str];
    /// Python's `str(obj)`, for a proxy's `__str__`/`__repr__`.
    fn repr(&self) -> String {
        "<shared object>".to_string()
    }
    /// Called when a client goes away, so objects it held state in (locks) can let go.
    fn client_gone(&self, _client: u64) {}
    /// The object as `Any`, so a factory can find the concrete type of another object
    /// (a `Condition` made over a `Lock` object shares that lock's state).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// `UnknownMethod` for `method` on `typeid` (Python's `AttributeError`).
pub(crate) fn no_method(typeid: &str, method: &str) -> ManagerError {
    ManagerError::UnknownMethod { typeid: typeid.to_string(), method: method.to_string() }
}

/// The method by which a Rust [`Proxy`](crate::Proxy) calls a [`Served`] object: one
/// argument, the postcard-encoded `Request` as `bytes`; returns the `Response` so.
pub(crate) const SERVED_METHOD: &str = "#served";

/// Adapts a [`Served`] user type to [`Object`].
pub(crate) struct ServedObject<T: Served> {
    pub typeid: String,
    pub inner: std::sync::Arc<T>,
}

impl<T: Served> Object for ServedObject<T> {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        &[SERVED_METHOD]
    }

    fn call(&self, _ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let call = match (method, args.args.as_slice()) {
            (SERVED_METHOD, [Value::Bytes(b)]) => b,
            _ => return Err(no_method(&self.typeid, method)),
        };
        let req: T::Request = from_bytes(call)
            .map_err(|e| ManagerError::UnknownMethod { typeid: self.typeid.clone(), method: e.to_string() })?;
        let resp = self.inner.dispatch(req).map_err(|message| ManagerError::Remote { message })?;
        Ok(Value::Bytes(to_bytes(&resp)?))
    }
}
