//! `list`, `Array`, `dict`, `Namespace` and `Value`: plain containers behind a mutex.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{ManagerError, Result};
use crate::object::{decode_call, lock, CallCtx, Object};
use crate::wire::{encode_seq, to_bytes};

/// Resolves a Python-style index (negative counts from the end).
fn resolve(index: i64, len: usize) -> Result<usize> {
    let i = if index < 0 { index + len as i64 } else { index };
    if i < 0 || i >= len as i64 {
        return Err(ManagerError::IndexOutOfRange { index, len: len as u64 });
    }
    Ok(i as usize)
}

/// The methods of a `list` (and, restricted to get/set/len/snapshot, of an `Array`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ListCall {
    Append(Vec<u8>),
    Extend(Vec<Vec<u8>>),
    Get(i64),
    Set(i64, Vec<u8>),
    Insert(i64, Vec<u8>),
    Pop(Option<i64>),
    Remove(Vec<u8>),
    Len,
    Index(Vec<u8>),
    Snapshot,
    Clear,
}

/// A `list` (growable) or an `Array` (fixed length). Items compare by their encoding.
pub(crate) struct ListObject {
    typeid: String,
    fixed: bool,
    items: Mutex<Vec<Vec<u8>>>,
}

impl ListObject {
    pub fn new(typeid: &str, fixed: bool, items: Vec<Vec<u8>>) -> Self {
        ListObject { typeid: typeid.to_string(), fixed, items: Mutex::new(items) }
    }
}

impl Object for ListObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn call(&self, _ctx: &CallCtx<'_>, call: &[u8]) -> Result<Vec<u8>> {
        let call: ListCall = decode_call(&self.typeid, call)?;
        let resizes = matches!(
            call,
            ListCall::Append(_)
                | ListCall::Extend(_)
                | ListCall::Insert(..)
                | ListCall::Pop(_)
                | ListCall::Remove(_)
                | ListCall::Clear
        );
        if self.fixed && resizes {
            return Err(ManagerError::UnknownMethod {
                typeid: self.typeid.clone(),
                method: "a fixed-length array cannot change its length".into(),
            });
        }
        let mut items = lock(&self.items);
        match call {
            ListCall::Append(item) => {
                items.push(item);
                Ok(Vec::new())
            }
            ListCall::Extend(more) => {
                items.extend(more);
                Ok(Vec::new())
            }
            ListCall::Get(i) => Ok(items[resolve(i, items.len())?].clone()),
            ListCall::Set(i, item) => {
                let i = resolve(i, items.len())?;
                items[i] = item;
                Ok(Vec::new())
            }
            ListCall::Insert(i, item) => {
                // Python clamps an insert position instead of raising.
                let len = items.len() as i64;
                let at = if i < 0 { (i + len).max(0) } else { i.min(len) };
                items.insert(at as usize, item);
                Ok(Vec::new())
            }
            ListCall::Pop(i) => {
                let i = resolve(i.unwrap_or(-1), items.len())?;
                Ok(items.remove(i))
            }
            ListCall::Remove(item) => {
                let at = items.iter().position(|x| *x == item).ok_or(ManagerError::ValueNotFound)?;
                items.remove(at);
                Ok(Vec::new())
            }
            ListCall::Len => to_bytes(&(items.len() as u64)),
            ListCall::Index(item) => {
                let at = items.iter().position(|x| *x == item).ok_or(ManagerError::ValueNotFound)?;
                to_bytes(&(at as u64))
            }
            ListCall::Snapshot => Ok(encode_seq(items.len(), items.iter().map(|v| v.as_slice()))),
            ListCall::Clear => {
                items.clear();
                Ok(Vec::new())
            }
        }
    }
}

/// The methods of a `dict`. Keys compare by their encoding.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum DictCall {
    /// → `Option<V>`
    Get(Vec<u8>),
    /// → `Option<V>` (the value replaced)
    Insert(Vec<u8>, Vec<u8>),
    /// → `V`, or `KeyMissing`
    Remove(Vec<u8>),
    /// → `bool`
    Contains(Vec<u8>),
    /// → `Vec<K>` in insertion order
    Keys,
    /// → `Vec<V>` in insertion order
    Values,
    /// → `Vec<(K, V)>` in insertion order
    Items,
    /// → `u64`
    Len,
    Clear,
}

#[derive(Default)]
struct DictState {
    /// key → (insertion sequence number, value)
    map: HashMap<Vec<u8>, (u64, Vec<u8>)>,
    next_seq: u64,
}

impl DictState {
    fn ordered(&self) -> Vec<(&Vec<u8>, &Vec<u8>)> {
        let mut all: Vec<_> = self.map.iter().map(|(k, (s, v))| (*s, k, v)).collect();
        all.sort_unstable_by_key(|e| e.0);
        all.into_iter().map(|(_, k, v)| (k, v)).collect()
    }
}

/// A `dict` that keeps insertion order, like Python's.
pub(crate) struct DictObject {
    typeid: String,
    state: Mutex<DictState>,
}

