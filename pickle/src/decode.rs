//! The pickle reader: CPython's unpickling machine for protocols 0–5, building [`Value`]s
//! and calling nothing.
//!
//! The machine is the one `pickletools` documents: a stack, a stack of marks and a memo.
//! While it runs, values are [`Node`]s, which may hold a reference to a memo entry instead
//! of a copy, because a pickle fills a container after memoizing it (`EMPTY_LIST`,
//! `MEMOIZE`, `MARK` … `APPENDS`) and every later reference must see the filled one. At
//! `STOP` the references are replaced by copies, turning the graph into a tree; a graph
//! that refers to itself is refused.
//!
//! Resource bounds, all checked before the memory is taken:
//! - a length field is checked against the bytes that remain before anything is allocated;
//! - values nest at most [`MAX_DEPTH`] deep, which bounds every recursive walk here;
//! - copying shared references is charged to a memory budget
//!   ([`DecodeOptions::memory_budget`]), so a small pickle that refers to one list a
//!   million times is an error, not an exhausted machine.
//!
//! Source: CPython's `Lib/pickle.py` (`_Unpickler`) and `Lib/pickletools.py` (the opcode
//! table).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::allow::Global;
use crate::error::{PickleError, Result};
use crate::value::Value;

mod managed;
mod opcodes;
mod refuse;
mod resolve;
mod text;

use opcodes::*;
use refuse::{bad_reduce, describe, lookup, malformed};
use resolve::Resolver;
use text::*;

/// The deepest nesting of containers the reader builds and the writer writes: 128, as
/// serde_json's default recursion limit (`[[[…]]]` 127 lists deep around one value is
/// accepted, one more is [`PickleError::TooDeep`]). It bounds every recursive walk of a
/// decoded value — building it, writing it, comparing, hashing, dropping, serde — so that
/// each stays well inside a 2 MiB thread stack even in a debug build.
pub const MAX_DEPTH: usize = 128;

/// How much memory decoding may take per input byte when no budget is given.
const EXPANSION: usize = 64;

/// The smallest memory budget (so tiny inputs may still build a few containers).
const MIN_BUDGET: usize = 1 << 20;

/// Limits for [`loads_value_with`](crate::loads_value_with).
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// The longest pickle accepted, checked before any byte is decoded.
    pub cap: usize,
    /// The most memory the decoded tree may take, in bytes (counted as
    /// `size_of::<Value>()` per value plus string and bytes contents).
    pub memory_budget: usize,
}

impl DecodeOptions {
    /// No cap on the input; a memory budget of 64 bytes per input byte (at least 1 MiB),
    /// which any pickle without shared references stays well inside.
    pub fn for_len(len: usize) -> DecodeOptions {
        DecodeOptions { cap: usize::MAX, memory_budget: budget_for(len) }
    }

    /// Inputs up to `cap` bytes; a memory budget of 64 bytes per byte of the cap (at least
    /// 1 MiB), whatever the input's length.
    pub fn capped(cap: usize) -> DecodeOptions {
        DecodeOptions { cap, memory_budget: budget_for(cap) }
    }
}

fn budget_for(len: usize) -> usize {
    len.saturating_mul(EXPANSION).max(MIN_BUDGET)
}

/// Memo ids to entries. Ids are small dense integers in every pickle CPython writes, so a
/// multiplicative hash does (SipHash's flood resistance is not needed: the memory budget
/// and the input cap bound what a hostile pickle can make the reader do).
type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of one `u32`.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A value under construction.
#[derive(Debug)]
enum Node {
    /// A finished value that holds no other (numbers, strings, bytes, empty containers'
    /// copies are never leaves).
    Leaf(Value),
    List(Vec<Node>),
    Tuple(Vec<Node>),
    Dict(Vec<(Node, Node)>),
    Set(Vec<Node>),
    FrozenSet(Vec<Node>),
    Exception {
        module: &'static str,
        name: &'static str,
        args: Vec<Node>,
    },
    /// A reference to memo entry `id`.
    Ref(u32),
    /// An allow-listed class or function, waiting for `REDUCE`.
    Global(Global),
    /// `Token.__new__(Token)`, with its state `(typeid, address, id)` once `BUILD` gave it.
    Token(Option<Box<Node>>),
    /// `RebuildProxy(proxytype, token, serializer, kwds)`: the last three arguments.
    Proxy {
        proxytype: &'static str,
        args: Vec<Node>,
    },
}

