//! Interoperability with the real CPython on this machine: a Rust `Client`
//! authenticates to a Python `multiprocessing.connection.Listener`, a Python
//! `Client` to a Rust `Listener`, with right and wrong authkeys, over TCP and
//! Unix sockets, then messages go both ways.
//!
//! Each case runs twice: with the local CPython's own handshake (3.11 here:
//! the legacy HMAC-MD5 form), and with that CPython's `deliver_challenge` /
//! `answer_challenge` replaced by CPython 3.12's logic (the `{sha256}` form),
//! so byte-compatibility with ≥ 3.12 is checked even where only 3.11 is
//! installed. The 3.12 functions below follow CPython 3.12's
//! `multiprocessing.connection`; framing and sockets stay CPython's own.
//!
//! The tests skip, saying so, only when `python3` is absent.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mproc_ipc::{Address, Client, IpcError, Listener};

/// CPython 3.12's handshake, installed over the local interpreter's when the
/// first argument is `312`. `USED` records which digest verified the peer.
const PY_PRELUDE: &str = r#"
import sys, signal, os, hmac
signal.alarm(20)
from multiprocessing import connection as mc

USED = []
_ALLOWED = frozenset({b'md5', b'sha256', b'sha384', b'sha3_256', b'sha3_384'})
_MAXD = max(len(d) for d in _ALLOWED)

def _get_digest_name_and_payload(message):
    if len(message) in (20, 16):
        return '', message
    if message.startswith(b'{'):
        curly = message.find(b'}', 1, _MAXD + 2)
        if curly > 0:
            digest = message[1:curly]
            if digest in _ALLOWED:
                return digest.decode('ascii'), message[curly + 1:]
    raise mc.AuthenticationError('unsupported message length, missing digest prefix, '
                                 f'or unsupported digest: {message=}')

def _create_response(authkey, message):
    digest_name = _get_digest_name_and_payload(message)[0]
    if not digest_name:
        return hmac.new(authkey, message, 'md5').digest()
    response = hmac.new(authkey, message, digest_name).digest()
    return b'{%s}%s' % (digest_name.encode('ascii'), response)

def _verify_challenge(authkey, message, response):
    response_digest, response_mac = _get_digest_name_and_payload(response)
    response_digest = response_digest or 'md5'
    expected = hmac.new(authkey, message, response_digest).digest()
    if len(expected) != len(response_mac):
        raise mc.AuthenticationError(f'expected {response_digest!r} of length {len(expected)} '
                                     f'got {len(response_mac)}')
    if not hmac.compare_digest(expected, response_mac):
        raise mc.AuthenticationError('digest received was wrong')
    USED.append(response_digest)

def deliver_challenge(connection, authkey, digest_name='sha256'):
    message = os.urandom(40)
    message = b'{%s}%s' % (digest_name.encode('ascii'), message)
    connection.send_bytes(b'#CHALLENGE#' + message)
    response = connection.recv_bytes(256)
    try:
        _verify_challenge(authkey, message, response)
    except mc.AuthenticationError:
        connection.send_bytes(b'#FAILURE#')
        raise
    else:
        connection.send_bytes(b'#WELCOME#')

def answer_challenge(connection, authkey):
    message = connection.recv_bytes(256)
    if not message.startswith(b'#CHALLENGE#'):
        raise mc.AuthenticationError(f'Protocol error, expected challenge: {message=}')
    message = message[len(b'#CHALLENGE#'):]
    if len(message) < 20:
        raise mc.AuthenticationError('challenge too short')
    connection.send_bytes(_create_response(authkey, message))
    if connection.recv_bytes(256) != b'#WELCOME#':
        raise mc.AuthenticationError('digest sent was rejected')

mode, family, key = sys.argv[1], sys.argv[2], sys.argv[3].encode()
if mode == '312':
    mc.deliver_challenge = deliver_challenge
    mc.answer_challenge = answer_challenge
"#;

/// A Python Listener: prints its address, accepts one client, echoes.
const PY_SERVER: &str = r#"
addr = ('127.0.0.1', 0) if family == 'tcp' else sys.argv[4]
l = mc.Listener(addr, family='AF_INET' if family == 'tcp' else 'AF_UNIX', authkey=key)
print(l.address[1] if family == 'tcp' else l.address, flush=True)
try:
    c = l.accept()
except mc.AuthenticationError as e:
    print('AUTH_FAILED', e, flush=True)
    sys.exit(0)
m = c.recv_bytes()
c.send_bytes(b'py:' + m)
c.send_bytes(b'')
c.send_bytes(b'x' * 100000)
assert c.recv_bytes() == b'done'
print('OK', ','.join(USED), flush=True)
"#;

/// A Python Client: connects, talks, reports.
const PY_CLIENT: &str = r#"
addr = ('127.0.0.1', int(sys.argv[4])) if family == 'tcp' else sys.argv[4]
try:
    c = mc.Client(addr, authkey=key)
except mc.AuthenticationError as e:
    print('AUTH_FAILED', e, flush=True)
    sys.exit(0)
c.send_bytes(b'hello from python')
m = c.recv_bytes()
assert m == b'rust:hello from python', m
assert c.recv_bytes() == b''
c.send_bytes(bytes(range(256)) * 1000)
print('OK', ','.join(USED), flush=True)
"#;

