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
//! As CPython's `pickle` module reads them (`_Unpickler`), with `pickletools`' opcode
//! table).

use std::cell::Cell;

use crate::allow::Global;
use crate::error::{PickleError, Result};
use crate::value::{Dict, Value};

mod call;
mod managed;
mod memo;
mod opcodes;
mod refuse;
mod resolve;
mod text;

use memo::Memo;
use opcodes::*;
use refuse::{bad_reduce, lookup, malformed};
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

/// The stack's first capacity, in slots.
const STACK_START: usize = 160;

/// The largest stack (in slots) kept for the thread's next decode.
const STACK_KEPT: usize = 4096;

thread_local! {
    /// The last decode's stack, empty, so that the next one does not allocate its own.
    static STACK: Cell<Vec<Slot>> = const { Cell::new(Vec::new()) };
}

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

/// A value under construction.
#[derive(Debug)]
enum Node {
    /// A finished value that holds no other (numbers, strings, bytes, empty containers'
    /// copies are never leaves).
    Leaf(Value),
    List(Vec<Node>),
    Tuple(Vec<Node>),
    Dict(Box<DictNode>),
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

/// A dict under construction. Entries whose key and value are both finished values go
/// straight into `built`, until the first that is not (a memo reference or a container):
/// it and every later entry wait in `pending`, in order, for `STOP`.
#[derive(Debug, Default)]
struct DictNode {
    built: Dict,
    pending: Vec<(Node, Node)>,
}

impl DictNode {
    fn is_empty(&self) -> bool {
        self.built.is_empty() && self.pending.is_empty()
    }
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
    memo: Memo<Slot>,
    /// References made to each memo entry (see [`Resolver`]).
    uses: Memo<u32>,
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
        stack: STACK.take(),
        marks: Vec::with_capacity(8),
        memo: Memo::new(input.len()),
        uses: Memo::new(input.len()),
        budget: options.memory_budget,
        total_budget: options.memory_budget,
    };
    if machine.stack.capacity() == 0 {
        // Enough for a flat container of 64 entries without growing.
        machine.stack.reserve(STACK_START);
    }
    let top = machine.run()?;
    let mut stack = std::mem::take(&mut machine.stack);
    stack.clear();
    if stack.capacity() <= STACK_KEPT {
        STACK.set(stack);
    }
    let mut resolver = Resolver {
        memo: machine.memo,
        uses: machine.uses,
        cache: Memo::new(input.len()),
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
                EMPTY_DICT => self.stack.push(Slot { node: Node::Dict(Box::default()), depth: 1 }),
                EMPTY_SET => self.stack.push(Slot { node: Node::Set(Vec::new()), depth: 1 }),
                EMPTY_TUPLE => self.stack.push(Slot { node: Node::Tuple(Vec::new()), depth: 1 }),
                LIST => {
                    let (items, depth) = self.pop_mark_nodes(at)?;
                    self.stack.push(Slot { node: Node::List(items), depth });
                }
                TUPLE => {
                    let (items, depth) = self.pop_mark_nodes(at)?;
                    self.stack.push(Slot { node: Node::Tuple(items), depth });
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = usize::from(op - TUPLE1 + 1);
                    if self.stack.len() < n + self.marks.last().copied().unwrap_or(0) {
                        return Err(malformed(at, "TUPLEn with too few items on the stack"));
                    }
                    let start = self.stack.len() - n;
                    let depth = depth_of(&self.stack[start..])?;
                    let items = self.stack.drain(start..).map(|s| s.node).collect();
                    self.stack.push(Slot { node: Node::Tuple(items), depth });
                }
                FROZENSET => {
                    let (items, depth) = self.pop_mark_nodes(at)?;
                    self.stack.push(Slot { node: Node::FrozenSet(items), depth });
                }
                DICT => {
                    let mark = self.marks.pop().ok_or_else(|| malformed(at, "no MARK"))?;
                    let depth = depth_of(&self.stack[mark..])?;
                    let mut dict = Box::<DictNode>::default();
                    push_pairs(&mut dict, self.stack.drain(mark..), at)?;
                    self.stack.push(Slot { node: Node::Dict(dict), depth });
                }
                APPEND => {
                    let item = self.pop(at)?;
                    self.extend_top([item], at)?;
                }
                APPENDS | ADDITEMS => {
                    self.extend_from_mark(at)?;
                }
                SETITEM => {
                    let value = self.pop(at)?;
                    let key = self.pop(at)?;
                    self.extend_top([key, value], at)?;
                }
                SETITEMS => {
                    self.extend_from_mark(at)?;
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

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.truncated()),
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.input.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(self.truncated()),
        }
    }

    #[cold]
    fn truncated(&self) -> PickleError {
        PickleError::Truncated { offset: self.input.len() }
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
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| self.truncated())?;
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

    fn pop(&mut self, at: usize) -> Result<Slot> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(malformed(at, "pop from an empty stack"));
        }
        Ok(self.stack.pop().expect("stack is above the mark"))
    }

    /// The nodes above the last mark, as a container's items, and that container's depth.
    fn pop_mark_nodes(&mut self, at: usize) -> Result<(Vec<Node>, usize)> {
        let mark = self.marks.pop().ok_or_else(|| malformed(at, "no MARK"))?;
        let depth = depth_of(&self.stack[mark..])?;
        Ok((self.stack.drain(mark..).map(|s| s.node).collect(), depth))
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
        if self.memo.contains(id) {
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
        if !self.memo.contains(id) {
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
                *self.uses.get_or_default(id) += 1;
            }
        }
    }

    /// A new reference to memo entry `id`, counted.
    fn new_ref(&mut self, id: u32) -> Slot {
        *self.uses.get_or_default(id) += 1;
        Slot { node: Node::Ref(id), depth: 1 }
    }

    /// The node a reference chain ends at (`None` for a dangling or cyclic chain).
    fn target<'n>(&'n self, mut node: &'n Node) -> Option<&'n Node> {
        for _ in 0..=self.memo.len() {
            match node {
                Node::Ref(id) => node = &self.memo.get(*id)?.node,
                other => return Some(other),
            }
        }
        None
    }

    /// The memo id a reference chain ends at.
    fn final_id(&self, mut id: u32) -> Option<u32> {
        for _ in 0..=self.memo.len() {
            match self.memo.get(id)?.node {
                Node::Ref(next) => id = next,
                _ => return Some(id),
            }
        }
        None
    }

    /// Moves the items above the last mark into the container below it (list items, dict
    /// key-value pairs, set members), wherever it lives.
    fn extend_from_mark(&mut self, at: usize) -> Result<()> {
        let mark = self.marks.pop().ok_or_else(|| malformed(at, "no MARK"))?;
        let floor = self.marks.last().copied().unwrap_or(0);
        if mark <= floor {
            return Err(malformed(at, "no container to add to"));
        }
        let depth = depth_of(&self.stack[mark..])?;
        if let Node::Ref(id) = self.stack[mark - 1].node {
            let id = self.final_id(id).ok_or_else(|| malformed(at, "dangling memo reference"))?;
            let target = self.memo.get_mut(id).expect("final_id returns a present entry");
            return fill(target, depth, self.stack.drain(mark..), at);
        }
        // Lifted out while the items move, so that they move once, straight into it.
        let placeholder = Slot { node: Node::Ref(u32::MAX), depth: 0 };
        let mut target = std::mem::replace(&mut self.stack[mark - 1], placeholder);
        fill(&mut target, depth, self.stack.drain(mark..), at)?;
        self.stack[mark - 1] = target;
        Ok(())
    }

    /// Moves `items` into the container on top of the stack, wherever it lives.
    fn extend_top<const N: usize>(&mut self, items: [Slot; N], at: usize) -> Result<()> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(malformed(at, "no container to add to"));
        }
        let depth = depth_of(&items)?;
        let top = self.stack.last_mut().expect("stack is above the mark");
        let target = match top.node {
            Node::Ref(id) => {
                let id = self.final_id(id).ok_or_else(|| malformed(at, "dangling memo reference"))?;
                self.memo.get_mut(id).expect("final_id returns a present entry")
            }
            _ => top,
        };
        fill(target, depth, items.into_iter(), at)
    }

    /// A copy of a stack slot, for `DUP` (CPython never writes it).
    fn copy_slot(&self, slot: &Slot, at: usize) -> Result<Slot> {
        match &slot.node {
            Node::Leaf(v) => Ok(Slot::leaf(v.clone())),
            Node::Ref(id) => Ok(Slot { node: Node::Ref(*id), depth: 1 }),
            _ => Err(malformed(at, "DUP of a container that is not memoized")),
        }
    }
}

