//! Typed proxies: the client side of each built-in object, plus [`Proxy<T>`] for user
//! types. Each method is one call on the server, run under the object's lock, so it is
//! atomic (`reverse`, `sort`, `setdefault`, `popitem` … included). The methods are
//! CPython's, under the same names; items travel as Python values (serde maps `T` to
//! one), so the server compares them as Python does (`1 == 1.0` as a dict key).
//!
//! Argument passing follows the local types': a method that stores an item takes it by
//! value (`append(item)`, `put(item)`, `insert(key, value)`, as `Queue::put(item)`), the
//! queue proxies add `put_ref(&item)` for an item the caller keeps (as
//! `Queue::put_ref`), and a method that only looks an item up borrows it
//! (`index(&item)`, `get(&key)`). A proxy is `Clone + Send + Sync`; it holds the server's address, authkey and
//! the object id, so it can be moved into a forked child, which connects on first use
//! and takes its own reference.

use std::marker::PhantomData;
use std::time::Duration;

use mproc_shm::sys::Deadline;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::Handle;
use crate::error::{ManagerError, Result};
use crate::object::{Served, SERVED_METHOD};
use crate::value::{from_value, to_value, Dict, Value};
use crate::wire::{from_bytes, to_bytes, ObjectId};

#[cfg(feature = "tokio")]
#[path = "asyncio/proxy.rs"]
mod asyncio;

/// A proxy type made from a reference to a server object (see
/// [`Manager::proxy`](crate::Manager::proxy)).
pub trait ProxyType: Sized {
    #[doc(hidden)]
    fn from_handle(handle: ObjectRef) -> Self;
}

/// A reference to a server object, held by this process; every proxy wraps one.
#[derive(Clone)]
pub struct ObjectRef(pub(crate) Handle);

impl ObjectRef {
    /// The server's id of the object.
    pub fn id(&self) -> ObjectId {
        self.0 .0.id
    }
    /// The object's typeid.
    pub fn typeid(&self) -> &str {
        &self.0 .0.typeid
    }
    /// Calls any method of the object by name, with Python values for `*args` and
    /// `**kwds` (a method no typed proxy has, or an object of a typeid a Python program
    /// registered). A method answered by an iterator (a dict's `__iter__`) returns its
    /// items as a list.
    ///
    /// ```no_run
    /// # fn main() -> mproc_manager::Result<()> {
    /// use mproc_manager::{Manager, Address};
    /// use mproc_pickle::{Dict, Value};
    ///
    /// let m = Manager::connect(Address::loopback(50000), b"abc")?;
    /// let d = m.dict::<String, u64>()?;
    /// d.insert("a".into(), 1)?;
    /// let keys = d.object().call_value("__iter__", vec![], Dict::new())?;
    /// assert_eq!(keys, Value::List(vec![Value::from("a")]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn call_value(
        &self,
        method: &str,
        args: Vec<mproc_pickle::Value>,
        kwds: mproc_pickle::Dict,
    ) -> Result<mproc_pickle::Value> {
        self.0.call_value(method, args, kwds)
    }
}

impl std::fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRef").field("id", &self.id()).field("typeid", &self.typeid()).finish()
    }
}

/// What a `_timeout` form returns for what the server reports: a queue still empty or
/// full after `after` is [`ManagerError::Timeout`].
fn timed_out(e: ManagerError, after: Duration) -> ManagerError {
    match e {
        ManagerError::QueueEmpty | ManagerError::QueueFull => ManagerError::Timeout { after },
        e => e,
    }
}

/// A timeout as Python's proxies send it: seconds, as a float.
fn secs(t: Duration) -> Value {
    Value::Float(t.as_secs_f64())
}

