//! `Iterator`: what a Python client's proxy iterates when a method CPython marks in
//! `method_to_typeid` (a dict's `__iter__`) answers with a proxy instead of a value.
//!
//! The server takes the items when the iterator is made (a dict's keys at `iter(d)`), so
//! changing the dict while iterating never fails here, where CPython's iterator raises
//! `RuntimeError: dictionary changed size during iteration`.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::error::{ManagerError, Result};
use crate::object::{lock, no_method, CallCtx, Object};
use crate::value::{Args, Value};

/// The typeid CPython's `SyncManager` registers for iterators.
pub(crate) const ITERATOR: &str = "Iterator";

/// The methods of CPython's `IteratorProxy`.
const ITERATOR_METHODS: &[&str] = &["__next__", "send", "throw", "close"];

/// An iterator over items taken when it was made.
pub(crate) struct IteratorObject {
    items: Mutex<VecDeque<Value>>,
}

impl IteratorObject {
    pub fn new(items: Vec<Value>) -> Self {
        IteratorObject { items: Mutex::new(items.into()) }
    }
}

/// Python's `StopIteration`, which ends a client's `for` loop.
fn stop_iteration() -> ManagerError {
    ManagerError::PythonException { module: "builtins".into(), name: "StopIteration".into(), args: Vec::new() }
}

impl Object for IteratorObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        ITERATOR_METHODS
    }

    fn repr(&self) -> String {
        "<iterator object>".into()
    }

    /// `__next__`; the generator methods (`send`, `throw`, `close`) CPython's proxy
    /// exposes are `AttributeError` here, as on the dict key iterator CPython serves.
    fn call(&self, _ctx: &CallCtx<'_>, method: &str, _args: Args) -> Result<Value> {
        let mut items = lock(&self.items);
        match method {
            "__next__" => items.pop_front().ok_or_else(stop_iteration),
            _ => Err(no_method(ITERATOR, method)),
        }
    }
}