fn nodes(slots: Vec<Slot>) -> Vec<Node> {
    slots.into_iter().map(|s| s.node).collect()
}

/// Adds `items`, whose own nesting is `depth`, to the list, set or dict in `target`.
fn fill(target: &mut Slot, depth: usize, items: impl ExactSizeIterator<Item = Slot>, at: usize) -> Result<()> {
    target.depth = target.depth.max(depth);
    match &mut target.node {
        Node::List(list) | Node::Set(list) => list.extend(items.map(|s| s.node)),
        Node::Dict(dict) => push_pairs(dict, items, at)?,
        _ => return Err(malformed(at, "adding items to a value that is no list, dict or set")),
    }
    Ok(())
}

/// Appends `items`, taken two by two as key and value, to `dict`.
fn push_pairs(dict: &mut DictNode, items: impl ExactSizeIterator<Item = Slot>, at: usize) -> Result<()> {
    if items.len() % 2 != 0 {
        return Err(malformed(at, "dict items are not key-value pairs"));
    }
    if dict.pending.is_empty() {
        dict.built.reserve(items.len() / 2);
    }
    let mut it = items;
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match (k.node, v.node) {
            (Node::Leaf(k), Node::Leaf(v)) if dict.pending.is_empty() => {
                dict.built.insert(k, v);
            }
            (k, v) => dict.pending.push((k, v)),
        }
    }
    Ok(())
}
