//! A fuzz test of the manager server, as proptest: random frames (raw bytes,
//! and well-formed requests carrying random arguments and method calls) sent by
//! an authenticated client never crash the server or wedge it. Every frame gets
//! a typed response or, for a frame that puts the stream out of step, a hang-up;
//! afterwards the server still serves other clients.
//!
//! Frames that would stop the server on purpose (`Shutdown`) or block the
//! connection's thread (a random `Call` could be a blocking `Queue::get`) are
//! not sent raw; calls go only to objects whose methods never block.

mod common;

use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::handshake_as_client;
use mproc_ipc::Connection;
use mproc_manager::wire::{Request, Response};
use mproc_manager::{typeids, Address, Manager};
use proptest::prelude::*;

/// No read in this test waits longer than this.
const T: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
enum Frame {
    /// Random bytes (never a `Shutdown` or `Call` request).
    Raw(Vec<u8>),
    /// A method call with random bytes to the `target`-th non-blocking object.
    Call { target: usize, method: usize, args: Vec<u8> },
    /// A create of any typeid (or a made-up one) with random constructor bytes.
    Create { typeid: usize, args: Vec<u8> },
    /// Reference counting on ids near the real ones.
    Ref { inc: bool, id: u64 },
}

const TYPEIDS: &[&str] = &[
    typeids::LIST,
    typeids::ARRAY,
    typeids::DICT,
    typeids::NAMESPACE,
    typeids::VALUE,
    typeids::QUEUE,
    typeids::JOINABLE_QUEUE,
    typeids::LOCK,
    typeids::RLOCK,
    typeids::SEMAPHORE,
    typeids::BOUNDED_SEMAPHORE,
    typeids::CONDITION,
    typeids::EVENT,
    typeids::BARRIER,
    "os.system",
];

const METHODS: &[&str] = &[
    "append",
    "__getitem__",
    "pop",
    "sort",
    "get",
    "put",
    "acquire",
    "release",
    "wait",
    "keys",
    "#GETVALUE",
    "system",
];

fn raw_frame() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..48).prop_filter("a shutdown or a raw call", |b| {
        !matches!(postcard::from_bytes::<Request>(b), Ok(Request::Shutdown | Request::Call { .. }))
    })
}

fn frame() -> impl Strategy<Value = Frame> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..24);
    prop_oneof![
        3 => raw_frame().prop_map(Frame::Raw),
        // A method the types have (or not), then random argument bytes.
        4 => (0usize..5, 0..METHODS.len(), bytes()).prop_map(|(target, method, args)| {
            Frame::Call { target, method, args }
        }),
        2 => (0..TYPEIDS.len(), bytes()).prop_map(|(typeid, args)| Frame::Create { typeid, args }),
        1 => (any::<bool>(), 0u64..40).prop_map(|(inc, id)| Frame::Ref { inc, id }),
    ]
}

fn connect(manager: &Manager, client: u64) -> Connection {
    let Some(Address::Unix(path)) = manager.address() else { unreachable!("a started manager is on a Unix socket") };
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut c = Connection::from_unix(s);
    handshake_as_client(&mut c, manager.authkey()).unwrap();
    c.send(&Request::Hello { client }).unwrap();
    c
}

#[test]
fn random_frames_never_crash_or_wedge_the_server() {
    let manager = Manager::start().unwrap();
    let pid = manager.server_pid().unwrap();
    // The objects random calls go to: none of their methods blocks.
    let list = manager.list_from([1u32, 2, 3]).unwrap();
    let dict = manager.dict::<String, u32>().unwrap();
    let ns = manager.namespace().unwrap();
    let value = manager.value(7i64).unwrap();
    let array = manager.array([0.5f64; 4]).unwrap();
    let targets = [list.object().id(), dict.object().id(), ns.object().id(), value.object().id(), array.object().id()];

    let config = ProptestConfig { cases: 256, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let next_client = std::sync::atomic::AtomicU64::new(1000);
    // (successful replies, error replies, hang-ups): the frames reach the code.
    let seen = std::cell::Cell::new((0u32, 0u32, 0u32));
    let fresh = || next_client.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    runner
        .run(&prop::collection::vec(frame(), 1..40), |frames| {
            let mut c = connect(&manager, fresh());
            for f in &frames {
                let sent = match f {
                    Frame::Raw(b) => c.send_bytes(b),
                    Frame::Call { target, method, args } => c.send(&Request::Call {
                        id: targets[*target],
                        thread: 1,
                        method: METHODS[*method].into(),
                        args: args.clone(),
                    }),
                    Frame::Create { typeid, args } => {
                        c.send(&Request::Create { typeid: TYPEIDS[*typeid].into(), args: args.clone() })
                    }
                    Frame::Ref { inc: true, id } => c.send(&Request::IncRef { id: *id }),
                    Frame::Ref { inc: false, id } => c.send(&Request::DecRef { id: *id }),
                };
                let answered = sent.map_err(|e| e.to_string()).and_then(|()| match c.recv::<Response>() {
                    Ok(resp) => {
                        let (ok, err, hup) = seen.get();
                        seen.set(if resp.is_ok() { (ok + 1, err, hup) } else { (ok, err + 1, hup) });
                        Ok(true)
                    }
                    Err(e) if e.is_eof() => {
                        let (ok, err, hup) = seen.get();
                        seen.set((ok, err, hup + 1));
                        Ok(false)
                    }
                    Err(e) => Err(e.to_string()),
                });
                match answered {
                    Ok(true) => {}
                    // The server hung up on a frame that put the stream out of step.
                    Ok(false) => {
                        c = connect(&manager, fresh());
                    }
                    Err(e) => prop_assert!(false, "{f:?}: no typed response nor hang-up: {e}"),
                }
            }
            // Still serving: another client's typed call works.
            let len = list.len();
            prop_assert!(len.is_ok(), "the list after the frames: {:?}", len);
            Ok(())
        })
        .unwrap();
    let (ok, err, hup) = seen.get();
    eprintln!("{ok} successful replies, {err} error replies, {hup} hang-ups");
    assert!(ok > 0 && err > 0, "the frames exercised both outcomes: {ok} ok, {err} errors");
    assert_eq!(manager.server_pid(), Some(pid), "the same server process throughout");
    assert!(manager.stats().is_ok());
}