impl DictObject {
    pub fn new(typeid: &str) -> Self {
        DictObject { typeid: typeid.to_string(), state: Mutex::new(DictState::default()) }
    }
}

/// Renders an encoded key for an error message.
fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key.get(1..).unwrap_or_default()) {
        Ok(s) if !s.is_empty() && key[0] as usize == s.len() => format!("{s:?}"),
        _ => format!("(encoded) {key:02x?}"),
    }
}

impl Object for DictObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn call(&self, _ctx: &CallCtx<'_>, call: &[u8]) -> Result<Vec<u8>> {
        let call: DictCall = decode_call(&self.typeid, call)?;
        let mut st = lock(&self.state);
        match call {
            DictCall::Get(k) => Ok(option_bytes(st.map.get(&k).map(|e| e.1.as_slice()))),
            DictCall::Insert(k, v) => {
                let seq = st.next_seq;
                let old = match st.map.get_mut(&k) {
                    Some(e) => Some(std::mem::replace(&mut e.1, v)),
                    None => {
                        st.next_seq += 1;
                        st.map.insert(k, (seq, v));
                        None
                    }
                };
                Ok(option_bytes(old.as_deref()))
            }
            DictCall::Remove(k) => match st.map.remove(&k) {
                Some((_, v)) => Ok(v),
                None => Err(ManagerError::KeyMissing { key: show_key(&k) }),
            },
            DictCall::Contains(k) => to_bytes(&st.map.contains_key(&k)),
            DictCall::Keys => {
                let all = st.ordered();
                Ok(encode_seq(all.len(), all.iter().map(|e| e.0.as_slice())))
            }
            DictCall::Values => {
                let all = st.ordered();
                Ok(encode_seq(all.len(), all.iter().map(|e| e.1.as_slice())))
            }
            DictCall::Items => {
                let all = st.ordered();
                let pairs: Vec<Vec<u8>> = all.iter().map(|(k, v)| [k.as_slice(), v.as_slice()].concat()).collect();
                Ok(encode_seq(pairs.len(), pairs.iter().map(|p| p.as_slice())))
            }
            DictCall::Len => to_bytes(&(st.map.len() as u64)),
            DictCall::Clear => {
                st.map.clear();
                Ok(Vec::new())
            }
        }
    }
}

/// Encodes an `Option<T>` whose `Some` payload is already encoded.
fn option_bytes(v: Option<&[u8]>) -> Vec<u8> {
    match v {
        None => vec![0],
        Some(b) => {
            let mut out = Vec::with_capacity(b.len() + 1);
            out.push(1);
            out.extend_from_slice(b);
            out
        }
    }
}

/// The methods of a `Namespace`: fields by name.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum NamespaceCall {
    /// → `T`, or `KeyMissing` naming the field
    Get(String),
    Set(String, Vec<u8>),
    /// → `KeyMissing` if absent
    Del(String),
    /// → `Vec<String>`, sorted
    Names,
}

/// A `Namespace`: named fields of any (encoded) type.
pub(crate) struct NamespaceObject {
    typeid: String,
    fields: Mutex<HashMap<String, Vec<u8>>>,
}

impl NamespaceObject {
    pub fn new(typeid: &str) -> Self {
        NamespaceObject { typeid: typeid.to_string(), fields: Mutex::new(HashMap::new()) }
    }
}

impl Object for NamespaceObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn call(&self, _ctx: &CallCtx<'_>, call: &[u8]) -> Result<Vec<u8>> {
        let call: NamespaceCall = decode_call(&self.typeid, call)?;
        let mut fields = lock(&self.fields);
        match call {
            NamespaceCall::Get(name) => fields.get(&name).cloned().ok_or(ManagerError::KeyMissing { key: name }),
            NamespaceCall::Set(name, v) => {
                fields.insert(name, v);
                Ok(Vec::new())
            }
            NamespaceCall::Del(name) => match fields.remove(&name) {
                Some(_) => Ok(Vec::new()),
                None => Err(ManagerError::KeyMissing { key: name }),
            },
            NamespaceCall::Names => {
                let mut names: Vec<&String> = fields.keys().collect();
                names.sort();
                to_bytes(&names)
            }
        }
    }
}

/// The methods of a `Value`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ValueCall {
    /// → `T`
    Get,
    Set(Vec<u8>),
}

/// A `Value`: one encoded value.
pub(crate) struct ValueObject {
    typeid: String,
    value: Mutex<Vec<u8>>,
}

impl ValueObject {
    pub fn new(typeid: &str, init: Vec<u8>) -> Self {
        ValueObject { typeid: typeid.to_string(), value: Mutex::new(init) }
    }
}

impl Object for ValueObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn call(&self, _ctx: &CallCtx<'_>, call: &[u8]) -> Result<Vec<u8>> {
        let call: ValueCall = decode_call(&self.typeid, call)?;
        let mut value = lock(&self.value);
        match call {
            ValueCall::Get => Ok(value.clone()),
            ValueCall::Set(v) => {
                *value = v;
                Ok(Vec::new())
            }
        }
    }
}
