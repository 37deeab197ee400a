//! Helpers shared by the manager's integration tests: a raw authenticated client for
//! protocol-level tests (forked children and deadlines are `mproc-testkit`'s).
#![allow(dead_code)]

use hmac::{Hmac, Mac};
use mproc_ipc::Connection;
use sha2::Sha256;

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
