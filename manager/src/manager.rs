//! [`Manager`]: the client handle of a manager server — starts one in a child process,
//! or connects to a running one — and creates objects on it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{Endpoint, Handle, Target};
use crate::error::{ManagerError, Result};
use crate::proxy::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy, ListProxy, LockProxy,
    NamespaceProxy, ObjectRef, ProxyType, QueueProxy, SemaphoreProxy, ValueProxy,
};
use crate::registry::{typeids, CONDITION_LOCK_KW};
use crate::value::{to_value, Dict, Value};
use crate::wire::{to_bytes, unexpected, Reply, Request, ServerStats};
use crate::Address;

/// How long `shutdown` waits for a started server process to exit before killing it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A handle on a manager server: Python's `SyncManager` / `BaseManager` client side.
///
/// [`Manager::start`] runs a `SyncManager` server in a forked child process on a Unix
/// socket (mode 0600, in a private directory) with a random authkey;
/// [`ManagerBuilder`](crate::ManagerBuilder) chooses the registry, address and authkey;
/// [`Manager::connect`] reaches a server someone else runs. Dropping a handle that
/// started its server shuts the server down and reaps it.
///
/// ```no_run
/// let manager = mproc_manager::Manager::start().unwrap();
/// let list = manager.list::<u32>().unwrap();
/// list.append(7).unwrap();
/// assert_eq!(list.snapshot().unwrap(), vec![7]);
/// ```
pub struct Manager {
    pub(crate) target: Arc<Target>,
    pub(crate) server: Option<crate::launcher::ServerProcess>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Manager");
        if let Some(address) = self.address() {
            d.field("address", address);
        }
        d.field("owns_server", &self.server.is_some()).finish()
    }
}

impl Manager {
    /// Connects to a running server (Python's `BaseManager(address, authkey).connect()`):
    /// this crate's, or one run by CPython's `multiprocessing.managers` (`BaseManager`,
    /// `SyncManager`), which it then talks to in CPython's protocol.
    ///
    /// A client of this crate's server on the same machine (a Unix-socket address)
    /// moves each connection to a shared-memory pipe after the handshake; see
    /// [`ClientTransport`](crate::ClientTransport) and [`Manager::connect_with`].
    pub fn connect(address: Address, authkey: &[u8]) -> Result<Manager> {
        Manager::connect_with(address, authkey, crate::ClientTransport::Auto)
    }

    /// [`Manager::connect`], with connections that use `transport`.
    pub fn connect_with(address: Address, authkey: &[u8], transport: crate::ClientTransport) -> Result<Manager> {
        let target = Target::with_transport(Endpoint::Socket { address, authkey: authkey.into() }, transport);
        // Fail now, not at the first call, if the server is not there or the key is
        // wrong; and learn whether it is this crate's server or CPython's.
        target.probe()?;
        crate::client::remember(&target);
        Ok(Manager { target, server: None })
    }

    /// The server's address, if it is reached by socket.
    pub fn address(&self) -> Option<&Address> {
        match &self.target.endpoint {
            Endpoint::Socket { address, .. } => Some(address),
            #[cfg(test)]
            Endpoint::Memory(_) => None,
        }
    }

    /// The authkey clients need.
    pub fn authkey(&self) -> &[u8] {
        match &self.target.endpoint {
            Endpoint::Socket { authkey, .. } => authkey,
            #[cfg(test)]
            Endpoint::Memory(_) => &[],
        }
    }

