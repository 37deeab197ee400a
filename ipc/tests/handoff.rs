//! `ShmBox` through the carriers, across real processes: a 16 MiB box put in a
//! `Queue` (forked child and spawned child) or sent over a `Connection`
//! (socket and shared-memory pipe) reaches the other process by name — the
//! same memory, written there and seen back here — and is freed exactly once.
//! A failed put or send leaves the box the sender's. The kill and leak cases
//! are in `handoff_kill.rs` (a binary of their own: no tracker in the parent).

use std::path::Path;
use std::time::Duration;

use mproc_ipc::{pipe, Connection, IpcError, Queue, QueueError};
use mproc_shm::{shm_box, Exports, Share, ShmBox, ShmError};
use mproc_testkit::{fork, reap};

mod common;

const LIMIT: Duration = Duration::from_secs(20);
const MIB16: usize = 16 << 20;
const ENV: &str = "MPROC_IPC_HANDOFF_TOKEN";

/// A 16 MiB box of 7s with a marker at both ends.
fn big_box() -> ShmBox<[u8]> {
    let mut b = ShmBox::<[u8]>::zeroed(MIB16).unwrap();
    b.fill(7);
    b[0] = 1;
    b[MIB16 - 1] = 2;
    b
}

/// What the receiving side checks and then writes: the markers, every byte
/// between them, then 0xAB over the first MiB and 3 at the end.
fn check_and_write(b: &mut ShmBox<[u8]>) -> bool {
    let ok = b.len() == MIB16 && b[0] == 1 && b[MIB16 - 1] == 2 && b[1..MIB16 - 1] == vec![7u8; MIB16 - 2][..];
    b[..1 << 20].fill(0xAB);
    b[MIB16 - 1] = 3;
    ok
}

fn written_there(b: &ShmBox<[u8]>) -> bool {
    b.len() == MIB16 && b[..1 << 20] == vec![0xABu8; 1 << 20][..] && b[MIB16 - 1] == 3 && b[1 << 20] == 7
}

