//! Integration tests of the manager across real processes: the seed's shared list,
//! authkey rejection both ways, an oversized frame, unregistered typeids and methods,
//! a client SIGKILLed mid-call, shutdown and reaping, and an in-process TCP server.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use common::{handshake_as_client, handshake_as_lax_server};
use mproc_ipc::Connection;
use mproc_manager::wire::{Request, Response};
use mproc_manager::{Address, Manager, ManagerBuilder, ManagerError, Proxy, Registry, Served};
use mproc_testkit::{eventually, finish, fork_process};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(20);

/// The seed's `Manager().list()`: three processes each append their number.
#[test]
fn seed_manager_list_shared_by_three_processes() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<u32>().unwrap();
    let mut children: Vec<_> = (0..3)
        .map(|i| {
            let l = list.clone();
            fork_process(30, move || match l.append(i) {
                Ok(()) => l.len().map_or(3, |n| if (1..=3).contains(&n) { 0 } else { 4 }),
                Err(_) => 2,
            })
        })
        .collect();
    for c in &mut children {
        assert_eq!(finish(c, T), 0);
    }
    let mut got = list.snapshot().unwrap();
    got.sort();
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(list.len().unwrap(), 3);
}

#[test]
fn socket_is_private_and_shutdown_reaps_the_server() {
    let mut manager = Manager::start().unwrap();
    let Some(Address::Unix(path)) = manager.address().cloned() else { panic!("a started manager is on a Unix socket") };
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "dir mode {dir_mode:o}");
    let pid = manager.server_pid().unwrap();
    let q = manager.queue::<u8>().unwrap();
    q.put(1).unwrap();
    manager.shutdown().unwrap();
    // Reaped: the pid is no longer our child (no zombie).
    // SAFETY: waitpid on a pid with WNOHANG touches only `status`.
    let r = unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
    assert_eq!(r, -1, "the server process was reaped");
    assert!(!path.exists(), "the socket file is removed");
    assert!(matches!(q.get(), Err(ManagerError::Disconnected { .. })), "a call on a dead server is Disconnected");
}

#[test]
fn wrong_authkey_is_rejected_by_the_server() {
    let server = ManagerBuilder::new().authkey(b"right").start().unwrap();
    let addr = server.address().unwrap().clone();
    let err = Manager::connect(addr.clone(), b"wrong").unwrap_err();
    assert!(matches!(err, ManagerError::Authentication { .. }), "{err:?}");
    // A raw client with the wrong key hears #FAILURE#.
    let Address::Unix(path) = &addr else { unreachable!() };
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut raw = Connection::from_unix(s);
    let r = handshake_as_client(&mut raw, b"wrong");
    assert!(r.unwrap_err().contains("FAILURE"));
    // The server keeps serving the right key.
    let ok = Manager::connect(addr, b"right").unwrap();
    assert_eq!(ok.list::<u8>().unwrap().len().unwrap(), 0);
}

#[test]
fn impostor_server_is_rejected_by_the_client() {
    let dir = std::env::temp_dir().join(format!("mproc-test-manager-impostor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("s.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    // The impostor welcomes any client but does not know the key.
    let impostor = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut c = Connection::from_unix(s);
        c.set_max_frame(1 << 16);
        handshake_as_lax_server(&mut c, b"not-the-key")
    });
    let err = Manager::connect(Address::Unix(path), b"the-key").unwrap_err();
    assert!(matches!(err, ManagerError::Authentication { .. }), "{err:?}");
    assert!(impostor.join().unwrap().unwrap_err().contains("FAILURE"), "the client said #FAILURE#");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A raw, authenticated connection to `manager` that has said Hello as client `id`,
/// and a second handle on its socket for writing raw bytes.
fn raw_conn(manager: &Manager, id: u64) -> (Connection, UnixStream) {
    let Some(Address::Unix(path)) = manager.address() else { unreachable!() };
    let s = UnixStream::connect(path).unwrap();
    // Watchdog: no read in these tests waits longer than this.
    s.set_read_timeout(Some(T)).unwrap();
    let raw = s.try_clone().unwrap();
    let mut c = Connection::from_unix(s);
    handshake_as_client(&mut c, manager.authkey()).unwrap();
    c.send(&Request::Hello { client: id }).unwrap();
    (c, raw)
}

#[test]
fn oversized_frame_is_rejected_before_allocation() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<u8>().unwrap();
    let (mut c, mut sock) = raw_conn(&manager, 77);
    // Announce a 1 GiB frame and send none of it: a server that allocated and waited for
    // the body would never answer.
    use std::io::Write;
    sock.write_all(&(1i32 << 30).to_be_bytes()).unwrap();
    c.set_max_frame(1 << 16);
    let resp: Response = c.recv().unwrap();
    assert!(
        matches!(resp, Err(ManagerError::FrameTooLarge { len, max }) if len == 1 << 30 && max == mproc_manager::MAX_FRAME as u64),
        "{resp:?}"
    );
    assert!(c.recv_bytes().unwrap_err().is_eof(), "the server hangs up after a refused frame");
    list.append(1).unwrap();
    assert_eq!(list.snapshot().unwrap(), [1]);
}

