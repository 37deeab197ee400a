//! Connection over a socketpair: boundaries, zero-length messages, EOF, caps,
//! poll/wait, and the same across a forked process.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use mproc_ipc::{wait, Connection, IpcError};
use mproc_testkit::{fork, reap};

const T: Option<Duration> = Some(Duration::from_secs(10));

/// A raw socket end plus a Connection on the other, to write arbitrary bytes.
fn raw_and_conn() -> (UnixStream, Connection) {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (a, Connection::from_unix(b))
}

#[test]
fn smoke() {
    let (mut a, mut b) = Connection::pair().unwrap();
    a.send_bytes(b"hello").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"hello");
    b.send(&vec![1u64, 2, 3]).unwrap();
    assert_eq!(a.recv::<Vec<u64>>().unwrap(), vec![1, 2, 3]);
}

#[test]
fn zero_length_messages_and_boundaries() {
    let (mut a, mut b) = Connection::pair().unwrap();
    let msgs: Vec<Vec<u8>> = (0..200).map(|i| vec![i as u8; i % 5]).collect();
    for m in &msgs {
        a.send_bytes(m).unwrap();
    }
    for m in &msgs {
        assert_eq!(&b.recv_bytes().unwrap(), m);
    }
}

#[test]
fn bytes_on_the_wire_are_cpython_framing() {
    let (mut raw, mut conn) = raw_and_conn();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.send_bytes(b"abc").unwrap();
    conn.send(&300u16).unwrap(); // postcard varint: 0xac 0x02
    let mut got = [0u8; 13];
    raw.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"\0\0\0\x03abc\0\0\0\x02\xac\x02");
    raw.write_all(b"\0\0\0\0\0\0\0\x01z").unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"");
    assert_eq!(conn.recv_bytes().unwrap(), b"z");
}

#[test]
fn large_message_round_trip() {
    let (mut a, mut b) = Connection::pair().unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
    let expect = big.clone();
    let t = std::thread::spawn(move || {
        a.send_bytes(&big).unwrap();
        a.send_bytes(b"tail").unwrap();
        a
    });
    assert_eq!(b.recv_bytes().unwrap(), expect);
    assert_eq!(b.recv_bytes().unwrap(), b"tail");
    t.join().unwrap();
}

