//! The machine's calls: what an allow-listed global builds from its arguments.

use super::refuse::{bad_reduce, describe, malformed};
use super::text::{is_latin1, latin1};
use super::{depth_of, nodes, Machine, Node, Slot};
use crate::allow::Global;
use crate::error::Result;
use crate::value::Value;

impl Machine<'_> {
    pub(super) fn global_of(&self, slot: &Slot, at: usize) -> Result<Global> {
        match self.target(&slot.node) {
            Some(Node::Global(g)) => Ok(g.clone()),
            _ => Err(malformed(at, "call of a value that is not a global")),
        }
    }

    pub(super) fn tuple_items(&mut self, args: Slot, at: usize) -> Result<Vec<Slot>> {
        match args.node {
            Node::Tuple(items) => Ok(items.into_iter().map(|node| Slot { node, depth: args.depth - 1 }).collect()),
            Node::Ref(_) => match self.target(&args.node) {
                Some(Node::Tuple(items)) => {
                    let copies = items.iter().map(|item| self.copy_node(item, at)).collect::<Result<Vec<_>>>()?;
                    self.count_refs(&copies);
                    Ok(copies)
                }
                _ => Err(malformed(at, "call arguments are not a tuple")),
            },
            _ => Err(malformed(at, "call arguments are not a tuple")),
        }
    }

    /// A shallow copy: leaves are cloned, containers become references when memoized, and
    /// an unmemoized container inside a memoized tuple is refused (CPython memoizes every
    /// container it writes).
    fn copy_node(&self, node: &Node, at: usize) -> Result<Slot> {
        match node {
            Node::Leaf(v) => Ok(Slot::leaf(v.clone())),
            Node::Ref(id) => Ok(Slot { node: Node::Ref(*id), depth: 1 }),
            Node::Tuple(items) if items.is_empty() => Ok(Slot { node: Node::Tuple(Vec::new()), depth: 1 }),
            _ => Err(malformed(at, "shared call arguments hold an unmemoized container")),
        }
    }

    /// Calls an allow-listed global with `args`.
    pub(super) fn call(&mut self, global: Global, args: Vec<Slot>, at: usize) -> Result<Slot> {
        let (module, name) = global.name();
        match global {
            Global::Exception(module, name) => {
                let depth = depth_of(&args)?;
                Ok(Slot { node: Node::Exception { module, name, args: nodes(args) }, depth })
            }
            Global::Set | Global::FrozenSet => {
                let members = match args.as_slice() {
                    [] => Vec::new(),
                    [iterable] => {
                        let members = self.members(&iterable.node, at)?;
                        self.count_refs(&members);
                        members
                    }
                    _ => return Err(bad_reduce(module, name, &describe(&args))),
                };
                let depth = depth_of(&members)?;
                let members = nodes(members);
                let node = if global == Global::Set { Node::Set(members) } else { Node::FrozenSet(members) };
                Ok(Slot { node, depth })
            }
            Global::ArrayReconstructor => {
                let array = match args.as_slice() {
                    [class, typecode, mformat, data] => match (
                        self.target(&class.node),
                        self.target(&typecode.node),
                        self.target(&mformat.node),
                        self.target(&data.node),
                    ) {
                        (
                            Some(Node::Global(Global::ArrayClass)),
                            Some(Node::Leaf(Value::Str(typecode))),
                            Some(Node::Leaf(Value::Int(mformat))),
                            Some(Node::Leaf(Value::Bytes(data))),
                        ) => Some(crate::array::reconstruct(typecode, *mformat, data)?),
                        _ => None,
                    },
                    _ => None,
                };
                array.map(Slot::leaf).ok_or_else(|| bad_reduce(module, name, &describe(&args)))
            }
            Global::ArrayClass => Err(bad_reduce(
                module,
                name,
                &format!("{} (an array pickled with protocol 2 or lower, which is not read here)", describe(&args)),
            )),
            Global::ByteArray | Global::Bytes | Global::CodecsEncode => {
                let bytes = match args.as_slice() {
                    [] if global != Global::CodecsEncode => Vec::new(),
                    [data] if global != Global::CodecsEncode => match self.target(&data.node) {
                        Some(Node::Leaf(Value::Bytes(b) | Value::ByteArray(b))) => b.clone(),
                        _ => return Err(bad_reduce(module, name, &describe(&args))),
                    },
                    [text, encoding] => match (self.target(&text.node), self.target(&encoding.node)) {
                        (Some(Node::Leaf(Value::Str(text))), Some(Node::Leaf(Value::Str(encoding))))
                            if is_latin1(encoding) =>
                        {
                            latin1(text).ok_or_else(|| bad_reduce(module, name, "a str beyond latin-1"))?
                        }
                        _ => return Err(bad_reduce(module, name, &describe(&args))),
                    },
                    _ => return Err(bad_reduce(module, name, &describe(&args))),
                };
                let value = if global == Global::ByteArray { Value::ByteArray(bytes) } else { Value::Bytes(bytes) };
                Ok(Slot::leaf(value))
            }
            Global::Token | Global::RebuildProxy | Global::ProxyType(_) => self.call_managed(global, args),
        }
    }

    /// The members of the list, tuple or set that `set(…)`/`frozenset(…)` is called with.
    fn members(&self, node: &Node, at: usize) -> Result<Vec<Slot>> {
        match self.target(node) {
            Some(Node::List(items) | Node::Tuple(items) | Node::Set(items) | Node::FrozenSet(items)) => {
                items.iter().map(|item| self.copy_node(item, at)).collect()
            }
            _ => {
                let (module, name) = ("builtins", "set");
                Err(bad_reduce(module, name, "an argument that is not a list"))
            }
        }
    }
}
