//! The authkey handshake awaited (feature `tokio`): the same messages as
//! [`deliver_challenge`](super::deliver_challenge) and
//! [`answer_challenge`](super::answer_challenge), sent and received with the
//! connection's async calls.

use super::{
    auth, create_response, handshake_io, verify_response, CHALLENGE, FAILURE, HANDSHAKE_MAX, MD5ONLY_MESSAGE_LENGTH,
    MESSAGE_LENGTH, WELCOME,
};
use crate::connection::Connection;
use crate::error::{IpcError, Result};

/// [`deliver_challenge`](super::deliver_challenge), awaited.
///
/// # Cancel safety
/// Not cancel safe: dropping the future part-way leaves the handshake half
/// done, and the connection should be dropped.
pub async fn deliver_challenge_async(conn: &mut Connection, authkey: &[u8]) -> Result<()> {
    let mut random = [0u8; MESSAGE_LENGTH];
    mproc_shm::sys::random_bytes(&mut random).map_err(|e| IpcError::os("getrandom", "handshake challenge", e))?;
    let mut message = b"{sha256}".to_vec();
    message.extend_from_slice(&random);
    let mut framed = CHALLENGE.to_vec();
    framed.extend_from_slice(&message);
    conn.send_bytes_async(&framed).await?;
    let response = recv_handshake(conn).await?;
    match verify_response(authkey, &message, &response) {
        Ok(()) => conn.send_bytes_async(WELCOME).await,
        Err(e) => {
            // The peer may already be gone; the authentication error is what matters.
            let _ = conn.send_bytes_async(FAILURE).await;
            Err(e)
        }
    }
}

/// [`answer_challenge`](super::answer_challenge), awaited.
///
/// # Cancel safety
/// Not cancel safe, as [`deliver_challenge_async`].
pub async fn answer_challenge_async(conn: &mut Connection, authkey: &[u8]) -> Result<()> {
    let message = recv_handshake(conn).await?;
    let Some(message) = message.strip_prefix(CHALLENGE) else {
        return Err(auth(format!(
            "protocol error: expected a challenge, got {:?}",
            String::from_utf8_lossy(&message[..message.len().min(24)])
        )));
    };
    if message.len() < MD5ONLY_MESSAGE_LENGTH {
        return Err(auth(format!("challenge too short: {} bytes", message.len())));
    }
    let response = create_response(authkey, message)?;
    conn.send_bytes_async(&response).await?;
    let verdict = recv_handshake(conn).await?;
    if verdict == WELCOME {
        Ok(())
    } else if verdict == FAILURE {
        Err(auth("digest sent was rejected (the peer's authkey differs)"))
    } else {
        Err(auth(format!(
            "protocol error: expected #WELCOME# or #FAILURE#, got {:?}",
            String::from_utf8_lossy(&verdict[..verdict.len().min(24)])
        )))
    }
}

/// One handshake message, capped at the handshake's size.
async fn recv_handshake(conn: &mut Connection) -> Result<Vec<u8>> {
    let cap = conn.max_frame();
    conn.set_max_frame(cap.min(HANDSHAKE_MAX));
    let got = conn.recv_bytes_async().await;
    conn.set_max_frame(cap);
    got.map_err(handshake_io)
}