fn opt_secs(t: Option<Duration>) -> Value {
    t.map_or(Value::None, secs)
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

macro_rules! proxy_common {
    ($name:ident $(<$t:ident>)?) => {
        impl$(<$t>)? Clone for $name$(<$t>)? {
            fn clone(&self) -> Self {
                $name { h: self.h.clone(), _t: PhantomData }
            }
        }
        impl$(<$t>)? ProxyType for $name$(<$t>)? {
            fn from_handle(handle: ObjectRef) -> Self {
                $name { h: handle, _t: PhantomData }
            }
        }
        impl$(<$t>)? std::fmt::Debug for $name$(<$t>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.h).finish()
            }
        }
        impl$(<$t>)? $name$(<$t>)? {
            /// The reference this proxy holds.
            pub fn object(&self) -> &ObjectRef {
                &self.h
            }
        }
    };
}

/// A proxy to a `list` on the server (`Manager::list`).
pub struct ListProxy<T> {
    h: ObjectRef,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(ListProxy<T>);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `item`.
    pub fn append(&self, item: T) -> Result<()> {
        self.h.0.call_unit("append", vec![to_value(&item)?])
    }
    /// Appends every item (one call).
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        let items = items.into_iter().map(|i| to_value(&i)).collect::<Result<Vec<_>>>()?;
        self.h.0.call_unit("extend", vec![Value::List(items)])
    }
    /// The item at `index` (negative counts from the end); `IndexOutOfRange` if none.
    pub fn get(&self, index: i64) -> Result<T> {
        self.h.0.call("__getitem__", vec![int(index)])
    }
    /// Replaces the item at `index`.
    pub fn set(&self, index: i64, item: T) -> Result<()> {
        self.h.0.call_unit("__setitem__", vec![int(index), to_value(&item)?])
    }
    /// Inserts before `index` (clamped to the list, as in Python).
    pub fn insert(&self, index: i64, item: T) -> Result<()> {
        self.h.0.call_unit("insert", vec![int(index), to_value(&item)?])
    }
    /// Removes and returns the last item; `IndexOutOfRange` if empty.
    pub fn pop(&self) -> Result<T> {
        self.h.0.call("pop", vec![])
    }
    /// Removes and returns the item at `index`.
    pub fn pop_at(&self, index: i64) -> Result<T> {
        self.h.0.call("pop", vec![int(index)])
    }
    /// Removes the item at `index` (`del l[index]`).
    pub fn delete(&self, index: i64) -> Result<()> {
        self.h.0.call_unit("__delitem__", vec![int(index)])
    }
    /// Removes the first item equal to `item`; `ValueNotFound` if none.
    pub fn remove(&self, item: &T) -> Result<()> {
        self.h.0.call_unit("remove", vec![to_value(item)?])
    }
    /// The number of items.
    pub fn len(&self) -> Result<usize> {
        self.h.0.call("__len__", vec![])
    }
    /// True if there are no items.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// The position of the first item equal to `item`; `ValueNotFound` if none.
    pub fn index(&self, item: &T) -> Result<usize> {
        self.h.0.call("index", vec![to_value(item)?])
    }
    /// How many items equal `item`.
    pub fn count(&self, item: &T) -> Result<usize> {
        self.h.0.call("count", vec![to_value(item)?])
    }
    /// True if an item equals `item` (`item in l`).
    pub fn contains(&self, item: &T) -> Result<bool> {
        self.h.0.call("__contains__", vec![to_value(item)?])
    }
    /// Reverses the list in place (one call).
    pub fn reverse(&self) -> Result<()> {
        self.h.0.call_unit("reverse", vec![])
    }
    /// Sorts in place by Python's ordering (one call); `InvalidArgument` for items that
    /// do not compare (Python's `TypeError`).
    pub fn sort(&self, reverse: bool) -> Result<()> {
        let mut kwds = Dict::new();
        kwds.insert(Value::from("reverse"), Value::Bool(reverse));
        self.h.0.call_value("sort", vec![], kwds).map(drop)
    }
    /// A copy of the items.
    pub fn snapshot(&self) -> Result<Vec<T>> {
        self.h.0.call("#GETVALUE", vec![])
    }
    /// Removes every item.
    pub fn clear(&self) -> Result<()> {
        self.h.0.call_unit("clear", vec![])
    }
}

