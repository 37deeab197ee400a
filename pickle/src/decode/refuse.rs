//! How the machine names what it refuses: a global off the allow-list, a malformed
//! opcode, a reduce it will not perform.

use super::{Node, Slot};
use crate::allow::{self, Global};
use crate::error::{PickleError, Result};

pub(super) fn lookup(module: &[u8], name: &[u8]) -> Result<Global> {
    let module = String::from_utf8_lossy(module);
    let name = String::from_utf8_lossy(name);
    allow::resolve(&module, &name)
        .ok_or_else(|| PickleError::ForbiddenGlobal { module: module.into_owned(), name: name.into_owned() })
}

pub(super) fn malformed(offset: usize, reason: &str) -> PickleError {
    PickleError::Malformed { offset, reason: reason.to_owned() }
}

pub(super) fn bad_reduce(module: &str, name: &str, args: &str) -> PickleError {
    PickleError::BadReduce { module: module.to_owned(), name: name.to_owned(), args: args.to_owned() }
}

pub(super) fn describe(args: &[Slot]) -> String {
    let kinds: Vec<&str> = args
        .iter()
        .map(|s| match &s.node {
            Node::Leaf(v) => v.type_name(),
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Dict(_) => "dict",
            Node::Set(_) => "set",
            Node::FrozenSet(_) => "frozenset",
            Node::Exception { name, .. } => name,
            Node::Ref(_) => "a shared value",
            Node::Global(_) => "a class",
            Node::Token(_) => "Token",
            Node::Proxy { .. } => "a proxy",
        })
        .collect();
    format!("arguments ({})", kinds.join(", "))
}
