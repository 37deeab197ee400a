//! Objects between a Rust `Connection` and CPython's `multiprocessing.connection`
//! `Connection` (`send`/`recv`, which pickle): each value kind both ways over a Rust
//! `Client` to a Python `Listener` (TCP), a Python `Client` to a Rust `Listener` (Unix
//! socket), and a Pipe-style socketpair whose other end Python inherits. Bytes, str and
//! bytearray go from 0 B to 16 MiB over the pipe (to 1 MiB over the other two, which share
//! its framing code, to keep the run short); lists of ints to 128 Ki items. mproc's `Bytes`
//! and `PodVec<f64>` reach Python as `bytes` and as the data of an `array.array('d')`.
//!
//! The tests skip, saying so, only when `python3` is absent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use mproc_ipc::{Address, Bytes, Client, Connection, IpcError, Listener, PayloadError, PodVec};
use mproc_pickle::{PickleError, Value};
use serde::{Deserialize, Serialize};

const PY_PRELUDE: &str = r#"
import sys, signal, math, queue, array
signal.alarm(120)
from multiprocessing import connection as mc

def connect():
    how, where = sys.argv[1], sys.argv[2]
    if how == 'listen':
        with mc.Listener(('127.0.0.1', 0), authkey=b'pickle') as listener:
            print(listener.address[1], flush=True)
            return listener.accept()
    if how == 'client':
        return mc.Client(where, family='AF_UNIX', authkey=b'pickle')
    return mc.Connection(int(where))

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
        return a == b
    if isinstance(a, BaseException):
        return same(a.args, b.args)
    return a == b

MiB = 1 << 20
SIZES = [n for n in (0, 1, 255, 256, 65535, 65536, MiB, 16 * MiB) if n <= int(sys.argv[3])]
VALUES = [None, True, False, 0, -1, 255, 2**31, -2**63, 2**64, 10**40, 0.0, -0.0, 1.5, math.inf, math.nan,
          (), (1,), (1, 'a', None, 2.5), [], [1, [2, [3]]], {}, {'a': 1, 2: (3,), None: b'x'},
          set(), {1, 'b'}, frozenset(), frozenset({(1, 2)}), bytearray(), bytearray(b'\x00\xff'),
          KeyError('k'), IndexError('i'), ValueError('v', 2), queue.Empty(), queue.Full(), EOFError(),
          array.array('d'), array.array('d', [1.5, -0.0]), array.array('B', b'xyz'), array.array('q', [-2**63]),
          array.array('H', [65535]), array.array('l', [1]), array.array('f', [0.25])]
