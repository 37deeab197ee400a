//! The proxies' async calls (feature `tokio`): the calls that may block on
//! the server (a queue's `get`/`put`/`join`, a lock's or semaphore's
//! `acquire`, an event's or barrier's `wait`), their partners (`release`,
//! `set`), a value's `get`/`set`, a user type's `call`, and
//! [`ObjectRef::call_async`] for any other method. Each is one request and
//! one reply over the async client of `client.rs` (see the module doc there
//! for the design and the cost).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    from_bytes, opt_secs, to_bytes, to_value, BarrierProxy, EventProxy, JoinableQueueProxy, LockProxy, ObjectRef,
    Proxy, QueueProxy, SemaphoreProxy, Served, ValueProxy, SERVED_METHOD,
};
use crate::error::{ManagerError, Result};
use crate::value::{Dict, Value};

impl ObjectRef {
    /// Calls `method` on the object with positional `args`, awaited: any
    /// method of any proxy's type, by its Python name (`"append"`,
    /// `"__getitem__"`, …), arguments and result as Python values
    /// (`mproc_pickle::Value`).
    ///
    /// # Cancel safety
    /// Dropped before the request is sent, nothing happens; after, the call
    /// may still run on the server and its result is lost (see the proxy
    /// methods for the blocking ones).
    pub async fn call_async(&self, method: &str, args: Vec<Value>) -> Result<Value> {
        self.0.call_value_async(method, args, Dict::new()).await
    }
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Takes an item, awaiting one as long as it takes: the async form of
    /// [`get`](QueueProxy::get).
    ///
    /// # Cancel safety
    /// Dropped before the server took an item, it takes none: the server runs
    /// no request of a client that hung up, and a `get` waiting there gives up
    /// when it does. Dropped in the moment between the server taking an item
    /// (one that was there when the request ran) and the reply arriving, that
    /// item is lost.
    pub async fn get_async(&self) -> Result<T> {
        self.h.0.call_async("get", vec![Value::Bool(true), Value::None]).await
    }

    /// Puts `item`, awaiting room if the queue is bounded and full: the async
    /// form of [`put`](QueueProxy::put).
    ///
    /// # Cancel safety
    /// Dropped while the server waits for room, the item is not put; dropped
    /// once the server has put it, it stays put. The item itself travels in
    /// the request and is dropped with the future either way.
    pub async fn put_async(&self, item: T) -> Result<()> {
        self.h.0.call_unit_async("put", vec![to_value(&item)?, Value::Bool(true), opt_secs(None)]).await
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueueProxy<T> {
    /// Awaits the moment every item put has been marked done: the async form
    /// of [`join`](JoinableQueueProxy::join).
    ///
    /// # Cancel safety
    /// Cancel safe: it changes nothing.
    pub async fn join_async(&self) -> Result<()> {
        self.q.h.0.call_unit_async("join", vec![]).await
    }
}

impl LockProxy {
    /// Acquires, awaiting the lock as long as it takes: the async form of
    /// [`acquire`](LockProxy::acquire). Release with
    /// [`release_async`](LockProxy::release_async). The acquisition belongs to
    /// this process and the thread the call ran on: on an `RLock`, release it
    /// from a task that runs there, or use a `Lock` (any thread may release it).
    ///
    /// # Cancel safety
    /// Dropped while the server still waits for the lock, it is not taken;
    /// dropped in the moment after the server took it, it stays held until
    /// released (or until this process's last connection closes).
    pub async fn acquire_async(&self) -> Result<()> {
        let _: bool = self.h.0.call_async("acquire", vec![Value::Bool(true), Value::Int(-1)]).await?;
        Ok(())
    }

    /// Releases, awaited: the async form of [`release`](LockProxy::release).
    ///
    /// # Cancel safety
    /// Dropped after the request is sent, the lock is released all the same.
    pub async fn release_async(&self) -> Result<()> {
        self.h.0.call_unit_async("release", vec![]).await
    }
}

impl SemaphoreProxy {
    /// Takes one, awaiting it as long as it takes: the async form of
    /// [`acquire`](SemaphoreProxy::acquire).
    ///
    /// # Cancel safety
    /// Dropped while the server still waits, nothing is taken; dropped in the
    /// moment after the server took one, that unit stays taken.
    pub async fn acquire_async(&self) -> Result<()> {
        let _: bool = self.h.0.call_async("acquire", vec![Value::Bool(true), opt_secs(None)]).await?;
        Ok(())
    }

    /// Releases one, awaited: the async form of [`release`](SemaphoreProxy::release).
    pub async fn release_async(&self) -> Result<()> {
        self.h.0.call_unit_async("release", vec![]).await
    }
}

impl EventProxy {
    /// Awaits the flag: the async form of [`wait`](EventProxy::wait).
    ///
    /// # Cancel safety
    /// Cancel safe: it changes nothing.
    pub async fn wait_async(&self) -> Result<()> {
        let _: bool = self.h.0.call_async("wait", vec![Value::None]).await?;
        Ok(())
    }

    /// Sets the flag, awaited: the async form of [`set`](EventProxy::set).
    pub async fn set_async(&self) -> Result<()> {
        self.h.0.call_unit_async("set", vec![]).await
    }
}

impl BarrierProxy {
    /// Awaits all parties: the async form of [`wait`](BarrierProxy::wait).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped while waiting, the server's waiter ends as a
    /// party that left, which breaks the barrier for the others, as a waiter
    /// that dies does.
    pub async fn wait_async(&self) -> Result<u64> {
        self.h.0.call_async("wait", vec![]).await
    }
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The value, awaited: the async form of [`get`](ValueProxy::get).
    pub async fn get_async(&self) -> Result<T> {
        self.h.0.call_async("get", vec![]).await
    }

    /// Replaces the value, awaited: the async form of [`set`](ValueProxy::set).
    pub async fn set_async(&self, value: T) -> Result<()> {
        self.h.0.call_unit_async("set", vec![to_value(&value)?]).await
    }
}

impl<T: Served> Proxy<T> {
    /// Calls the object's `dispatch` on the server, awaited: the async form
    /// of [`call`](Proxy::call).
    ///
    /// # Cancel safety
    /// As [`ObjectRef::call_async`]: once sent, the call runs on the server.
    pub async fn call_async(&self, req: &T::Request) -> Result<T::Response> {
        match self.h.0.call_value_async(SERVED_METHOD, vec![Value::Bytes(to_bytes(req)?)], Dict::new()).await? {
            Value::Bytes(b) => from_bytes(&b),
            other => Err(ManagerError::Decode { reason: format!("a served object replied {other}") }),
        }
    }
}
