//! The codec against the real CPython on this machine: every value kind pickled by CPython
//! with each protocol 0–5 is decoded here, re-encoded, and checked by CPython to be the
//! same value of the same types (`type(a) is type(b)` all the way down); Rust-made values
//! are checked against the Python expression they should equal; and what CPython writes
//! for globals off the allow-list is refused, naming the global.
//!
//! The tests skip, saying so, only when `python3` is absent.

use std::io::Write;
use std::process::{Command, Stdio};

use mproc_pickle::{dumps, dumps_value, loads, loads_value, to_value, PickleError, Value};
use serde::{Deserialize, Serialize};

/// The values CPython pickles and checks; `VALUES` is a list of `(name, value)`.
const PY_VALUES: &str = r#"
import sys, signal, pickle, base64, queue, math
signal.alarm(60)

shared = [1, 2]
shared_t = ('s', shared)
VALUES = [
    ('none', None), ('true', True), ('false', False),
    ('int0', 0), ('int1', 1), ('intm1', -1), ('int255', 255), ('int256', 256),
    ('int65535', 65535), ('int65536', 65536), ('i32min', -2**31), ('i32max', 2**31 - 1),
    ('i32over', 2**31), ('i64max', 2**63 - 1), ('i64min', -2**63), ('i64over', 2**63),
    ('i64under', -2**63 - 1), ('u64over', 2**64), ('googol', 10**100), ('mgoogol', -10**100),
    ('f0', 0.0), ('fm0', -0.0), ('f15', 1.5), ('finf', math.inf), ('fminf', -math.inf),
    ('fnan', math.nan), ('fbig', 1e308), ('ftiny', 5e-324), ('fthird', 1 / 3),
    ('s0', ''), ('s1', 'a'), ('suni', 'é ü 漢字 🎉'), ('s300', 'x' * 300), ('snl', 'a\nb\\c\'"'),
    ('b0', b''), ('b2', b'\x00\xff'), ('b300', b'y' * 300), ('bhi', bytes(range(256))),
    ('ba0', bytearray()), ('ba3', bytearray(b'ab\x00')), ('bahi', bytearray(range(256))),
    ('l0', []), ('l3', [1, 'a', None]), ('t0', ()), ('t1', (1,)), ('t2', (1, 2)),
    ('t3', (1, 2, 3)), ('t4', (1, 2, 3, 4)),
    ('d0', {}), ('dmix', {'a': 1, 2: 'b', (1, 2): [3], None: 1.5, 2**70: b'k', True: 0}),
    ('set0', set()), ('set3', {1, 2, 'a'}), ('fs0', frozenset()), ('fs2', frozenset({1, 'b'})),
    ('keyerror', KeyError('k')), ('indexerror', IndexError('list index out of range')),
    ('valueerror', ValueError()), ('empty', queue.Empty()), ('full', queue.Full()),
    ('runtime2', RuntimeError('x', 1)), ('eoferror', EOFError()), ('typeerror', TypeError('t')),
    ('attrerror', AttributeError('a')), ('exception', Exception('e', [1])),
    ('nested', {'l': [{'t': (1, [2, {3: b'x'}]), 'fs': frozenset({(1, 2)})}]}),
    ('sharedlist', [shared, shared, shared_t, shared_t]),
    ('long', list(range(3000))),
    ('request', ('7f3', 'put', (12345,), {})), ('dummy', (None, 'dummy', (), {})),
]

def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(same(k1, k2) and same(v1, v2)
                                        for (k1, v1), (k2, v2) in zip(a.items(), b.items()))
    if isinstance(a, (set, frozenset)):
        return a == b and sorted(map(repr, a)) == sorted(map(repr, b))
    if isinstance(a, BaseException):
        return same(a.args, b.args)
    return a == b
"#;

