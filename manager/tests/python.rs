//! The manager and CPython's `multiprocessing.managers`, with the real `python3`: a
//! Python `SyncManager` client against this crate's server (the same script, the same
//! output as against CPython's own server), a Rust client against CPython's server,
//! and a pickle naming `os.system` refused while the server keeps serving. Every
//! Python process runs under a watchdog.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mproc_manager::{Address, DictProxy, ListProxy, Manager, ManagerBuilder, ManagerError, QueueProxy};
use mproc_pickle::{Dict, Value};

/// How long a Python process may run.
const WATCHDOG: Duration = Duration::from_secs(60);

/// The interpreter: `python3`, or the one `MPROC_TEST_PYTHON` names (to run these tests
/// against another CPython version, e.g. `MPROC_TEST_PYTHON=python3.13`).
fn interpreter() -> String {
    mproc_testkit::python3()
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)
}

/// Runs `python3 -u args…` to its end, killing it after [`WATCHDOG`].
fn python(args: &[&str]) -> Output {
    let mut child = Command::new(interpreter())
        .arg("-u")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait python3") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("python3 {args:?} still running after {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap() }
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A Rust `SyncManager` on a free loopback TCP port with authkey `key`.
fn rust_manager(key: &[u8]) -> (Manager, String) {
    let m = ManagerBuilder::new().address(Address::loopback(0)).authkey(key).start().expect("start the manager");
    let Some(Address::Tcp(addr)) = m.address() else { panic!("a TCP manager") };
    let addr = addr.to_string();
    (m, addr)
}

/// One script through every built-in type of a `SyncManager` client (`dict`, `list`,
/// `Queue`, `JoinableQueue`, `Namespace`, `Value`, `Array`, `Lock`, `RLock`,
/// `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`): against CPython's
/// own `SyncManager` and against this crate's `Manager`, it prints the same lines.
#[test]
fn sync_manager_client_sees_the_same_as_against_cpython() {
    let client = script("sync_manager_client.py");
    let client = client.to_str().unwrap();
    let cpython = python(&[client]);
    assert!(cpython.status.success(), "against CPython: {}", text(&cpython));
    let (mut m, addr) = rust_manager(b"side-by-side");
    let ours = python(&[client, &addr, "side-by-side"]);
    assert!(ours.status.success(), "against mproc: {}", text(&ours));
    let (want, got) = (String::from_utf8_lossy(&cpython.stdout), String::from_utf8_lossy(&ours.stdout));
    assert!(want.ends_with("done\n"), "{want}");
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        assert_eq!(g, w, "line {i} differs; against mproc:\n{got}");
    }
    assert_eq!(got.lines().count(), want.lines().count(), "against mproc:\n{got}");
    m.shutdown().unwrap();
}

/// A Python client and a Rust client use the same objects at the same time: Python
/// puts ints, Rust gets `u64` and puts `String`, Python gets `str`.
#[test]
fn python_and_rust_clients_share_one_queue() {
    let mut registry = mproc_manager::Registry::sync();
    registry.register_shared_queue("get_jobs", 0).register_shared_queue("get_results", 0);
    let mut m =
        ManagerBuilder::new().registry(registry).address(Address::loopback(0)).authkey(b"shared").start().unwrap();
    let Some(Address::Tcp(addr)) = m.address() else { panic!("a TCP manager") };
    let code = format!(
        r#"
from multiprocessing.managers import BaseManager
class M(BaseManager):
    pass
M.register('get_jobs')
M.register('get_results')
m = M(address=('127.0.0.1', {port}), authkey=b'shared')
m.connect()
jobs, results = m.get_jobs(), m.get_results()
for n in range(1, 6):
    jobs.put(n)
print(sorted(results.get(timeout=20) for _ in range(5)), flush=True)
"#,
        port = addr.port()
    );
    let py = std::thread::spawn(move || python(&["-c", &code]));
    let jobs: QueueProxy<u64> = m.proxy("get_jobs").unwrap();
    let results: QueueProxy<String> = m.proxy("get_results").unwrap();
    for _ in 0..5 {
        let n = jobs.get_timeout(WATCHDOG).unwrap();
        results.put(format!("{n}^2={}", n * n)).unwrap();
    }
    let out = py.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "['1^2=1', '2^2=4', '3^2=9', '4^2=16', '5^2=25']");
    m.shutdown().unwrap();
}

/// A proxy crosses between the two kinds of client as data: a Python client puts its
/// `Lock` proxy (an `AutoProxy`) on a queue, a Rust client gets it as `Value::Proxy`
/// naming the lock and puts it back, and Python rebuilds a working proxy to the same
/// lock. A Rust client's `__iter__` on a dict answers the keys.
#[test]
fn a_python_proxy_crosses_a_rust_client_and_comes_back_working() {
    let mut registry = mproc_manager::Registry::sync();
    registry.register_shared_queue("get_jobs", 0).register_shared_queue("get_results", 0);
    let mut m =
        ManagerBuilder::new().registry(registry).address(Address::loopback(0)).authkey(b"proxied").start().unwrap();
    let Some(Address::Tcp(addr)) = m.address() else { panic!("a TCP manager") };
    let code = format!(
        r#"
import multiprocessing
from multiprocessing.managers import BaseManager
class M(BaseManager):
    pass
M.register('get_jobs')
M.register('get_results')
M.register('Lock')
multiprocessing.current_process().authkey = b'proxied'
m = M(address=('127.0.0.1', {port}), authkey=b'proxied')
m.connect()
jobs, results = m.get_jobs(), m.get_results()
lock = m.Lock()
jobs.put(lock)
back = results.get(timeout=20)
print(type(back).__name__, back.acquire(False), lock.acquire(False), back.release(), flush=True)
"#,
        port = addr.port()
    );
    let py = std::thread::spawn(move || python(&["-c", &code]));
    let jobs: QueueProxy<Value> = m.proxy("get_jobs").unwrap();
    let results: QueueProxy<Value> = m.proxy("get_results").unwrap();
    let got = jobs.get_timeout(WATCHDOG).unwrap();
    let Value::Proxy(p) = &got else { panic!("a proxy, got {got}") };
    assert_eq!((p.proxytype.as_str(), p.token.typeid.as_str()), ("AutoProxy", "Lock"));
    results.put(got).unwrap();
    let out = py.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "AutoProxy[Lock] True False None");

    let d: DictProxy<String, u64> = m.dict().unwrap();
    d.update([("b".to_string(), 2), ("a".to_string(), 1)]).unwrap();
    let keys = d.object().call_value("__iter__", vec![], Dict::new()).unwrap();
    assert_eq!(keys, Value::List(vec![Value::from("b"), Value::from("a")]));
    m.shutdown().unwrap();
}

