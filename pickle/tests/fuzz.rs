//! Decoder fuzz: over a million inputs — CPython-written pickles (every protocol) and
//! encoder output, mutated, plus random bytes — decoded under a small cap and memory
//! budget. No input may panic; each one that decodes must re-encode and decode to the same
//! value; CPython's own pickles must decode to the values they were made from. The run is
//! seeded, so a failure repeats; its input is printed in hex. serde-pickle reads the same
//! CPython pickles to the same values wherever it can read them (no exceptions).
//!
//! `FUZZ_INPUTS` sets the count (default 1,000,000, about 10 s in a debug build).

use std::panic::{catch_unwind, AssertUnwindSafe};

use mproc_pickle::{dumps_value, loads_value, loads_value_with, DecodeOptions, Dict, PickleError, Value};

/// CPython 3.11's `pickle.dumps(v, protocol=p)` for p in 0, 2, 3, 4, 5, one row per value.
const CPYTHON: [[&str; 5]; 5] = [
    // {'a': [1, 2.5, None, True], 2: (b'xy', 'é'), (1, 2): {3, 4}, 'fs': frozenset({5}), 'ba': bytearray(b'q')}
    [
        "286470300a56610a70310a286c70320a49310a6146322e350a614e614930310a617349320a28635f636f646563730a656e636f64650a70330a285678790a70340a566c6174696e310a70350a7470360a5270370a56e90a70380a7470390a732849310a49320a747031300a635f5f6275696c74696e5f5f0a7365740a7031310a28286c7031320a49330a6149340a61747031330a527031340a735666730a7031350a635f5f6275696c74696e5f5f0a66726f7a656e7365740a7031360a28286c7031370a49350a61747031380a527031390a735662610a7032300a635f5f6275696c74696e5f5f0a6279746561727261790a7032310a2867330a2856710a7032320a67350a747032330a527032340a747032350a527032360a732e",
        "80027d71002858010000006171015d7102284b014740040000000000004e88654b02635f636f646563730a656e636f64650a710358020000007879710458060000006c6174696e3171058671065271075802000000c3a971088671094b014b0286710a635f5f6275696c74696e5f5f0a7365740a710b5d710c284b034b046585710d52710e58020000006673710f635f5f6275696c74696e5f5f0a66726f7a656e7365740a71105d71114b0561857112527113580200000062617114635f5f6275696c74696e5f5f0a6279746561727261790a711568035801000000717116680586711752711885711952711a752e",
        "80037d71002858010000006171015d7102284b014740040000000000004e88654b024302787971035802000000c3a971048671054b014b02867106636275696c74696e730a7365740a71075d7108284b034b046585710952710a58020000006673710b636275696c74696e730a66726f7a656e7365740a710c5d710d4b056185710e52710f580200000062617110636275696c74696e730a6279746561727261790a71114301717112857113527114752e",
        "80049566000000000000007d94288c0161945d94284b014740040000000000004e88654b0243027879948c02c3a99486944b014b0286948f94284b034b04908c02667394284b0591948c026261948c086275696c74696e73948c096279746561727261799493944301719485945294752e",
        "80059550000000000000007d94288c0161945d94284b014740040000000000004e88654b0243027879948c02c3a99486944b014b0286948f94284b034b04908c02667394284b0591948c026261949601000000000000007194752e",
    ],
    // [[1, 2], [1, 2], ([1, 2], 'k')]
    [
        "286c70300a286c70310a49310a6149320a616167310a612867310a566b0a70320a7470330a612e",
        "80025d7100285d7101284b014b02656801680158010000006b7102867103652e",
        "80035d7100285d7101284b014b02656801680158010000006b7102867103652e",
        "80049517000000000000005d94285d94284b014b0265680168018c016b948694652e",
        "80059517000000000000005d94285d94284b014b0265680168018c016b948694652e",
    ],
    // ('7f3', 'put', (12345, 1180591620717411303424, -3), {'block': False, 'timeout': 1.5})
    [
        "28563766330a70300a567075740a70310a284931323334350a4c313138303539313632303731373431313330333432344c0a492d330a7470320a286470330a56626c6f636b0a70340a4930300a735674696d656f75740a70350a46312e350a737470360a2e",
        "80022858030000003766337100580300000070757471014d39308a090000000000000000404afdffffff8771027d7103285805000000626c6f636b710489580700000074696d656f75747105473ff8000000000000757471062e",
        "80032858030000003766337100580300000070757471014d39308a090000000000000000404afdffffff8771027d7103285805000000626c6f636b710489580700000074696d656f75747105473ff8000000000000757471062e",
        "8004954500000000000000288c03376633948c03707574944d39308a090000000000000000404afdffffff87947d94288c05626c6f636b94898c0774696d656f757494473ff80000000000007574942e",
        "8005954500000000000000288c03376633948c03707574944d39308a090000000000000000404afdffffff87947d94288c05626c6f636b94898c0774696d656f757494473ff80000000000007574942e",
    ],
    // ('#ERROR', KeyError('missing'))
    [
        "2856234552524f520a70300a63657863657074696f6e730a4b65794572726f720a70310a28566d697373696e670a70320a7470330a5270340a7470350a2e",
        "80025806000000234552524f52710063657863657074696f6e730a4b65794572726f720a710158070000006d697373696e6771028571035271048671052e",
        "80035806000000234552524f527100636275696c74696e730a4b65794572726f720a710158070000006d697373696e6771028571035271048671052e",
        "80049532000000000000008c06234552524f52948c086275696c74696e73948c084b65794572726f729493948c076d697373696e67948594529486942e",
        "80059532000000000000008c06234552524f52948c086275696c74696e73948c084b65794572726f729493948c076d697373696e67948594529486942e",
    ],
    // ('#ERROR', Empty())
    [
        "2856234552524f520a70300a635f71756575650a456d7074790a70310a28745270320a7470330a2e",
        "80025806000000234552524f527100635f71756575650a456d7074790a7101295271028671032e",
        "80035806000000234552524f527100635f71756575650a456d7074790a7101295271028671032e",
        "80049522000000000000008c06234552524f52948c065f7175657565948c05456d70747994939429529486942e",
        "80059522000000000000008c06234552524f52948c065f7175657565948c05456d70747994939429529486942e",
    ],
];