/// A node and how deep it nests (a leaf or a reference is 1).
#[derive(Debug)]
struct Slot {
    node: Node,
    depth: usize,
}

impl Slot {
    fn leaf(value: Value) -> Slot {
        Slot { node: Node::Leaf(value), depth: 1 }
    }
}

/// The depth of a container holding `items`.
fn depth_of<'a>(items: impl IntoIterator<Item = &'a Slot>) -> Result<usize> {
    let depth = 1 + items.into_iter().map(|s| s.depth).max().unwrap_or(0);
    if depth > MAX_DEPTH {
        return Err(PickleError::TooDeep { max: MAX_DEPTH });
    }
    Ok(depth)
}

/// The unpickling machine over one input.
struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Slot>,
    marks: Vec<usize>,
    memo: IdMap<Slot>,
    /// References made to each memo entry (see [`Resolver`]).
    uses: IdMap<u32>,
    /// Bytes of memory still allowed for copies made at `STOP`.
    budget: usize,
    total_budget: usize,
}

/// Decodes one pickle into a [`Value`].
pub(crate) fn decode(input: &[u8], options: DecodeOptions) -> Result<Value> {
    if input.len() > options.cap {
        return Err(PickleError::TooLarge { len: input.len(), cap: options.cap });
    }
    let mut machine = Machine {
        input,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: IdMap::default(),
        uses: IdMap::default(),
        budget: options.memory_budget,
        total_budget: options.memory_budget,
    };
    let top = machine.run()?;
    let mut resolver = Resolver {
        memo: machine.memo,
        uses: machine.uses,
        cache: IdMap::default(),
        active: Vec::new(),
        budget: machine.budget,
        total_budget: machine.total_budget,
    };
    resolver.resolve(top.node, 0)
}

