//! Typed proxies: the client side of each built-in object, plus [`Proxy<T>`] for user
//! types. A proxy is `Clone + Send + Sync`; it holds the server's address, authkey and
//! the object id, so it can be moved into a forked child, which connects on first use
//! and takes its own reference.

use std::marker::PhantomData;
use std::time::Duration;

use mproc_shm::sys::Deadline;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::Handle;
use crate::error::Result;
use crate::object::Served;
use crate::objects::collections::{DictCall, ListCall, NamespaceCall, ValueCall};
use crate::objects::queue::QueueCall;
use crate::objects::sync::{BarrierCall, ConditionCall, EventCall, LockCall, SemaphoreCall};
use crate::wire::{from_bytes, to_bytes, ObjectId};

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
}

impl std::fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRef").field("id", &self.id()).field("typeid", &self.typeid()).finish()
    }
}

fn tid() -> u64 {
    u64::from(mproc_shm::sys::tid())
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

/// A proxy to a `list` on the server (`Manager::list`). Items travel postcard-encoded;
/// `remove` and `index` compare items by their encoding.
pub struct ListProxy<T> {
    h: ObjectRef,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(ListProxy<T>);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `item`.
    pub fn append(&self, item: &T) -> Result<()> {
        self.h.0.call_unit(&ListCall::Append(to_bytes(item)?))
    }
    /// Appends every item.
    pub fn extend<'a>(&self, items: impl IntoIterator<Item = &'a T>) -> Result<()>
    where
        T: 'a,
    {
        let items = items.into_iter().map(to_bytes).collect::<Result<Vec<_>>>()?;
        self.h.0.call_unit(&ListCall::Extend(items))
    }
    /// The item at `index` (negative counts from the end); `IndexOutOfRange` if none.
    pub fn get(&self, index: i64) -> Result<T> {
        from_bytes(&self.h.0.call_raw(to_bytes(&ListCall::Get(index))?)?)
    }
    /// Replaces the item at `index`.
    pub fn set(&self, index: i64, item: &T) -> Result<()> {
        self.h.0.call_unit(&ListCall::Set(index, to_bytes(item)?))
    }
    /// Inserts before `index` (clamped to the list, as in Python).
    pub fn insert(&self, index: i64, item: &T) -> Result<()> {
        self.h.0.call_unit(&ListCall::Insert(index, to_bytes(item)?))
    }
    /// Removes and returns the last item.
    pub fn pop(&self) -> Result<T> {
        from_bytes(&self.h.0.call_raw(to_bytes(&ListCall::Pop(None))?)?)
    }
    /// Removes and returns the item at `index`.
    pub fn pop_at(&self, index: i64) -> Result<T> {
        from_bytes(&self.h.0.call_raw(to_bytes(&ListCall::Pop(Some(index)))?)?)
    }
    /// Removes the first item equal to `item`; `ValueNotFound` if none.
    pub fn remove(&self, item: &T) -> Result<()> {
        self.h.0.call_unit(&ListCall::Remove(to_bytes(item)?))
    }
    /// The number of items.
    #[doc(alias = "__len__")]
    pub fn len(&self) -> Result<usize> {
        self.h.0.call::<_, u64>(&ListCall::Len).map(|n| n as usize)
    }
    /// True if the list has no items.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// The position of the first item equal to `item`; `ValueNotFound` if none.
    pub fn index(&self, item: &T) -> Result<usize> {
        self.h.0.call::<_, u64>(&ListCall::Index(to_bytes(item)?)).map(|n| n as usize)
    }
    /// A copy of all items (Python's `list(proxy)`).
    pub fn snapshot(&self) -> Result<Vec<T>> {
        self.h.0.call(&ListCall::Snapshot)
    }
    /// Removes every item.
    pub fn clear(&self) -> Result<()> {
        self.h.0.call_unit(&ListCall::Clear)
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
        from_bytes(&self.h.0.call_raw(to_bytes(&ListCall::Get(index))?)?)
    }
    /// Replaces the item at `index`.
    pub fn set(&self, index: i64, item: &T) -> Result<()> {
        self.h.0.call_unit(&ListCall::Set(index, to_bytes(item)?))
    }
    /// The length.
    pub fn len(&self) -> Result<usize> {
        self.h.0.call::<_, u64>(&ListCall::Len).map(|n| n as usize)
    }
    /// True if the length is 0.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// A copy of all items.
    pub fn snapshot(&self) -> Result<Vec<T>> {
        self.h.0.call(&ListCall::Snapshot)
    }
}

