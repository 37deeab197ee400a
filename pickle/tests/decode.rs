//! The reader's limits and refusals, each with the typed error naming the bad value, and
//! `Value`'s Python equality.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use mproc_pickle::{
    dumps, dumps_value, from_value, loads, loads_value, loads_value_capped, loads_value_with, DecodeOptions,
    PickleError, Value, MAX_DEPTH,
};

#[test]
fn smoke() {
    let v = Value::Tuple(vec![Value::None, Value::from("x"), Value::List(vec![Value::Int(-5)])]);
    assert_eq!(loads_value(&dumps_value(&v).unwrap()).unwrap(), v);
}

#[test]
fn an_input_over_the_cap_is_refused_before_decoding() {
    let bytes = dumps_value(&Value::Bytes(vec![0; 100])).unwrap();
    match loads_value_capped(&bytes, 64) {
        Err(PickleError::TooLarge { len, cap: 64 }) => assert_eq!(len, bytes.len()),
        other => panic!("{other:?}"),
    }
    // Not even a valid header is looked at.
    assert!(matches!(loads_value_capped(&[0xff; 65], 64), Err(PickleError::TooLarge { len: 65, .. })));
    assert!(loads_value_capped(&bytes, bytes.len()).is_ok());
}

#[test]
fn shared_references_that_expand_past_the_budget_are_refused() {
    // l0 = []; l1 = [l0, l0]; l2 = [l1, l1] … 40 levels: 2^40 leaves as a tree.
    let mut p = vec![0x80, 4, b']', 0x94];
    for level in 0..40u32 {
        p.push(b'(');
        for _ in 0..2 {
            p.push(b'j');
            p.extend_from_slice(&level.to_le_bytes());
        }
        p.extend_from_slice(&[b'l', 0x94]);
    }
    p.push(b'.');
    match loads_value(&p) {
        Err(PickleError::MemoryBudget { budget }) => assert_eq!(budget, 1 << 20),
        other => panic!("{other:?}"),
    }
    // A generous budget still stops it; a tiny tree under the same scheme decodes.
    let options = DecodeOptions { cap: usize::MAX, memory_budget: 64 << 20 };
    assert!(matches!(loads_value_with(&p, options), Err(PickleError::MemoryBudget { .. })));
}

