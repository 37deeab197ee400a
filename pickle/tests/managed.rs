//! Manager references against the real CPython: a `multiprocessing.managers.Token` and
//! a pickled proxy (`RebuildProxy(...)`) read as data, written back, and rebuilt by
//! CPython into the same token and the same proxy type; a proxy type from elsewhere is
//! refused by name on both sides. Skips, saying so, only when `python3` is absent.

use std::process::{Command, Stdio};

use mproc_pickle::{dumps_value, loads_value, Dict, PickleError, Proxy, Token, Value};

/// Imports, a watchdog, and a proxy made without a server (`incref=False` connects nowhere).
const PRELUDE: &str = r#"
import pickle, signal, sys
from multiprocessing.managers import Token, AcquirerProxy, DictProxy, AutoProxy, RebuildProxy
signal.alarm(60)
tok = Token('Lock', ('127.0.0.1', 50123), '7f3a')
lock = AcquirerProxy(tok, 'pickle', incref=False)
"#;

/// The interpreter: `python3`, or the one `MPROC_TEST_PYTHON` names.
fn interpreter() -> String {
    mproc_testkit::python3()
}

fn python(body: &str, input: &str) -> Option<String> {
    let ok =
        Command::new(interpreter()).arg("-c").arg("pass").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: python3 is not installed");
        return None;
    }
    let out = Command::new(interpreter())
        .arg("-c")
        .arg(format!("{PRELUDE}\n{body}"))
        .arg(input)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(out.status.success(), "python3 failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    Some(stdout)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn the_token() -> Token {
    Token::new("Lock", Value::Tuple(vec![Value::from("127.0.0.1"), Value::Int(50123)]), "7f3a")
}

#[test]
fn a_token_from_cpython_reads_as_data_in_every_protocol() {
    let Some(out) = python("for p in (2, 3, 4, 5):\n    print(pickle.dumps(tok, protocol=p).hex())", "") else {
        return;
    };
    for line in out.lines() {
        let v = loads_value(&unhex(line)).unwrap();
        assert_eq!(v, Value::Token(Box::new(the_token())), "{line}");
    }
}

#[test]
fn a_proxy_from_cpython_reads_as_data_inside_a_request() {
    let body = "req = ('7f', '__setitem__', ('k', lock), {})\nprint(pickle.dumps(req, protocol=4).hex())\n\
                print(pickle.dumps((None, 'create', ('Condition', lock, lock), {}), protocol=5).hex())";
    let Some(out) = python(body, "") else { return };
    let mut lines = out.lines();
    let Value::Tuple(req) = loads_value(&unhex(lines.next().unwrap())).unwrap() else { panic!("a tuple") };
    let Value::Tuple(args) = &req[2] else { panic!("args") };
    let Value::Proxy(p) = &args[1] else { panic!("a proxy, got {}", args[1]) };
    assert_eq!((p.proxytype.as_str(), &p.token, p.serializer.as_str()), ("AcquirerProxy", &the_token(), "pickle"));
    assert!(p.kwds.is_empty());
    // The same proxy twice: CPython memoizes it, the reader copies it.
    let Value::Tuple(req) = loads_value(&unhex(lines.next().unwrap())).unwrap() else { panic!("a tuple") };
    let Value::Tuple(args) = &req[2] else { panic!("args") };
    assert_eq!(args[1], args[2]);
    assert_eq!(args[1].type_name(), "AcquirerProxy");
}

#[test]
fn tokens_and_proxies_written_here_rebuild_in_cpython() {
    let mut kwds = Dict::new();
    // `incref=False`: the rebuilt proxy does not dial the (absent) server.
    kwds.insert(Value::from("incref"), Value::Bool(false));
    let proxy = Proxy { proxytype: "DictProxy".into(), token: the_token(), serializer: "pickle".into(), kwds };
    let v = Value::Tuple(vec![
        Value::from("#PROXY"),
        Value::Tuple(vec![Value::Token(Box::new(the_token())), Value::Proxy(Box::new(proxy))]),
    ]);
    let bytes = dumps_value(&v).unwrap();
    let body = "kind, (t, p) = pickle.loads(bytes.fromhex(sys.argv[1]))\n\
                print(kind, type(t).__name__, t.typeid, t.address, t.id, t == tok or (t.typeid, t.address, t.id) == (tok.typeid, tok.address, tok.id))\n\
                print(type(p).__name__, p._token.typeid, p._token.address, p._token.id, p._serializer)";
    let Some(out) = python(body, &hex(&bytes)) else { return };
    assert_eq!(
        out,
        "#PROXY Token Lock ('127.0.0.1', 50123) 7f3a True\nDictProxy Lock ('127.0.0.1', 50123) 7f3a pickle\n"
    );
    // And it reads back here as it was.
    assert_eq!(loads_value(&bytes).unwrap(), v);
}

#[test]
fn a_proxy_type_from_elsewhere_is_refused_by_name() {
    let body = "import collections\nprint(pickle.dumps(RebuildProxy, protocol=4).hex())\n\
                print(pickle.dumps((RebuildProxy, (collections.OrderedDict, tok, 'pickle', {})), protocol=4).hex())";
    let Some(out) = python(body, "") else { return };
    let mut lines = out.lines();
    // The function itself is no value.
    assert!(matches!(loads_value(&unhex(lines.next().unwrap())), Err(PickleError::BadReduce { .. })));
    match loads_value(&unhex(lines.next().unwrap())) {
        Err(PickleError::ForbiddenGlobal { module, name }) => {
            assert_eq!((module.as_str(), name.as_str()), ("collections", "OrderedDict"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let bad = Proxy { proxytype: "Evil".into(), token: the_token(), serializer: "pickle".into(), kwds: Dict::new() };
    match dumps_value(&Value::Proxy(Box::new(bad))) {
        Err(PickleError::ForbiddenGlobal { module, name }) => {
            assert_eq!(format!("{module}.{name}"), "multiprocessing.managers.Evil")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_token_without_its_state_or_called_with_arguments_is_refused() {
    // Token.__new__(Token) with no BUILD; then Token('x') (REDUCE with an argument).
    let no_state = b"\x80\x04\x8c\x18multiprocessing.managers\x8c\x05Token\x93)\x81.";
    assert!(matches!(loads_value(no_state), Err(PickleError::BadReduce { .. })), "{:?}", loads_value(no_state));
    let called = b"\x80\x04\x8c\x18multiprocessing.managers\x8c\x05Token\x93\x8c\x01x\x85R.";
    assert!(matches!(loads_value(called), Err(PickleError::BadReduce { .. })));
    // BUILD twice on one token.
    let twice = b"\x80\x04\x8c\x18multiprocessing.managers\x8c\x05Token\x93)\x81\x8c\x01a\x8c\x01b\x8c\x01c\x87b\x8c\x01a\x8c\x01b\x8c\x01c\x87b.";
    assert!(matches!(loads_value(twice), Err(PickleError::Malformed { .. })));
}