#[test]
fn garbage_frames_get_typed_errors() {
    let manager = Manager::start().unwrap();
    let (mut c, _) = raw_conn(&manager, 78);
    for junk in [&b""[..], b"\xff\xff\xff", b"\x02\x09", b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"] {
        c.send_bytes(junk).unwrap();
        let resp: Response = c.recv().unwrap();
        assert!(matches!(resp, Err(ManagerError::BadRequest { .. })), "{junk:?} → {resp:?}");
    }
    c.send(&Request::Create { typeid: "os.system".into(), args: vec![] }).unwrap();
    let resp: Response = c.recv().unwrap();
    assert_eq!(resp, Err(ManagerError::UnknownTypeid { typeid: "os.system".into() }));
    c.send(&Request::Call { id: 12345, thread: 1, method: "append".into(), args: vec![0] }).unwrap();
    assert_eq!(c.recv::<Response>().unwrap(), Err(ManagerError::NoSuchObject { id: 12345 }));
}

#[derive(Default)]
struct Counter(std::sync::Mutex<i64>);

#[derive(Serialize, Deserialize)]
enum CounterCall {
    Add(i64),
    Get,
}

impl Served for Counter {
    type Request = CounterCall;
    type Response = i64;
    fn dispatch(&self, req: CounterCall) -> Result<i64, String> {
        let mut v = self.0.lock().map_err(|e| e.to_string())?;
        match req {
            CounterCall::Add(n) => *v += n,
            CounterCall::Get => {}
        }
        Ok(*v)
    }
}

/// What a client that thinks the counter has more methods sends.
struct GreedyCounter;

#[derive(Serialize, Deserialize)]
enum GreedyCall {
    Add(i64),
    Get,
    Reset,
}

impl Served for GreedyCounter {
    type Request = GreedyCall;
    type Response = i64;
    fn dispatch(&self, _: GreedyCall) -> Result<i64, String> {
        unreachable!("client-side type only")
    }
}

#[test]
fn base_manager_registry_and_unregistered_typeid_and_method() {
    let mut reg = Registry::new();
    reg.register("Counter", Counter::default);
    let manager = ManagerBuilder::new().registry(reg).start().unwrap();
    let c: Proxy<Counter> = manager.proxy("Counter").unwrap();
    assert_eq!(c.call(&CounterCall::Add(2)).unwrap(), 2);
    // Another process sees the same object.
    let c2 = c.clone();
    let mut child = fork_process(30, move || if c2.call(&CounterCall::Add(3)) == Ok(5) { 0 } else { 1 });
    assert_eq!(finish(&mut child, T), 0);
    assert_eq!(c.call(&CounterCall::Get).unwrap(), 5);
    // An unregistered typeid.
    assert_eq!(manager.list::<u8>().unwrap_err(), ManagerError::UnknownTypeid { typeid: "list".into() });
    assert!(
        matches!(manager.proxy::<Proxy<Counter>>("Nope"), Err(ManagerError::UnknownTypeid { typeid: t }) if t == "Nope")
    );
    // An unregistered method: `Reset` is not a variant the server's type declares.
    let greedy: Proxy<GreedyCounter> = manager.proxy("Counter").unwrap();
    assert_eq!(greedy.call(&GreedyCall::Add(1)).unwrap(), 1, "register() makes a new object per proxy");
    let err = greedy.call(&GreedyCall::Reset).unwrap_err();
    assert!(matches!(err, ManagerError::UnknownMethod { ref typeid, .. } if typeid == "Counter"), "{err:?}");
    assert_eq!(greedy.call(&GreedyCall::Get).unwrap(), 1);
    assert_eq!(c.call(&CounterCall::Get).unwrap(), 5);
}

#[test]
fn client_sigkilled_mid_call_releases_its_objects() {
    let manager = Manager::start().unwrap();
    let barrier = manager.barrier(2).unwrap();
    let lock = manager.lock().unwrap();
    let made = manager.queue::<u64>().unwrap();
    let before = manager.stats().unwrap();
    let (b, l, q) = (barrier.clone(), lock.clone(), made.clone());
    let (addr, key) = (manager.address().unwrap().clone(), manager.authkey().to_vec());
    let child = fork_process(30, move || {
        // A lock it takes and never releases, an item it puts, and objects only it holds.
        let Ok(held) = l.try_lock() else { return 1 };
        std::mem::forget(held);
        let private = || -> Result<_, ManagerError> {
            q.put(1)?;
            let m = Manager::connect(addr, &key)?;
            let list = m.list::<u8>()?;
            list.append(1)?;
            let ns = m.namespace()?;
            ns.set("x", 1u8)?;
            Ok((m, list, ns))
        };
        let Ok(_keep) = private() else { return 2 };
        let _ = b.wait(); // blocks mid-call until killed
        3
    });
    // The child is provably inside its barrier call.
    assert!(eventually(T, || barrier.n_waiting().unwrap() == 1), "child never reached the barrier");
    let during = manager.stats().unwrap();
    assert!(during.objects >= before.objects + 2, "{before:?} → {during:?}");
    child.kill().unwrap();
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(-9));
    // Its references and its lock are released; the server keeps serving.
    assert!(eventually(T, || manager.stats().unwrap() == before), "{:?} vs {before:?}", manager.stats());
    lock.acquire_timeout(T).expect("the dead child's lock was released");
    assert!(barrier.broken().unwrap(), "a waiter that vanished breaks the barrier");
    assert_eq!(made.qsize().unwrap(), 1, "the child's put is still there");
}