fn exists(name: &str) -> bool {
    Path::new("/dev/shm").join(name).exists()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_16_mib_box_crosses_a_queue_into_a_forked_child_and_back() {
    let (there, back) = (Queue::<ShmBox<[u8]>>::new().unwrap(), Queue::<ShmBox<[u8]>>::new().unwrap());
    let child = {
        let (there, back) = (there.clone(), back.clone());
        fork(30, move || {
            let Ok(mut b) = there.get_timeout(LIMIT) else { return 2 };
            if !check_and_write(&mut b) {
                return 3;
            }
            // Sent on: the child owned it, and hands it back.
            if back.put(b).is_err() {
                return 4;
            }
            0
        })
    };
    let b = big_box();
    let name = b.name().to_owned();
    there.put(b).unwrap();
    assert!(
        there.shared_memory_bytes() < 1 << 20,
        "the queue holds {} bytes: the box went by copy, not by name",
        there.shared_memory_bytes()
    );
    let b = back.get_timeout(LIMIT).unwrap();
    assert_eq!(reap(child, LIMIT), 0, "the child saw the parent's bytes");
    assert_eq!(b.name(), name, "the same segment came back");
    assert!(written_there(&b), "the child's writes are seen here");
    drop(b);
    assert!(!exists(&name), "dropped by its owner: unlinked");
}

/// Runs only as the spawned child: takes a box, checks and writes it, sends it back.
#[test]
fn handoff_spawn_child_entry() {
    type Tokens = (<Queue<ShmBox<[u8]>> as Share>::Token, <Queue<ShmBox<[u8]>> as Share>::Token);
    let Some((there, back)) = mproc_testkit::token_from_env::<Tokens>(ENV) else { return };
    let there = Queue::<ShmBox<[u8]>>::import(there).expect("import");
    let back = Queue::<ShmBox<[u8]>>::import(back).expect("import");
    let mut b = there.get_timeout(LIMIT).expect("a box");
    assert!(check_and_write(&mut b), "the spawned child sees the parent's bytes");
    back.put(b).expect("put back");
}

#[test]
fn a_16_mib_box_crosses_a_queue_into_a_spawned_child_and_back() {
    let (there, back) = (Queue::<ShmBox<[u8]>>::new().unwrap(), Queue::<ShmBox<[u8]>>::new().unwrap());
    let mut exports = Exports::new();
    let tokens = (there.export(&mut exports).unwrap(), back.export(&mut exports).unwrap());
    let child = mproc_testkit::spawn_entry("handoff_spawn_child_entry", ENV, &tokens, exports.fds());
    let b = big_box();
    let name = b.name().to_owned();
    there.put(b).unwrap();
    let b = back.get_timeout(LIMIT).unwrap();
    assert!(written_there(&b), "the spawned child's writes are seen here");
    drop(b);
    assert!(!exists(&name));
    common::expect_spawned_success(child, LIMIT);
}

/// Over `here`/`there` (socket pair or pipe): the child receives the box in a
/// tuple, checks and writes it, and sends it back.
fn round_trip_over(mut here: Connection, there: Connection) {
    let here_fd = std::os::fd::AsRawFd::as_raw_fd(&here);
    let child = fork(30, move || {
        // SAFETY: the parent's end, inherited by fork; nothing here uses it.
        unsafe { libc::close(here_fd) };
        let mut there = there;
        let Ok((tag, mut b)) = there.recv::<(u32, ShmBox<[u8]>)>() else { return 2 };
        if tag != 19 || !check_and_write(&mut b) {
            return 3;
        }
        if there.send(&b).is_err() {
            return 4;
        }
        0
    });
    let b = big_box();
    let name = b.name().to_owned();
    here.send(&(19u32, &b)).unwrap();
    assert!(b.is_sent() && b.is_empty(), "the sender's handle gave the data away");
    drop(b);
    assert!(exists(&name), "a sent box is not unlinked by the sender");
    let b: ShmBox<[u8]> = here.recv().unwrap();
    assert_eq!(reap(child, LIMIT), 0);
    assert!(written_there(&b));
    drop(b);
    assert!(!exists(&name));
}

#[test]
fn a_16_mib_box_crosses_a_socket_connection_and_back() {
    let (here, there) = Connection::pair().unwrap();
    round_trip_over(here, there);
}

#[test]
fn a_16_mib_box_crosses_a_shared_memory_pipe_and_back() {
    let (here, there) = pipe(true).unwrap();
    assert!(here.is_shared_memory());
    round_trip_over(here, there);
}

#[test]
fn a_box_is_freed_exactly_once_and_claimed_once() {
    let q = Queue::<ShmBox<[u64]>>::new().unwrap();
    let wire = Queue::<mproc_ipc::Bytes>::new().unwrap();
    let child = {
        let (q, wire) = (q.clone(), wire.clone());
        fork(30, move || {
            let before = open_fds();
            let Ok(b) = q.get_timeout(LIMIT) else { return 2 };
            if b.len() != 1000 || b[999] != 999 || open_fds() != before + 1 {
                return 3;
            }
            let name = b.name().to_owned();
            drop(b);
            // The receiver owned it: its drop unlinked the name and closed its fd.
            if exists(&name) || open_fds() != before {
                return 4;
            }
            // A copy of a token already claimed is refused, with a typed cause.
            let Ok(bytes) = wire.get_timeout(LIMIT) else { return 5 };
            match postcard::from_bytes::<ShmBox<[u64]>>(&bytes) {
                Err(_) => {}
                Ok(_) => return 6,
            }
            match shm_box::take_receive_error() {
                Some(ShmError::BoxGone { name: gone }) if gone == name => 0,
                other => {
                    eprintln!("expected BoxGone, got {other:?}");
                    7
                }
            }
        })
    };
    let b = ShmBox::<[u64]>::from_slice(&(0..1000).collect::<Vec<u64>>()).unwrap();
    let name = b.name().to_owned();
    // The token as the queue carries it, kept to replay after the receipt.
    let token = postcard::to_allocvec(&b).unwrap();
    assert!(b.is_sent() && exists(&name), "sent: the name stays for the receiver");
    q.put(b).unwrap();
    wire.put(token.into()).unwrap();
    assert_eq!(reap(child, Duration::from_secs(30)), 0);
    assert!(!exists(&name), "freed by the receiver");
}

#[test]
fn a_box_put_into_a_closed_queue_stays_the_senders() {
    let q = Queue::<ShmBox<[u8]>>::new().unwrap();
    q.close();
    let b = ShmBox::<[u8]>::from_slice(b"still mine").unwrap();
    let name = b.name().to_owned();
    let err = q.put(b).unwrap_err();
    assert!(matches!(err.error(), QueueError::Closed));
    let b = err.into_item();
    assert!(!b.is_sent());
    assert_eq!(&b[..], b"still mine");
    drop(b);
    assert!(!exists(&name), "dropped unsent: unlinked");
}

#[test]
fn a_put_that_times_out_gives_the_box_back_whole() {
    let q = Queue::<ShmBox<[u8]>>::with_maxsize(1).unwrap();
    q.put(ShmBox::<[u8]>::zeroed(10).unwrap()).unwrap();
    let b = ShmBox::<[u8]>::from_slice(b"mine").unwrap();
    let name = b.name().to_owned();
    // Sized (so serialised once) before the wait for room timed out.
    let err = q.put_timeout(b, Duration::from_millis(20)).unwrap_err();
    assert!(matches!(err.error(), QueueError::Timeout { .. }), "{:?}", err.error());
    let b = err.into_item();
    assert!(!b.is_sent(), "reclaimed after the failed put");
    assert_eq!(&b[..], b"mine");
    drop(b);
    assert!(!exists(&name));
    let first = q.get().unwrap();
    assert_eq!(first.len(), 10);
}

#[test]
fn a_send_to_a_closed_peer_gives_the_box_back() {
    let (mut here, there) = Connection::pair().unwrap();
    drop(there);
    let b = ShmBox::<[u8]>::from_slice(b"undelivered").unwrap();
    let name = b.name().to_owned();
    let err = here.send(&b).unwrap_err();
    assert!(matches!(err, IpcError::Os { .. }), "{err:?}");
    assert!(!b.is_sent());
    assert_eq!(&b[..], b"undelivered");
    drop(b);
    assert!(!exists(&name));
}

#[test]
fn a_box_received_as_another_element_type_is_refused_by_name() {
    let (mut here, mut there) = Connection::pair().unwrap();
    let b = ShmBox::<[u32]>::zeroed(4).unwrap();
    let name = b.name().to_owned();
    here.send(&b).unwrap();
    drop(b);
    assert!(there.recv::<ShmBox<[f64]>>().is_err());
    match shm_box::take_receive_error() {
        Some(ShmError::LayoutMismatch { detail, .. }) => assert!(detail.contains("f64"), "{detail}"),
        other => panic!("expected a layout mismatch, got {other:?}"),
    }
    assert!(!exists(&name), "the claimed but unusable box was freed");
}