VALUES += [b'\xab' * n for n in SIZES] + ['é' * (n // 2) for n in SIZES] + [bytearray(b'z' * n) for n in SIZES]
VALUES += [list(range(n // 8)) for n in SIZES if n <= MiB]
"#;

/// Python sends every value with its type name; Rust echoes each back; Python checks.
const PY_ECHO: &str = r#"
conn = connect()
bad = []
for v in VALUES:
    conn.send((type(v).__name__, v))
    got = conn.recv()
    if not same(v, got):
        bad.append(f'{type(v).__name__} of {len(repr(v))} repr chars: got {type(got).__name__}')
conn.send('#DONE')
print(len(VALUES), 'echoed; bad:', bad, flush=True)
"#;

/// Rust sends `(expr, value)`; Python checks `value` equals `eval(expr)` and sends
/// `eval(expr)` back for Rust to decode.
const PY_CHECK: &str = r#"
conn = connect()
bad = []
n = 0
while True:
    msg = conn.recv()
    if msg == '#DONE':
        break
    expr, got = msg
    want = eval(expr)
    n += 1
    if not same(want, got):
        bad.append(f'{expr[:60]}: got {type(got).__name__} {repr(got)[:60]}')
    conn.send(want)
print(n, 'checked; bad:', bad, flush=True)
"#;

/// The largest bytes, str and bytearray sent over the pipe, and over the sockets.
const BIG: usize = 16 << 20;
const SMALL: usize = 1 << 20;

/// How the two ends meet.
enum Meet {
    /// Python `Listener` on TCP, Rust `Client`.
    PythonListens,
    /// Rust `Listener` on a Unix socket, Python `Client`.
    RustListens,
    /// A socketpair; Python wraps its end (fd 3) in `Connection(3)`, like a `Pipe()` end.
    Pipe,
}

/// Starts python3 running `body` and connects to it as `meet` says.
fn start(body: &str, meet: Meet) -> (Child, BufReader<ChildStdout>, Connection) {
    let max_size = match meet {
        Meet::Pipe => BIG,
        _ => SMALL,
    };
    let mut cmd = Command::new(mproc_testkit::python3());
    cmd.arg("-c").arg(format!("{PY_PRELUDE}{body}")).stdout(Stdio::piped());
    match meet {
        Meet::PythonListens => {
            let mut child = cmd.args(["listen", "-", &max_size.to_string()]).spawn().expect("start python3");
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut port = String::new();
            out.read_line(&mut port).unwrap();
            let port = port.trim().parse().unwrap_or_else(|_| panic!("python3 printed no port: {port:?}"));
            let conn = Client::connect(Address::loopback(port), Some(b"pickle")).expect("connect to python3");
            (child, out, conn)
        }
        Meet::RustListens => {
            let listener = Listener::bind_temp(Some(b"pickle")).unwrap();
            let Address::Unix(path) = listener.address() else { panic!("bind_temp makes a Unix socket") };
            let mut child =
                cmd.args(["client", path.to_str().unwrap(), &max_size.to_string()]).spawn().expect("start python3");
            let out = BufReader::new(child.stdout.take().unwrap());
            // Do not block in accept forever if python failed to start.
            let mut pfd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 30_000) };
            assert_eq!(n, 1, "python did not connect within 30 s");
            let conn = listener.accept().expect("accept python3");
            (child, out, conn)
        }
        Meet::Pipe => {
            let (here, there) = UnixStream::pair().unwrap();
            let fd = there.as_raw_fd();
            // SAFETY: the hook runs in the forked child before exec and calls only dup2,
            // which is async-signal-safe; dup2's copy is not close-on-exec.
            unsafe {
                cmd.pre_exec(move || if libc::dup2(fd, 3) < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
            }
            let mut child = cmd.args(["pipe", "3", &max_size.to_string()]).spawn().expect("start python3");
            drop(there);
            let out = BufReader::new(child.stdout.take().unwrap());
            (child, out, Connection::from_unix(here))
        }
    }
}

/// Waits for python3 (its own alarm ends it within 120 s; this deadline is the backstop)
/// and returns its stdout.
fn finish(mut child: Child, mut out: BufReader<ChildStdout>) -> String {
    let mut s = String::new();
    out.read_to_string(&mut s).unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "python exited with {status}; stdout: {s}");
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("python did not exit within 150 s of closing its stdout");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Receives one pickled value, with a 60 s watchdog.
fn recv(conn: &mut Connection) -> Value {
    assert!(conn.poll(Some(Duration::from_secs(60))).unwrap(), "python3 sent nothing within 60 s");
    conn.recv_pickle_value().expect("a pickle from python3")
}

fn echo(meet: Meet) {
    let max_size = if matches!(meet, Meet::Pipe) { BIG } else { SMALL };
    let (child, out, mut conn) = start(PY_ECHO, meet);
    let mut count = 0;
    let mut largest = 0;
    loop {
        match recv(&mut conn) {
            Value::Tuple(mut pair) if pair.len() == 2 => {
                let value = pair.pop().unwrap();
                let Some(Value::Str(type_name)) = pair.pop() else { panic!("no type name") };
                assert_eq!(value.type_name(), type_name, "python3 sent a {type_name}, decoded as {value}");
                if let Value::Bytes(b) | Value::ByteArray(b) = &value {
                    largest = largest.max(b.len());
                }
                conn.send_pickle_value(&value).unwrap();
                count += 1;
            }
            Value::Str(s) if s == "#DONE" => break,
            other => panic!("unexpected message {other}"),
        }
    }
    assert_eq!(largest, max_size);
    let verdict = finish(child, out);
    assert_eq!(verdict.trim(), format!("{count} echoed; bad: []"));
}

#[test]
fn python_objects_echo_through_rust_over_tcp_client() {
    echo(Meet::PythonListens);
}

#[test]
fn python_objects_echo_through_rust_over_unix_listener() {
    echo(Meet::RustListens);
}

#[test]
fn python_objects_echo_through_rust_over_a_pipe() {
    echo(Meet::Pipe);
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Job {
    id: u64,
    name: String,
    args: Vec<i64>,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    weight: Option<f64>,
}

/// Sends `(expr, v)`; python3 checks `v == eval(expr)` and sends `eval(expr)` back, which
/// must decode to `v` again.
fn check<T>(conn: &mut Connection, expr: &str, v: &T)
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    conn.send_pickle(&(expr, v)).unwrap();
    assert!(conn.poll(Some(Duration::from_secs(60))).unwrap(), "python3 answered nothing within 60 s");
    let back: T = conn.recv_pickle().unwrap_or_else(|e| panic!("{expr}: {e}"));
    assert!(&back == v, "{expr}: python3 sent back {back:?}");
}

fn rust_objects(meet: Meet) {
    let max_size = if matches!(meet, Meet::Pipe) { BIG } else { SMALL };
    let (child, out, mut conn) = start(PY_CHECK, meet);
    let mib = 1usize << 20;
    let sizes: Vec<usize> =
        [0, 1, 255, 256, 65535, 65536, mib, 16 * mib].into_iter().filter(|&n| n <= max_size).collect();
    check(&mut conn, "None", &());
    check(&mut conn, "True", &true);
    check(&mut conn, "-2**63", &i64::MIN);
    check(&mut conn, "2**64 - 1", &u64::MAX);
    check(&mut conn, "-2**127", &i128::MIN);
    check(&mut conn, "0.1", &0.1f64);
    check(&mut conn, "(1, 'two', [3.0])", &(1u8, "two".to_owned(), vec![3.0f64]));
    check(
        &mut conn,
        "{'a': [1, 2], 'b': []}",
        &BTreeMap::from([("a".to_owned(), vec![1u32, 2]), ("b".to_owned(), vec![])]),
    );
    let job = Job { id: 7, name: "job".into(), args: vec![-1, 2], payload: vec![0, 255], weight: None };
    check(&mut conn, "{'id': 7, 'name': 'job', 'args': [-1, 2], 'payload': b'\\x00\\xff', 'weight': None}", &job);
    for &n in &sizes {
        check(&mut conn, &format!("b'\\xab' * {n}"), &serde_bytes::ByteBuf::from(vec![0xab; n]));
        check(&mut conn, &format!("'é' * {}", n / 2), &"é".repeat(n / 2));
        if n <= mib {
            check(&mut conn, &format!("list(range({}))", n / 8), &(0..(n / 8) as u64).collect::<Vec<_>>());
        }
    }
    // Values keep the Python types serde has no word for.
    for (expr, v) in [
        ("bytearray(b'ab')", Value::ByteArray(b"ab".to_vec())),
        ("bytearray(b'q' * 65536)", Value::ByteArray(vec![b'q'; 65536])),
        ("{1, 'b'}", Value::Set([Value::Int(1), Value::from("b")].into_iter().collect())),
        (
            "frozenset({(1, 2)})",
            Value::FrozenSet([Value::Tuple(vec![Value::Int(1), Value::Int(2)])].into_iter().collect()),
        ),
        ("KeyError('k')", Value::exception("KeyError", vec![Value::from("k")])),
        ("queue.Empty()", Value::Exception { module: "queue".into(), name: "Empty".into(), args: vec![] }),
        ("10**40", Value::int("10000000000000000000000000000000000000000".parse().unwrap())),
    ] {
        conn.send_pickle(&(expr, &v)).unwrap();
        assert_eq!(recv(&mut conn), v, "{expr}");
    }
    conn.send_pickle("#DONE").unwrap();
    let verdict = finish(child, out);
    let lists = sizes.iter().filter(|&&n| n <= mib).count();
    assert_eq!(verdict.trim(), format!("{} checked; bad: []", 9 + 2 * sizes.len() + lists + 7));
}

#[test]
fn rust_objects_read_by_python_over_tcp_client() {
    rust_objects(Meet::PythonListens);
}

#[test]
fn rust_objects_read_by_python_over_unix_listener() {
    rust_objects(Meet::RustListens);
}

#[test]
fn rust_objects_read_by_python_over_a_pipe() {
    rust_objects(Meet::Pipe);
}

/// A Python peer sending `os.system` gets an error naming it, and the connection goes on.
#[test]
fn a_forbidden_global_is_refused_and_the_connection_goes_on() {
    let body = r#"
import os
class Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))
conn = connect()
conn.send(Evil())
conn.send('still here')
print(conn.recv(), flush=True)
"#;
    let (child, out, mut conn) = start(body, Meet::Pipe);
    assert!(conn.poll(Some(Duration::from_secs(60))).unwrap());
    match conn.recv_pickle_value() {
        Err(IpcError::Pickle { source: PickleError::ForbiddenGlobal { module, name }, .. }) => {
            assert_eq!((module.as_str(), name.as_str()), ("posix", "system"));
        }
        other => panic!("expected a refusal naming posix.system, got {other:?}"),
    }
    assert_eq!(recv(&mut conn), Value::from("still here"));
    conn.send_pickle("ok").unwrap();
    assert_eq!(finish(child, out).trim(), "ok");
}

/// `Bytes` reach Python as `bytes`; `PodVec<f64>`, `PodVec<i32>` and `PodVec<u8>` of 0, 1
/// and 1 MiB of items reach Python as real `array.array`s of typecodes 'd', 'i' and 'B',
/// and arrays Python sends come back into `PodVec`s.
#[test]
fn payload_types_reach_python_as_bytes_and_real_arrays() {
    let body = r#"
import array
conn = connect()
b = conn.recv()
ok = type(b) is bytes and len(b) == 1 << 20 and b[:2] == b'\x00\x01'
conn.send(b[::-1])
ITEM = {'d': lambda i: i * 0.5, 'i': lambda i: i - 1000, 'B': lambda i: i % 256}
bad = [] if ok else ['bytes']
n = 0
while True:
    msg = conn.recv()
    if msg == '#DONE':
        break
    code, count, a = msg
    n += 1
    want = array.array(code, map(ITEM[code], range(count)))
    if type(a) is not array.array or a.typecode != code or a != want:
        bad.append(f'{code} x {count}: got {type(a).__name__} {getattr(a, "typecode", "")} of {len(a)}')
    conn.send(array.array(code, reversed(want)))
print(n, 'arrays; bad:', bad, flush=True)
"#;
    let (child, out, mut conn) = start(body, Meet::Pipe);
    let bytes = Bytes::from((0..1u32 << 20).map(|i| i as u8).collect::<Vec<u8>>());
    conn.send_pickle(&bytes).unwrap();
    assert!(conn.poll(Some(Duration::from_secs(60))).unwrap());
    let back: Bytes = conn.recv_pickle().unwrap();
    assert!(back.iter().eq(bytes.iter().rev()));

    fn round_trip<T>(conn: &mut Connection, code: &str, item: impl Fn(usize) -> T)
    where
        T: bytemuck::Pod + PartialEq + std::fmt::Debug,
    {
        for count in [0, 1, (1 << 20) / size_of::<T>()] {
            let v: PodVec<T> = (0..count).map(&item).collect();
            conn.send_pickle(&(code, count, &v)).unwrap();
            assert!(conn.poll(Some(Duration::from_secs(60))).unwrap(), "python3 answered nothing");
            let back: PodVec<T> = conn.recv_pickle().unwrap_or_else(|e| panic!("{code} x {count}: {e}"));
            assert!(back.iter().eq(v.iter().rev()), "{code} x {count}: python3 sent back {back:?}");
        }
    }
    round_trip(&mut conn, "d", |i| i as f64 * 0.5);
    round_trip(&mut conn, "i", |i| i as i32 - 1000);
    round_trip(&mut conn, "B", |i| i as u8);
    conn.send_pickle("#DONE").unwrap();
    assert_eq!(finish(child, out).trim(), "9 arrays; bad: []");
}

/// An `array.array` of another typecode than the `PodVec`'s element type is a typed error
/// naming both typecodes, whether the sizes differ ('d' as `i32`) or not ('q' as `f64`).
#[test]
fn an_array_of_another_typecode_is_a_typed_error_naming_both() {
    let body = r#"
import array
conn = connect()
conn.send(array.array('d', [1.0, 2.0]))
conn.send(array.array('q', [1, 2]))
conn.send(array.array('u', 'ab'))
conn.send(array.array('i', [7]))
print('sent', flush=True)
"#;
    let (child, out, mut conn) = start(body, Meet::Pipe);
    let next = |conn: &mut Connection| {
        assert!(conn.poll(Some(Duration::from_secs(60))).unwrap(), "python3 sent nothing");
    };
    next(&mut conn);
    let err = conn.recv_pickle::<PodVec<i32>>().unwrap_err();
    let IpcError::Payload(PayloadError::ArrayTypecode { expected: 'i', got: 'd', .. }) = &err else {
        panic!("{err:?}")
    };
    assert!(err.to_string().contains("'d'") && err.to_string().contains("'i'"), "{err}");
    next(&mut conn);
    let err = conn.recv_pickle::<PodVec<f64>>().unwrap_err();
    assert!(matches!(err, IpcError::Payload(PayloadError::ArrayTypecode { expected: 'd', got: 'q', .. })), "{err:?}");
    next(&mut conn);
    let err = conn.recv_pickle::<PodVec<u32>>().unwrap_err();
    assert!(matches!(err, IpcError::Payload(PayloadError::ArrayTypecode { expected: 'I', got: '?', .. })), "{err:?}");
    // The connection goes on, and a matching array is read.
    next(&mut conn);
    assert_eq!(conn.recv_pickle::<PodVec<i32>>().unwrap(), [7]);
    assert_eq!(finish(child, out).trim(), "sent");
}