#[test]
fn serve_forever_in_process_over_tcp_loopback() {
    let mut reg = Registry::sync();
    reg.register_shared("shared_counter", Arc::new(Counter::default()));
    let server = ManagerBuilder::new().registry(reg).authkey(b"k").bind().unwrap();
    let addr = server.address().clone();
    let Address::Tcp(sa) = addr else { panic!() };
    assert!(sa.ip().is_loopback(), "binds loopback by default: {sa}");
    let serving = std::thread::spawn(move || server.serve_forever());
    let mut m = Manager::connect(addr.clone(), b"k").unwrap();
    let d = m.dict::<String, u32>().unwrap();
    d.insert("a".into(), 1).unwrap();
    assert_eq!(d.items().unwrap(), [("a".to_string(), 1)]);
    let c: Proxy<Counter> = m.proxy("shared_counter").unwrap();
    c.call(&CounterCall::Add(4)).unwrap();
    let m2 = Manager::connect(addr, b"k").unwrap();
    let c2: Proxy<Counter> = m2.proxy("shared_counter").unwrap();
    assert_eq!(c2.call(&CounterCall::Get).unwrap(), 4);
    m.shutdown().unwrap();
    serving.join().unwrap().unwrap();
    let after = c2.call(&CounterCall::Get);
    assert!(matches!(after, Err(ManagerError::Disconnected { .. })), "{after:?}");
}

#[test]
fn a_child_dropping_a_copy_of_the_starting_handle_leaves_the_server_running() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<u8>().unwrap();
    let copy = Manager::connect(manager.address().unwrap().clone(), manager.authkey()).unwrap();
    drop(copy); // a connected handle never stops the server on drop
                // The started handle itself, moved into a child and dropped there.
    let manager = std::sync::Arc::new(manager);
    let m2 = manager.clone();
    let l2 = list.clone();
    let mut child = fork_process(30, move || {
        let _ = l2.append(1);
        // SAFETY: this is the child's copy of the parent's memory: running the Manager's
        // destructor here touches only the copy, and the child never uses it again
        // (it leaves through _exit).
        unsafe { std::ptr::drop_in_place(std::sync::Arc::as_ptr(&m2) as *mut Manager) };
        0
    });
    assert_eq!(finish(&mut child, T), 0);
    assert_eq!(list.snapshot().unwrap(), [1], "the server still serves");
}

#[test]
fn joinable_queue_event_and_condition_across_processes() {
    let manager = Manager::start().unwrap();
    let jobs = manager.joinable_queue::<u32>().unwrap();
    let done = manager.event().unwrap();
    let sums = manager.dict::<String, u64>().unwrap();
    let cond = manager.condition().unwrap();
    let ns = manager.namespace().unwrap();
    ns.set("ready", false).unwrap();
    let (j, d, s, c, n) = (jobs.clone(), done.clone(), sums.clone(), cond.clone(), ns.clone());
    let mut child = fork_process(30, move || {
        let run = || -> Result<(), ManagerError> {
            let mut total = 0u64;
            for _ in 0..5 {
                total += u64::from(j.get_timeout(T)?);
                j.task_done()?;
            }
            s.insert("child".to_string(), total)?;
            d.set()?;
            let _g = c.lock()?;
            n.set("ready", true)?;
            c.notify_all()
        };
        if run().is_ok() {
            0
        } else {
            1
        }
    });
    for i in 1..=5 {
        jobs.put(i).unwrap();
    }
    jobs.join_timeout(T).expect("every job was marked done by the child");
    done.wait_timeout(T).unwrap();
    {
        let _g = cond.lock().unwrap();
        cond.wait_for_timeout(|| ns.get::<bool>("ready").unwrap(), T).unwrap();
    }
    assert_eq!(sums.get(&"child".to_string()).unwrap(), Some(15));
    assert_eq!(finish(&mut child, T), 0);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn connecting_and_dropping_handles_does_not_leak_fds() {
    let manager = Manager::start().unwrap();
    let (addr, key) = (manager.address().unwrap().clone(), manager.authkey().to_vec());
    let cycle = || {
        let m = Manager::connect(addr.clone(), &key).unwrap();
        let l = m.list::<u8>().unwrap();
        l.append(1).unwrap();
    };
    cycle();
    let before = open_fds();
    for _ in 0..50 {
        cycle();
    }
    // Other tests run in parallel threads and open fds too; a leak here would be 50+.
    assert!(open_fds() < before + 25, "fds {before} → {}", open_fds());
    assert!(eventually(T, || manager.stats().unwrap().objects == 0), "{:?}", manager.stats());
}
