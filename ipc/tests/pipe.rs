//! `pipe`: connections over shared-memory rings, across real processes.
//!
//! Children are forked with `mproc_testkit::fork` (a 20 s `alarm` watchdog in
//! each) and reaped with a deadline; every blocking call in the parent is
//! bounded by a `poll` timeout or by the child's watchdog.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mproc_ipc::{pipe, pipe_with_capacity, wait, Connection, ConnectionToken, IpcError};
use mproc_shm::{Exports, Share, ShmError};
use mproc_testkit::{fork, reap};

mod common;

use common::close_fd;

const LIMIT: Duration = Duration::from_secs(30);

/// Message `i` of a test sequence: lengths cycle through 0, small, odd and
/// (with `big`) chunked sizes; contents depend on `i`.
fn msg(i: usize, big: usize) -> Vec<u8> {
    let lens = [0, 1, 7, 8, 9, 63, 64, 65, 1000, big];
    let len = lens[i % lens.len()];
    (0..len).map(|b| (b * 7 + i * 13) as u8).collect()
}

#[test]
fn tutorial_three_values_then_close() {
    // Python: proc1 sends 0, 1, 2 and closes; proc2 receives until EOFError.
    let (mut rx, tx) = pipe(true).unwrap();
    let rx_fd = rx.as_raw_fd();
    let writer = fork(20, move || {
        close_fd(rx_fd);
        let mut tx = tx;
        for i in 0..3u32 {
            tx.send(&i).unwrap();
        }
        tx.close();
        0
    });
    // The parent's copy of the writing end went into the child; only the
    // child holds it now.
    let mut got = Vec::new();
    loop {
        assert!(rx.poll(Some(LIMIT)).unwrap(), "nothing and no end of file within {LIMIT:?}");
        match rx.recv::<u32>() {
            Ok(v) => got.push(v),
            Err(IpcError::Eof) => break,
            Err(e) => panic!("recv: {e}"),
        }
    }
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(reap(writer, LIMIT), 0);
    // End of file stays end of file.
    assert!(rx.poll(Some(Duration::ZERO)).unwrap());
    assert!(rx.recv_bytes().unwrap_err().is_eof());
}

#[test]
fn tutorial_in_one_process() {
    let (mut a, mut b) = pipe(true).unwrap();
    a.send(&1u32).unwrap();
    assert_eq!(b.recv::<u32>().unwrap(), 1);
    a.close();
    assert!(b.recv::<u32>().unwrap_err().is_eof());
}

#[test]
fn ping_pong_10k_across_fork() {
    const N: u64 = 10_000;
    let (mut here, there) = pipe(true).unwrap();
    let here_fd = here.as_raw_fd();
    let child = fork(20, move || {
        close_fd(here_fd);
        let mut there = there;
        loop {
            match there.recv::<u64>() {
                Ok(v) => there.send(&(v + 1)).unwrap(),
                Err(IpcError::Eof) => return 0,
                Err(e) => panic!("child recv: {e}"),
            }
        }
    });
    for i in 0..N {
        here.send(&(2 * i)).unwrap();
        assert_eq!(here.recv::<u64>().unwrap(), 2 * i + 1);
    }
    drop(here);
    assert_eq!(reap(child, LIMIT), 0);
}

/// The presence hint crosses processes: a child sleeping in `recv` is seen
/// asleep by the parent, which then receives its answer to a message (the
/// wake-up marks the child awake again) and sees it asleep once more.
#[test]
fn a_peer_sleeping_in_recv_is_seen_asleep_and_still_answers() {
    use mproc_ipc::__testing::pipe_peer_asleep;
    let (mut here, there) = pipe(true).unwrap();
    let here_fd = here.as_raw_fd();
    let child = fork(20, move || {
        close_fd(here_fd);
        let mut there = there;
        while let Ok(m) = there.recv_bytes() {
            there.send_bytes(&m).unwrap();
        }
        0
    });
    let asleep_within = |here: &Connection| {
        let t = Instant::now();
        while pipe_peer_asleep(here) != Some(true) {
            assert!(t.elapsed() < LIMIT, "the child never said it sleeps");
            std::thread::yield_now();
        }
    };
    for round in 0..3u8 {
        asleep_within(&here);
        here.send_bytes(&[round]).unwrap();
        assert!(here.poll(Some(LIMIT)).unwrap());
        assert_eq!(here.recv_bytes().unwrap(), [round]);
    }
    drop(here);
    assert_eq!(reap(child, LIMIT), 0);
}