/// `('7f', '__setitem__', ('k', lock, lock), {})`, `lock` an `AcquirerProxy`.
const PROXY_REQUEST: &str = "800495a200000000000000288c023766948c0b5f5f7365746974656d5f5f948c016b948c186d756c746970726f63657373696e672e6d616e6167657273948c0c52656275696c6450726f78799493942868038c0d416371756972657250726f787994939468038c05546f6b656e9493942981948c044c6f636b948c093132372e302e302e31944dcbc386948c0437663361948794628c067069636b6c65947d9474945294681387947d9474942e";

/// `('#PROXY', (('__next__',), Token('Iterator', '/tmp/x', 'a1')))`.
const PROXY_REPLY: &str = "800258060000002350524f5859710058080000005f5f6e6578745f5f7101857102636d756c746970726f63657373696e672e6d616e61676572730a546f6b656e0a71032981710458080000004974657261746f72710558060000002f746d702f7871065802000000613171078771086286710986710a2e";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn s(t: &str) -> Value {
    Value::from(t)
}

fn i(n: i64) -> Value {
    Value::Int(n)
}

/// The values the `CPYTHON` rows were made from.
fn cpython_values() -> Vec<Value> {
    let mut d = Dict::new();
    d.insert(s("a"), Value::List(vec![i(1), Value::Float(2.5), Value::None, Value::Bool(true)]));
    d.insert(i(2), Value::Tuple(vec![Value::Bytes(b"xy".to_vec()), s("é")]));
    d.insert(Value::Tuple(vec![i(1), i(2)]), Value::Set([i(3), i(4)].into_iter().collect()));
    d.insert(s("fs"), Value::FrozenSet([i(5)].into_iter().collect()));
    d.insert(s("ba"), Value::ByteArray(b"q".to_vec()));
    let shared = Value::List(vec![i(1), i(2)]);
    let mut kw = Dict::new();
    kw.insert(s("block"), Value::Bool(false));
    kw.insert(s("timeout"), Value::Float(1.5));
    vec![
        Value::Dict(d),
        Value::List(vec![shared.clone(), shared.clone(), Value::Tuple(vec![shared, s("k")])]),
        Value::Tuple(vec![
            s("7f3"),
            s("put"),
            Value::Tuple(vec![i(12345), Value::int(num_bigint::BigInt::from(1u128 << 70)), i(-3)]),
            Value::Dict(kw),
        ]),
        Value::Tuple(vec![s("#ERROR"), Value::exception("KeyError", vec![s("missing")])]),
        Value::Tuple(vec![
            s("#ERROR"),
            Value::Exception { module: "queue".into(), name: "Empty".into(), args: vec![] },
        ]),
    ]
}

