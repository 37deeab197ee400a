//! Handles passed to a process that never inherited them, by `SCM_RIGHTS`:
//! `Connection::send_handle` / `recv_handle`. The child is forked *before* the
//! handles exist (their memfds and sockets are made afterwards), so the only
//! way it can reach them is the descriptors that travel with the message.

use std::time::Duration;

use mproc_ipc::{pipe, Address, Client, Connection, IpcError, Listener, Queue};
use mproc_shm::{Segment, Value};
use mproc_sync::Lock;
use mproc_testkit::{fork, reap};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn handles_made_after_fork_reach_the_child_by_scm_rights() {
    let (mut here, there) = Connection::pair().unwrap();
    let child = fork(20, move || {
        let mut conn = there;
        let q: Queue<u32> = match conn.recv_handle() {
            Ok(q) => q,
            Err(_) => return 2,
        };
        let v: Value<u64> = match conn.recv_handle() {
            Ok(v) => v,
            Err(_) => return 3,
        };
        let lock: Lock = match conn.recv_handle() {
            Ok(l) => l,
            Err(_) => return 4,
        };
        let mut end: Connection = match conn.recv_handle() {
            Ok(c) => c,
            Err(_) => return 5,
        };
        // Use each: the parent checks the effects.
        let guard = lock.try_lock().ok();
        v.set(v.get() + 1);
        let ok = q.put(41 + guard.is_none() as u32).is_ok();
        drop(guard);
        if !ok || end.send_bytes(b"through the ring").is_err() {
            return 6;
        }
        0
    });
    // Made after the fork: the child inherited none of these.
    let q = Queue::<u32>::new().unwrap();
    let v = Value::<u64>::new(10).unwrap();
    let lock = Lock::new().unwrap();
    let (mut ring_here, ring_there) = pipe(true).unwrap();
    here.send_handle(&q).unwrap();
    here.send_handle(&v).unwrap();
    here.send_handle(&lock).unwrap();
    here.send_handle(&ring_there).unwrap();
    drop(ring_there);
    assert_eq!(q.get_timeout(LIMIT).unwrap(), 41, "the child put through the received queue, holding the free lock");
    assert_eq!(ring_here.recv_bytes().unwrap(), b"through the ring");
    assert_eq!(reap(child, LIMIT), 0);
    assert_eq!(v.get(), 11, "the child wrote through the received Value");
    assert!(lock.try_lock().is_ok(), "the child released the lock");
    // The child's end of the ring pipe is gone with it: end of file.
    assert!(ring_here.recv_bytes().unwrap_err().is_eof());
}

#[test]
fn handles_travel_over_a_unix_listener_too() {
    let listener =
        Listener::bind(Address::Unix(std::env::temp_dir().join(format!("mproc-h-{}", std::process::id()))), Some(b"k"))
            .unwrap();
    let addr = listener.address().clone();
    let seg = Segment::anonymous(4096).unwrap();
    let t = std::thread::spawn(move || {
        let mut c = listener.accept().unwrap();
        c.recv_handle::<Segment>()
    });
    let mut c = Client::connect(addr, Some(b"k")).unwrap();
    c.send_handle(&seg).unwrap();
    let got = t.join().unwrap().unwrap();
    assert_eq!(got.len(), 4096);
    // SAFETY: both map the same memfd; nobody else writes it.
    unsafe {
        seg.as_ptr().write(7);
        assert_eq!(got.as_ptr().read(), 7);
    }
}

#[test]
fn handles_need_a_unix_socket_and_their_descriptors() {
    let v = Value::<u8>::new(1).unwrap();
    // A shared-memory pipe carries no descriptors.
    let (mut a, mut b) = pipe(true).unwrap();
    assert!(matches!(a.send_handle(&v), Err(IpcError::HandlesUnsupported { transport: "shared-memory pipe" })));
    assert!(matches!(b.recv_handle::<Value<u8>>(), Err(IpcError::HandlesUnsupported { .. })));
    // Nor does TCP.
    let l = Listener::bind(Address::loopback(0), None).unwrap();
    let addr = l.address().clone();
    let t = std::thread::spawn(move || l.accept().unwrap());
    let mut c = Client::connect(addr, None).unwrap();
    let err = c.send_handle(&v).unwrap_err();
    assert!(matches!(err, IpcError::HandlesUnsupported { transport: "TCP" }), "{err}");
    assert!(err.to_string().contains("TCP"));
    drop(t.join().unwrap());
    // A message shaped like a handle message but sent without descriptors.
    let (mut a, mut b) = Connection::pair().unwrap();
    a.send(&(vec![5i32], vec![0u8])).unwrap();
    assert!(matches!(b.recv_handle::<Value<u8>>(), Err(IpcError::MissingDescriptors { expected: 1, got: 0 })));
}
