//! How a proxy crosses into another process other than by fork: serde (a pool task's
//! argument, a queue item, a message on a `Connection`) and shm's [`Share`] (the
//! arguments of a spawned child, as `mproc_process::Shared<ListProxy<T>>`).
//!
//! Like CPython's `RebuildProxy`, a proxy is encoded as the server's address, the
//! object id and the typeid; the receiver connects (reusing this process's target,
//! and so its pooled connections, for that address) and sends `IncRef`, so the server
//! keeps the object while the receiver holds it; dropping the decoded proxy sends
//! `DecRef`, and a receiver that dies has its references released with its
//! connections.
//!
//! # The authkey
//! CPython never pickles an authkey except while spawning a child: the receiver uses
//! its own `current_process().authkey`, inherited from its parent. mproc does the same:
//! - the **serde** encoding carries no authkey: the receiver takes the key its process
//!   already knows for that address (it started or connected to the manager, was
//!   forked after its parent did — the table of known servers is inherited memory —
//!   or imported a spawn token for it), else the process tree's key
//!   (`mproc_process::authkey()`, CPython's `current_process().authkey`), which is
//!   every manager's default. A manager with another key refuses the handshake:
//!   decoding fails with [`ManagerError::Authentication`] naming the address. So an
//!   encoded proxy is safe to log or to send where the manager must not be reachable.
//! - the **`Share`** token (spawn only: it travels in the spawn request, which only the
//!   child inherits) carries the authkey, as CPython's spawn preparation data carries
//!   the parent's authkey, and the import adds it to the child's table, so the child
//!   can then also decode serde-encoded proxies of that manager.
//!
//! The sender must keep its proxy alive until the receiver has decoded its copy (as
//! in CPython): if the object's last reference goes first, decoding fails with
//! [`ManagerError::NoSuchObject`]. A spawned child's import runs before
//! `Process::start` returns, so a parent holding the proxy across `start` is safe.

use mproc_shm::{Exports, Share, ShmError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::client::{target_for, Endpoint, Handle};
#[cfg(test)]
use crate::error::ManagerError;
use crate::error::Result;
use crate::net::WireAddress;
use crate::proxy::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, JoinableQueueProxy, ListProxy, LockProxy,
    NamespaceProxy, ObjectRef, Proxy, ProxyType, QueueProxy, SemaphoreProxy, ValueProxy,
};
use crate::wire::ObjectId;
use crate::Served;

/// The serde form of a proxy: where the object lives and what it is. No authkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProxyWire {
    address: WireAddress,
    id: ObjectId,
    typeid: String,
}

/// The spawn token of a proxy (its [`Share::Token`]): the server's address, the object
/// id, the typeid and the authkey.
///
/// The serde form of a proxy is the same without the authkey. As in CPython, which
/// pickles an authkey only while spawning a child, the receiver of a serde-encoded
/// proxy uses the authkey its own process knows for the address: it started or
/// connected to the manager (`Manager::start`, `Manager::connect`), was forked after
/// its parent did (the table of known servers is inherited memory), or imported a
/// spawn token for it; else the process tree's authkey (every manager's default). A
/// manager with another key refuses: decoding fails (`Authentication` naming the address,
/// which postcard reports as a custom serde error). An encoded proxy is therefore safe to log or to
/// send where the manager must not be reachable. The spawn token travels only in the
/// spawn request, which only the child inherits, and teaches the child the authkey.
///
/// The sender must keep its proxy alive until the receiver has decoded its copy: if
/// the object's last reference goes first, decoding fails (`NoSuchObject`). A spawned
/// child imports its arguments before `Process::start` returns.
#[derive(Clone, Serialize, Deserialize)]
pub struct ProxyToken {
    wire: ProxyWire,
    authkey: Vec<u8>,
}

impl std::fmt::Debug for ProxyToken {
    /// Never prints the authkey.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyToken").field("wire", &self.wire).finish_non_exhaustive()
    }
}

impl ObjectRef {
    fn wire(&self) -> Result<(ProxyWire, &[u8])> {
        let h = &self.0 .0;
        match &h.target.endpoint {
            Endpoint::Socket { address, authkey } => {
                Ok((ProxyWire { address: address.into(), id: h.id, typeid: h.typeid.clone() }, authkey))
            }
            #[cfg(test)]
            Endpoint::Memory(_) => {
                Err(ManagerError::Encode { reason: "a proxy of an in-process test server has no address".into() })
            }
        }
    }

    fn rebuild(wire: ProxyWire, authkey: Option<&[u8]>) -> Result<ObjectRef> {
        let address = wire.address.into();
        let target = target_for(&address, authkey)?;
        Handle::import(target, wire.id, wire.typeid).map(ObjectRef)
    }
}

impl Serialize for ObjectRef {
    /// The server's address, the object id and the typeid (no authkey).
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error;
        self.wire().map_err(S::Error::custom)?.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    /// Connects to the server with the authkey this process knows for its address and
    /// takes a reference (`IncRef`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let wire = ProxyWire::deserialize(d)?;
        ObjectRef::rebuild(wire, None).map_err(D::Error::custom)
    }
}

impl Share for ObjectRef {
    type Token = ProxyToken;

    /// No fd to inherit: the child opens its own connection.
    fn export(&self, _exports: &mut Exports) -> mproc_shm::Result<ProxyToken> {
        let (wire, authkey) =
            self.wire().map_err(|e| ShmError::BadToken { what: "manager proxy", detail: e.to_string() })?;
        Ok(ProxyToken { wire, authkey: authkey.to_vec() })
    }

    fn import(token: ProxyToken) -> mproc_shm::Result<Self> {
        let what = format!("object {} ({:?}) at {:?}", token.wire.id, token.wire.typeid, token.wire.address);
        ObjectRef::rebuild(token.wire, Some(&token.authkey))
            .map_err(|e| ShmError::BadToken { what: "manager proxy", detail: format!("{what}: {e}") })
    }
}

/// serde and `Share` for a proxy type, through its [`ObjectRef`].
macro_rules! share_via_object {
    ($name:ident $(<$($t:ident),+>)? $(where $($b:tt)+)?) => {
        impl$(<$($t),+>)? Serialize for $name$(<$($t),+>)? $(where $($b)+)? {
            /// The server's address, the object id and the typeid (no authkey).
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                self.object().serialize(s)
            }
        }
        impl<'de, $($($t),+)?> Deserialize<'de> for $name$(<$($t),+>)? $(where $($b)+)? {
            /// Connects with the authkey this process knows for the address and takes
            /// a reference.
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                ObjectRef::deserialize(d).map(<Self as ProxyType>::from_handle)
            }
        }
        impl$(<$($t),+>)? Share for $name$(<$($t),+>)? $(where $($b)+)? {
            type Token = ProxyToken;
            fn export(&self, exports: &mut Exports) -> mproc_shm::Result<ProxyToken> {
                self.object().export(exports)
            }
            fn import(token: ProxyToken) -> mproc_shm::Result<Self> {
                ObjectRef::import(token).map(<Self as ProxyType>::from_handle)
            }
        }
    };
}

share_via_object!(ListProxy<T>);
share_via_object!(ArrayProxy<T>);
share_via_object!(DictProxy<K, V>);
share_via_object!(NamespaceProxy);
share_via_object!(ValueProxy<T>);
share_via_object!(QueueProxy<T>);
share_via_object!(JoinableQueueProxy<T>);
share_via_object!(LockProxy);
share_via_object!(SemaphoreProxy);
share_via_object!(ConditionProxy);
share_via_object!(EventProxy);
share_via_object!(BarrierProxy);
share_via_object!(Proxy<T> where T: Served);
