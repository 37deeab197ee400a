//! `pickle_codec`: pickle encode + decode of a 1 KiB dict (1029 bytes as CPython 3.11
//! pickles it, 943 as mproc does, without memo opcodes; 64 entries: str keys; int, str
//! and float values), the same dict `mp_bench.py` times with CPython's `pickle.dumps` +
//! `pickle.loads`.
//!
//! - `mproc`: `dumps_value` + `loads_value` of a `Value` (what a manager server does);
//! - `mproc-typed`: `dumps` + `loads` of a `BTreeMap<String, Field>` through serde, where
//!   `Field` is an untagged enum (int, str or float), which serde decodes by buffering each
//!   value and trying the variants in turn: most of this row is that serde cost;
//! - `serde-pickle`: the same `Value` round trip in serde-pickle's own value type (which
//!   reads no exception or bytearray and no other global), for reference.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use mproc_pickle::{dumps, dumps_value, loads, loads_value, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Field {
    Int(i64),
    Str(String),
    Float(f64),
}

/// Python: `{f'k{i:03}': (i * 7919 if i % 3 == 0 else f'value-{i:04}' if i % 3 == 1 else i * 0.5) for i in range(64)}`
fn field(i: i64) -> Field {
    match i % 3 {
        0 => Field::Int(i * 7919),
        1 => Field::Str(format!("value-{i:04}")),
        _ => Field::Float(i as f64 * 0.5),
    }
}

fn pickle_codec(c: &mut Criterion) {
    let typed: BTreeMap<String, Field> = (0..64).map(|i| (format!("k{i:03}"), field(i))).collect();
    let value = mproc_pickle::to_value(&typed).unwrap();
    let bytes = dumps_value(&value).unwrap();
    assert!((900..1100).contains(&bytes.len()), "the dict pickles to {} bytes", bytes.len());
    let Value::Dict(_) = loads_value(&bytes).unwrap() else { panic!("not a dict") };

    let mut g = c.benchmark_group("pickle_codec");
    g.bench_function("mproc", |b| {
        b.iter(|| {
            let bytes = dumps_value(black_box(&value)).unwrap();
            black_box(loads_value(&bytes).unwrap())
        })
    });
    g.bench_function("mproc-typed", |b| {
        b.iter(|| {
            let bytes = dumps(black_box(&typed)).unwrap();
            black_box(loads::<BTreeMap<String, Field>>(&bytes).unwrap())
        })
    });
    let theirs = serde_pickle::value_from_slice(&bytes, serde_pickle::DeOptions::new()).unwrap();
    g.bench_function("serde-pickle", |b| {
        b.iter(|| {
            let bytes = serde_pickle::value_to_vec(black_box(&theirs), serde_pickle::SerOptions::new()).unwrap();
            black_box(serde_pickle::value_from_slice(&bytes, serde_pickle::DeOptions::new()).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, pickle_codec);
criterion_main!(benches);
