//! The machine's side of manager references: `Token.__new__(Token)` + `BUILD`, and
//! `RebuildProxy(proxytype, token, serializer, kwds)`, kept as nodes that
//! [`Resolver`](super::Resolver) turns into [`Token`](crate::Token) and
//! [`Proxy`](crate::Proxy). Nothing is called.

use super::refuse::{bad_reduce, describe, malformed};
use super::{depth_of, nodes, Machine, Node, Slot};
use crate::allow::Global;
use crate::error::Result;

impl Machine<'_> {
    /// `NEWOBJ`/`REDUCE` of a manager global: `Token` with no arguments, or
    /// `RebuildProxy` whose first argument is a proxy type of the allow-list.
    pub(super) fn call_managed(&mut self, global: Global, mut args: Vec<Slot>) -> Result<Slot> {
        let (module, name) = global.name();
        match global {
            Global::Token if args.is_empty() => Ok(Slot { node: Node::Token(None), depth: 1 }),
            Global::RebuildProxy if args.len() == 4 => {
                let Some(Node::Global(Global::ProxyType(proxytype))) = self.target(&args[0].node) else {
                    return Err(bad_reduce(module, name, &describe(&args)));
                };
                let proxytype = *proxytype;
                args.remove(0);
                let depth = depth_of(&args)?;
                Ok(Slot { node: Node::Proxy { proxytype, args: nodes(args) }, depth })
            }
            _ => Err(bad_reduce(module, name, &describe(&args))),
        }
    }

    /// `BUILD`: gives a `Token` its state; an exception's state (its `__dict__`) is
    /// dropped, since a `Value::Exception` keeps only `args`. Nothing else is built.
    pub(super) fn build(&mut self, state: Slot, at: usize) -> Result<()> {
        let top = self.stack.last_mut().ok_or_else(|| malformed(at, "BUILD on an empty stack"))?;
        let slot = match top.node {
            Node::Ref(id) => {
                let id = self.final_id(id).ok_or_else(|| malformed(at, "dangling memo reference"))?;
                self.memo.get_mut(id).expect("final_id returns a present entry")
            }
            _ => top,
        };
        match &mut slot.node {
            Node::Exception { .. } => Ok(()),
            Node::Token(given @ None) => {
                slot.depth = depth_of([&state])?;
                *given = Some(Box::new(state.node));
                Ok(())
            }
            _ => Err(malformed(at, "BUILD on a value that is not an exception or a fresh Token")),
        }
    }
}
