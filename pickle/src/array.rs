//! Python's `array.array` as pickles carry it: typecodes, machine formats, and the
//! numbering of element kinds shared with typed arrays on the Rust side.
//!
//! From protocol 3 on, CPython pickles an array as a call of
//! `array._array_reconstructor(array.array, typecode, mformat_code, bytes)`, where
//! `mformat_code` names the machine format of `bytes` (width, signedness, byte order).
//! The reader here matches both globals by name and builds a
//! [`Value::Array`](crate::Value::Array) from the arguments: nothing is imported or
//! called. Arrays always hold their items little-endian here; a big-endian format is
//! byte-swapped on reading.
//!
//! As CPython's `array` module does it (`enum machine_format_code`,
//! `array_reduce_ex`, `array__array_reconstructor_impl`).

use crate::error::{PickleError, Result};
use crate::value::Value;

/// The newtype-struct name under which a typed array (e.g. `mproc_ipc::PodVec<f64>`)
/// serializes its `(element size, element kind, little-endian bytes)` triple so that
/// [`to_value`](crate::to_value) can make it an `array.array`. Any other serde format
/// sees an ordinary newtype struct and writes the triple.
///
/// The kinds are [`ARRAY_KINDS`]' positions + 1. An `array.array` read from a pickle
/// presents the same triple to a typed array's `Deserialize`, with
/// [`ARRAY_FROM_PYTHON`] set in the kind, so that a mismatch can be reported in typecodes.
pub const ARRAY_NEWTYPE: &str = "\0mproc_pickle::array";

/// The bit set in the kind of a triple that comes from a Python `array.array` (the kind
/// of a wide-character array, which no typed array holds, is `ARRAY_FROM_PYTHON | 0x7f`).
pub const ARRAY_FROM_PYTHON: u8 = 0x80;

/// Element kinds, in order (kind = position + 1), as `(Rust type, array typecode,
/// element size)`: the numbering a typed array writes in its triple. `u128` and `i128`
/// have no `array.array` typecode.
pub const ARRAY_KINDS: [(&str, Option<char>, usize); 12] = [
    ("u8", Some('B'), 1),
    ("i8", Some('b'), 1),
    ("u16", Some('H'), 2),
    ("i16", Some('h'), 2),
    ("u32", Some('I'), 4),
    ("i32", Some('i'), 4),
    ("u64", Some('Q'), 8),
    ("i64", Some('q'), 8),
    ("u128", None, 16),
    ("i128", None, 16),
    ("f32", Some('f'), 4),
    ("f64", Some('d'), 8),
];

/// The kind of an array typecode (`'l'`/`'L'` are 8-byte C longs, as on 64-bit Linux);
/// `None` for `'u'`/`'w'` (wide characters), which no typed array holds.
pub(crate) fn kind_of_typecode(typecode: char) -> Option<u8> {
    let typecode = match typecode {
        'l' => 'q',
        'L' => 'Q',
        other => other,
    };
    ARRAY_KINDS.iter().position(|k| k.1 == Some(typecode)).map(|i| i as u8 + 1)
}

/// The typecode of a kind, if it has one.
pub(crate) fn typecode_of_kind(kind: i64) -> Option<char> {
    let i = usize::try_from(kind).ok()?.checked_sub(1)?;
    ARRAY_KINDS.get(i)?.1
}

/// The element size of a typecode CPython's array module knows.
pub(crate) fn item_size(typecode: char) -> Option<usize> {
    match typecode {
        'b' | 'B' => Some(1),
        'h' | 'H' => Some(2),
        'i' | 'I' | 'f' | 'u' | 'w' => Some(4),
        'l' | 'L' | 'q' | 'Q' | 'd' => Some(8),
        _ => None,
    }
}

/// The little-endian machine format code CPython writes for `typecode`.
pub(crate) fn mformat_le(typecode: char) -> Option<u8> {
    Some(match typecode {
        'B' => 0,
        'b' => 1,
        'H' => 2,
        'h' => 4,
        'I' => 6,
        'i' => 8,
        'L' | 'Q' => 10,
        'l' | 'q' => 12,
        'f' => 14,
        'd' => 16,
        'u' | 'w' => 20,
        _ => return None,
    })
}

/// The `Value` an `_array_reconstructor(array.array, typecode, mformat, data)` call
/// builds: the typecode and format must agree in width, and `data` must be a whole
/// number of items.
pub(crate) fn reconstruct(typecode: &str, mformat: i64, data: &[u8]) -> Result<Value> {
    let bad = |why: String| PickleError::BadReduce {
        module: "array".to_owned(),
        name: "_array_reconstructor".to_owned(),
        args: why,
    };
    let mut chars = typecode.chars();
    let (Some(code), None) = (chars.next(), chars.next()) else {
        return Err(bad(format!("typecode {typecode:?}, which is not one character")));
    };
    let size = item_size(code).ok_or_else(|| bad(format!("typecode {code:?}, which array.array does not know")))?;
    // Formats come in pairs from 2 on: little-endian, then big-endian. CPython converts
    // between formats item by item; this reader only accepts the typecode's own format,
    // in either byte order (what any CPython writes).
    let le = mformat_le(code).map(i64::from);
    let big_endian = match (le, mformat) {
        (Some(le), m) if m == le => false,
        (Some(le), m) if le >= 2 && m == le + 1 => true,
        _ => {
            return Err(bad(format!("typecode {code:?} with machine format {mformat}, which is not its own")));
        }
    };
    if data.len() % size != 0 {
        return Err(bad(format!("{} bytes, not a whole number of {size}-byte items", data.len())));
    }
    let mut data = data.to_vec();
    if big_endian {
        data.chunks_exact_mut(size).for_each(<[u8]>::reverse);
    }
    Ok(Value::Array { typecode: code, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_kind_with_a_typecode_maps_back_to_itself() {
        for (i, &(_, code, size)) in ARRAY_KINDS.iter().enumerate() {
            let kind = i as i64 + 1;
            assert_eq!(typecode_of_kind(kind), code);
            if let Some(code) = code {
                assert_eq!(kind_of_typecode(code), Some(kind as u8));
                assert_eq!(item_size(code), Some(size));
                assert!(mformat_le(code).is_some());
            }
        }
        assert_eq!(typecode_of_kind(0), None);
        assert_eq!(typecode_of_kind(13), None);
    }

    #[test]
    fn a_big_endian_format_is_swapped_and_a_mismatched_width_is_refused() {
        let v = reconstruct("H", 3, &[0x01, 0x02]).unwrap();
        assert_eq!(v, Value::Array { typecode: 'H', data: vec![0x02, 0x01] });
        let err = reconstruct("d", 8, &[0; 8]).unwrap_err().to_string();
        assert!(err.contains("'d'") && err.contains("machine format 8"), "{err}");
        assert_eq!(
            reconstruct("d", 17, &[1, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            Value::Array { typecode: 'd', data: vec![0, 0, 0, 0, 0, 0, 0, 1] }
        );
        assert!(reconstruct("d", 16, &[0; 7]).is_err());
        assert!(reconstruct("dd", 16, &[]).is_err());
        assert!(reconstruct("x", 16, &[]).is_err());
    }
}