#[test]
fn peer_sigkill_gives_eof_after_the_buffered_messages() {
    let (mut rx, tx) = pipe(false).unwrap();
    let (mut ready, ready_tx) = Connection::pair().unwrap();
    let rx_fd = rx.as_raw_fd();
    let child = fork(20, move || {
        close_fd(rx_fd);
        let (mut tx, mut ready_tx) = (tx, ready_tx);
        tx.send_bytes(b"one").unwrap();
        tx.send_bytes(b"two").unwrap();
        ready_tx.send_bytes(b"sent").unwrap();
        // Block for good (until killed), still holding the sending end.
        loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        }
    });
    assert!(ready.poll(Some(LIMIT)).unwrap());
    assert_eq!(ready.recv_bytes().unwrap(), b"sent");
    assert_eq!(rx.recv_bytes().unwrap(), b"one");
    // SAFETY: killing our own child.
    assert_eq!(unsafe { libc::kill(child, libc::SIGKILL) }, 0);
    assert_eq!(reap(child, LIMIT), -libc::SIGKILL);
    // The killed writer rang nothing: the reader sees the closed doorbell socket.
    assert!(rx.poll(Some(LIMIT)).unwrap(), "no end of file within {LIMIT:?} of the kill");
    assert_eq!(rx.recv_bytes().unwrap(), b"two");
    assert!(rx.recv_bytes().unwrap_err().is_eof());
}

#[test]
fn reader_sleeping_when_the_peer_is_killed_wakes_with_eof() {
    // The parent sleeps in recv (futex) while the child is killed by a third
    // process (a grandchild-free design: the child kills itself on a message).
    let (mut here, there) = pipe(true).unwrap();
    let here_fd = here.as_raw_fd();
    let child = fork(20, move || {
        close_fd(here_fd);
        let mut there = there;
        let _ = there.recv_bytes();
        // SAFETY: the child kills itself with SIGKILL: nothing runs after it.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        1
    });
    here.send_bytes(b"die").unwrap();
    // Blocks in recv until the doorbell socket closes; the child's watchdog
    // and the kill bound it.
    let t = Instant::now();
    assert!(here.recv_bytes().unwrap_err().is_eof());
    assert!(t.elapsed() < LIMIT);
    assert_eq!(reap(child, LIMIT), -libc::SIGKILL);
}

#[test]
fn wait_reports_a_killed_peer_as_ready_with_eof() {
    // The parent sleeps in `wait` (poll(2) on the doorbell socket) when the
    // child, holding the other end, is killed.
    let (mut here, there) = pipe(true).unwrap();
    let (other, _keep) = Connection::pair().unwrap();
    let here_fd = here.as_raw_fd();
    let child = fork(20, move || {
        close_fd(here_fd);
        let mut there = there;
        let _ = there.recv_bytes();
        // SAFETY: the child kills itself with SIGKILL: nothing runs after it.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        1
    });
    here.send_bytes(b"die").unwrap();
    assert_eq!(wait(&[&other, &here], Some(LIMIT)).unwrap(), vec![1], "no end of file within {LIMIT:?}");
    assert!(here.recv_bytes().unwrap_err().is_eof());
    assert_eq!(reap(child, LIMIT), -libc::SIGKILL);
}

/// A writer SIGKILLed in the middle of a chunked message (longer than the ring)
/// leaves the reader a `TruncatedMessage` naming both sizes, not a hang, not a
/// short message passed off as whole.
#[test]
fn writer_killed_mid_chunked_message_gives_truncated_message() {
    let (mut rx, tx) = pipe_with_capacity(false, 256).unwrap();
    let rx_fd = rx.as_raw_fd();
    let child = fork(20, move || {
        close_fd(rx_fd);
        let mut tx = tx;
        // 4 KiB through a 256-byte ring: blocks for room after the first chunks.
        let _ = tx.send_bytes(&[7u8; 4096]);
        2
    });
    // The first chunk is in the ring: the writer is mid-message.
    assert_eq!(wait(&[&rx], Some(LIMIT)).unwrap(), vec![0]);
    // SAFETY: killing our own child.
    assert_eq!(unsafe { libc::kill(child, libc::SIGKILL) }, 0);
    assert_eq!(reap(child, LIMIT), -libc::SIGKILL);
    match rx.recv_bytes() {
        Err(IpcError::TruncatedMessage { expected, got }) => {
            assert_eq!(expected, 4096 + 8);
            assert!(got < expected, "got {got} of {expected}");
        }
        other => panic!("expected TruncatedMessage, got {other:?}"),
    }
}