    /// The pid of the server process, if this handle started it.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(|s| s.pid())
    }

    /// The server's counters: live objects, clients, connections, references.
    pub fn stats(&self) -> Result<ServerStats> {
        self.target.stats()
    }

    /// Stops the server. If this handle started it, waits for the process to exit
    /// (killing it after a grace period) and reaps it. Proxies fail with
    /// `Disconnected` afterwards.
    pub fn shutdown(&mut self) -> Result<()> {
        if self.server.as_ref().is_some_and(|s| !s.is_owner()) {
            // A forked child's copy of the starting handle: the server is not our child
            // to reap; just ask it to stop.
            std::mem::forget(self.server.take());
            return self.send_shutdown();
        }
        let sent = self.send_shutdown();
        self.target.closed.store(true, Ordering::SeqCst);
        self.target.forget_idle();
        if let Some(server) = self.server.take() {
            server.stop(SHUTDOWN_GRACE)?;
        }
        sent
    }

    fn send_shutdown(&self) -> Result<()> {
        if self.target.is_python() {
            return self.target.call(&Request::Shutdown).map(drop);
        }
        let mut conn = self.target.connect()?;
        match crate::client::roundtrip(&mut conn, &to_bytes(&Request::Shutdown)?)?? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates an object of a registered `typeid` (no constructor arguments) and returns
    /// a proxy of the kind the caller names:
    /// `manager.proxy::<QueueProxy<u64>>("get_task_queue")`.
    pub fn proxy<P: ProxyType>(&self, typeid: &str) -> Result<P> {
        self.create(typeid, vec![], Dict::new())
    }

    fn create<P: ProxyType>(&self, typeid: &str, args: Vec<Value>, kwds: Dict) -> Result<P> {
        Ok(P::from_handle(ObjectRef(Handle::create(&self.target, typeid, args, kwds)?)))
    }

    /// A new empty shared `list`.
    pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<ListProxy<T>> {
        self.create(typeids::LIST, vec![], Dict::new())
    }

    /// A new shared `list` holding `items`.
    pub fn list_from<T: Serialize + DeserializeOwned>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<ListProxy<T>> {
        self.create(typeids::LIST, vec![values(items)?], Dict::new())
    }

    /// A new shared `dict`.
    pub fn dict<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned>(&self) -> Result<DictProxy<K, V>> {
        self.create(typeids::DICT, vec![], Dict::new())
    }

    /// A new `Namespace`.
    pub fn namespace(&self) -> Result<NamespaceProxy> {
        self.create(typeids::NAMESPACE, vec![], Dict::new())
    }

    /// A new shared `Value` holding `value`.
    pub fn value<T: Serialize + DeserializeOwned>(&self, value: T) -> Result<ValueProxy<T>> {
        self.create(typeids::VALUE, vec![Value::None, to_value(&value)?], Dict::new())
    }

    /// A new fixed-length shared `Array` holding `items` (of any one type: no typecode).
    pub fn array<T: Serialize + DeserializeOwned>(&self, items: impl IntoIterator<Item = T>) -> Result<ArrayProxy<T>> {
        self.create(typeids::ARRAY, vec![Value::None, values(items)?], Dict::new())
    }

    /// A new unbounded `Queue`.
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>> {
        self.queue_bounded(0)
    }

    /// A new `Queue(maxsize)`; 0 is unbounded.
    pub fn queue_bounded<T: Serialize + DeserializeOwned>(&self, maxsize: usize) -> Result<QueueProxy<T>> {
        self.create(typeids::QUEUE, vec![Value::from(maxsize as u64)], Dict::new())
    }

    /// A new unbounded `JoinableQueue`.
    pub fn joinable_queue<T: Serialize + DeserializeOwned>(&self) -> Result<JoinableQueueProxy<T>> {
        self.joinable_queue_bounded(0)
    }

    /// A new `JoinableQueue(maxsize)`; 0 is unbounded.
    pub fn joinable_queue_bounded<T: Serialize + DeserializeOwned>(
        &self,
        maxsize: usize,
    ) -> Result<JoinableQueueProxy<T>> {
        self.create(typeids::JOINABLE_QUEUE, vec![Value::from(maxsize as u64)], Dict::new())
    }

    /// A new `Lock`.
    pub fn lock(&self) -> Result<LockProxy> {
        self.create(typeids::LOCK, vec![], Dict::new())
    }

    /// A new `RLock`.
    pub fn rlock(&self) -> Result<LockProxy> {
        self.create(typeids::RLOCK, vec![], Dict::new())
    }

    /// A new `Semaphore(value)`.
    pub fn semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        self.create(typeids::SEMAPHORE, vec![Value::from(value)], Dict::new())
    }

    /// A new `BoundedSemaphore(value)`.
    pub fn bounded_semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        self.create(typeids::BOUNDED_SEMAPHORE, vec![Value::from(value)], Dict::new())
    }

    /// A new `Condition` with its own `RLock`.
    pub fn condition(&self) -> Result<ConditionProxy> {
        self.create(typeids::CONDITION, vec![], Dict::new())
    }

    /// A new `Condition(lock)` over a `Lock` or `RLock` of this server: acquiring
    /// either proxy acquires the same lock, and `wait` releases it.
    /// `InvalidArgument` if `lock` belongs to another server.
    pub fn condition_with(&self, lock: &LockProxy) -> Result<ConditionProxy> {
        let h = &lock.object().0 .0;
        if !h.target.same_server(&self.target) {
            return Err(ManagerError::InvalidArgument {
                argument: format!("lock = {:?} object {}", h.typeid, h.id),
                reason: "it belongs to another manager server".into(),
            });
        }
        let mut kwds = Dict::new();
        kwds.insert(Value::from(CONDITION_LOCK_KW), Value::from(h.id));
        self.create(typeids::CONDITION, vec![], kwds)
    }

    /// A new `Event`.
    pub fn event(&self) -> Result<EventProxy> {
        self.create(typeids::EVENT, vec![], Dict::new())
    }

    /// A new `Barrier(parties)`; 0 parties is `InvalidArgument`.
    pub fn barrier(&self, parties: u64) -> Result<BarrierProxy> {
        if parties == 0 {
            return Err(no_parties());
        }
        self.create(typeids::BARRIER, vec![Value::from(parties)], Dict::new())
    }

    /// A new `Barrier(parties, timeout=timeout)`: a [`wait`](BarrierProxy::wait) that
    /// names no timeout waits at most `timeout`, then breaks the barrier
    /// (`BrokenBarrier`); 0 parties is `InvalidArgument`.
    pub fn barrier_with_timeout(&self, parties: u64, timeout: Duration) -> Result<BarrierProxy> {
        if parties == 0 {
            return Err(no_parties());
        }
        let args = vec![Value::from(parties), Value::None, Value::Float(timeout.as_secs_f64())];
        self.create(typeids::BARRIER, args, Dict::new())
    }
}

fn no_parties() -> ManagerError {
    ManagerError::InvalidArgument { argument: "parties = 0".into(), reason: "a Barrier needs at least 1 party".into() }
}

/// The items as one Python list.
fn values<T: Serialize>(items: impl IntoIterator<Item = T>) -> Result<Value> {
    Ok(Value::List(items.into_iter().map(|i| to_value(&i)).collect::<Result<_>>()?))
}

impl Drop for Manager {
    /// The handle that started the server shuts it down, in the process that started
    /// it; a copy dropped in a forked child leaves the server running.
    fn drop(&mut self) {
        match &self.server {
            Some(s) if s.is_owner() => {
                let _ = self.shutdown();
            }
            Some(_) => std::mem::forget(self.server.take()),
            None => {}
        }
    }
}
