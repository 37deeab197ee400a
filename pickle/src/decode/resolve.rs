//! From the machine's graph to a tree of values, within the memory budget.

use std::mem::size_of;

use super::memo::Memo;
use super::refuse::bad_reduce;
use super::{Node, Slot, MAX_DEPTH};
use crate::error::{PickleError, Result};
use crate::managed::MANAGERS;
use crate::value::Value;
use crate::value::{Proxy, Token};

/// Turns the finished graph into a tree. A memo entry used once is moved into place; one
/// used more often is resolved once and then copied, each copy charged to the memory
/// budget before it is made.
pub(super) struct Resolver {
    pub(super) memo: Memo<Slot>,
    /// How many references to each memo entry were made (an over-count only costs a copy).
    pub(super) uses: Memo<u32>,
    /// Shared memo entries already resolved, with their cost in bytes.
    pub(super) cache: Memo<(Value, usize)>,
    /// Memo entries being resolved (a reference to one of them is a cycle).
    pub(super) active: Vec<u32>,
    pub(super) budget: usize,
    pub(super) total_budget: usize,
}

impl Resolver {
    fn charge(&mut self, bytes: usize) -> Result<()> {
        self.budget = self.budget.checked_sub(bytes).ok_or(PickleError::MemoryBudget { budget: self.total_budget })?;
        Ok(())
    }

    pub(super) fn resolve(&mut self, node: Node, depth: usize) -> Result<Value> {
        if depth >= MAX_DEPTH {
            return Err(PickleError::TooDeep { max: MAX_DEPTH });
        }
        let value = match node {
            Node::Leaf(v) => v,
            Node::List(items) => Value::List(self.resolve_all(items, depth)?),
            Node::Tuple(items) => Value::Tuple(self.resolve_all(items, depth)?),
            Node::Set(items) => Value::Set(self.resolve_all(items, depth)?.into_iter().collect()),
            Node::FrozenSet(items) => Value::FrozenSet(self.resolve_all(items, depth)?.into_iter().collect()),
            Node::Dict(dict) => {
                let super::DictNode { built: mut dict, pending } = *dict;
                dict.reserve(pending.len());
                for (k, v) in pending {
                    let k = self.resolve(k, depth + 1)?;
                    let v = self.resolve(v, depth + 1)?;
                    dict.insert(k, v);
                }
                Value::Dict(dict)
            }
            Node::Exception { module, name, args } => Value::Exception {
                module: module.to_owned(),
                name: name.to_owned(),
                args: self.resolve_all(args, depth)?,
            },
            Node::Token(state) => Value::Token(Box::new(self.token(state, depth)?)),
            Node::Proxy { proxytype, args } => {
                let [token, serializer, kwds]: [Node; 3] =
                    args.try_into().map_err(|_| bad_reduce(MANAGERS, "RebuildProxy", "not 4 arguments"))?;
                let token = self.resolve(token, depth + 1)?;
                let serializer = self.resolve(serializer, depth + 1)?;
                let kwds = self.resolve(kwds, depth + 1)?;
                match (token, serializer, kwds) {
                    (Value::Token(token), Value::Str(serializer), Value::Dict(kwds)) => Value::Proxy(Box::new(Proxy {
                        proxytype: proxytype.to_owned(),
                        token: *token,
                        serializer,
                        kwds,
                    })),
                    (t, s, k) => {
                        let args = format!("arguments ({}, {}, {})", t.type_name(), s.type_name(), k.type_name());
                        return Err(bad_reduce(MANAGERS, "RebuildProxy", &args));
                    }
                }
            }
            Node::Ref(id) => return self.resolve_ref(id, depth),
            Node::Global(g) => {
                let (module, name) = g.name();
                return Err(bad_reduce(module, name, "nothing: a class is not a value"));
            }
        };
        Ok(value)
    }

    /// A token from the state `BUILD` gave it: `(typeid, address, id)`.
    fn token(&mut self, state: Option<Box<Node>>, depth: usize) -> Result<Token> {
        let bad = |what: &str| bad_reduce(MANAGERS, "Token", what);
        let state = self.resolve(*state.ok_or_else(|| bad("no state (a Token without BUILD)"))?, depth + 1)?;
        let Value::Tuple(fields) = state else { return Err(bad(&format!("state {}", state.type_name()))) };
        let mut fields = fields.into_iter();
        match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(Value::Str(typeid)), Some(address), Some(Value::Str(id)), None) => Ok(Token { typeid, address, id }),
            _ => Err(bad("a state that is not (typeid, address, id)")),
        }
    }

    fn resolve_all(&mut self, items: Vec<Node>, depth: usize) -> Result<Vec<Value>> {
        // A plain loop: iterator adapters would add stack frames per level of nesting.
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.resolve(item, depth + 1)?);
        }
        Ok(out)
    }

    fn resolve_ref(&mut self, id: u32, depth: usize) -> Result<Value> {
        if let Some(&(_, cost)) = self.cache.get(id) {
            self.charge(cost)?;
            return Ok(self.cache.get(id).expect("found above").0.clone());
        }
        let Some(slot) = self.memo.remove(id) else {
            return Err(if self.active.contains(&id) {
                PickleError::Recursive { memo: id }
            } else {
                PickleError::Malformed { offset: 0, reason: format!("memo entry {id} used after it was moved") }
            });
        };
        self.active.push(id);
        let value = self.resolve(slot.node, depth);
        self.active.pop();
        let value = value?;
        if self.uses.get(id).copied().unwrap_or(0) > 1 {
            // The cached original is charged too: it lives as long as the decoder.
            let cost = cost_deep(&value);
            self.charge(cost)?;
            self.cache.insert(id, (value.clone(), cost));
        }
        Ok(value)
    }
}

/// The bytes a value takes (bounded recursion: values nest at most `MAX_DEPTH` deep).
fn cost_deep(value: &Value) -> usize {
    size_of::<Value>()
        + match value {
            Value::Str(s) => s.len(),
            Value::Bytes(b) | Value::ByteArray(b) | Value::Array { data: b, .. } => b.len(),
            Value::BigInt(b) => (b.bits() / 8) as usize,
            Value::List(items) | Value::Tuple(items) => items.iter().map(cost_deep).sum(),
            Value::Exception { module, name, args } => {
                module.len() + name.len() + args.iter().map(cost_deep).sum::<usize>()
            }
            Value::Set(s) | Value::FrozenSet(s) => s.iter().map(cost_deep).sum::<usize>() + 8 * s.len(),
            Value::Dict(d) => d.iter().map(|(k, v)| cost_deep(k) + cost_deep(v) + 8).sum(),
            Value::Token(t) => t.typeid.len() + t.id.len() + cost_deep(&t.address),
            Value::Proxy(p) => {
                p.proxytype.len()
                    + p.serializer.len()
                    + p.token.typeid.len()
                    + p.token.id.len()
                    + cost_deep(&p.token.address)
                    + p.kwds.iter().map(|(k, v)| cost_deep(k) + cost_deep(v) + 8).sum::<usize>()
            }
            Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_) => 0,
        }
}