#[test]
fn cpython_pickles_decode_to_their_values() {
    for (row, want) in CPYTHON.iter().zip(cpython_values()) {
        for (p, text) in row.iter().enumerate() {
            let got = loads_value(&unhex(text)).unwrap_or_else(|e| panic!("{want} protocol {p}: {e}"));
            assert_eq!(got, want, "protocol {p}");
            // Types too: a tuple is not a list, bytearray not bytes (== would allow both).
            assert_eq!(format!("{got}"), format!("{want}"), "protocol {p}");
        }
    }
}

#[test]
fn os_system_is_refused_by_name_in_every_spelling() {
    let spellings: [&[u8]; 4] = [
        b"cos\nsystem\n(S'echo pwned'\ntR.", // protocol 0
        b"\x80\x02cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.", // protocol 2
        b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x04echo\x85R.", // STACK_GLOBAL
        b"(cos\nsystem\nS'echo'\no.",        // OBJ
    ];
    for (n, p) in spellings.iter().enumerate() {
        match loads_value(p) {
            Err(PickleError::ForbiddenGlobal { module, name }) => {
                assert!(module == "os" || module == "posix", "spelling {n}: {module}");
                assert_eq!(name, "system", "spelling {n}");
            }
            other => panic!("spelling {n}: expected a refusal, got {other:?}"),
        }
    }
    // INST names the class and calls it at once.
    match loads_value(b"(S'echo'\nios\nsystem\n.") {
        Err(PickleError::ForbiddenGlobal { module, name }) => {
            assert_eq!((module.as_str(), name.as_str()), ("os", "system"))
        }
        other => panic!("INST: expected a refusal, got {other:?}"),
    }
}

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Opcodes worth planting: the ones with lengths, marks, memo ids and globals.
const INTERESTING: &[u8] = &[
    b'(', b'.', b'0', b'1', b'2', b'R', b'a', b'b', b'c', b'd', b'e', b'g', b'h', b'i', b'j', b'l', b'o', b'p', b'q',
    b'r', b's', b't', b'u', b'}', b']', b')', b'B', b'C', b'X', b'T', b'U', b'J', b'K', b'M', b'L', b'I', b'F', b'G',
    b'N', b'P', b'Q', b'S', b'V', 0x80, 0x81, 0x82, 0x85, 0x86, 0x87, 0x88, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90,
    0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0xff, 0x00, b'\n',
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], out: &mut Vec<u8>) {
    out.clear();
    if rng.below(10) == 0 {
        // Random bytes, mostly behind a protocol header.
        if rng.below(2) == 0 {
            out.extend_from_slice(&[0x80, rng.below(7) as u8]);
        }
        for _ in 0..rng.below(48) {
            out.push(if rng.below(2) == 0 { INTERESTING[rng.below(INTERESTING.len())] } else { rng.next() as u8 });
        }
        return;
    }
    out.extend_from_slice(&corpus[rng.below(corpus.len())]);
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                out[at] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(len + 1);
                out.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = rng.below(len - at + 1).min(8);
                out.drain(at..at + n);
            }
            4 if len > 0 => {
                // Duplicate a run: repeats memo gets, appends, marks.
                let at = rng.below(len);
                let n = rng.below(len - at + 1).min(16);
                let run: Vec<u8> = out[at..at + n].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, run.iter().copied().cycle().take(n * (1 + rng.below(8))));
            }
            5 => {
                // Splice in the tail of another pickle.
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let at = rng.below(len + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => {
                // A length field set huge, or an id set large.
                let at = rng.below(len);
                let big = [0xff, 0x7f, 0x80, 0xfe][rng.below(4)];
                for b in out.iter_mut().skip(at).take(1 + rng.below(8)) {
                    *b = big;
                }
            }
            _ => {
                let at = rng.below(len + 1);
                out.truncate(at);
            }
        }
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = CPYTHON.iter().flatten().map(|t| unhex(t)).collect();
    for v in cpython_values() {
        corpus.push(dumps_value(&v).unwrap());
    }
    // Deep, long and big-number shapes from the encoder.
    let mut deep = Value::None;
    for _ in 0..40 {
        deep = Value::List(vec![deep]);
    }
    corpus.push(dumps_value(&deep).unwrap());
    corpus.push(dumps_value(&Value::List((0..200).map(Value::Int).collect())).unwrap());
    corpus.push(dumps_value(&Value::int(num_bigint::BigInt::from(-7) << 300)).unwrap());
    corpus.push(dumps_value(&Value::ByteArray(vec![1; 300])).unwrap());
    // CPython 3.11: pickle.dumps(array.array('i', [7, -1]), 5)
    corpus.push(
        b"\x80\x05\x95J\x00\x00\x00\x00\x00\x00\x00\x8c\x05array\x94\x8c\x14_array_reconstructor\x94\x93\x94(\x8c\x05array\x94\x8c\x05array\x94\x93\x94\x8c\x01i\x94K\x08C\x08\x07\x00\x00\x00\xff\xff\xff\xff\x94t\x94R\x94."
            .to_vec(),
    );
    // Manager references from CPython 3.11: a request storing a proxy (twice, memoized,
    // protocol 4) and a `'#PROXY'` reply (protocol 2).
    corpus.push(unhex(PROXY_REQUEST));
    corpus.push(unhex(PROXY_REPLY));
    corpus
}

