//! The built-in objects of a `SyncManager`, as the server holds them: values are
//! postcard bytes, so the server is agnostic of the clients' Rust types.
//!
//! Each type has a method enum (`ListCall`, `QueueCall`, ...) that the typed proxies in
//! `crate::proxy` encode, and that the object decodes in `Object::call`.

pub(crate) mod collections;
pub(crate) mod iterator;
pub(crate) mod queue;
pub(crate) mod sync;