/// A proxy to a fixed-length `Array` on the server (`Manager::array`).
pub struct ArrayProxy<T> {
    h: ObjectRef,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(ArrayProxy<T>);

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// The item at `index`.
    pub fn get(&self, index: i64) -> Result<T> {
        self.h.0.call("__getitem__", vec![int(index)])
    }
    /// Replaces the item at `index`.
    pub fn set(&self, index: i64, item: T) -> Result<()> {
        self.h.0.call_unit("__setitem__", vec![int(index), to_value(&item)?])
    }
    /// The length.
    pub fn len(&self) -> Result<usize> {
        self.h.0.call("__len__", vec![])
    }
    /// True if the length is 0.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// A copy of the items.
    pub fn snapshot(&self) -> Result<Vec<T>> {
        self.h.0.call("#GETVALUE", vec![])
    }
}

/// A proxy to a `dict` on the server (`Manager::dict`). Keys compare as Python's do:
/// `1`, `1.0` and `true` are one key.
pub struct DictProxy<K, V> {
    h: ObjectRef,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for DictProxy<K, V> {
    fn clone(&self) -> Self {
        DictProxy { h: self.h.clone(), _t: PhantomData }
    }
}
impl<K, V> ProxyType for DictProxy<K, V> {
    fn from_handle(handle: ObjectRef) -> Self {
        DictProxy { h: handle, _t: PhantomData }
    }
}
impl<K, V> std::fmt::Debug for DictProxy<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DictProxy").field(&self.h).finish()
    }
}
impl<K, V> DictProxy<K, V> {
    /// The reference this proxy holds.
    pub fn object(&self) -> &ObjectRef {
        &self.h
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// The value for `key`, if any.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let v = self.h.0.call_value("get", vec![to_value(key)?], Dict::new())?;
        match v {
            Value::None => Ok(None),
            v => from_value(v).map(Some),
        }
    }
    /// Sets `key` to `value` (`d[key] = value`); returns the value it replaced, as
    /// `HashMap::insert` does (one call).
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        let (replaced, old): (bool, Value) = self.h.0.call("#insert", vec![to_value(&key)?, to_value(&value)?])?;
        if replaced {
            from_value(old).map(Some)
        } else {
            Ok(None)
        }
    }
    /// Removes `key` and returns its value; `KeyMissing` if absent.
    pub fn remove(&self, key: &K) -> Result<V> {
        self.h.0.call("pop", vec![to_value(key)?])
    }
    /// Removes `key` if present and returns its value (`d.pop(key, None)`).
    pub fn pop(&self, key: &K) -> Result<Option<V>> {
        match self.h.0.call_value("pop", vec![to_value(key)?, Value::None], Dict::new())? {
            Value::None => Ok(None),
            v => from_value(v).map(Some),
        }
    }
    /// Removes and returns the last inserted pair; `KeyMissing` if empty.
    pub fn popitem(&self) -> Result<(K, V)> {
        self.h.0.call("popitem", vec![])
    }
    /// The value for `key`, inserting `default` first if absent (one call).
    pub fn setdefault(&self, key: K, default: V) -> Result<V> {
        self.h.0.call("setdefault", vec![to_value(&key)?, to_value(&default)?])
    }
    /// Inserts every pair (one call).
    pub fn update(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| Ok(Value::Tuple(vec![to_value(&k)?, to_value(&v)?])))
            .collect::<Result<Vec<_>>>()?;
        self.h.0.call_unit("update", vec![Value::List(pairs)])
    }
    /// True if `key` is present.
    pub fn contains(&self, key: &K) -> Result<bool> {
        self.h.0.call("__contains__", vec![to_value(key)?])
    }
    /// The keys, in insertion order.
    pub fn keys(&self) -> Result<Vec<K>> {
        self.h.0.call("keys", vec![])
    }
    /// The values, in insertion order.
    pub fn values(&self) -> Result<Vec<V>> {
        self.h.0.call("values", vec![])
    }
    /// The pairs, in insertion order.
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        self.h.0.call("items", vec![])
    }
    /// The number of pairs.
    pub fn len(&self) -> Result<usize> {
        self.h.0.call("__len__", vec![])
    }
    /// True if there are no pairs.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Removes every pair.
    pub fn clear(&self) -> Result<()> {
        self.h.0.call_unit("clear", vec![])
    }
}

