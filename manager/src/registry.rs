//! The registry: which typeids a server can create, and how (CPython's
//! `BaseManager.register`). Only registered typeids are ever created.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{ManagerError, Result};
use crate::object::{Object, Served, ServedObject};
use crate::objects::collections::{DictObject, ListObject, NamespaceObject, ValueObject};
use crate::objects::queue::QueueObject;
use crate::objects::sync::{BarrierObject, ConditionObject, EventObject, LockObject, SemaphoreObject};
use crate::wire::{from_bytes, ObjectId};

/// Finds a live object of the server by id (a `Condition` made over a `Lock` object).
pub(crate) type Lookup<'a> = dyn Fn(ObjectId) -> Option<Arc<dyn Object>> + 'a;

type Factory = Arc<dyn Fn(&str, &[u8], &Lookup<'_>) -> Result<Arc<dyn Object>> + Send + Sync>;

/// The typeids a manager serves and the factories that make their objects.
///
/// [`Registry::new`] is empty (a `BaseManager`); [`Registry::sync`] holds the built-ins
/// of a `SyncManager`. Register more with [`register`](Registry::register) (a new object
/// per `create`) or [`register_shared`](Registry::register_shared) (every `create`
/// returns a reference to the same object, like the seed's
/// `register('get_task_queue', callable=lambda: task_queue)`).
#[derive(Clone, Default)]
pub struct Registry {
    factories: HashMap<String, Factory>,
}

/// The typeids of the built-in `SyncManager` objects.
pub mod typeids {
    /// `list`
    pub const LIST: &str = "list";
    /// `Array` (fixed-length list)
    pub const ARRAY: &str = "Array";
    /// `dict`
    pub const DICT: &str = "dict";
    /// `Namespace`
    pub const NAMESPACE: &str = "Namespace";
    /// `Value`
    pub const VALUE: &str = "Value";
    /// `Queue`
    pub const QUEUE: &str = "Queue";
    /// `JoinableQueue`
    pub const JOINABLE_QUEUE: &str = "JoinableQueue";
    /// `Lock`
    pub const LOCK: &str = "Lock";
    /// `RLock`
    pub const RLOCK: &str = "RLock";
    /// `Semaphore`
    pub const SEMAPHORE: &str = "Semaphore";
    /// `BoundedSemaphore`
    pub const BOUNDED_SEMAPHORE: &str = "BoundedSemaphore";
    /// `Condition`
    pub const CONDITION: &str = "Condition";
    /// `Event`
    pub const EVENT: &str = "Event";
    /// `Barrier`
    pub const BARRIER: &str = "Barrier";
}

fn init<T: serde::de::DeserializeOwned>(typeid: &str, bytes: &[u8]) -> Result<T> {
    from_bytes(bytes)
        .map_err(|e| ManagerError::BadRequest { reason: format!("constructor arguments of {typeid:?}: {e}") })
}

impl Registry {
    /// An empty registry (a `BaseManager` with nothing registered).
    pub fn new() -> Self {
        Registry::default()
    }

    /// The built-ins of a `SyncManager`: see [`typeids`].
    pub fn sync() -> Self {
        use typeids::*;
        let mut r = Registry::new();
        r.raw(LIST, |t, b| Ok(Arc::new(ListObject::new(t, false, init(t, b)?))));
        r.raw(ARRAY, |t, b| Ok(Arc::new(ListObject::new(t, true, init(t, b)?))));
        r.raw(DICT, |t, b| {
            init::<()>(t, b)?;
            Ok(Arc::new(DictObject::new(t)))
        });
        r.raw(NAMESPACE, |t, b| {
            init::<()>(t, b)?;
            Ok(Arc::new(NamespaceObject::new(t)))
        });
        // A Value's constructor argument is the encoded value itself.
        r.raw(VALUE, |t, b| Ok(Arc::new(ValueObject::new(t, b.to_vec()))));
        r.raw(QUEUE, |t, b| Ok(Arc::new(QueueObject::new(t, init::<u64>(t, b)? as usize))));
        r.raw(JOINABLE_QUEUE, |t, b| Ok(Arc::new(QueueObject::new(t, init::<u64>(t, b)? as usize))));
        r.raw(LOCK, |t, b| {
            init::<()>(t, b)?;
            Ok(Arc::new(LockObject::new(t, false)))
        });
        r.raw(RLOCK, |t, b| {
            init::<()>(t, b)?;
            Ok(Arc::new(LockObject::new(t, true)))
        });
        r.raw(SEMAPHORE, |t, b| Ok(Arc::new(SemaphoreObject::new(t, init(t, b)?, false))));
        r.raw(BOUNDED_SEMAPHORE, |t, b| Ok(Arc::new(SemaphoreObject::new(t, init(t, b)?, true))));
        // No arguments: its own RLock; else `Option<ObjectId>` naming a Lock/RLock object.
        r.raw_with_lookup(CONDITION, |t, b, lookup| {
            let lock = if b.is_empty() { None } else { init::<Option<ObjectId>>(t, b)? };
            let core = match lock {
                None => None,
                Some(id) => {
                    let obj = lookup(id).ok_or(ManagerError::NoSuchObject { id })?;
                    let core = obj.as_any().downcast_ref::<LockObject>().map(LockObject::core).ok_or_else(|| {
                        ManagerError::InvalidArgument {
                            argument: format!("lock = object {id}"),
                            reason: "not a Lock or RLock: a Condition needs one".into(),
                        }
                    })?;
                    Some(core)
                }
            };
            Ok(Arc::new(ConditionObject::new(t, core)))
        });
        r.raw(EVENT, |t, b| {
            init::<()>(t, b)?;
            Ok(Arc::new(EventObject::new(t)))
        });
        // `parties`, or `(parties, Option<timeout>)`.
        r.raw(BARRIER, |t, b| {
            let (parties, timeout) = match init::<u64>(t, b) {
                Ok(parties) => (parties, None),
                Err(_) => init::<(u64, Option<std::time::Duration>)>(t, b)?,
            };
            if parties == 0 {
                return Err(ManagerError::InvalidArgument {
                    argument: "parties = 0".into(),
                    reason: "a Barrier needs at least 1 party".into(),
                });
            }
            Ok(Arc::new(BarrierObject::new(t, parties, timeout)))
        });
        r
    }

    fn raw(
        &mut self,
        typeid: &str,
        f: impl Fn(&str, &[u8]) -> Result<Arc<dyn Object>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.raw_with_lookup(typeid, move |t, b, _| f(t, b))
    }

    fn raw_with_lookup(
        &mut self,
        typeid: &str,
        f: impl Fn(&str, &[u8], &Lookup<'_>) -> Result<Arc<dyn Object>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.factories.insert(typeid.to_string(), Arc::new(f));
        self
    }

    /// Registers a user type: each `create(typeid)` makes a new object with `factory`.
    #[doc(alias = "BaseManager.register")]
    pub fn register<T: Served>(&mut self, typeid: &str, factory: impl Fn() -> T + Send + Sync + 'static) -> &mut Self {
        self.raw(typeid, move |t, b| {
            init::<()>(t, b)?;
            Ok(Arc::new(ServedObject { typeid: t.to_string(), inner: Arc::new(factory()) }))
        })
    }

    /// Registers one shared object: every `create(typeid)` refers to `object`.
    pub fn register_shared<T: Served>(&mut self, typeid: &str, object: Arc<T>) -> &mut Self {
        self.raw(typeid, move |t, b| {
            init::<()>(t, b)?;
            Ok(Arc::new(ServedObject { typeid: t.to_string(), inner: object.clone() }))
        })
    }

    /// Registers one shared built-in queue (`maxsize == 0`: unbounded) under `typeid`;
    /// clients reach it with [`QueueProxy`](crate::QueueProxy) via
    /// [`Manager::proxy`](crate::Manager::proxy). The seed's `task_master` does this.
    pub fn register_shared_queue(&mut self, typeid: &str, maxsize: usize) -> &mut Self {
        let q: Arc<dyn Object> = Arc::new(QueueObject::new(typeid, maxsize));
        self.raw(typeid, move |t, b| {
            init::<()>(t, b)?;
            Ok(q.clone())
        })
    }

    /// The registered typeids, sorted.
    pub fn typeids(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.factories.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn create(&self, typeid: &str, init: &[u8], lookup: &Lookup<'_>) -> Result<Arc<dyn Object>> {
        let f = self.factories.get(typeid).ok_or_else(|| ManagerError::UnknownTypeid { typeid: typeid.to_string() })?;
        f(typeid, init, lookup)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("typeids", &self.typeids()).finish()
    }
}
