//! Manager references as data: `multiprocessing.managers.Token` and the proxies CPython
//! pickles as `RebuildProxy(proxytype, token, serializer, kwds)`.
//!
//! A proxy passed to a manager (`manager.Condition(lock)`, `d['k'] = other_proxy`) or
//! returned by one (`('#PROXY', (exposed, token))`) crosses the wire as one of these. In
//! CPython, unpickling either calls code (`Token.__setstate__`, `RebuildProxy`, which opens
//! a connection). Here both are read into plain data, [`Token`] and [`Proxy`], and written
//! back with the same globals, so a Python reader rebuilds the very proxy it sent. Nothing
//! is called on the way in; on the way out only the globals listed in
//! [`ALLOWED_MANAGER_GLOBALS`](crate::ALLOWED_MANAGER_GLOBALS) are written.
//!
//! How CPython writes them (protocol 2 and later):
//! - a `Token` is `Token.__new__(Token)` (`NEWOBJ` with no arguments) and then
//!   `BUILD` with the state tuple `(typeid, address, id)`;
//! - a proxy is `RebuildProxy(proxytype, token, serializer, kwds)` (`REDUCE`), where
//!   `proxytype` is the proxy class (`AcquirerProxy`, `DictProxy` …) or the function
//!   `AutoProxy`, and `kwds` may name `exposed`.
//!
//! Source: CPython's `Lib/multiprocessing/managers.py` (`Token`, `BaseProxy.__reduce__`,
//! `RebuildProxy`).

use crate::value::{Dict, Value};

/// `multiprocessing.managers.Token`: which object of which manager server a proxy names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    /// The typeid the object was created as (`"Lock"`, `"dict"`, `"Iterator"` …).
    pub typeid: String,
    /// The server's address as Python holds it: `(host, port)` for TCP, a path for a
    /// Unix socket.
    pub address: Value,
    /// The object's ident on that server (CPython's is `id(obj)` in hex).
    pub id: String,
}

/// A manager proxy as CPython pickles one: `RebuildProxy(proxytype, token, serializer, kwds)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy class's name in `multiprocessing.managers` (`"AcquirerProxy"`,
    /// `"DictProxy"`, `"AutoProxy"` …): one of [`PROXY_TYPES`].
    pub proxytype: String,
    /// The object it names.
    pub token: Token,
    /// The serializer the proxy talks with (`"pickle"`).
    pub serializer: String,
    /// Keyword arguments of the rebuilt proxy (`exposed` for an `AutoProxy`).
    pub kwds: Dict,
}

/// The proxy types of `multiprocessing.managers` a pickled proxy may name: CPython's
/// built-in proxy classes and `AutoProxy`. A proxy class defined anywhere else is refused
/// like any other global.
pub const PROXY_TYPES: &[&str] = &[
    "AcquirerProxy",
    "ArrayProxy",
    "AutoProxy",
    "BarrierProxy",
    "BaseListProxy",
    "BaseProxy",
    "ConditionProxy",
    "DictProxy",
    "EventProxy",
    "IteratorProxy",
    "ListProxy",
    "NamespaceProxy",
    "PoolProxy",
    "ValueProxy",
];

/// The module every manager global lives in.
pub(crate) const MANAGERS: &str = "multiprocessing.managers";

impl Token {
    /// A token from its three fields.
    pub fn new(typeid: impl Into<String>, address: Value, id: impl Into<String>) -> Token {
        Token { typeid: typeid.into(), address, id: id.into() }
    }
}