#[test]
fn writer_facing_a_killed_reader_gets_broken_pipe_not_a_hang() {
    let (rx, mut tx) = pipe_with_capacity(false, 256).unwrap();
    let tx_fd = tx.as_raw_fd();
    let child = fork(20, move || {
        close_fd(tx_fd);
        let mut rx = rx;
        // Read one message, then block for good without reading more.
        let _ = rx.recv_bytes();
        loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        }
    });
    tx.send_bytes(b"first").unwrap();
    // SAFETY: killing our own child.
    assert_eq!(unsafe { libc::kill(child, libc::SIGKILL) }, 0);
    assert_eq!(reap(child, LIMIT), -libc::SIGKILL);
    let mut result = Ok(());
    for _ in 0..1000 {
        result = tx.send_bytes(&[5u8; 40]);
        if result.is_err() {
            break;
        }
    }
    match result {
        Err(IpcError::Os { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::BrokenPipe),
        other => panic!("expected a broken pipe once the ring filled, got {other:?}"),
    }
}

#[test]
fn zero_length_and_chunked_messages_keep_their_boundaries() {
    // A small ring (records of < 120 bytes) so that most messages are chunked,
    // and a reader in another process so that messages larger than the ring
    // flow through it.
    let (mut here, there) = pipe_with_capacity(true, 256).unwrap();
    assert_eq!(here.ring_capacity(), Some(256));
    let here_fd = here.as_raw_fd();
    let child = fork(20, move || {
        close_fd(here_fd);
        let mut there = there;
        loop {
            match there.recv_bytes() {
                Ok(m) => there.send_bytes(&m).unwrap(),
                Err(IpcError::Eof) => return 0,
                Err(e) => panic!("child recv: {e}"),
            }
        }
    });
    for i in 0..200 {
        let m = msg(i, 100_000);
        here.send_bytes(&m).unwrap();
        assert_eq!(here.recv_bytes().unwrap(), m, "message {i} ({} bytes)", m.len());
    }
    drop(here);
    assert_eq!(reap(child, LIMIT), 0);
}

#[test]
fn a_message_far_larger_than_the_default_ring() {
    let (mut here, there) = pipe(true).unwrap();
    let here_fd = here.as_raw_fd();
    let child = fork(20, move || {
        close_fd(here_fd);
        let mut there = there;
        let m = there.recv_bytes().unwrap();
        there.send(&(m.len() as u64, m.iter().map(|&b| b as u64).sum::<u64>())).unwrap();
        there.send_bytes(&m).unwrap();
        0
    });
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    here.send_bytes(&big).unwrap();
    let (len, sum): (u64, u64) = here.recv().unwrap();
    assert_eq!((len, sum), (big.len() as u64, big.iter().map(|&b| b as u64).sum()));
    assert_eq!(here.recv_bytes().unwrap(), big);
    assert_eq!(reap(child, LIMIT), 0);
}

#[test]
fn boundaries_are_never_merged_in_one_process() {
    let (mut a, mut b) = pipe(true).unwrap();
    // Within the ring's capacity, no reader needed.
    let msgs: Vec<Vec<u8>> = (0..30).map(|i| msg(i, 5000)).collect();
    for m in &msgs {
        a.send_bytes(m).unwrap();
    }
    for m in &msgs {
        assert!(b.poll(Some(Duration::ZERO)).unwrap());
        assert_eq!(&b.recv_bytes().unwrap(), m);
    }
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    // And the other direction.
    b.send_bytes(b"").unwrap();
    b.send_bytes(b"x").unwrap();
    assert_eq!(a.recv_bytes().unwrap(), b"");
    assert_eq!(a.recv_bytes().unwrap(), b"x");
}