#[test]
fn a_million_mutated_and_random_inputs_never_panic() {
    let count: usize = std::env::var("FUZZ_INPUTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let corpus = corpus();
    let options = DecodeOptions { cap: 4096, memory_budget: 256 << 10 };
    let mut rng = Rng(0x5eed_1e55_c0de_f00d);
    let mut input = Vec::new();
    let (mut decoded, mut too_large) = (0usize, 0usize);
    for n in 0..count {
        mutate(&mut rng, &corpus, &mut input);
        let outcome = catch_unwind(AssertUnwindSafe(|| loads_value_with(&input, options)));
        let result = outcome.unwrap_or_else(|_| panic!("input {n} panicked the decoder: {}", hex(&input)));
        match result {
            Ok(value) => {
                decoded += 1;
                // What decodes re-encodes, and decodes to itself.
                let again =
                    dumps_value(&value).unwrap_or_else(|e| panic!("input {n} ({}): re-encode: {e}", hex(&input)));
                let back =
                    loads_value(&again).unwrap_or_else(|e| panic!("input {n} ({}): decode again: {e}", hex(&input)));
                assert_eq!(back, value, "input {n}: {}", hex(&input));
            }
            Err(PickleError::TooLarge { .. }) => too_large += 1,
            Err(_) => {}
        }
    }
    // Bounded memory: the cap and budget above keep every decode small, whatever the input
    // claims (lengths of 2^63, memo references repeated a million times).
    let peak_kib = peak_rss_kib();
    assert!(peak_kib < 256 << 10, "peak resident memory {peak_kib} KiB");
    // The mutations keep a fair share of inputs valid, so the decoder's deep paths run.
    assert!(decoded > count / 20, "only {decoded} of {count} inputs decoded");
    assert!(too_large < count / 100, "{too_large} inputs over the cap: the corpus is too big");
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// serde-pickle's reading of a pickle, in this crate's terms.
fn from_serde_pickle(v: serde_pickle::Value) -> Value {
    use serde_pickle::Value as P;
    match v {
        P::None => Value::None,
        P::Bool(b) => Value::Bool(b),
        P::I64(i) => Value::Int(i),
        P::Int(b) => Value::int(b),
        P::F64(f) => Value::Float(f),
        P::Bytes(b) => Value::Bytes(b),
        P::String(s) => Value::Str(s),
        P::List(items) => Value::List(items.into_iter().map(from_serde_pickle).collect()),
        P::Tuple(items) => Value::Tuple(items.into_iter().map(from_serde_pickle).collect()),
        P::Set(m) => Value::Set(m.into_iter().map(|h| from_serde_pickle(h.into_value())).collect()),
        P::FrozenSet(m) => Value::FrozenSet(m.into_iter().map(|h| from_serde_pickle(h.into_value())).collect()),
        P::Dict(d) => {
            Value::Dict(d.into_iter().map(|(k, v)| (from_serde_pickle(k.into_value()), from_serde_pickle(v))).collect())
        }
    }
}

/// Differential check against serde-pickle on CPython's pickles: where both read a pickle
/// they agree (serde-pickle reads a bytearray as bytes, which `Value` equality allows);
/// the exception replies, which every manager error carries, serde-pickle cannot read.
#[test]
fn serde_pickle_agrees_where_it_can_read() {
    let options = || serde_pickle::DeOptions::new().decode_strings();
    for (row, want) in CPYTHON.iter().zip(cpython_values()) {
        let has_exception = want.to_string().contains("Error(") || want.to_string().contains("Empty(");
        for (p, text) in row.iter().enumerate() {
            let theirs = serde_pickle::value_from_slice(&unhex(text), options());
            match theirs {
                Ok(v) => {
                    assert!(!has_exception, "serde-pickle read {want} (protocol {p})");
                    assert_eq!(from_serde_pickle(v), want, "protocol {p}");
                }
                Err(e) => assert!(has_exception, "serde-pickle failed on {want} (protocol {p}): {e}"),
            }
        }
    }
}