/// A proxy to a `Namespace`: named fields of any type.
pub struct NamespaceProxy {
    h: ObjectRef,
    _t: PhantomData<()>,
}
proxy_common!(NamespaceProxy);

impl NamespaceProxy {
    /// Sets field `name` (`ns.name = value`).
    pub fn set<T: Serialize>(&self, name: &str, value: T) -> Result<()> {
        self.h.0.call_unit("__setattr__", vec![Value::from(name), to_value(&value)?])
    }
    /// Field `name`; `KeyMissing` naming it if unset.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        self.h.0.call("__getattribute__", vec![Value::from(name)])
    }
    /// Deletes field `name`; `KeyMissing` if unset.
    pub fn del(&self, name: &str) -> Result<()> {
        self.h.0.call_unit("__delattr__", vec![Value::from(name)])
    }
    /// The field names, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let fields: Vec<String> = match self.h.0.call_value("#GETVALUE", vec![], Dict::new())? {
            Value::Dict(d) => {
                d.keys().filter_map(|k| if let Value::Str(s) = k { Some(s.clone()) } else { None }).collect()
            }
            other => return Err(ManagerError::Decode { reason: format!("namespace fields: {other}") }),
        };
        let mut fields = fields;
        fields.sort();
        Ok(fields)
    }
}

/// A proxy to a shared `Value`.
pub struct ValueProxy<T> {
    h: ObjectRef,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(ValueProxy<T>);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The value.
    pub fn get(&self) -> Result<T> {
        self.h.0.call("get", vec![])
    }
    /// Replaces the value.
    pub fn set(&self, value: T) -> Result<()> {
        self.h.0.call_unit("set", vec![to_value(&value)?])
    }
}

/// A proxy to a `Queue` on the server.
pub struct QueueProxy<T> {
    h: ObjectRef,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(QueueProxy<T>);

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    fn put_value(&self, item: Value, block: bool, timeout: Option<Duration>) -> Result<()> {
        self.h.0.call_unit("put", vec![item, Value::Bool(block), opt_secs(timeout)])
    }
    /// Puts `item`, waiting for room if the queue is bounded and full.
    pub fn put(&self, item: T) -> Result<()> {
        self.put_ref(&item)
    }
    /// Puts a copy of an item the caller keeps.
    pub fn put_ref(&self, item: &T) -> Result<()> {
        self.put_value(to_value(item)?, true, None)
    }
    /// Puts within `timeout`; [`ManagerError::Timeout`] if there was no room in time.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        self.put_value(to_value(&item)?, true, Some(timeout)).map_err(|e| timed_out(e, timeout))
    }
    /// Puts if there is room now; `QueueFull` otherwise.
    pub fn try_put(&self, item: T) -> Result<()> {
        self.put_value(to_value(&item)?, false, None)
    }
    /// Python's `put(item, block, timeout)`.
    pub fn put_with(&self, item: T, block: bool, timeout: Option<Duration>) -> Result<()> {
        self.put_value(to_value(&item)?, block, timeout)
    }
    /// Takes an item, waiting as long as it takes.
    pub fn get(&self) -> Result<T> {
        self.get_with(true, None)
    }
    /// Takes an item within `timeout`; [`ManagerError::Timeout`] if none came.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_with(true, Some(timeout)).map_err(|e| timed_out(e, timeout))
    }
    /// Takes an item if one is there; `QueueEmpty` otherwise.
    pub fn try_get(&self) -> Result<T> {
        self.get_with(false, None)
    }
    /// Python's `get(block, timeout)`.
    pub fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<T> {
        self.h.0.call("get", vec![Value::Bool(block), opt_secs(timeout)])
    }
    /// The number of items.
    pub fn qsize(&self) -> Result<usize> {
        self.h.0.call("qsize", vec![])
    }
    /// True if empty.
    pub fn empty(&self) -> Result<bool> {
        self.h.0.call("empty", vec![])
    }
    /// True if bounded and full.
    pub fn full(&self) -> Result<bool> {
        self.h.0.call("full", vec![])
    }
}