#[test]
fn recv_bytes_into_too_short_carries_the_message() {
    let (mut a, mut b) = pipe_with_capacity(true, 256).unwrap();
    let mut buf = [0u8; 4];
    // One record.
    a.send_bytes(b"0123456789").unwrap();
    match b.recv_bytes_into(&mut buf) {
        Err(IpcError::BufferTooShort { capacity: 4, message }) => assert_eq!(message, b"0123456789"),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    // Chunked (the ring's records hold under 120 bytes).
    let long: Vec<u8> = (0..200u8).collect();
    a.send_bytes(&long).unwrap();
    match b.recv_bytes_into(&mut buf) {
        Err(IpcError::BufferTooShort { capacity: 4, message }) => assert_eq!(message, long),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    // The connection goes on.
    a.send_bytes(b"ok").unwrap();
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"ok");
    let mut big = vec![0u8; 300];
    a.send_bytes(&long).unwrap();
    assert_eq!(b.recv_bytes_into(&mut big).unwrap(), 200);
    assert_eq!(&big[..200], &long[..]);
}

#[test]
fn recv_bytes_max_leaves_a_longer_message_queued() {
    let (mut a, mut b) = pipe(true).unwrap();
    a.send_bytes(&[9u8; 100]).unwrap();
    match b.recv_bytes_max(10) {
        Err(IpcError::MessageTooLarge { len: 100, max: 10 }) => {}
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert_eq!(b.recv_bytes_max(100).unwrap(), [9u8; 100]);
}

#[test]
fn one_way_pipe_refuses_the_wrong_direction() {
    let (mut rx, mut tx) = pipe(false).unwrap();
    assert!(rx.readable() && !rx.writable());
    assert!(tx.writable() && !tx.readable());
    match rx.send_bytes(b"x") {
        Err(IpcError::WrongDirection { op: "send", end: "receive" }) => {}
        other => panic!("expected WrongDirection, got {other:?}"),
    }
    match rx.send(&1u8) {
        Err(e @ IpcError::WrongDirection { .. }) => assert!(e.to_string().contains("receive-only"), "{e}"),
        other => panic!("expected WrongDirection, got {other:?}"),
    }
    match tx.recv_bytes() {
        Err(IpcError::WrongDirection { op: "receive", end: "send" }) => {}
        other => panic!("expected WrongDirection, got {other:?}"),
    }
    assert!(matches!(tx.poll(Some(Duration::ZERO)), Err(IpcError::WrongDirection { .. })));
    let mut buf = [0u8; 1];
    assert!(matches!(tx.recv_bytes_into(&mut buf), Err(IpcError::WrongDirection { .. })));
    // The right direction works.
    tx.send_bytes(b"y").unwrap();
    assert_eq!(rx.recv_bytes().unwrap(), b"y");
}

#[test]
fn wait_mixes_ring_and_socket_connections() {
    let (mut ring_here, ring_there) = pipe(true).unwrap();
    let (mut sock_here, sock_there) = Connection::pair().unwrap();
    let (mut go_here, go_there) = Connection::pair().unwrap();
    assert!(wait(&[&ring_here, &sock_here], Some(Duration::ZERO)).unwrap().is_empty());
    let (rh, sh, gh) = (ring_here.as_raw_fd(), sock_here.as_raw_fd(), go_here.as_raw_fd());
    let child = fork(20, move || {
        for fd in [rh, sh, gh] {
            close_fd(fd);
        }
        let (mut ring, mut sock, mut go) = (ring_there, sock_there, go_there);
        // Each "go" from the parent (sent just before it sleeps in wait)
        // names the connection to write on.
        loop {
            match go.recv::<u8>() {
                Ok(0) => ring.send_bytes(b"ring").unwrap(),
                Ok(1) => sock.send_bytes(b"sock").unwrap(),
                Ok(_) => {
                    // Close both: wait must report both at end of file.
                    drop(ring);
                    drop(sock);
                    let _ = go.recv::<u8>();
                    return 0;
                }
                Err(_) => return 2,
            }
        }
    });
    for round in 0..50 {
        go_here.send(&0u8).unwrap();
        assert_eq!(wait(&[&ring_here, &sock_here], Some(LIMIT)).unwrap(), vec![0], "round {round}");
        assert_eq!(ring_here.recv_bytes().unwrap(), b"ring");
        go_here.send(&1u8).unwrap();
        assert_eq!(wait(&[&sock_here, &ring_here], Some(LIMIT)).unwrap(), vec![0], "round {round}");
        assert_eq!(sock_here.recv_bytes().unwrap(), b"sock");
    }
    // Nothing pending: a short wait times out empty.
    assert!(wait(&[&ring_here, &sock_here], Some(Duration::from_millis(30))).unwrap().is_empty());
    go_here.send(&2u8).unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut ready = Vec::new();
    while ready != [0, 1] && Instant::now() < deadline {
        ready = wait(&[&ring_here, &sock_here], Some(LIMIT)).unwrap();
    }
    assert_eq!(ready, [0, 1]);
    assert!(ring_here.recv_bytes().unwrap_err().is_eof());
    drop(go_here);
    assert_eq!(reap(child, LIMIT), 0);
}

/// `wait_any` mixes a ring connection with a child's sentinel (a pidfd, as
/// `Process::sentinel` gives): the message comes first, then the child's exit.
#[test]
fn wait_any_mixes_a_connection_and_a_process_sentinel() {
    use mproc_ipc::{wait_any, Waitable};
    use std::os::fd::AsFd;
    let (mut here, there) = pipe(true).unwrap();
    let (mut go_here, go_there) = Connection::pair().unwrap();
    let (h, g) = (here.as_raw_fd(), go_here.as_raw_fd());
    let child = fork(20, move || {
        close_fd(h);
        close_fd(g);
        let (mut there, mut go) = (there, go_there);
        there.send_bytes(b"hello").unwrap();
        // Exits when told to.
        match go.recv::<u8>() {
            Ok(_) => 0,
            Err(_) => 2,
        }
    });
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(child).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let ready_of = |here: &Connection| wait_any(&[Waitable::from(here), Waitable::Fd(pidfd.as_fd())], Some(LIMIT));
    assert_eq!(ready_of(&here).unwrap(), vec![0], "the message, the child still runs");
    assert_eq!(here.recv_bytes().unwrap(), b"hello");
    go_here.send(&1u8).unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut ready = Vec::new();
    // The child's end of the pipe closes as it exits: both become ready.
    while ready != [0, 1] && Instant::now() < deadline {
        ready = ready_of(&here).unwrap();
    }
    assert_eq!(ready, [0, 1]);
    assert!(here.recv_bytes().unwrap_err().is_eof());
    assert_eq!(reap(child, LIMIT), 0);
}

#[test]
fn wait_reports_a_message_already_in_the_ring() {
    let (mut a, b) = pipe(true).unwrap();
    let (_c, d) = Connection::pair().unwrap();
    a.send_bytes(b"x").unwrap();
    assert_eq!(wait(&[&d, &b], Some(Duration::ZERO)).unwrap(), vec![1]);
    assert_eq!(wait(&[&d, &b], None).unwrap(), vec![1]);
}

#[test]
fn close_semantics() {
    let (mut a, mut b) = pipe(true).unwrap();
    a.send_bytes(b"before close").unwrap();
    a.close();
    assert!(a.is_closed() && !a.readable() && !a.writable());
    assert!(matches!(a.send_bytes(b"x"), Err(IpcError::Closed)));
    assert!(matches!(a.recv_bytes(), Err(IpcError::Closed)));
    assert!(matches!(a.poll(Some(Duration::ZERO)), Err(IpcError::Closed)));
    assert!(matches!(wait(&[&a], Some(Duration::ZERO)), Err(IpcError::Closed)));
    a.close(); // twice is fine
               // The peer drains what was sent, then reads end of file, and poll says so.
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"before close");
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert!(b.recv_bytes().unwrap_err().is_eof());
    assert_eq!(wait(&[&b], Some(Duration::ZERO)).unwrap(), vec![0]);
    // Sending to a closed peer: a broken pipe at the latest once the ring is full.
    let mut err = None;
    for _ in 0..10_000 {
        if let Err(e) = b.send_bytes(&[0u8; 1000]) {
            err = Some(e);
            break;
        }
    }
    match err {
        Some(IpcError::Os { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::BrokenPipe),
        other => panic!("expected a broken pipe, got {other:?}"),
    }
}

#[test]
fn dropping_an_end_wakes_a_reader_sleeping_in_another_thread() {
    let (mut a, b) = pipe(true).unwrap();
    let t = std::thread::spawn(move || a.recv_bytes());
    // Whether the reader is asleep yet or not, it must read end of file.
    drop(b);
    let r = t.join().unwrap();
    assert!(r.unwrap_err().is_eof());
}

#[test]
fn threads_exchange_through_a_small_ring() {
    let (mut a, mut b) = pipe_with_capacity(true, 64).unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..2000 {
            let m = msg(i, 300);
            assert_eq!(b.recv_bytes().unwrap(), m);
            b.send(&(i as u32)).unwrap();
        }
    });
    for i in 0..2000 {
        a.send_bytes(&msg(i, 300)).unwrap();
        assert_eq!(a.recv::<u32>().unwrap(), i as u32);
    }
    t.join().unwrap();
}

