//! Properties: any `Value` survives the writer and the reader with every Python type kept;
//! serde types survive `dumps`/`loads`; equal numbers hash alike.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use mproc_pickle::{
    dumps, dumps_value, from_value, loads, loads_value, to_value, Dict, Proxy, Token, Value, PROXY_TYPES,
};
use num_bigint::BigInt;
use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<i128>().prop_map(|i| Value::int(BigInt::from(i) * BigInt::from(i))),
        any::<f64>().prop_map(Value::Float),
        ".{0,40}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::ByteArray),
        (prop::sample::select(&['b', 'B', 'h', 'H', 'i', 'I', 'l', 'L', 'q', 'Q', 'f', 'd'][..]), 0usize..6)
            .prop_flat_map(|(typecode, n)| {
                let size = match typecode {
                    'b' | 'B' => 1,
                    'h' | 'H' => 2,
                    'i' | 'I' | 'f' => 4,
                    _ => 8,
                };
                proptest::collection::vec(any::<u8>(), n * size).prop_map(move |data| Value::Array { typecode, data })
            }),
    ]
}

fn hashable() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        ".{0,12}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Tuple),
            proptest::collection::vec((hashable(), inner.clone()), 0..8)
                .prop_map(|kv| Value::Dict(kv.into_iter().collect::<Dict>())),
            proptest::collection::vec(hashable(), 0..8).prop_map(|m| Value::Set(m.into_iter().collect())),
            proptest::collection::vec(hashable(), 0..8).prop_map(|m| Value::FrozenSet(m.into_iter().collect())),
            (prop::sample::select(mproc_pickle::ALLOWED_EXCEPTIONS), proptest::collection::vec(inner.clone(), 0..3))
                .prop_map(|((module, name), args)| Value::Exception {
                    module: module.to_owned(),
                    name: name.to_owned(),
                    args
                }),
            token(inner.clone()).prop_map(|t| Value::Token(Box::new(t))),
            (
                prop::sample::select(PROXY_TYPES),
                token(inner.clone()),
                proptest::collection::vec((hashable(), inner), 0..3)
            )
                .prop_map(|(proxytype, token, kwds)| Value::Proxy(Box::new(Proxy {
                    proxytype: proxytype.to_owned(),
                    token,
                    serializer: "pickle".to_owned(),
                    kwds: kwds.into_iter().collect(),
                }))),
        ]
    })
}

/// A manager token: any address value (CPython's are a `(host, port)` tuple or a path).
fn token(address: impl Strategy<Value = Value>) -> impl Strategy<Value = Token> {
    (".{0,12}", address, "[0-9a-f]{1,16}").prop_map(|(typeid, address, id)| Token { typeid, address, id })
}

fn hash(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

proptest! {
    #[test]
    fn values_round_trip_with_their_types(v in value()) {
        let back = loads_value(&dumps_value(&v).unwrap()).unwrap();
        prop_assert_eq!(&back, &v);
        // Display shows the Python type (tuple vs list, bytearray vs bytes, set vs frozenset).
        prop_assert_eq!(back.to_string(), v.to_string());
    }

    #[test]
    fn values_survive_serde_as_values(v in value()) {
        let back: Value = from_value(to_value(&v).unwrap()).unwrap();
        prop_assert_eq!(back.to_string(), v.to_string());
        prop_assert_eq!(back, v);
    }

    #[test]
    fn serde_types_round_trip(
        t in (any::<u64>(), ".{0,20}", proptest::collection::vec(any::<i32>(), 0..10), any::<Option<f64>>()),
        m in proptest::collection::btree_map(".{0,8}", any::<bool>(), 0..6),
    ) {
        let back: (u64, String, Vec<i32>, Option<f64>) = loads(&dumps(&t).unwrap()).unwrap();
        prop_assert_eq!(back.0, t.0);
        prop_assert_eq!(&back.1, &t.1);
        prop_assert_eq!(&back.2, &t.2);
        prop_assert!(back.3 == t.3 || back.3.is_some_and(f64::is_nan));
        let back: BTreeMap<String, bool> = loads(&dumps(&m).unwrap()).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn equal_numbers_hash_alike(i in any::<i64>(), shift in 0u32..80) {
        let f = (i as f64) * 2f64.powi(shift as i32);
        let as_int = Value::int(BigInt::from(i) << shift);
        let as_float = Value::Float(f);
        // An integral float equals the int of the same value, and then hashes alike.
        if as_int == as_float {
            prop_assert_eq!(hash(&as_int), hash(&as_float));
        }
        if f.fract() == 0.0 && f.abs() < 2f64.powi(62) {
            let exact = Value::Int(f as i64);
            prop_assert_eq!(&exact, &as_float);
            prop_assert_eq!(hash(&exact), hash(&as_float));
        }
    }
}