/// A proxy to a `dict` on the server (`Manager::dict`), in insertion order. Keys compare
/// by their encoding.
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
    /// The value under `key`, if any.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.h.0.call(&DictCall::Get(to_bytes(key)?))
    }
    /// Sets `key` to `value`; returns the value it replaced.
    #[doc(alias = "__setitem__")]
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>> {
        self.h.0.call(&DictCall::Insert(to_bytes(key)?, to_bytes(value)?))
    }
    /// Removes `key` and returns its value; `KeyMissing` if absent.
    #[doc(alias = "pop")]
    pub fn remove(&self, key: &K) -> Result<V> {
        from_bytes(&self.h.0.call_raw(to_bytes(&DictCall::Remove(to_bytes(key)?))?)?)
    }
    /// True if `key` is present.
    pub fn contains(&self, key: &K) -> Result<bool> {
        self.h.0.call(&DictCall::Contains(to_bytes(key)?))
    }
    /// The keys.
    pub fn keys(&self) -> Result<Vec<K>> {
        self.h.0.call(&DictCall::Keys)
    }
    /// The values.
    pub fn values(&self) -> Result<Vec<V>> {
        self.h.0.call(&DictCall::Values)
    }
    /// The `(key, value)` pairs.
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        self.h.0.call(&DictCall::Items)
    }
    /// The number of entries.
    pub fn len(&self) -> Result<usize> {
        self.h.0.call::<_, u64>(&DictCall::Len).map(|n| n as usize)
    }
    /// True if there are no entries.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// Removes every entry.
    pub fn clear(&self) -> Result<()> {
        self.h.0.call_unit(&DictCall::Clear)
    }
}

/// A proxy to a `Namespace` (`Manager::namespace`): typed fields by name.
pub struct NamespaceProxy {
    h: ObjectRef,
    _t: PhantomData<()>,
}
proxy_common!(NamespaceProxy);

impl NamespaceProxy {
    /// Sets field `name` (Python's `ns.name = value`).
    #[doc(alias = "__setattr__")]
    pub fn set<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        self.h.0.call_unit(&NamespaceCall::Set(name.to_string(), to_bytes(value)?))
    }
    /// Reads field `name` as `T`; `KeyMissing(name)` if unset, `Decode` if not a `T`.
    #[doc(alias = "__getattr__")]
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        from_bytes(&self.h.0.call_raw(to_bytes(&NamespaceCall::Get(name.to_string()))?)?)
    }
    /// Deletes field `name`.
    pub fn del(&self, name: &str) -> Result<()> {
        self.h.0.call_unit(&NamespaceCall::Del(name.to_string()))
    }
    /// The field names, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        self.h.0.call(&NamespaceCall::Names)
    }
}

/// A proxy to a `Value` (`Manager::value`).
pub struct ValueProxy<T> {
    h: ObjectRef,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(ValueProxy<T>);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The value.
    pub fn get(&self) -> Result<T> {
        from_bytes(&self.h.0.call_raw(to_bytes(&ValueCall::Get)?)?)
    }
    /// Replaces the value.
    pub fn set(&self, value: &T) -> Result<()> {
        self.h.0.call_unit(&ValueCall::Set(to_bytes(value)?))
    }
}

/// A proxy to a `Queue` (`Manager::queue`). Blocking calls block this thread only.
pub struct QueueProxy<T> {
    h: ObjectRef,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(QueueProxy<T>);

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    fn put_with(&self, item: &T, block: bool, timeout: Option<Duration>) -> Result<()> {
        self.h.0.call_unit(&QueueCall::Put { item: to_bytes(item)?, block, timeout })
    }
    fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<T> {
        from_bytes(&self.h.0.call_raw(to_bytes(&QueueCall::Get { block, timeout })?)?)
    }
    /// Puts `item`, waiting while the queue is full.
    pub fn put(&self, item: &T) -> Result<()> {
        self.put_with(item, true, None)
    }
    /// Puts `item`, waiting at most `timeout`; `QueueFull` then.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        self.put_with(item, true, Some(timeout))
    }
    /// Puts `item` or returns `QueueFull` at once.
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: &T) -> Result<()> {
        self.put_with(item, false, None)
    }
    /// Takes the oldest item, waiting for one.
    pub fn get(&self) -> Result<T> {
        self.get_with(true, None)
    }
    /// Takes the oldest item, waiting at most `timeout`; `QueueEmpty` then.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_with(true, Some(timeout))
    }
    /// Takes the oldest item or returns `QueueEmpty` at once.
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T> {
        self.get_with(false, None)
    }
    /// The number of items queued.
    pub fn qsize(&self) -> Result<usize> {
        self.h.0.call::<_, u64>(&QueueCall::Qsize).map(|n| n as usize)
    }
    /// True if no item is queued.
    pub fn empty(&self) -> Result<bool> {
        self.h.0.call(&QueueCall::Empty)
    }
    /// True if the queue is at its `maxsize`.
    pub fn full(&self) -> Result<bool> {
        self.h.0.call(&QueueCall::Full)
    }
}