/// A proxy to a `JoinableQueue`: a [`QueueProxy`] (by `Deref`) plus `task_done`/`join`.
pub struct JoinableQueueProxy<T> {
    q: QueueProxy<T>,
}

impl<T> Clone for JoinableQueueProxy<T> {
    fn clone(&self) -> Self {
        JoinableQueueProxy { q: self.q.clone() }
    }
}
impl<T> ProxyType for JoinableQueueProxy<T> {
    fn from_handle(handle: ObjectRef) -> Self {
        JoinableQueueProxy { q: QueueProxy::from_handle(handle) }
    }
}
impl<T> std::fmt::Debug for JoinableQueueProxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JoinableQueueProxy").field(&self.q.h).finish()
    }
}
impl<T> std::ops::Deref for JoinableQueueProxy<T> {
    type Target = QueueProxy<T>;
    fn deref(&self) -> &QueueProxy<T> {
        &self.q
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueueProxy<T> {
    /// Marks one item done; `TooManyTaskDone` if none is unfinished.
    pub fn task_done(&self) -> Result<()> {
        self.q.h.0.call_unit("task_done", vec![])
    }
    /// Waits until every item put has been marked done.
    pub fn join(&self) -> Result<()> {
        self.q.h.0.call_unit("join", vec![])
    }
    /// Like `join`, at most `timeout`; [`ManagerError::Timeout`] if items are still
    /// unfinished.
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        let done: bool = self.q.h.0.call("join", vec![secs(timeout)])?;
        done.then_some(()).ok_or(ManagerError::Timeout { after: timeout })
    }
}

/// A proxy to a `Lock` or `RLock` on the server. Acquisitions are owned by
/// `(this process, this thread)`; a lock held by a client that dies is released.
pub struct LockProxy {
    h: ObjectRef,
    _t: PhantomData<()>,
}
proxy_common!(LockProxy);

/// Releases a [`LockProxy`] (or the lock of a [`ConditionProxy`]) when dropped.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard<'a> {
    release: Box<dyn Fn() -> Result<()> + 'a>,
}

impl LockGuard<'_> {
    /// Releases now, reporting an error (dropping the guard ignores it).
    pub fn unlock(self) -> Result<()> {
        let r = (self.release)();
        std::mem::forget(self);
        r
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = (self.release)();
    }
}

impl std::fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

impl LockProxy {
    /// Python's `acquire(block, timeout)`, in Python's shape: true if acquired.
    pub fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call("acquire", vec![Value::Bool(block), timeout.map_or(int(-1), secs)])
    }
    /// Acquires, waiting as long as it takes (release with [`release`](Self::release),
    /// or use [`lock`](Self::lock) for a guard).
    pub fn acquire(&self) -> Result<()> {
        self.acquire_with(true, None).map(drop)
    }
    /// Acquires if free now; [`ManagerError::WouldBlock`] otherwise.
    pub fn try_acquire(&self) -> Result<()> {
        self.acquire_with(false, None)?.then_some(()).ok_or(ManagerError::WouldBlock)
    }
    /// Acquires within `timeout`; [`ManagerError::Timeout`] otherwise.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        self.acquire_with(true, Some(timeout))?.then_some(()).ok_or(ManagerError::Timeout { after: timeout })
    }
    /// Releases; `NotHeld` if unlocked (or, for an RLock, held by another thread).
    pub fn release(&self) -> Result<()> {
        self.h.0.call_unit("release", vec![])
    }
    /// Acquires, waiting as long as it takes, and returns a guard.
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.acquire()?;
        Ok(self.guard())
    }
    /// Acquires if free now and returns a guard; [`ManagerError::WouldBlock`] otherwise.
    pub fn try_lock(&self) -> Result<LockGuard<'_>> {
        self.try_acquire()?;
        Ok(self.guard())
    }
    /// Acquires within `timeout` and returns a guard; [`ManagerError::Timeout`] otherwise.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        self.acquire_timeout(timeout)?;
        Ok(self.guard())
    }
    /// True if held by anyone.
    pub fn locked(&self) -> Result<bool> {
        self.h.0.call("locked", vec![])
    }
    fn guard(&self) -> LockGuard<'_> {
        LockGuard { release: Box::new(move || self.release()) }
    }
}