/// A pickle naming `os.system` sent to the server gets a `'#TRACEBACK'` reply naming
/// it; nothing runs, and the server serves the same connection and new ones.
#[test]
fn a_pickle_naming_os_system_is_refused_and_the_server_keeps_serving() {
    let (mut m, addr) = rust_manager(b"evil");
    let marker = std::env::temp_dir().join(format!("mproc-os-system-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let code = format!(
        r#"
import os, pickle
from multiprocessing.connection import Client
class Evil:
    def __reduce__(self):
        return (os.system, ('touch {marker}',))
c = Client(('{host}', {port}), authkey=b'evil')
c.send_bytes(pickle.dumps((None, 'create', ('list', Evil()), {{}})))
kind, text = c.recv()
print(kind, 'os' in text and 'system' in text, flush=True)
c.send((None, 'dummy', (), {{}}))
print(c.recv(), flush=True)
c2 = Client(('{host}', {port}), authkey=b'evil')
c2.send((None, 'number_of_objects', (), {{}}))
print(c2.recv(), flush=True)
"#,
        marker = marker.display(),
        host = addr.rsplit_once(':').unwrap().0,
        port = addr.rsplit_once(':').unwrap().1
    );
    let out = python(&["-c", &code]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["#TRACEBACK True", "('#RETURN', None)", "('#RETURN', 0)"], "{}", text(&out));
    assert!(!marker.exists(), "os.system ran");
    // Rust clients are served too.
    let l: ListProxy<u8> = m.list().unwrap();
    l.append(1).unwrap();
    assert_eq!(l.snapshot().unwrap(), [1]);
    m.shutdown().unwrap();
}

/// A Rust client on CPython's own `SyncManager` server: built-in proxies typed on the
/// Rust side, CPython's exceptions as `ManagerError` variants.
#[test]
fn rust_client_on_a_cpython_sync_manager() {
    let code = r#"
import sys
from multiprocessing.managers import SyncManager
m = SyncManager(address=('127.0.0.1', 0), authkey=b'py-server')
s = m.get_server()
print(s.address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new(interpreter())
        .args(["-u", "-c", code])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python3");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while stdout.read(&mut b).map(|n| n == 1).unwrap_or(false) && b[0] != b'\n' {
            line.push(b[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
    });
    let port: u16 = match rx.recv_timeout(WATCHDOG) {
        Ok(p) => p.trim().parse().expect("a port"),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the CPython server did not start");
        }
    };
    let run = || -> Result<(), ManagerError> {
        let addr = Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        assert!(matches!(Manager::connect(addr.clone(), b"wrong"), Err(ManagerError::Authentication { .. })));
        let mut m = Manager::connect(addr, b"py-server")?;
        let q: QueueProxy<u64> = m.queue()?;
        q.put(5)?;
        assert_eq!(q.get()?, 5);
        assert_eq!(q.try_get(), Err(ManagerError::QueueEmpty));
        let l: ListProxy<String> = m.list_from(["b".to_string(), "a".to_string()])?;
        l.append("c".into())?;
        l.sort(false)?;
        assert_eq!(l.snapshot()?, ["a", "b", "c"]);
        assert!(matches!(l.get(10), Err(ManagerError::PythonException { ref name, .. }) if name == "IndexError"));
        let d: DictProxy<String, u64> = m.dict()?;
        d.update([("x".to_string(), 1)])?;
        assert_eq!(d.get(&"x".to_string())?, Some(1));
        assert!(matches!(d.remove(&"nope".to_string()), Err(ManagerError::KeyMissing { .. })));
        // `__iter__` answers a proxy to an Iterator, which the client drains and lets go.
        d.update([("y".to_string(), 2)])?;
        let objects = m.stats()?.objects;
        let keys = d.object().call_value("__iter__", vec![], Dict::new())?;
        assert_eq!(keys, Value::List(vec![Value::from("x"), Value::from("y")]));
        assert_eq!(m.stats()?.objects, objects, "the Iterator's reference was dropped");
        let lock = m.lock()?;
        lock.acquire()?;
        lock.release()?;
        let e = m.event()?;
        e.set()?;
        e.wait_timeout(Duration::from_secs(1))?;
        assert!(m.stats()?.objects >= 5);
        m.shutdown()
    };
    let result = run();
    if result.is_err() {
        let _ = child.kill();
    }
    let deadline = Instant::now() + WATCHDOG;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    result.unwrap();
}