#[test]
fn oversized_frame_rejected_before_allocation() {
    let (mut raw, mut conn) = raw_and_conn();
    // Announce 2^62 bytes in the -1 form: allocating it would abort the test.
    raw.write_all(&(-1i32).to_be_bytes()).unwrap();
    raw.write_all(&(1u64 << 62).to_be_bytes()).unwrap();
    match conn.recv_bytes() {
        Err(IpcError::MessageTooLarge { len, max }) => {
            assert_eq!(len, 1 << 62);
            assert_eq!(max, mproc_ipc::DEFAULT_MAX_FRAME);
        }
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert!(matches!(conn.recv_bytes(), Err(IpcError::Unreadable { .. })));
}

#[test]
fn recv_bytes_max_refuses_longer_message() {
    let (mut a, mut b) = Connection::pair().unwrap();
    a.send_bytes(&[0u8; 100]).unwrap();
    assert!(matches!(b.recv_bytes_max(99), Err(IpcError::MessageTooLarge { len: 100, max: 99 })));
}

#[test]
fn bad_negative_header_is_a_typed_error() {
    let (mut raw, mut conn) = raw_and_conn();
    raw.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(matches!(conn.recv_bytes(), Err(IpcError::BadHeader { len: -5 })));
}

#[test]
fn eof_mid_frame_is_distinct_from_clean_eof() {
    let (mut raw, mut conn) = raw_and_conn();
    raw.write_all(b"\0\0\0\x0aabc").unwrap();
    drop(raw);
    assert!(matches!(conn.recv_bytes(), Err(IpcError::TruncatedMessage { expected: 14, got: 7 })));

    let (mut a, mut b) = Connection::pair().unwrap();
    a.send_bytes(b"last").unwrap();
    a.close();
    assert!(matches!(a.send_bytes(b"x"), Err(IpcError::Closed)));
    assert_eq!(b.recv_bytes().unwrap(), b"last");
    assert!(matches!(b.recv_bytes(), Err(IpcError::Eof)));
    assert!(matches!(b.recv::<u32>(), Err(IpcError::Eof)));
}

#[test]
fn recv_bytes_into_too_short_carries_message() {
    let (mut a, mut b) = Connection::pair().unwrap();
    a.send_bytes(b"0123456789").unwrap();
    a.send_bytes(b"ok").unwrap();
    let mut buf = [0u8; 4];
    match b.recv_bytes_into(&mut buf) {
        Err(IpcError::BufferTooShort { capacity, message }) => {
            assert_eq!(capacity, 4);
            assert_eq!(message, b"0123456789");
        }
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"ok");
}

#[test]
fn decode_error_names_the_type() {
    let (mut a, mut b) = Connection::pair().unwrap();
    a.send_bytes(&[0xff]).unwrap();
    match b.recv::<u64>() {
        Err(IpcError::Decode { type_name, len: 1, .. }) => assert_eq!(type_name, "u64"),
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[test]
fn send_to_closed_peer_is_an_error_not_sigpipe() {
    let (mut a, b) = Connection::pair().unwrap();
    drop(b);
    let err = (0..100).find_map(|_| a.send_bytes(&[0u8; 1024]).err()).expect("send to a closed peer must fail");
    assert!(matches!(err, IpcError::Os { op: "send", .. }), "{err:?}");
}

#[test]
fn poll_and_wait() {
    let (mut a, mut b) = Connection::pair().unwrap();
    let (mut c, d) = Connection::pair().unwrap();
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    assert!(!b.poll(Some(Duration::from_millis(20))).unwrap());
    assert!(wait(&[&b, &d], Some(Duration::from_millis(20))).unwrap().is_empty());
    a.send_bytes(b"1").unwrap();
    a.send_bytes(b"2").unwrap();
    assert!(b.poll(T).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"1");
    // "2" now sits in b's read buffer, not in the socket: still ready.
    assert_eq!(wait(&[&d, &b], Some(Duration::ZERO)).unwrap(), vec![1]);
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"2");
    c.close();
    assert_eq!(wait(&[&b, &d], T).unwrap(), vec![1]);
    assert!(matches!(wait(&[&c], T), Err(IpcError::Closed)));
    assert!(matches!(c.poll(T), Err(IpcError::Closed)));
}

#[test]
fn pair_across_fork() {
    let (mut parent, mut child) = Connection::pair().unwrap();
    let parent_fd = parent.as_raw_fd();
    let pid = fork(20, move || {
        // The child's copy of the parent's end must go, or it never sees EOF.
        // SAFETY: the fd is open in this (child) process and nothing here uses it.
        unsafe { libc::close(parent_fd) };
        // Echo every message back doubled, until EOF.
        loop {
            match child.recv::<Vec<u32>>() {
                Ok(v) => {
                    let doubled: Vec<u32> = v.iter().map(|x| x * 2).collect();
                    if child.send(&doubled).is_err() {
                        return 2;
                    }
                }
                Err(IpcError::Eof) => return 0,
                Err(_) => return 3,
            }
        }
    });
    for i in 0..500u32 {
        parent.send(&vec![i, i + 1]).unwrap();
        assert!(parent.poll(T).unwrap());
        assert_eq!(parent.recv::<Vec<u32>>().unwrap(), vec![2 * i, 2 * i + 2]);
    }
    parent.close();
    assert_eq!(reap(pid, Duration::from_secs(20)), 0);
}

#[test]
fn child_killed_gives_eof() {
    let (mut parent, child) = Connection::pair().unwrap();
    let pid = fork(20, move || {
        let _keep = child;
        // SAFETY: pause is async-signal-safe; the parent kills us.
        unsafe { libc::pause() };
        0
    });
    // Only the child holds the other end now.
    // SAFETY: kill on our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(parent.poll(T).unwrap());
    assert!(matches!(parent.recv_bytes(), Err(IpcError::Eof)));
    assert_eq!(reap(pid, Duration::from_secs(20)), -libc::SIGKILL);
}