#[test]
fn bad_capacity_is_a_typed_error() {
    match pipe_with_capacity(true, 0) {
        Err(IpcError::Shm(ShmError::ZeroSize { .. })) => {}
        other => panic!("expected ZeroSize, got {other:?}"),
    }
}

// ---- Share: a ring connection crosses exec by token -----------------------

const ENV: &str = "MPROC_IPC_PIPE_TOKEN";

/// Runs only as the spawned child: imports the ring connection and echoes
/// each message reversed until end of file.
#[test]
fn pipe_share_child_entry() {
    let Some(token) = mproc_testkit::token_from_env::<ConnectionToken>(ENV) else { return };
    let mut c = Connection::import(token).expect("import in the child");
    assert!(c.is_shared_memory());
    loop {
        match c.recv_bytes() {
            Ok(mut m) => {
                m.reverse();
                c.send_bytes(&m).unwrap();
            }
            Err(IpcError::Eof) => break,
            Err(e) => panic!("child recv: {e}"),
        }
    }
}

#[test]
fn ring_connection_crosses_exec_by_token() {
    let (mut parent, child_end) = pipe_with_capacity(true, 1024).unwrap();
    let mut exports = Exports::new();
    let token = child_end.export(&mut exports).unwrap();
    // The doorbell socket and the pipe's memfd.
    assert_eq!(exports.fds().len(), 2);
    assert!(exports.fds().contains(&child_end.as_raw_fd()));
    let child = mproc_testkit::spawn_entry("pipe_share_child_entry", ENV, &token, exports.fds());
    drop(child_end);
    let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    for m in [&b"abc"[..], b"", b"hello", &big] {
        parent.send_bytes(m).unwrap();
        assert!(parent.poll(Some(LIMIT)).unwrap(), "no echo within {LIMIT:?}");
        let mut expect = m.to_vec();
        expect.reverse();
        assert_eq!(parent.recv_bytes().unwrap(), expect);
    }
    drop(parent);
    common::expect_spawned_success(child, LIMIT);
}

#[test]
fn ring_token_import_checks_what_it_names() {
    let (mut a, b) = pipe(true).unwrap();
    let token = b.export(&mut Exports::new()).unwrap();
    // In the exporting process: the socket is duplicated, the segment shared.
    let mut b2 = Connection::import(token.clone()).unwrap();
    assert!(b2.is_shared_memory());
    a.send_bytes(b"hi").unwrap();
    assert_eq!(b2.recv_bytes().unwrap(), b"hi");
    drop(b2);
    drop(b);
    // Both copies closed: end of file, and the token is stale.
    assert!(a.recv_bytes().unwrap_err().is_eof());
    match Connection::import(token) {
        Err(ShmError::BadToken { .. }) => {}
        other => panic!("expected BadToken, got {other:?}"),
    }
    // A socket connection's token stays a socket connection.
    let (_c, d) = Connection::pair().unwrap();
    let t = d.export(&mut Exports::new()).unwrap();
    assert!(!Connection::import(t).unwrap().is_shared_memory());
}
