//! The pickle writer for [`Value`]: protocol 5, which CPython reads from 3.8 on.
//!
//! The body is one `FRAME` (CPython frames protocol 4 and 5 pickles so that a reader on a
//! stream can fetch each frame in one read; a message read whole only skips its header).
//! Each value is written with the opcode CPython itself would pick (`BININT1` for a small
//! int, `SHORT_BINUNICODE` for a short str, `BYTEARRAY8` for a bytearray, `EMPTY_SET` +
//! `ADDITEMS` for a set …). Nothing is memoized: a [`Value`] is a tree, so no entry would be
//! used twice. An exception is written as its class (`STACK_GLOBAL`), its args and
//! `REDUCE`, so a Python reader gets the real class; only allow-listed classes are
//! written, so a Rust writer can never make a Python reader import anything else.
//!
//! As CPython's `pickle` module writes them (`_Pickler`).

use num_bigint::BigInt;

use crate::allow;
use crate::decode::MAX_DEPTH;
use crate::error::{PickleError, Result};
use crate::managed::{MANAGERS, PROXY_TYPES};
use crate::value::Value;
use crate::value::{Proxy, Token};

/// The protocol written.
pub const PROTOCOL: u8 = 5;

const MARK: u8 = b'(';
const STOP: u8 = b'.';
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const NONE: u8 = b'N';
const REDUCE: u8 = b'R';
const BINUNICODE: u8 = b'X';
const EMPTY_DICT: u8 = b'}';
const APPENDS: u8 = b'e';
const EMPTY_LIST: u8 = b']';
const TUPLE: u8 = b't';
const EMPTY_TUPLE: u8 = b')';
const SETITEMS: u8 = b'u';
const BINFLOAT: u8 = b'G';
const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const TUPLE1: u8 = 0x85;
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const LONG1: u8 = 0x8a;
const LONG4: u8 = 0x8b;
const BINBYTES: u8 = b'B';
const SHORT_BINBYTES: u8 = b'C';
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE8: u8 = 0x8d;
const BINBYTES8: u8 = 0x8e;
const EMPTY_SET: u8 = 0x8f;
const ADDITEMS: u8 = 0x90;
const FROZENSET: u8 = 0x91;
const STACK_GLOBAL: u8 = 0x93;
const BYTEARRAY8: u8 = 0x96;
const NEWOBJ: u8 = 0x81;
const BUILD: u8 = b'b';

/// Appends the pickle of `value` to `out`: the protocol, then one frame (as CPython's
/// framer writes for protocols 4 and 5) holding every opcode up to and including `STOP`,
/// its length filled in once the body is written.
pub(crate) fn encode(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&[PROTO, PROTOCOL]);
    let frame = out.len();
    out.extend_from_slice(&[FRAME, 0, 0, 0, 0, 0, 0, 0, 0]);
    write(value, out, 0)?;
    out.push(STOP);
    let len = (out.len() - frame - 9) as u64;
    out[frame + 1..frame + 9].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn write(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(PickleError::TooDeep { max: MAX_DEPTH });
    }
    match value {
        Value::None => out.push(NONE),
        Value::Bool(true) => out.push(NEWTRUE),
        Value::Bool(false) => out.push(NEWFALSE),
        &Value::Int(i) => write_int(i, out),
        Value::BigInt(b) => write_bigint(b, out),
        Value::Float(f) => {
            out.push(BINFLOAT);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => write_str(s, out),
        Value::Bytes(b) => write_bytes(b, out),
        Value::Array { typecode, data } => write_array(*typecode, data, out)?,
        Value::ByteArray(b) => {
            out.push(BYTEARRAY8);
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            out.push(EMPTY_LIST);
            if !items.is_empty() {
                out.push(MARK);
                for item in items {
                    write(item, out, depth + 1)?;
                }
                out.push(APPENDS);
            }
        }
        Value::Tuple(items) => write_tuple(items, out, depth)?,
        Value::Dict(dict) => {
            out.push(EMPTY_DICT);
            if !dict.is_empty() {
                out.push(MARK);
                for (k, v) in dict {
                    write(k, out, depth + 1)?;
                    write(v, out, depth + 1)?;
                }
                out.push(SETITEMS);
            }
        }
        Value::Set(members) => {
            out.push(EMPTY_SET);
            if !members.is_empty() {
                out.push(MARK);
                for m in members {
                    write(m, out, depth + 1)?;
                }
                out.push(ADDITEMS);
            }
        }
        Value::FrozenSet(members) => {
            out.push(MARK);
            for m in members {
                write(m, out, depth + 1)?;
            }
            out.push(FROZENSET);
        }
        Value::Exception { module, name, args } => {
            if !allow::is_allowed_exception(module, name) {
                return Err(PickleError::ForbiddenGlobal { module: module.clone(), name: name.clone() });
            }
            write_str(module, out);
            write_str(name, out);
            out.push(STACK_GLOBAL);
            write_tuple(args, out, depth)?;
            out.push(REDUCE);
        }
        Value::Token(token) => write_token(token, out, depth)?,
        Value::Proxy(proxy) => write_proxy(proxy, out, depth)?,
    }
    Ok(())
}

