//! The text forms of protocol 0 and the number encodings: string literals, Python 2
//! strings, `raw-unicode-escape`, decimal and little-endian integers, floats.

use num_bigint::{BigInt, Sign};

use crate::value::Value;

pub(super) fn is_latin1(encoding: &str) -> bool {
    matches!(encoding, "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "ISO-8859-1")
}

pub(super) fn latin1(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

pub(super) fn py2_string(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::Str(text.to_owned()),
        Err(_) => Value::Bytes(bytes.to_vec()),
    }
}

/// An `int` from its little-endian two's-complement bytes (`LONG1`, `LONG4`).
pub(super) fn long_from_le(bytes: &[u8]) -> Value {
    if bytes.len() <= 8 {
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut buf = if negative { [0xff; 8] } else { [0; 8] };
        buf[..bytes.len()].copy_from_slice(bytes);
        return Value::Int(i64::from_le_bytes(buf));
    }
    Value::int(BigInt::from_signed_bytes_le(bytes))
}

pub(super) fn parse_int(digits: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(digits).ok()?.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::Int(i));
    }
    let (sign, body) = match text.strip_prefix('-') {
        Some(body) => (Sign::Minus, body),
        None => (Sign::Plus, text.strip_prefix('+').unwrap_or(text)),
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = num_bigint::BigUint::parse_bytes(body.as_bytes(), 10)?;
    Some(Value::int(BigInt::from_biguint(sign, magnitude)))
}

pub(super) fn parse_float(text: &str) -> Option<f64> {
    match text.trim() {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

pub(super) fn parse_memo_id(line: &[u8]) -> Option<u32> {
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

/// Decodes Python's `raw-unicode-escape` (protocol 0 `UNICODE`): bytes are latin-1 except
/// `\uXXXX` and `\UXXXXXXXX`.
pub(super) fn raw_unicode_escape(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 1 < bytes.len() && (bytes[i + 1] == b'u' || bytes[i + 1] == b'U') {
            let width = if bytes[i + 1] == b'u' { 4 } else { 8 };
            let hex = bytes.get(i + 2..i + 2 + width)?;
            let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(char::from_u32(code)?);
            i += 2 + width;
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    Some(out)
}

/// Decodes a Python 2 `repr` of a byte string (protocol 0 `STRING`): `'…'` or `"…"` with
/// backslash escapes.
pub(super) fn string_literal(line: &[u8]) -> Option<Vec<u8>> {
    let quote = *line.first()?;
    if line.len() < 2 || (quote != b'\'' && quote != b'"') || *line.last()? != quote {
        return None;
    }
    let body = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let escape = *body.get(i + 1)?;
        i += 2;
        match escape {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'\\' | b'\'' | b'"' => out.push(escape),
            b'x' => {
                let hex = body.get(i..i + 2)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut code = u32::from(escape - b'0');
                let mut digits = 1;
                while digits < 3 && i < body.len() && (b'0'..=b'7').contains(&body[i]) {
                    code = code * 8 + u32::from(body[i] - b'0');
                    i += 1;
                    digits += 1;
                }
                out.push(u8::try_from(code & 0xff).ok()?);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}
