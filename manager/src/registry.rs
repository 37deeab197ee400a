//! The registry: which typeids a server can create, and how (CPython's
//! `BaseManager.register`). Only registered typeids are ever created.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{ManagerError, Result};
use crate::object::{Object, Served, ServedObject};
use crate::objects::collections::pairs_of;
use crate::objects::collections::{DictObject, ListObject, NamespaceObject, ValueObject};
use crate::objects::queue::QueueObject;
use crate::objects::sync::{BarrierObject, ConditionObject, EventObject, LockObject, SemaphoreObject};
use crate::value::{as_i64, bad, items_of, Args, Dict, Value};
use crate::wire::ObjectId;

/// Finds a live object of the server by id (a `Condition` made over a `Lock` object).
pub(crate) type Lookup<'a> = dyn Fn(ObjectId) -> Option<Arc<dyn Object>> + 'a;

type Factory = Arc<dyn Fn(&str, Args, &Lookup<'_>) -> Result<Arc<dyn Object>> + Send + Sync>;

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

/// Refuses constructor arguments for a type that takes none.
fn no_args(typeid: &str, args: &Args) -> Result<()> {
    if args.args.is_empty() && args.kwds.is_empty() {
        return Ok(());
    }
    Err(ManagerError::InvalidArgument {
        argument: format!("{typeid}() with {} arguments", args.args.len() + args.kwds.len()),
        reason: "takes no arguments".into(),
    })
}

/// A non-negative int argument.
fn count_arg(args: &Args, pos: usize, name: &str, default: i64) -> Result<u64> {
    let n = args.int(pos, name, default)?;
    u64::try_from(n)
        .map_err(|_| ManagerError::InvalidArgument { argument: format!("{name} = {n}"), reason: "must be >= 0".into() })
}

/// The keyword a Rust `Manager::condition_with` names its lock object by.
pub(crate) const CONDITION_LOCK_KW: &str = "#lock";

impl Registry {
    /// An empty registry (a `BaseManager` with nothing registered).
    pub fn new() -> Self {
        Registry::default()
    }

    /// The built-ins of a `SyncManager`: see [`typeids`].
    pub fn sync() -> Self {
        use typeids::*;
        let mut r = Registry::new();
        // list(iterable=())
        r.raw(LIST, |t, a| {
            let items = match a.opt(0, "iterable") {
                Some(v) => items_of(v, "iterable")?,
                None => Vec::new(),
            };
            Ok(Arc::new(ListObject::list(t, items)))
        });
        // Array(typecode, sequence): a typecode of None takes items of any type.
        r.raw(ARRAY, |t, a| {
            let typecode = match a.req(0, "typecode")? {
                Value::None => None,
                Value::Str(s) if s.chars().count() == 1 => s.chars().next(),
                other => return Err(bad("typecode", other, "must be a single character")),
            };
            let items = items_of(a.req(1, "sequence")?, "sequence")?;
            Ok(Arc::new(ListObject::array(t, typecode, items)?))
        });
        // dict(mapping_or_pairs=(), **kwds)
        r.raw(DICT, |t, a| {
            let mut init = Dict::new();
            if let Some(v) = a.args.first() {
                init.extend(pairs_of(v)?);
            }
            init.extend(a.kwds.clone());
            Ok(Arc::new(DictObject::new(t, init)))
        });
        // Namespace(**kwds)
        r.raw(NAMESPACE, |t, a| Ok(Arc::new(NamespaceObject::new(t, a.kwds.clone()))));
        // Value(typecode, value, lock=True)
        r.raw(VALUE, |t, a| Ok(Arc::new(ValueObject::new(t, a.req(1, "value")?.clone()))));
        r.raw(QUEUE, |t, a| Ok(Arc::new(QueueObject::new(t, count_arg(&a, 0, "maxsize", 0)? as usize))));
        r.raw(JOINABLE_QUEUE, |t, a| Ok(Arc::new(QueueObject::new(t, count_arg(&a, 0, "maxsize", 0)? as usize))));
        r.raw(LOCK, |t, a| {
            no_args(t, &a)?;
            Ok(Arc::new(LockObject::new(t, false)))
        });
        r.raw(RLOCK, |t, a| {
            no_args(t, &a)?;
            Ok(Arc::new(LockObject::new(t, true)))
        });
        r.raw(SEMAPHORE, |t, a| Ok(Arc::new(SemaphoreObject::new(t, count_arg(&a, 0, "value", 1)?, false))));
        r.raw(BOUNDED_SEMAPHORE, |t, a| Ok(Arc::new(SemaphoreObject::new(t, count_arg(&a, 0, "value", 1)?, true))));
        // Condition(): its own RLock; a Rust client may name a Lock/RLock object of this
        // server by id (keyword `#lock`). A Python client's lock proxy does not decode.
        r.raw_with_lookup(CONDITION, |t, a, lookup| {
            let core = match a.kwds.get(&Value::from(CONDITION_LOCK_KW)) {
                None => None,
                Some(v) => {
                    let id = as_i64(v)
                        .and_then(|i| u64::try_from(i).ok())
                        .ok_or_else(|| bad("lock", v, "not an object id"))?;
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
        r.raw(EVENT, |t, a| {
            no_args(t, &a)?;
            Ok(Arc::new(EventObject::new(t)))
        });
        // Barrier(parties, action=None, timeout=None)
        r.raw(BARRIER, |t, a| {
            let parties = count_arg(&a, 0, "parties", 0)?;
            if parties == 0 {
                return Err(ManagerError::InvalidArgument {
                    argument: "parties = 0".into(),
                    reason: "a Barrier needs at least 1 party".into(),
                });
            }
            if a.opt(1, "action").is_some_and(|v| *v != Value::None) {
                return Err(ManagerError::InvalidArgument {
                    argument: "action".into(),
                    reason: "a function cannot be sent to the manager".into(),
                });
            }
            Ok(Arc::new(BarrierObject::new(t, parties, a.timeout(2, "timeout", false)?)))
        });
        r
    }

    fn raw(
        &mut self,
        typeid: &str,
        f: impl Fn(&str, Args) -> Result<Arc<dyn Object>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.raw_with_lookup(typeid, move |t, a, _| f(t, a))
    }

    fn raw_with_lookup(
        &mut self,
        typeid: &str,
        f: impl Fn(&str, Args, &Lookup<'_>) -> Result<Arc<dyn Object>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.factories.insert(typeid.to_string(), Arc::new(f));
        self
    }

    /// Registers a user type: each `create(typeid)` makes a new object with `factory`.
    #[doc(alias = "BaseManager.register")]
    pub fn register<T: Served>(&mut self, typeid: &str, factory: impl Fn() -> T + Send + Sync + 'static) -> &mut Self {
        self.raw(typeid, move |t, a| {
            no_args(t, &a)?;
            Ok(Arc::new(ServedObject { typeid: t.to_string(), inner: Arc::new(factory()) }))
        })
    }

    /// Registers one shared object: every `create(typeid)` refers to `object`.
    pub fn register_shared<T: Served>(&mut self, typeid: &str, object: Arc<T>) -> &mut Self {
        self.raw(typeid, move |t, a| {
            no_args(t, &a)?;
            Ok(Arc::new(ServedObject { typeid: t.to_string(), inner: object.clone() }))
        })
    }

    /// Registers one shared built-in queue (`maxsize == 0`: unbounded) under `typeid`;
    /// clients reach it with [`QueueProxy`](crate::QueueProxy) via
    /// [`Manager::proxy`](crate::Manager::proxy). The seed's `task_master` does this.
    pub fn register_shared_queue(&mut self, typeid: &str, maxsize: usize) -> &mut Self {
        let q: Arc<dyn Object> = Arc::new(QueueObject::new(typeid, maxsize));
        self.raw(typeid, move |t, a| {
            no_args(t, &a)?;
            Ok(q.clone())
        })
    }

    /// The registered typeids, sorted.
    pub fn typeids(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.factories.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn contains(&self, typeid: &str) -> bool {
        self.factories.contains_key(typeid)
    }

    pub(crate) fn create(&self, typeid: &str, args: Args, lookup: &Lookup<'_>) -> Result<Arc<dyn Object>> {
        let f = self.factories.get(typeid).ok_or_else(|| ManagerError::UnknownTypeid { typeid: typeid.to_string() })?;
        f(typeid, args, lookup)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("typeids", &self.typeids()).finish()
    }
}
