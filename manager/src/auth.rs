//! The authkey handshake of CPython ≥ 3.12 `multiprocessing.connection`, mutual:
//! `#CHALLENGE#{sha256}` + 40 random bytes; the reply is `{sha256}` + HMAC-SHA256 of the
//! whole challenge message (prefix included); then `#WELCOME#` or `#FAILURE#`; then the
//! roles reverse. The digest is compared in constant time.
//!
//! Interim: mproc-ipc's `Listener`/`Client` will carry this; until they land the manager
//! runs it over an ipc `Connection` itself.

use hmac::{Hmac, Mac};
use mproc_ipc::Connection;
use sha2::Sha256;

use crate::client::random_bytes;
use crate::error::{ManagerError, Result};

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const DIGEST_PREFIX: &[u8] = b"{sha256}";
const MESSAGE_LENGTH: usize = 40;
/// Handshake messages are short; a longer one is refused before allocation.
const MAX_AUTH_MESSAGE: usize = 256;

fn auth_err(what: impl std::fmt::Display) -> ManagerError {
    ManagerError::AuthFailed(what.to_string())
}

fn hmac(authkey: &[u8], message: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(authkey).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

/// Sends a challenge and checks the peer's answer.
pub(crate) fn deliver_challenge(conn: &mut Connection, authkey: &[u8]) -> Result<()> {
    let mut message = DIGEST_PREFIX.to_vec();
    let mut random = [0u8; MESSAGE_LENGTH];
    random_bytes(&mut random);
    message.extend_from_slice(&random);
    conn.send_bytes(&[CHALLENGE, &message].concat()).map_err(auth_err)?;
    let response = conn.recv_bytes_max(MAX_AUTH_MESSAGE).map_err(auth_err)?;
    let ok = response.strip_prefix(DIGEST_PREFIX).is_some_and(|d| hmac(authkey, &message).verify_slice(d).is_ok());
    if !ok {
        let _ = conn.send_bytes(FAILURE);
        return Err(auth_err("the peer's digest does not match the authkey"));
    }
    conn.send_bytes(WELCOME).map_err(auth_err)
}

/// Answers the peer's challenge.
pub(crate) fn answer_challenge(conn: &mut Connection, authkey: &[u8]) -> Result<()> {
    let message = conn.recv_bytes_max(MAX_AUTH_MESSAGE).map_err(auth_err)?;
    let message = message
        .strip_prefix(CHALLENGE)
        .ok_or_else(|| auth_err(format!("expected a challenge, got {} bytes of something else", message.len())))?;
    if !message.starts_with(DIGEST_PREFIX) {
        return Err(auth_err("the peer offers a digest other than {sha256}"));
    }
    let digest = hmac(authkey, message).finalize().into_bytes();
    conn.send_bytes(&[DIGEST_PREFIX, &digest[..]].concat()).map_err(auth_err)?;
    let verdict = conn.recv_bytes_max(MAX_AUTH_MESSAGE).map_err(auth_err)?;
    if verdict != WELCOME {
        return Err(auth_err("the peer rejected our digest: wrong authkey"));
    }
    Ok(())
}