fn spawn_py(body: &str, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(mproc_testkit::python3())
        .arg("-c")
        .arg(format!("{PY_PRELUDE}{body}"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// Reads the rest of the child's stdout and waits for it with a deadline; the
/// script also has its own 20 s alarm. Returns stdout.
fn finish(mut child: Child, mut out: BufReader<std::process::ChildStdout>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut out, &mut s).unwrap();
            assert!(status.success(), "python exited with {status}; stdout: {s}");
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("python did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn line(out: &mut BufReader<std::process::ChildStdout>) -> String {
    let mut s = String::new();
    out.read_line(&mut s).unwrap();
    s.trim().to_owned()
}

fn temp_sock(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mproc-test-{tag}-{}-{:?}", std::process::id(), std::thread::current().id()))
}

/// Rust Client → Python Listener.
fn rust_client_to_python(mode: &str, family: &str, py_key: &str, rust_key: &[u8]) {
    let path = temp_sock("pysrv");
    let _ = std::fs::remove_file(&path);
    let path_s = path.to_str().unwrap().to_owned();
    let (child, mut out) = spawn_py(PY_SERVER, &[mode, family, py_key, &path_s]);
    let where_ = line(&mut out);
    let addr = if family == "tcp" { Address::loopback(where_.parse().expect("port")) } else { Address::Unix(path) };
    let result = Client::connect(&addr, Some(rust_key));
    if rust_key == py_key.as_bytes() {
        let mut c = result.expect("handshake with the right key");
        c.send_bytes(b"hello from rust").unwrap();
        assert_eq!(c.recv_bytes().unwrap(), b"py:hello from rust");
        assert_eq!(c.recv_bytes().unwrap(), b"");
        assert_eq!(c.recv_bytes().unwrap(), vec![b'x'; 100000]);
        c.send_bytes(b"done").unwrap();
        let s = finish(child, out);
        let expect = if mode == "312" { "OK sha256" } else { "OK " };
        assert_eq!(s.trim_end(), expect.trim_end(), "python reported: {s}");
    } else {
        match result {
            Err(IpcError::Authentication { reason }) => assert!(reason.contains("rejected"), "{reason}"),
            other => panic!("expected an authentication error, got {other:?}"),
        }
        let s = finish(child, out);
        assert!(s.starts_with("AUTH_FAILED"), "python reported: {s}");
    }
}

/// Python Client → Rust Listener.
fn python_client_to_rust(mode: &str, family: &str, py_key: &str, rust_key: &[u8]) {
    let listener = if family == "tcp" {
        Listener::bind(Address::loopback(0), Some(rust_key)).unwrap()
    } else {
        Listener::bind_temp(Some(rust_key)).unwrap()
    };
    let arg = match listener.address() {
        Address::Tcp(a) => a.port().to_string(),
        Address::Unix(p) => p.to_str().unwrap().to_owned(),
    };
    let (child, out) = spawn_py(PY_CLIENT, &[mode, family, py_key, &arg]);
    // Do not block in accept forever if python failed to start.
    let mut pfd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
    assert_eq!(n, 1, "python did not connect within 20 s");
    let result = listener.accept();
    if rust_key == py_key.as_bytes() {
        let mut c = result.expect("handshake with the right key");
        assert_eq!(c.recv_bytes().unwrap(), b"hello from python");
        c.send_bytes(b"rust:hello from python").unwrap();
        c.send_bytes(b"").unwrap();
        let expect: Vec<u8> = (0..=255u8).cycle().take(256_000).collect();
        assert_eq!(c.recv_bytes().unwrap(), expect);
        let s = finish(child, out);
        let expect = if mode == "312" { "OK sha256" } else { "OK" };
        assert_eq!(s.trim_end(), expect, "python reported: {s}");
        assert!(c.recv_bytes().unwrap_err().is_eof());
    } else {
        match result {
            Err(IpcError::Authentication { reason }) => assert!(reason.contains("wrong"), "{reason}"),
            other => panic!("expected an authentication error, got {other:?}"),
        }
        let s = finish(child, out);
        assert!(s.starts_with("AUTH_FAILED"), "python reported: {s}");
    }
}

#[test]
fn rust_client_python_listener_tcp_local_cpython() {
    rust_client_to_python("local", "tcp", "sesame", b"sesame");
    rust_client_to_python("local", "tcp", "sesame", b"wrong");
}

#[test]
fn rust_client_python_listener_unix_local_cpython() {
    rust_client_to_python("local", "unix", "sesame", b"sesame");
    rust_client_to_python("local", "unix", "sesame", b"wrong");
}

#[test]
fn rust_client_python_listener_cpython312_handshake() {
    rust_client_to_python("312", "tcp", "sesame", b"sesame");
    rust_client_to_python("312", "unix", "sesame", b"wrong");
}

#[test]
fn python_client_rust_listener_tcp_local_cpython() {
    python_client_to_rust("local", "tcp", "sesame", b"sesame");
    python_client_to_rust("local", "tcp", "wrong", b"sesame");
}

#[test]
fn python_client_rust_listener_unix_local_cpython() {
    python_client_to_rust("local", "unix", "sesame", b"sesame");
    python_client_to_rust("local", "unix", "wrong", b"sesame");
}

#[test]
fn python_client_rust_listener_cpython312_handshake() {
    python_client_to_rust("312", "tcp", "sesame", b"sesame");
    python_client_to_rust("312", "unix", "wrong", b"sesame");
}