/// A proxy to a `Semaphore` or `BoundedSemaphore`.
pub struct SemaphoreProxy {
    h: ObjectRef,
    _t: PhantomData<()>,
}
proxy_common!(SemaphoreProxy);

impl SemaphoreProxy {
    /// Python's `acquire(block, timeout)`, in Python's shape: true if acquired.
    pub fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call("acquire", vec![Value::Bool(block), opt_secs(timeout)])
    }
    /// Takes one, waiting as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        self.acquire_with(true, None).map(drop)
    }
    /// Takes one if there is one now; [`ManagerError::WouldBlock`] otherwise.
    pub fn try_acquire(&self) -> Result<()> {
        self.acquire_with(false, None)?.then_some(()).ok_or(ManagerError::WouldBlock)
    }
    /// Takes one within `timeout`; [`ManagerError::Timeout`] otherwise.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        self.acquire_with(true, Some(timeout))?.then_some(()).ok_or(ManagerError::Timeout { after: timeout })
    }
    /// Releases one; `SemaphoreOverRelease` for a bounded semaphore at its bound.
    pub fn release(&self) -> Result<()> {
        self.h.0.call_unit("release", vec![])
    }
    /// The current value.
    pub fn get_value(&self) -> Result<u64> {
        self.h.0.call("get_value", vec![])
    }
}

/// A proxy to a `Condition`, over its own RLock ([`Manager::condition`](crate::Manager::condition))
/// or a lock of the server ([`Manager::condition_with`](crate::Manager::condition_with)).
pub struct ConditionProxy {
    h: ObjectRef,
    _t: PhantomData<()>,
}
proxy_common!(ConditionProxy);

impl ConditionProxy {
    /// Python's `acquire(block, timeout)` of the condition's lock, in Python's shape.
    pub fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call("acquire", vec![Value::Bool(block), timeout.map_or(int(-1), secs)])
    }
    /// Acquires the condition's lock, waiting as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        self.acquire_with(true, None).map(drop)
    }
    /// Releases the condition's lock.
    pub fn release(&self) -> Result<()> {
        self.h.0.call_unit("release", vec![])
    }
    /// Acquires the lock and returns a guard.
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.acquire()?;
        Ok(LockGuard { release: Box::new(move || self.release()) })
    }
    /// Waits for a notify (lock held; released while waiting).
    pub fn wait(&self) -> Result<()> {
        self.wait_within(None).map(drop)
    }
    /// Waits at most `timeout` for a notify; [`ManagerError::Timeout`] if none came.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        self.wait_within(Some(timeout))?.then_some(()).ok_or(ManagerError::Timeout { after: timeout })
    }
    fn wait_within(&self, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call("wait", vec![opt_secs(timeout)])
    }
    /// Waits until `pred()` holds, re-checking after each notify.
    pub fn wait_for(&self, pred: impl FnMut() -> bool) -> Result<()> {
        self.wait_for_within(pred, None).map(drop)
    }
    /// Waits at most `timeout` until `pred()` holds; [`ManagerError::Timeout`] if it
    /// still does not. A timeout too large to add to the clock waits without limit.
    pub fn wait_for_timeout(&self, pred: impl FnMut() -> bool, timeout: Duration) -> Result<()> {
        self.wait_for_within(pred, Some(timeout))?.then_some(()).ok_or(ManagerError::Timeout { after: timeout })
    }
    fn wait_for_within(&self, mut pred: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let end = Deadline::within(timeout);
        while !pred() {
            let left = end.remaining();
            if left == Some(Duration::ZERO) {
                return Ok(pred());
            }
            self.wait_within(left)?;
        }
        Ok(true)
    }
    /// Wakes up to `n` waiters.
    pub fn notify(&self, n: u64) -> Result<()> {
        self.h.0.call_unit("notify", vec![Value::from(n)])
    }
    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<()> {
        self.h.0.call_unit("notify_all", vec![])
    }
}

