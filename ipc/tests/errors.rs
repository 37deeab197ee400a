//! Every `IpcError` variant: how it arises, and that its message names the
//! values involved. Also the handshake's protocol errors against a peer that
//! misbehaves on purpose.

use std::error::Error as _;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use mproc_ipc::auth::{answer_challenge, deliver_challenge};
use mproc_ipc::{Address, Client, Connection, IpcError, Listener};
use serde::Serialize;

struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refuses to be encoded"))
    }
}

fn pair() -> (Connection, Connection) {
    Connection::pair().unwrap()
}

/// A Connection whose peer is a raw socket, for writing arbitrary bytes.
fn raw_pair() -> (UnixStream, Connection) {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (a, Connection::from_unix(b))
}

#[test]
fn messages_name_the_values() {
    let cases: Vec<(IpcError, &[&str])> = vec![
        (IpcError::Eof, &["end of file"]),
        (IpcError::TruncatedMessage { expected: 14, got: 7 }, &["7 of 14"]),
        (IpcError::MessageTooLarge { len: 1001, max: 1000 }, &["1001", "1000"]),
        (IpcError::BadHeader { len: -7 }, &["-7"]),
        (IpcError::BufferTooShort { capacity: 3, message: vec![0; 9] }, &["3 bytes", "9 bytes"]),
        (IpcError::BadAddress { address: "x".into(), reason: "because".into() }, &["\"x\"", "because"]),
    ];
    for (e, needles) in cases {
        let s = e.to_string();
        for n in needles {
            assert!(s.contains(n), "{s:?} should contain {n:?}");
        }
    }
}

#[test]
fn every_operation_after_close_is_closed() {
    let (mut a, _b) = pair();
    a.close();
    assert!(a.is_closed());
    assert!(matches!(a.send_bytes(b""), Err(IpcError::Closed)));
    assert!(matches!(a.send(&1u8), Err(IpcError::Closed)));
    assert!(matches!(a.recv_bytes(), Err(IpcError::Closed)));
    assert!(matches!(a.recv_bytes_max(1), Err(IpcError::Closed)));
    assert!(matches!(a.recv_bytes_into(&mut [0u8; 1]), Err(IpcError::Closed)));
    assert!(matches!(a.recv::<u8>(), Err(IpcError::Closed)));
    assert!(matches!(a.poll(Some(Duration::ZERO)), Err(IpcError::Closed)));
    assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&a), -1);
    a.close(); // twice is fine
}

#[test]
fn encode_error_names_the_type_and_sends_nothing() {
    let (mut a, mut b) = pair();
    match a.send(&Unencodable) {
        Err(e @ IpcError::Encode { .. }) => {
            assert!(e.to_string().contains("Unencodable"), "{e}");
            assert!(e.source().is_some());
        }
        other => panic!("expected Encode, got {other:?}"),
    }
    a.send(&5u8).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), 5);
}

#[test]
fn decode_and_os_errors_have_sources() {
    let (mut a, mut b) = pair();
    a.send_bytes(&[]).unwrap();
    let e = b.recv::<u32>().unwrap_err();
    assert!(matches!(e, IpcError::Decode { len: 0, .. }));
    assert!(e.source().is_some());
    let e = Client::connect(Address::Unix("/nonexistent/mproc-test.sock".into()), None).unwrap_err();
    assert!(matches!(e, IpcError::Os { op: "connect", .. }));
    assert!(e.to_string().contains("/nonexistent/mproc-test.sock"), "{e}");
    assert!(e.source().is_some());
}

#[test]
fn truncated_long_header() {
    let (mut raw, mut c) = raw_pair();
    raw.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0]).unwrap();
    drop(raw);
    assert!(matches!(c.recv_bytes(), Err(IpcError::TruncatedMessage { expected: 12, got: 6 })));
}

#[test]
fn handshake_peer_sends_no_challenge() {
    let (mut raw, mut c) = raw_pair();
    raw.write_all(b"\0\0\0\x05hello").unwrap();
    match answer_challenge(&mut c, b"k") {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("expected a challenge"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn handshake_challenge_too_short_or_unsupported_digest() {
    let (mut a, mut b) = pair();
    a.send_bytes(b"#CHALLENGE#short").unwrap();
    match answer_challenge(&mut b, b"k") {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("too short: 5 bytes"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let (mut a, mut b) = pair();
    a.send_bytes(b"#CHALLENGE#{sha3_256}0123456789012345678901234567890123456789").unwrap();
    match answer_challenge(&mut b, b"k") {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("sha3_256"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn handshake_oversized_or_truncated_frames_are_authentication_errors() {
    // A 257-byte "challenge": over the 256-byte handshake limit.
    let (mut a, mut b) = pair();
    a.send_bytes(&[b'#'; 257]).unwrap();
    match answer_challenge(&mut b, b"k") {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("257"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The peer hangs up instead of answering.
    let (a, mut b) = pair();
    drop(a);
    match deliver_challenge(&mut b, b"k") {
        Err(IpcError::Authentication { .. }) | Err(IpcError::Os { op: "send", .. }) => {}
        other => panic!("{other:?}"),
    }
    // The peer answers with a reply of the wrong length for its digest.
    let (mut a, mut b) = pair();
    let t = std::thread::spawn(move || deliver_challenge(&mut b, b"k"));
    let _challenge = a.recv_bytes().unwrap();
    a.send_bytes(b"{sha256}tooshort-but-longer-than-20").unwrap();
    match t.join().unwrap() {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("32 bytes"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.recv_bytes().unwrap(), b"#FAILURE#");
}

#[test]
fn handshake_verdict_must_be_welcome_or_failure() {
    let (mut a, mut b) = pair();
    let t = std::thread::spawn(move || answer_challenge(&mut b, b"k"));
    a.send_bytes(b"#CHALLENGE#{sha256}0123456789012345678901234567890123456789").unwrap();
    let _reply = a.recv_bytes().unwrap();
    a.send_bytes(b"#MAYBE#").unwrap();
    match t.join().unwrap() {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("#MAYBE#"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn listener_bind_errors_name_the_address() {
    let e = Listener::bind(Address::Unix("/nonexistent-dir/x.sock".into()), None).unwrap_err();
    assert!(matches!(e, IpcError::Os { op: "bind", .. }));
    assert!(e.to_string().contains("/nonexistent-dir/x.sock"), "{e}");
}
