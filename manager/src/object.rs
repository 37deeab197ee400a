//! What the server calls: the [`Object`] trait every served object implements, the
//! [`Served`] trait by which a user registers a type, and the call context.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ManagerError, Result};
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
    /// The calling client's id (from its `Hello`).
    pub client: u64,
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
        let (guard, _) = cv.wait_timeout(guard, slice).unwrap_or_else(|e| e.into_inner());
        if !(self.alive)() {
            return Err(ManagerError::Disconnected { reason: "the calling client went away".into() });
        }
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        Ok((guard, timed_out))
    }
}

/// Locks a mutex, ignoring poisoning (a panicking method leaves the data as it was).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The deadline of a `(block, timeout)` pair, Python style.
pub(crate) fn deadline(block: bool, timeout: Option<Duration>) -> Option<Instant> {
    if !block {
        Some(Instant::now())
    } else {
        timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 32)))
    }
}

/// An object the server owns and calls. Built-ins and [`Served`] user types implement it.
pub(crate) trait Object: Send + Sync {
    /// Decodes and runs one encoded method call, returning the encoded result.
    fn call(&self, ctx: &CallCtx<'_>, call: &[u8]) -> Result<Vec<u8>>;
    /// Called when a client goes away, so objects it held state in (locks) can let go.
    fn client_gone(&self, _client: u64) {}
    /// The object as `Any`, so a factory can find the concrete type of another object
    /// (a `Condition` made over a `Lock` object shares that lock's state).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Decodes a method call of an object of `typeid`; a failure means "no such method".
pub(crate) fn decode_call<T: DeserializeOwned>(typeid: &str, call: &[u8]) -> Result<T> {
    from_bytes(call).map_err(|e| ManagerError::UnknownMethod { typeid: typeid.to_string(), method: e.to_string() })
}

/// Adapts a [`Served`] user type to [`Object`].
pub(crate) struct ServedObject<T: Served> {
    pub typeid: String,
    pub inner: std::sync::Arc<T>,
}

impl<T: Served> Object for ServedObject<T> {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn call(&self, _ctx: &CallCtx<'_>, call: &[u8]) -> Result<Vec<u8>> {
        let req: T::Request = decode_call(&self.typeid, call)?;
        let resp = self.inner.dispatch(req).map_err(|message| ManagerError::Remote { message })?;
        to_bytes(&resp)
    }
}