/// A proxy to a `JoinableQueue` (`Manager::joinable_queue`): a queue plus `task_done`
/// and `join`. Derefs to [`QueueProxy`] for `put`/`get`.
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
        self.q.h.0.call_unit(&QueueCall::TaskDone)
    }
    /// Waits until every item put has been marked done.
    pub fn join(&self) -> Result<()> {
        self.q.h.0.call::<_, bool>(&QueueCall::Join { timeout: None }).map(drop)
    }
    /// Like `join`, at most `timeout`; false if items are still unfinished then.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        self.q.h.0.call(&QueueCall::Join { timeout: Some(timeout) })
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
    /// Python's `acquire(block, timeout)`: true if acquired.
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call(&LockCall::Acquire { thread: tid(), block, timeout })
    }
    /// Releases; `NotHeld` if unlocked (or, for an RLock, held by another thread).
    pub fn release(&self) -> Result<()> {
        self.h.0.call_unit(&LockCall::Release { thread: tid() })
    }
    /// Acquires, waiting as long as it takes, and returns a guard.
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.acquire(true, None)?;
        Ok(self.guard())
    }
    /// Acquires if free.
    pub fn try_lock(&self) -> Result<Option<LockGuard<'_>>> {
        Ok(self.acquire(false, None)?.then(|| self.guard()))
    }
    /// Acquires within `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>> {
        Ok(self.acquire(true, Some(timeout))?.then(|| self.guard()))
    }
    /// True if held by anyone.
    pub fn locked(&self) -> Result<bool> {
        self.h.0.call(&LockCall::Locked)
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
    /// Python's `acquire(block, timeout)`: true if acquired.
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call(&SemaphoreCall::Acquire { block, timeout })
    }
    /// Releases one; `SemaphoreOverRelease` for a bounded semaphore at its bound.
    pub fn release(&self) -> Result<()> {
        self.h.0.call_unit(&SemaphoreCall::Release)
    }
    /// The current value.
    pub fn get_value(&self) -> Result<u64> {
        self.h.0.call(&SemaphoreCall::GetValue)
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
    /// Acquires the condition's lock.
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call(&ConditionCall::Acquire { thread: tid(), block, timeout })
    }
    /// Releases the condition's lock.
    pub fn release(&self) -> Result<()> {
        self.h.0.call_unit(&ConditionCall::Release { thread: tid() })
    }
    /// Acquires the lock and returns a guard.
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.acquire(true, None)?;
        Ok(LockGuard { release: Box::new(move || self.release()) })
    }
    /// Waits for a notify (lock held; released while waiting); false on timeout.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call(&ConditionCall::Wait { thread: tid(), timeout })
    }
    /// Waits until `pred()` holds, re-checking after each notify; false on timeout.
    /// A timeout too large to add to the clock waits without limit.
    pub fn wait_for(&self, mut pred: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let end = Deadline::within(timeout);
        while !pred() {
            let left = end.remaining();
            if left == Some(Duration::ZERO) {
                return Ok(pred());
            }
            self.wait(left)?;
        }
        Ok(true)
    }
    /// Wakes up to `n` waiters.
    pub fn notify(&self, n: u64) -> Result<()> {
        self.h.0.call_unit(&ConditionCall::Notify { thread: tid(), n })
    }
    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<()> {
        self.h.0.call_unit(&ConditionCall::NotifyAll { thread: tid() })
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
        self.h.0.call_unit(&EventCall::Set)
    }
    /// Clears the flag.
    pub fn clear(&self) -> Result<()> {
        self.h.0.call_unit(&EventCall::Clear)
    }
    /// The flag.
    pub fn is_set(&self) -> Result<bool> {
        self.h.0.call(&EventCall::IsSet)
    }
    /// Waits for the flag; returns it (false on timeout).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.h.0.call(&EventCall::Wait { timeout })
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
        self.h.0.call(&BarrierCall::Wait { timeout: None })
    }
    /// Like `wait`; a timeout breaks the barrier (`BrokenBarrier`).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u64> {
        self.h.0.call(&BarrierCall::Wait { timeout: Some(timeout) })
    }
    /// Breaks the barrier: current and future waiters get `BrokenBarrier`.
    pub fn abort(&self) -> Result<()> {
        self.h.0.call_unit(&BarrierCall::Abort)
    }
    /// Back to the initial state; current waiters get `BrokenBarrier`.
    pub fn reset(&self) -> Result<()> {
        self.h.0.call_unit(&BarrierCall::Reset)
    }
    /// Waiters currently waiting.
    pub fn n_waiting(&self) -> Result<u64> {
        self.h.0.call(&BarrierCall::NWaiting)
    }
    /// True if broken.
    pub fn broken(&self) -> Result<bool> {
        self.h.0.call(&BarrierCall::Broken)
    }
    /// The number of parties.
    pub fn parties(&self) -> Result<u64> {
        self.h.0.call(&BarrierCall::Parties)
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
        self.h.0.call(req)
    }
    /// The reference this proxy holds.
    pub fn object(&self) -> &ObjectRef {
        &self.h
    }
}