/// A proxy to an `Event`.
pub struct EventProxy {
    h: ObjectRef,
    _t: PhantomData<()>,
}
proxy_common!(EventProxy);

impl EventProxy {
    /// Sets the flag and wakes the waiters.
    pub fn set(&self) -> Result<()> {
        self.h.0.call_unit("set", vec![])
    }
    /// Clears the flag.
    pub fn clear(&self) -> Result<()> {
        self.h.0.call_unit("clear", vec![])
    }
    /// The flag.
    pub fn is_set(&self) -> Result<bool> {
        self.h.0.call("is_set", vec![])
    }
    /// Waits for the flag, as long as it takes.
    pub fn wait(&self) -> Result<()> {
        let _: bool = self.h.0.call("wait", vec![Value::None])?;
        Ok(())
    }
    /// Waits at most `timeout` for the flag; [`ManagerError::Timeout`] if it stayed clear.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        let set: bool = self.h.0.call("wait", vec![secs(timeout)])?;
        set.then_some(()).ok_or(ManagerError::Timeout { after: timeout })
    }
}

/// A proxy to a `Barrier`.
pub struct BarrierProxy {
    h: ObjectRef,
    _t: PhantomData<()>,
}
proxy_common!(BarrierProxy);

impl BarrierProxy {
    /// Waits for all parties (at most the barrier's own timeout, if it was made with
    /// one); returns the arrival index (exactly one gets 0), or `BrokenBarrier`.
    pub fn wait(&self) -> Result<u64> {
        self.h.0.call("wait", vec![])
    }
    /// Like `wait`; a timeout breaks the barrier (`BrokenBarrier`).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u64> {
        self.h.0.call("wait", vec![secs(timeout)])
    }
    /// Breaks the barrier: current and future waiters get `BrokenBarrier`.
    pub fn abort(&self) -> Result<()> {
        self.h.0.call_unit("abort", vec![])
    }
    /// Back to the initial state; current waiters get `BrokenBarrier`.
    pub fn reset(&self) -> Result<()> {
        self.h.0.call_unit("reset", vec![])
    }
    /// Waiters currently waiting.
    pub fn n_waiting(&self) -> Result<u64> {
        self.h.0.call("__getattribute__", vec![Value::from("n_waiting")])
    }
    /// True if broken.
    pub fn broken(&self) -> Result<bool> {
        self.h.0.call("__getattribute__", vec![Value::from("broken")])
    }
    /// The number of parties.
    pub fn parties(&self) -> Result<u64> {
        self.h.0.call("__getattribute__", vec![Value::from("parties")])
    }
}

/// A typed proxy to a user type registered with
/// [`Registry::register`](crate::Registry::register).
pub struct Proxy<T: Served> {
    h: ObjectRef,
    _t: PhantomData<fn() -> T>,
}

impl<T: Served> Clone for Proxy<T> {
    fn clone(&self) -> Self {
        Proxy { h: self.h.clone(), _t: PhantomData }
    }
}
impl<T: Served> ProxyType for Proxy<T> {
    fn from_handle(handle: ObjectRef) -> Self {
        Proxy { h: handle, _t: PhantomData }
    }
}
impl<T: Served> std::fmt::Debug for Proxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Proxy").field(&self.h).finish()
    }
}

impl<T: Served> Proxy<T> {
    /// Calls the object's `dispatch` on the server; its `Err` comes back as `Remote`.
    pub fn call(&self, req: &T::Request) -> Result<T::Response> {
        match self.h.0.call_value(SERVED_METHOD, vec![Value::Bytes(to_bytes(req)?)], Dict::new())? {
            Value::Bytes(b) => from_bytes(&b),
            other => Err(ManagerError::Decode { reason: format!("a served object replied {other}") }),
        }
    }
    /// The reference this proxy holds.
    pub fn object(&self) -> &ObjectRef {
        &self.h
    }
}