/// Runs `body` after the prelude with `input` on stdin; returns stdout, asserting success.
fn run_py(body: &str, input: &str) -> String {
    let mut child = Command::new(mproc_testkit::python3())
        .arg("-c")
        .arg(format!("{PY_VALUES}\n{body}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    // Written from a thread so a full stdout pipe cannot deadlock the two processes.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("python3 runs");
    writer.join().expect("writer thread").expect("write python3's stdin");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert!(out.status.success(), "python3 failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let n = chunk
            .iter()
            .filter(|&&c| c != b'=')
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | u32::from(value(c)) << (18 - 6 * i));
        for i in 0..3 - pad {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn every_kind_every_protocol_round_trips_through_rust() {
    // CPython pickles each value with each protocol; Rust decodes and re-encodes.
    let pickles = run_py(
        "for name, v in VALUES:\n    for p in range(6):\n        print(name, p, base64.b64encode(pickle.dumps(v, protocol=p)).decode())",
        "",
    );
    let mut back = String::new();
    let mut count = 0;
    for line in pickles.lines() {
        let mut parts = line.split(' ');
        let (name, proto, data) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let value = loads_value(&unb64(data)).unwrap_or_else(|e| panic!("{name} protocol {proto}: {e}"));
        let again = dumps_value(&value).unwrap_or_else(|e| panic!("{name} protocol {proto}: encode: {e}"));
        back.push_str(&format!("{name} {proto} {}\n", b64(&again)));
        count += 1;
    }
    assert!(count >= 6 * 60, "only {count} pickles from python3");
    // CPython checks each re-encoded value is the original, type for type.
    let verdict = run_py(
        "import sys\nbyname = dict(VALUES)\nbad = []\nn = 0\nfor line in sys.stdin:\n    name, p, data = line.split()\n    got = pickle.loads(base64.b64decode(data))\n    n += 1\n    if not same(byname[name], got):\n        bad.append(f'{name} p{p}: {got!r}')\nprint(n, 'checked;', 'bad:', bad)",
        &back,
    );
    assert_eq!(verdict.trim(), format!("{count} checked; bad: []"));
}

#[test]
fn python_and_rust_agree_on_dict_keys() {
    // Python folds 1, 1.0 and True into one key, keeping the first key and the last value.
    let out = run_py("print(base64.b64encode(pickle.dumps({1: 'a', 1.0: 'b', True: 'c', 2: 'd'})).decode())", "");
    let v = loads_value(&unb64(out.trim())).unwrap();
    let Value::Dict(d) = &v else { panic!("not a dict: {v}") };
    assert_eq!(d.len(), 2);
    assert_eq!(d.get(&Value::Float(1.0)), Some(&Value::from("c")));
    assert!(matches!(d.get_index(0), Some((Value::Int(1), _))));
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Task {
    id: u64,
    name: String,
    weights: Vec<f64>,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    parent: Option<u32>,
    pair: (i8, bool),
    kind: Kind,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Kind {
    Plain,
    Sized(u32),
}

#[test]
fn rust_values_read_in_python_as_expected() {
    let task = Task {
        id: u64::MAX,
        name: "t".into(),
        weights: vec![0.5, -1.0],
        blob: vec![0, 1, 255],
        parent: None,
        pair: (-3, true),
        kind: Kind::Sized(9),
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (dumps(&task).unwrap(), "{'id': 2**64 - 1, 'name': 't', 'weights': [0.5, -1.0], 'blob': b'\\x00\\x01\\xff', 'parent': None, 'pair': (-3, True), 'kind': {'Sized': 9}}"),
        (dumps(&Kind::Plain).unwrap(), "'Plain'"),
        (dumps(&i128::MIN).unwrap(), "-2**127"),
        (dumps_value(&Value::exception("KeyError", vec![Value::from("k")])).unwrap(), "KeyError('k')"),
        (
            dumps_value(&Value::Exception { module: "queue".into(), name: "Empty".into(), args: vec![] }).unwrap(),
            "queue.Empty()",
        ),
        (dumps_value(&Value::ByteArray(vec![7; 300])).unwrap(), "bytearray(b'\\x07' * 300)"),
        (dumps(&("#RETURN", to_value(&vec![1u8, 2]).unwrap())).unwrap(), "('#RETURN', [1, 2])"),
    ];
    let input: String = cases.iter().map(|(bytes, expr)| format!("{}\t{expr}\n", b64(bytes))).collect();
    let verdict = run_py(
        "import sys\nbad = []\nfor line in sys.stdin:\n    data, expr = line.rstrip('\\n').split('\\t')\n    got = pickle.loads(base64.b64decode(data))\n    if not same(eval(expr), got):\n        bad.append(f'{expr} != {got!r}')\nprint('bad:', bad)",
        &input,
    );
    assert_eq!(verdict.trim(), "bad: []");
    // And back: what Python writes for the same dict fills the Rust struct.
    let out = run_py(
        "print(base64.b64encode(pickle.dumps({'id': 2**64 - 1, 'name': 't', 'weights': [0.5, -1], 'blob': bytearray(b'\\x00\\x01\\xff'), 'parent': None, 'pair': (-3, True), 'kind': {'Sized': 9}})).decode())",
        "",
    );
    let back: Task = loads(&unb64(out.trim())).unwrap();
    assert_eq!(back, task);
}

#[test]
fn globals_off_the_allow_list_are_refused_by_name() {
    let out = run_py(
        "import os, collections, fractions\nclass Evil:\n    def __reduce__(self):\n        return (os.system, ('echo pwned',))\nfor v in (Evil(), collections.OrderedDict(a=1), fractions.Fraction(1, 3), print):\n    for p in (0, 2, 4, 5):\n        print(base64.b64encode(pickle.dumps(v, protocol=p)).decode())",
        "",
    );
    let mut names = Vec::new();
    for line in out.lines() {
        match loads_value(&unb64(line)) {
            Err(PickleError::ForbiddenGlobal { module, name }) => names.push(format!("{module}.{name}")),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    names.dedup();
    assert_eq!(
        names,
        ["posix.system", "collections.OrderedDict", "fractions.Fraction", "__builtin__.print", "builtins.print"]
    );
}
