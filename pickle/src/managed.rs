//! Manager references as data: `multiprocessing.managers.Token` and the proxies CPython
//! pickles as `RebuildProxy(proxytype, token, serializer, kwds)`.
//!
//! A proxy passed to a manager (`manager.Condition(lock)`, `d['k'] = other_proxy`) or
//! returned by one (`('#PROXY', (exposed, token))`) crosses the wire as one of these. In
//! CPython, unpickling either calls code (`Token.__setstate__`, `RebuildProxy`, which opens
//! a connection). Here both are read into plain data, [`Token`](crate::Token) and
//! [`Proxy`](crate::Proxy) (defined beside [`Value`](crate::Value), which holds them), and written
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
//! As CPython's `multiprocessing.managers` defines them (`Token`, `BaseProxy.__reduce__`,
//! `RebuildProxy`).

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
