//! `Share` for a socket-backed `Connection`: export in a parent, import in a
//! re-exec'd child (the spawn start method's path), with the token verified.
//!
//! The child is this test binary run again with `--exact share_child_entry`
//! and the token in an environment variable, the fd kept open across exec.

use std::os::fd::AsRawFd;
use std::time::Duration;

use mproc_ipc::{Connection, ConnectionToken, IpcError};
use mproc_shm::{Exports, Share, ShmError};

mod common;

const ENV: &str = "MPROC_IPC_TEST_TOKEN";

/// Runs only as the spawned child: imports the connection, echoes each
/// message reversed until EOF, then drops it (the parent must see EOF).
#[test]
fn share_child_entry() {
    let Some(token) = mproc_testkit::token_from_env::<ConnectionToken>(ENV) else { return };
    let mut c = Connection::import(token.clone()).expect("import in the child");
    // A second import of the same token duplicates instead of double-owning.
    let mut second = Connection::import(token).expect("second import");
    second.send_bytes(b"second").unwrap();
    drop(second);
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
fn connection_crosses_exec_by_token() {
    let (mut parent, child_end) = Connection::pair().unwrap();
    let mut exports = Exports::new();
    let token = child_end.export(&mut exports).unwrap();
    assert_eq!(exports.fds(), &[child_end.as_raw_fd()]);
    let child = mproc_testkit::spawn_entry("share_child_entry", ENV, &token, exports.fds());
    drop(child_end);
    assert_eq!(parent.recv_bytes().unwrap(), b"second");
    for m in [&b"abc"[..], b"", b"hello"] {
        parent.send_bytes(m).unwrap();
        let mut expect = m.to_vec();
        expect.reverse();
        assert_eq!(parent.recv_bytes().unwrap(), expect);
    }
    // Shutting our writing side ends the child's loop; its drop closes the
    // only other copy of the socket, so we then read EOF.
    // SAFETY: shutdown on our own open socket.
    assert_eq!(unsafe { libc::shutdown(parent.as_raw_fd(), libc::SHUT_WR) }, 0);
    common::expect_spawned_success(child, Duration::from_secs(30));
    assert!(matches!(parent.recv_bytes(), Err(IpcError::Eof)));
}

#[test]
fn import_in_the_exporting_process_duplicates() {
    let (mut a, b) = Connection::pair().unwrap();
    let token = b.export(&mut Exports::new()).unwrap();
    let mut b2 = Connection::import(token).unwrap();
    assert_ne!(b2.as_raw_fd(), b.as_raw_fd());
    a.send_bytes(b"hi").unwrap();
    assert_eq!(b2.recv_bytes().unwrap(), b"hi");
    drop(b);
    drop(b2);
    assert!(a.recv_bytes().unwrap_err().is_eof());
}

#[test]
fn stale_or_foreign_token_is_refused() {
    let (_a, b) = Connection::pair().unwrap();
    let token = b.export(&mut Exports::new()).unwrap();
    drop(b);
    // The fd number is closed now (or reused by another file): refused.
    match Connection::import(token) {
        Err(ShmError::BadToken { what: "connection", .. }) => {}
        other => panic!("expected BadToken, got {other:?}"),
    }
    // A token naming a non-socket fd.
    let (_c, d) = Connection::pair().unwrap();
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let mut t = postcard::to_allocvec(&d.export(&mut Exports::new()).unwrap()).unwrap();
    // The token starts with the fd number (postcard zigzag varint for i32).
    assert_eq!(t[0] as i32, (d.as_raw_fd() << 1) ^ (d.as_raw_fd() >> 31));
    t[0] = ((file.as_raw_fd() << 1) ^ (file.as_raw_fd() >> 31)) as u8;
    let forged: ConnectionToken = postcard::from_bytes(&t).unwrap();
    match Connection::import(forged) {
        Err(ShmError::BadToken { detail, .. }) => assert!(detail.contains("socket: false"), "{detail}"),
        other => panic!("expected BadToken, got {other:?}"),
    }
}

#[test]
fn export_refuses_closed_or_partly_read_connections() {
    let (mut raw, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut b = Connection::from_unix(b);
    // Two frames in one write: one recv pulls both into the read buffer.
    std::io::Write::write_all(&mut raw, b"\0\0\0\x011\0\0\0\x012").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"1");
    assert_eq!(b.buffered(), 5);
    match b.export(&mut Exports::new()) {
        Err(ShmError::BadToken { detail, .. }) => assert!(detail.contains("5 bytes"), "{detail}"),
        other => panic!("expected BadToken, got {other:?}"),
    }
    assert_eq!(b.recv_bytes().unwrap(), b"2");
    b.export(&mut Exports::new()).unwrap();
    b.close();
    assert!(matches!(b.export(&mut Exports::new()), Err(ShmError::BadToken { .. })));
}