#[test]
fn a_list_that_contains_itself_is_refused() {
    // l = []; l.append(l)
    let p = b"\x80\x04]\x94h\x00a.";
    match loads_value(p) {
        Err(PickleError::Recursive { memo: 0 }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let depth = MAX_DEPTH + 1;
    let mut p = vec![0x80, 4];
    p.extend(std::iter::repeat_n(b']', depth));
    p.extend(std::iter::repeat_n(b'a', depth - 1));
    p.push(b'.');
    assert!(matches!(loads_value(&p), Err(PickleError::TooDeep { max: MAX_DEPTH })));
    // At the limit it decodes (and re-encodes).
    let mut ok = vec![0x80, 4];
    ok.extend(std::iter::repeat_n(b']', MAX_DEPTH));
    ok.extend(std::iter::repeat_n(b'a', MAX_DEPTH - 1));
    ok.push(b'.');
    let v = loads_value(&ok).unwrap();
    assert_eq!(loads_value(&dumps_value(&v).unwrap()).unwrap(), v);
    assert_eq!(format!("{v}").len(), 2 * MAX_DEPTH);
    // The writer holds the same limit: one more level is refused, not overflowed.
    let deeper = Value::List(vec![v]);
    assert!(matches!(dumps_value(&deeper), Err(PickleError::TooDeep { max: MAX_DEPTH })));
}

#[test]
fn length_fields_beyond_the_input_are_truncation_not_allocation() {
    let huge: [&[u8]; 4] = [
        b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x3f", // BINBYTES8 of 2^62 - 1
        b"\x80\x05\x96\x00\x00\x00\x00\x00\x00\x00\x01", // BYTEARRAY8 of 2^56
        b"\x80\x04X\xff\xff\xff\xff",                    // BINUNICODE of 4 GiB
        b"\x80\x02\x8b\xff\xff\xff\x7f",                 // LONG4 of 2 GiB
    ];
    for p in huge {
        match loads_value(p) {
            Err(PickleError::Truncated { offset }) => assert_eq!(offset, p.len()),
            other => panic!("{}: {other:?}", p.len()),
        }
    }
}

#[test]
fn refused_opcodes_and_protocols_are_named() {
    assert!(matches!(loads_value(b"\xff."), Err(PickleError::UnknownOpcode { opcode: 0xff, offset: 0 })));
    assert!(matches!(loads_value(b"\x80\x06N."), Err(PickleError::UnsupportedProtocol(6))));
    assert!(matches!(loads_value(b"Pid\n."), Err(PickleError::UnsupportedOpcode { opcode: "PERSID", .. })));
    assert!(matches!(loads_value(b"\x80\x02\x82\x01."), Err(PickleError::UnsupportedOpcode { opcode: "EXT", .. })));
    assert!(matches!(loads_value(b"\x80\x05\x97."), Err(PickleError::UnsupportedOpcode { opcode: "NEXT_BUFFER", .. })));
    assert!(matches!(loads_value(b""), Err(PickleError::Truncated { offset: 0 })));
    assert!(matches!(loads_value(b"N"), Err(PickleError::Truncated { offset: 1 })));
    assert!(matches!(loads_value(b"."), Err(PickleError::Malformed { offset: 0, .. })));
    // A class on its own is no value, even an allowed one.
    let err = loads_value(b"\x80\x04\x8c\x08builtins\x8c\x08KeyError\x93.").unwrap_err();
    assert_eq!(err.to_string(), "cannot build builtins.KeyError from nothing: a class is not a value");
}

#[test]
fn the_writer_refuses_exceptions_off_the_allow_list() {
    let v = Value::Exception { module: "os".into(), name: "system".into(), args: vec![Value::from("ls")] };
    match dumps_value(&v) {
        Err(PickleError::ForbiddenGlobal { module, name }) => {
            assert_eq!((module.as_str(), name.as_str()), ("os", "system"))
        }
        other => panic!("{other:?}"),
    }
}

fn hash(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

#[test]
fn numbers_compare_and_hash_as_in_python() {
    let big = Value::int(num_bigint::BigInt::from(1u128 << 70));
    let equal_groups = [
        vec![Value::Bool(true), Value::Int(1), Value::Float(1.0)],
        vec![Value::Bool(false), Value::Int(0), Value::Float(0.0), Value::Float(-0.0)],
        vec![big.clone(), Value::Float(2f64.powi(70))],
        vec![Value::Float(f64::NAN), Value::Float(-f64::NAN)],
        vec![Value::Bytes(b"ab".to_vec()), Value::ByteArray(b"ab".to_vec())],
        vec![
            Value::Set([Value::Int(1)].into_iter().collect()),
            Value::FrozenSet([Value::Float(1.0)].into_iter().collect()),
        ],
    ];
    for group in &equal_groups {
        for a in group {
            for b in group {
                assert_eq!(a, b);
                assert_eq!(hash(a), hash(b), "{a} and {b} are equal, so their hashes must be");
            }
        }
    }
    let unequal = [
        (Value::Int(1), Value::Float(1.5)),
        (Value::List(vec![Value::Int(1)]), Value::Tuple(vec![Value::Int(1)])),
        (Value::Str("1".into()), Value::Int(1)),
        (big, Value::Float(2f64.powi(70) + 2f64.powi(20))),
        (Value::Int(i64::MAX), Value::Float(i64::MAX as f64)),
        (Value::None, Value::Bool(false)),
    ];
    for (a, b) in &unequal {
        assert_ne!(a, b);
    }
}

#[test]
fn typed_errors_name_the_value_and_the_type() {
    let err = from_value::<u8>(Value::Int(300)).unwrap_err();
    assert_eq!(err.to_string(), "invalid value: integer `300`, expected u8");
    let err = from_value::<String>(Value::Bytes(b"\xff".to_vec())).unwrap_err();
    assert!(err.to_string().contains("expected a string"), "{err}");
    let err = from_value::<String>(Value::Int(1)).unwrap_err();
    assert_eq!(err.to_string(), "invalid type: integer `1`, expected a string");
    let err = loads::<u64>(&dumps(&-1i32).unwrap()).unwrap_err();
    assert!(err.to_string().contains("-1"), "{err}");
}

#[test]
fn python_types_map_to_rust_types() {
    // bytes and bytearray fill a Vec<u8>; set, frozenset and tuple fill a Vec; int fills f64.
    assert_eq!(from_value::<Vec<u8>>(Value::ByteArray(vec![1, 2])).unwrap(), vec![1, 2]);
    assert_eq!(from_value::<serde_bytes::ByteBuf>(Value::Bytes(vec![3])).unwrap().into_vec(), vec![3]);
    let set = Value::FrozenSet([Value::Int(4)].into_iter().collect());
    assert_eq!(from_value::<Vec<i32>>(set).unwrap(), vec![4]);
    assert_eq!(from_value::<f64>(Value::Int(2)).unwrap(), 2.0);
    assert_eq!(from_value::<Option<u8>>(Value::None).unwrap(), None);
    assert_eq!(from_value::<u128>(Value::int(num_bigint::BigInt::from(u128::MAX))).unwrap(), u128::MAX);
    // A Value inside a typed structure keeps every Python type.
    let reply = Value::Tuple(vec![Value::from("#ERROR"), Value::exception("KeyError", vec![Value::from("k")])]);
    let (kind, err): (String, Value) = from_value(reply).unwrap();
    assert_eq!(kind, "#ERROR");
    assert!(matches!(err, Value::Exception { ref name, .. } if name == "KeyError"));
    let back = mproc_pickle::to_value(&(kind, &err)).unwrap();
    assert_eq!(back.to_string(), "(\"#ERROR\", KeyError(\"k\"))");
}

#[test]
fn accessors_see_through_to_python_contents() {
    // CPython: pickle.dumps(('7f3', 'put', (12345, True), {}), protocol=4)
    let request =
        b"\x80\x04\x95\x18\x00\x00\x00\x00\x00\x00\x00(\x8c\x037f3\x94\x8c\x03put\x94M90\x88\x86\x94}\x94t\x94.";
    let v = loads_value(request).unwrap();
    let parts = v.as_items().unwrap();
    assert_eq!(parts[0].as_str(), Some("7f3"));
    assert_eq!(parts[1].as_str(), Some("put"));
    let args = parts[2].as_items().unwrap();
    assert_eq!((args[0].as_i64(), args[1].as_i64()), (Some(12345), Some(1)));
    assert!(parts[3].as_dict().unwrap().is_empty());
    assert_eq!(Value::ByteArray(vec![1]).as_bytes(), Some(&[1u8][..]));
    assert_eq!(Value::Float(1.0).as_i64(), None);
}

/// CPython's `array.array` pickle (protocol 3 on) reads as `Value::Array` without calling
/// anything; `array.array` is accepted only as the reconstructor's argument, and the
/// writer's form reads back.
#[test]
fn arrays_read_by_matching_their_globals_and_nothing_else() {
    // CPython 3.11: pickle.dumps(array.array('i', [7, -1]), 5)
    let cpython = b"\x80\x05\x95J\x00\x00\x00\x00\x00\x00\x00\x8c\x05array\x94\x8c\x14_array_reconstructor\x94\x93\x94(\x8c\x05array\x94\x8c\x05array\x94\x93\x94\x8c\x01i\x94K\x08C\x08\x07\x00\x00\x00\xff\xff\xff\xff\x94t\x94R\x94.";
    let want = Value::Array { typecode: 'i', data: vec![7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff] };
    assert_eq!(loads_value(cpython).unwrap(), want);
    assert_eq!(loads_value(&dumps_value(&want).unwrap()).unwrap(), want);
    // Protocol 2's form calls array.array('i', [7, -1]): refused, naming the global.
    let p2 = b"\x80\x02carray\narray\nq\x00X\x01\x00\x00\x00iq\x01]q\x02(K\x07J\xff\xff\xff\xffe\x86q\x03Rq\x04.";
    let err = loads_value(p2).unwrap_err();
    assert!(
        matches!(&err, PickleError::BadReduce { module, name, .. } if module == "array" && name == "array"),
        "{err}"
    );
    // The class alone is no value.
    assert!(loads_value(b"\x80\x04\x8c\x05array\x8c\x05array\x93.").is_err());
    // The reconstructor with something else than the class first.
    let err =
        loads_value(b"\x80\x04\x8c\x05array\x8c\x14_array_reconstructor\x93(N\x8c\x01iK\x08C\x00tR.").unwrap_err();
    assert!(err.to_string().contains("_array_reconstructor"), "{err}");
    // A typecode whose width the format contradicts.
    let bad =
        b"\x80\x04\x8c\x05array\x8c\x14_array_reconstructor\x93(\x8c\x05array\x8c\x05array\x93\x8c\x01dK\x08C\x00tR.";
    let err = loads_value(bad).unwrap_err().to_string();
    assert!(err.contains("'d'") && err.contains("machine format 8"), "{err}");
}