impl<'a> Machine<'a> {
    fn run(&mut self) -> Result<Slot> {
        loop {
            let at = self.pos;
            let op = self.byte()?;
            match op {
                STOP => return self.pop(at),
                PROTO => {
                    let version = self.byte()?;
                    if version > 5 {
                        return Err(PickleError::UnsupportedProtocol(version));
                    }
                }
                FRAME => {
                    // Framing only groups opcodes for buffered reads; the whole input is here.
                    self.take(8)?;
                }
                MARK => self.marks.push(self.stack.len()),
                POP => {
                    if self.stack.is_empty() {
                        // CPython pops a mark when the stack above it is empty.
                        self.pop_mark(at)?;
                    } else {
                        self.pop(at)?;
                    }
                }
                POP_MARK => {
                    self.pop_mark(at)?;
                }
                DUP => {
                    let top = self.stack.last().ok_or_else(|| malformed(at, "DUP on an empty stack"))?;
                    let copy = self.copy_slot(top, at)?;
                    self.count_refs(std::slice::from_ref(&copy));
                    self.stack.push(copy);
                }

                // Scalars.
                NONE => self.push(Value::None),
                NEWTRUE => self.push(Value::Bool(true)),
                NEWFALSE => self.push(Value::Bool(false)),
                BININT => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Value::Int(v.into()));
                }
                BININT1 => {
                    let v = self.byte()?;
                    self.push(Value::Int(v.into()));
                }
                BININT2 => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Value::Int(v.into()));
                }
                INT => {
                    let line = self.line()?;
                    let value = match line {
                        b"00" => Value::Bool(false),
                        b"01" => Value::Bool(true),
                        digits => parse_int(digits).ok_or_else(|| malformed(at, "INT is not a decimal integer"))?,
                    };
                    self.push(value);
                }
                LONG => {
                    let line = self.line()?;
                    let digits = line.strip_suffix(b"L").unwrap_or(line);
                    let value = parse_int(digits).ok_or_else(|| malformed(at, "LONG is not a decimal integer"))?;
                    self.push(value);
                }
                LONG1 => {
                    let n = usize::from(self.byte()?);
                    let bytes = self.take(n)?;
                    self.push(long_from_le(bytes));
                }
                LONG4 => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = usize::try_from(n).map_err(|_| malformed(at, "LONG4 with a negative length"))?;
                    let bytes = self.take(n)?;
                    self.push(long_from_le(bytes));
                }
                FLOAT => {
                    let line = self.line()?;
                    let value = std::str::from_utf8(line)
                        .ok()
                        .and_then(parse_float)
                        .ok_or_else(|| malformed(at, "FLOAT is not a decimal float"))?;
                    self.push(Value::Float(value));
                }
                BINFLOAT => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Value::Float(v));
                }

                // Strings and bytes.
                SHORT_BINUNICODE => {
                    let n = usize::from(self.byte()?);
                    self.push_str(n, at)?;
                }
                BINUNICODE => {
                    let n = u32::from_le_bytes(self.array()?);
                    self.push_str(n as usize, at)?;
                }
                BINUNICODE8 => {
                    let n = self.len8(at)?;
                    self.push_str(n, at)?;
                }
                UNICODE => {
                    let line = self.line()?;
                    let text =
                        raw_unicode_escape(line).ok_or_else(|| malformed(at, "UNICODE is not raw-unicode-escape"))?;
                    self.push(Value::Str(text));
                }
                SHORT_BINBYTES => {
                    let n = usize::from(self.byte()?);
                    let bytes = self.take(n)?.to_vec();
                    self.push(Value::Bytes(bytes));
                }
                BINBYTES => {
                    let n = u32::from_le_bytes(self.array()?);
                    let bytes = self.take(n as usize)?.to_vec();
                    self.push(Value::Bytes(bytes));
                }
                BINBYTES8 => {
                    let n = self.len8(at)?;
                    let bytes = self.take(n)?.to_vec();
                    self.push(Value::Bytes(bytes));
                }
                BYTEARRAY8 => {
                    let n = self.len8(at)?;
                    let bytes = self.take(n)?.to_vec();
                    self.push(Value::ByteArray(bytes));
                }
                // Python 2 `str`: CPython's default (`encoding='ASCII'`) makes it a `str`;
                // here any UTF-8 becomes `str` and anything else stays `bytes`.
                SHORT_BINSTRING => {
                    let n = usize::from(self.byte()?);
                    let bytes = self.take(n)?;
                    self.push(py2_string(bytes));
                }
                BINSTRING => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = usize::try_from(n).map_err(|_| malformed(at, "BINSTRING with a negative length"))?;
                    let bytes = self.take(n)?;
                    self.push(py2_string(bytes));
                }
                STRING => {
                    let line = self.line()?;
                    let bytes = string_literal(line).ok_or_else(|| malformed(at, "STRING is not a quoted literal"))?;
                    self.push(py2_string(&bytes));
                }

                // Containers.
                EMPTY_LIST => self.stack.push(Slot { node: Node::List(Vec::new()), depth: 1 }),
                EMPTY_DICT => self.stack.push(Slot { node: Node::Dict(Vec::new()), depth: 1 }),
                EMPTY_SET => self.stack.push(Slot { node: Node::Set(Vec::new()), depth: 1 }),
                EMPTY_TUPLE => self.stack.push(Slot { node: Node::Tuple(Vec::new()), depth: 1 }),
                LIST => {
                    let items = self.pop_mark(at)?;
                    let depth = depth_of(&items)?;
                    self.stack.push(Slot { node: Node::List(nodes(items)), depth });
                }
                TUPLE => {
                    let items = self.pop_mark(at)?;
                    self.push_tuple(items)?;
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = usize::from(op - TUPLE1 + 1);
                    if self.stack.len() < n + self.marks.last().copied().unwrap_or(0) {
                        return Err(malformed(at, "TUPLEn with too few items on the stack"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_tuple(items)?;
                }
                FROZENSET => {
                    let items = self.pop_mark(at)?;
                    let depth = depth_of(&items)?;
                    self.stack.push(Slot { node: Node::FrozenSet(nodes(items)), depth });
                }
                DICT => {
                    let items = self.pop_mark(at)?;
                    let depth = depth_of(&items)?;
                    let pairs = pairs(items, at)?;
                    self.stack.push(Slot { node: Node::Dict(pairs), depth });
                }
                APPEND => {
                    let item = self.pop(at)?;
                    self.extend(vec![item], at)?;
                }
                APPENDS | ADDITEMS => {
                    let items = self.pop_mark(at)?;
                    self.extend(items, at)?;
                }
                SETITEM => {
                    let value = self.pop(at)?;
                    let key = self.pop(at)?;
                    self.extend(vec![key, value], at)?;
                }
                SETITEMS => {
                    let items = self.pop_mark(at)?;
                    self.extend(items, at)?;
                }

                // Memo.
                PUT => {
                    let line = self.line()?;
                    let id = parse_memo_id(line).ok_or_else(|| malformed(at, "PUT with a bad memo id"))?;
                    self.memoize(id, at)?;
                }
                BINPUT => {
                    let id = self.byte()?;
                    self.memoize(id.into(), at)?;
                }
                LONG_BINPUT => {
                    let id = u32::from_le_bytes(self.array()?);
                    self.memoize(id, at)?;
                }
                MEMOIZE => {
                    let id = u32::try_from(self.memo.len()).map_err(|_| malformed(at, "memo full"))?;
                    self.memoize(id, at)?;
                }
                GET => {
                    let line = self.line()?;
                    let id = parse_memo_id(line).ok_or_else(|| malformed(at, "GET with a bad memo id"))?;
                    self.get(id, at)?;
                }
                BINGET => {
                    let id = self.byte()?;
                    self.get(id.into(), at)?;
                }
                LONG_BINGET => {
                    let id = u32::from_le_bytes(self.array()?);
                    self.get(id, at)?;
                }

                // Globals and calls: only the allow-list, and nothing is imported.
                GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let global = lookup(module, name)?;
                    self.stack.push(Slot { node: Node::Global(global), depth: 1 });
                }
                STACK_GLOBAL => {
                    let name = self.pop(at)?;
                    let module = self.pop(at)?;
                    // CPython memoizes both strings: follow the references.
                    let (Some(Node::Leaf(Value::Str(module))), Some(Node::Leaf(Value::Str(name)))) =
                        (self.target(&module.node), self.target(&name.node))
                    else {
                        return Err(malformed(at, "STACK_GLOBAL needs two str"));
                    };
                    let global = lookup(module.as_bytes(), name.as_bytes())?;
                    self.stack.push(Slot { node: Node::Global(global), depth: 1 });
                }
                INST => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let global = lookup(module, name)?;
                    let args = self.pop_mark(at)?;
                    let slot = self.call(global, args, at)?;
                    self.stack.push(slot);
                }
                OBJ => {
                    let mut items = self.pop_mark(at)?;
                    if items.is_empty() {
                        return Err(malformed(at, "OBJ without a class"));
                    }
                    let class = items.remove(0);
                    let global = self.global_of(&class, at)?;
                    let slot = self.call(global, items, at)?;
                    self.stack.push(slot);
                }
                REDUCE | NEWOBJ => {
                    let args = self.pop(at)?;
                    let callable = self.pop(at)?;
                    let global = self.global_of(&callable, at)?;
                    let args = self.tuple_items(args, at)?;
                    let slot = self.call(global, args, at)?;
                    self.stack.push(slot);
                }
                NEWOBJ_EX => {
                    let kwargs = self.pop(at)?;
                    let args = self.pop(at)?;
                    let class = self.pop(at)?;
                    let global = self.global_of(&class, at)?;
                    if !matches!(self.target(&kwargs.node), Some(Node::Dict(d)) if d.is_empty()) {
                        let (module, name) = global.name();
                        return Err(bad_reduce(module, name, "keyword arguments"));
                    }
                    let args = self.tuple_items(args, at)?;
                    let slot = self.call(global, args, at)?;
                    self.stack.push(slot);
                }
                BUILD => {
                    let state = self.pop(at)?;
                    self.build(state, at)?;
                }

                PERSID | BINPERSID => {
                    return Err(PickleError::UnsupportedOpcode { opcode: "PERSID", offset: at });
                }
                EXT1 | EXT2 | EXT4 => {
                    return Err(PickleError::UnsupportedOpcode { opcode: "EXT", offset: at });
                }
                NEXT_BUFFER => {
                    return Err(PickleError::UnsupportedOpcode { opcode: "NEXT_BUFFER", offset: at });
                }
                READONLY_BUFFER => {
                    return Err(PickleError::UnsupportedOpcode { opcode: "READONLY_BUFFER", offset: at });
                }
                other => return Err(PickleError::UnknownOpcode { opcode: other, offset: at }),
            }
        }
    }

    // Input.

    fn byte(&mut self) -> Result<u8> {
        let b = *self.input.get(self.pos).ok_or(PickleError::Truncated { offset: self.input.len() })?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.input.len());
        let end = end.ok_or(PickleError::Truncated { offset: self.input.len() })?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("take returns N bytes"))
    }

    fn len8(&mut self, at: usize) -> Result<usize> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| malformed(at, "length does not fit in memory"))
    }

    /// The bytes up to the next `\n` (protocol 0 arguments), without it.
    fn line(&mut self) -> Result<&'a [u8]> {
        let rest = &self.input[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or(PickleError::Truncated { offset: self.input.len() })?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    // Stack.

    fn push(&mut self, value: Value) {
        self.stack.push(Slot::leaf(value));
    }

    fn push_str(&mut self, n: usize, at: usize) -> Result<()> {
        let bytes = self.take(n)?;
        // CPython writes lone surrogates with `surrogatepass`; those are not UTF-8.
        let text = std::str::from_utf8(bytes).map_err(|_| malformed(at, "string is not UTF-8"))?;
        self.push(Value::Str(text.to_owned()));
        Ok(())
    }

    fn push_tuple(&mut self, items: Vec<Slot>) -> Result<()> {
        let depth = depth_of(&items)?;
        self.stack.push(Slot { node: Node::Tuple(nodes(items)), depth });
        Ok(())
    }

    fn pop(&mut self, at: usize) -> Result<Slot> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(malformed(at, "pop from an empty stack"));
        }
        Ok(self.stack.pop().expect("stack is above the mark"))
    }

    fn pop_mark(&mut self, at: usize) -> Result<Vec<Slot>> {
        let mark = self.marks.pop().ok_or_else(|| malformed(at, "no MARK"))?;
        Ok(self.stack.split_off(mark))
    }

    // Memo.

    fn memoize(&mut self, id: u32, at: usize) -> Result<()> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(malformed(at, "memoize with an empty stack"));
        }
        if self.memo.contains_key(&id) {
            return Err(malformed(at, "memo entry written twice"));
        }
        let top = self.stack.last_mut().expect("stack is above the mark");
        if let Node::Ref(existing) = top.node {
            // Already memoized under another id: alias it.
            let alias = self.new_ref(existing);
            self.memo.insert(id, alias);
            return Ok(());
        }
        let slot = std::mem::replace(top, Slot { node: Node::Ref(id), depth: 1 });
        self.memo.insert(id, slot);
        self.uses.insert(id, 1);
        Ok(())
    }

    fn get(&mut self, id: u32, at: usize) -> Result<()> {
        if !self.memo.contains_key(&id) {
            return Err(malformed(at, "GET of a memo entry never written"));
        }
        let slot = self.new_ref(id);
        self.stack.push(slot);
        Ok(())
    }

    /// Counts the references among copies made by `copy_slot` and `copy_node`.
    fn count_refs(&mut self, slots: &[Slot]) {
        for slot in slots {
            if let Node::Ref(id) = slot.node {
                *self.uses.entry(id).or_insert(0) += 1;
            }
        }
    }

    /// A new reference to memo entry `id`, counted.
    fn new_ref(&mut self, id: u32) -> Slot {
        *self.uses.entry(id).or_insert(0) += 1;
        Slot { node: Node::Ref(id), depth: 1 }
    }

    /// The node a reference chain ends at (`None` for a dangling or cyclic chain).
    fn target<'n>(&'n self, mut node: &'n Node) -> Option<&'n Node> {
        for _ in 0..=self.memo.len() {
            match node {
                Node::Ref(id) => node = &self.memo.get(id)?.node,
                other => return Some(other),
            }
        }
        None
    }

    /// The memo id a reference chain ends at.
    fn final_id(&self, mut id: u32) -> Option<u32> {
        for _ in 0..=self.memo.len() {
            match self.memo.get(&id)?.node {
                Node::Ref(next) => id = next,
                _ => return Some(id),
            }
        }
        None
    }

    /// Adds `items` to the container on top of the stack (list items, dict key-value pairs,
    /// set members), wherever it lives.
    fn extend(&mut self, items: Vec<Slot>, at: usize) -> Result<()> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(malformed(at, "no container to add to"));
        }
        let top = self.stack.last_mut().expect("stack is above the mark");
        let slot = match top.node {
            Node::Ref(id) => {
                let id = self.final_id(id).ok_or_else(|| malformed(at, "dangling memo reference"))?;
                self.memo.get_mut(&id).expect("final_id returns a present entry")
            }
            _ => top,
        };
        slot.depth = slot.depth.max(depth_of(&items)?);
        // Filling an empty container (the usual case) takes the items' allocation over.
        match &mut slot.node {
            Node::List(list) | Node::Set(list) if list.is_empty() => *list = nodes(items),
            Node::List(list) | Node::Set(list) => list.extend(items.into_iter().map(|s| s.node)),
            Node::Dict(dict) if dict.is_empty() => *dict = pairs(items, at)?,
            Node::Dict(dict) => dict.extend(pairs(items, at)?),
            _ => return Err(malformed(at, "adding items to a value that is no list, dict or set")),
        }
        Ok(())
    }

    /// A copy of a stack slot, for `DUP` (CPython never writes it).
    fn copy_slot(&self, slot: &Slot, at: usize) -> Result<Slot> {
        match &slot.node {
            Node::Leaf(v) => Ok(Slot::leaf(v.clone())),
            Node::Ref(id) => Ok(Slot { node: Node::Ref(*id), depth: 1 }),
            _ => Err(malformed(at, "DUP of a container that is not memoized")),
        }
    }

    // Calls.

    fn global_of(&self, slot: &Slot, at: usize) -> Result<Global> {
        match self.target(&slot.node) {
            Some(Node::Global(g)) => Ok(g.clone()),
            _ => Err(malformed(at, "call of a value that is not a global")),
        }
    }

    fn tuple_items(&mut self, args: Slot, at: usize) -> Result<Vec<Slot>> {
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
    fn call(&mut self, global: Global, args: Vec<Slot>, at: usize) -> Result<Slot> {
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

fn nodes(slots: Vec<Slot>) -> Vec<Node> {
    slots.into_iter().map(|s| s.node).collect()
}

fn pairs(items: Vec<Slot>, at: usize) -> Result<Vec<(Node, Node)>> {
    if items.len() % 2 != 0 {
        return Err(malformed(at, "dict items are not key-value pairs"));
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k.node, v.node));
    }
    Ok(pairs)
}
