//! Helpers shared by the manager's integration tests: forked children with a watchdog,
//! joined with a deadline, and a raw authenticated client for protocol-level tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use mproc_ipc::Connection;
use mproc_process::Process;
use sha2::Sha256;

/// Starts a forked child running `body`; its exit code is `body`'s return value. The
/// child has a 30 s `alarm` watchdog and leaves through `_exit`.
pub fn spawn_child(body: impl FnOnce() -> i32 + Send + 'static) -> Process {
    let mut p = Process::new(move || {
        // SAFETY: alarm only arms a timer; _exit ends the process without unwinding.
        unsafe {
            libc::alarm(30);
            let code = body();
            libc::_exit(code)
        }
    });
    p.start().expect("fork");
    p
}

/// Joins `p` within `timeout`, killing it on expiry; returns its exit code.
pub fn join_or_kill(p: &mut Process, timeout: Duration) -> i32 {
    if p.join_timeout(timeout).is_err() {
        let _ = p.kill();
        let _ = p.join();
        panic!("child {:?} did not finish within {timeout:?}; killed", p.pid());
    }
    p.exitcode().expect("exited")
}

/// Polls `f` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    f()
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The client half of CPython's handshake, done by hand: answer, then challenge.
/// `verify_server: false` skips checking the server's digest.
pub fn handshake_as_client(conn: &mut Connection, key: &[u8]) -> Result<(), String> {
    let challenge = conn.recv_bytes().map_err(|e| e.to_string())?;
    let msg = challenge.strip_prefix(b"#CHALLENGE#").ok_or("no challenge")?;
    conn.send_bytes(&[b"{sha256}".as_slice(), &hmac(key, msg)].concat()).map_err(|e| e.to_string())?;
    let verdict = conn.recv_bytes().map_err(|e| e.to_string())?;
    if verdict != b"#WELCOME#" {
        return Err(format!("server said {:?}", String::from_utf8_lossy(&verdict)));
    }
    let msg = [b"{sha256}".as_slice(), &[7u8; 40]].concat();
    conn.send_bytes(&[b"#CHALLENGE#".as_slice(), &msg].concat()).map_err(|e| e.to_string())?;
    let reply = conn.recv_bytes().map_err(|e| e.to_string())?;
    let ok = reply.strip_prefix(b"{sha256}") == Some(hmac(key, &msg).as_slice());
    conn.send_bytes(if ok { b"#WELCOME#" } else { b"#FAILURE#" }).map_err(|e| e.to_string())?;
    Ok(())
}

/// An impostor server's half of the handshake: welcomes any digest, then challenges the
/// client and answers the client's challenge with `key`.
pub fn handshake_as_lax_server(conn: &mut Connection, key: &[u8]) -> Result<(), String> {
    let msg = [b"{sha256}".as_slice(), &[9u8; 40]].concat();
    conn.send_bytes(&[b"#CHALLENGE#".as_slice(), &msg].concat()).map_err(|e| e.to_string())?;
    let _digest = conn.recv_bytes().map_err(|e| e.to_string())?;
    conn.send_bytes(b"#WELCOME#").map_err(|e| e.to_string())?;
    let challenge = conn.recv_bytes().map_err(|e| e.to_string())?;
    let msg = challenge.strip_prefix(b"#CHALLENGE#").ok_or("no challenge")?;
    conn.send_bytes(&[b"{sha256}".as_slice(), &hmac(key, msg)].concat()).map_err(|e| e.to_string())?;
    let verdict = conn.recv_bytes().map_err(|e| e.to_string())?;
    if verdict != b"#WELCOME#" {
        return Err(format!("client said {:?}", String::from_utf8_lossy(&verdict)));
    }
    Ok(())
}