/// `array._array_reconstructor(array.array, typecode, mformat, data)`, as CPython writes
/// an array from protocol 3 on.
fn write_array(typecode: char, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let Some(mformat) = crate::array::mformat_le(typecode) else {
        return Err(PickleError::Serde(format!("array typecode {typecode:?} is not one array.array knows")));
    };
    write_str("array", out);
    write_str("_array_reconstructor", out);
    out.push(STACK_GLOBAL);
    out.push(MARK);
    write_str("array", out);
    write_str("array", out);
    out.push(STACK_GLOBAL);
    let mut code = [0; 4];
    write_str(typecode.encode_utf8(&mut code), out);
    out.extend_from_slice(&[BININT1, mformat]);
    write_bytes(data, out);
    out.push(TUPLE);
    out.push(REDUCE);
    Ok(())
}

fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    if let Ok(n) = u8::try_from(b.len()) {
        out.extend_from_slice(&[SHORT_BINBYTES, n]);
    } else if let Ok(n) = u32::try_from(b.len()) {
        out.push(BINBYTES);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(BINBYTES8);
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(b);
}

/// `Token.__new__(Token)`, then `BUILD` with `(typeid, address, id)`, as CPython writes it.
fn write_token(token: &Token, out: &mut Vec<u8>, depth: usize) -> Result<()> {
    write_global(MANAGERS, "Token", out);
    out.extend_from_slice(&[EMPTY_TUPLE, NEWOBJ]);
    write_str(&token.typeid, out);
    write(&token.address, out, depth + 1)?;
    write_str(&token.id, out);
    out.extend_from_slice(&[TUPLE1 + 2, BUILD]);
    Ok(())
}

/// `RebuildProxy(proxytype, token, serializer, kwds)`; only a proxy type of
/// [`PROXY_TYPES`] is written.
fn write_proxy(proxy: &Proxy, out: &mut Vec<u8>, depth: usize) -> Result<()> {
    let Some(&proxytype) = PROXY_TYPES.iter().find(|&&t| t == proxy.proxytype) else {
        return Err(PickleError::ForbiddenGlobal { module: MANAGERS.to_owned(), name: proxy.proxytype.clone() });
    };
    write_global(MANAGERS, "RebuildProxy", out);
    out.push(MARK);
    write_global(MANAGERS, proxytype, out);
    write_token(&proxy.token, out, depth + 1)?;
    write_str(&proxy.serializer, out);
    write(&Value::Dict(proxy.kwds.clone()), out, depth + 1)?;
    out.extend_from_slice(&[TUPLE, REDUCE]);
    Ok(())
}

fn write_global(module: &str, name: &str, out: &mut Vec<u8>) {
    write_str(module, out);
    write_str(name, out);
    out.push(STACK_GLOBAL);
}

fn write_tuple(items: &[Value], out: &mut Vec<u8>, depth: usize) -> Result<()> {
    if items.is_empty() {
        out.push(EMPTY_TUPLE);
        return Ok(());
    }
    if items.len() > 3 {
        out.push(MARK);
    }
    for item in items {
        write(item, out, depth + 1)?;
    }
    out.push(match items.len() {
        n @ 1..=3 => TUPLE1 + (n as u8 - 1),
        _ => TUPLE,
    });
    Ok(())
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    if let Ok(n) = u8::try_from(s.len()) {
        out.extend_from_slice(&[SHORT_BINUNICODE, n]);
    } else if let Ok(n) = u32::try_from(s.len()) {
        out.push(BINUNICODE);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(BINUNICODE8);
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_int(i: i64, out: &mut Vec<u8>) {
    if let Ok(n) = u8::try_from(i) {
        out.extend_from_slice(&[BININT1, n]);
    } else if let Ok(n) = u16::try_from(i) {
        out.push(BININT2);
        out.extend_from_slice(&n.to_le_bytes());
    } else if let Ok(n) = i32::try_from(i) {
        out.push(BININT);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        // The shortest little-endian two's complement that keeps the sign.
        let bytes = i.to_le_bytes();
        let mut n = 8;
        while n > 1
            && ((bytes[n - 1] == 0 && bytes[n - 2] & 0x80 == 0) || (bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0))
        {
            n -= 1;
        }
        out.extend_from_slice(&[LONG1, n as u8]);
        out.extend_from_slice(&bytes[..n]);
    }
}

fn write_bigint(b: &BigInt, out: &mut Vec<u8>) {
    let bytes = b.to_signed_bytes_le();
    if let Ok(n) = u8::try_from(bytes.len()) {
        out.extend_from_slice(&[LONG1, n]);
    } else {
        out.push(LONG4);
        // A pickle long of 2^31 bytes is beyond anything CPython writes or reads.
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&bytes);
}

/// A guess at the pickle's length from the top level alone (a walk of the whole tree
/// would cost more than the buffer growing once or twice): 16 bytes an item.
fn size_hint(value: &Value) -> usize {
    let items = match value {
        Value::Str(s) => s.len(),
        Value::Bytes(b) | Value::ByteArray(b) | Value::Array { data: b, .. } => b.len(),
        Value::List(items) | Value::Tuple(items) => 16 * items.len(),
        Value::Dict(d) => 32 * d.len(),
        Value::Set(s) | Value::FrozenSet(s) => 16 * s.len(),
        _ => 0,
    };
    items.saturating_add(32)
}

impl Value {
    /// The protocol-5 pickle of this value (same as [`crate::dumps_value`]).
    pub fn to_pickle(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(size_hint(self));
        encode(self, &mut out)?;
        Ok(out)
    }
}
