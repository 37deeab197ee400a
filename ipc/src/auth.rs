//! The authkey handshake of CPython's `multiprocessing.connection`, byte for byte.
//!
//! One side *delivers* a challenge, the other *answers* it; then they swap
//! roles, so each side proves it knows the key (mutual authentication). A
//! [`Listener`](crate::Listener) delivers first; a [`Client`](crate::Client)
//! answers first. All messages are ordinary frames of at most 256 bytes.
//!
//! ```text
//! deliverer                                  answerer
//! #CHALLENGE#{sha256}<40 random bytes>  →
//!                                        ←   {sha256}HMAC-SHA256(key, "{sha256}<40 random bytes>")
//! #WELCOME#  or  #FAILURE#              →
//! ```
//!
//! The MAC covers the whole challenge after `#CHALLENGE#`, `{sha256}` prefix
//! included, so a man in the middle cannot downgrade the digest.
//!
//! CPython ≤ 3.11 speaks the legacy form: a challenge of 20 random bytes with
//! no `{digest}` prefix, answered by a raw 16-byte HMAC-MD5. Like CPython 3.12,
//! this module answers a 20-byte challenge with a raw HMAC-MD5, and accepts a
//! raw 16-byte reply as HMAC-MD5 — so Rust and Python 3.11 authenticate too.
//! Digests accepted in a `{name}` prefix: `md5`, `sha256`, `sha384`
//! (CPython also allows `sha3_256` and `sha3_384`, which no CPython sends by
//! default; they are refused here with an error naming them).
//!
//! The two functions are public so that a connection made some other way
//! (e.g. [`Connection::from_tcp`]) can be authenticated:
//!
//! ```
//! use mproc_ipc::auth::{answer_challenge, deliver_challenge};
//! use mproc_ipc::Connection;
//!
//! let (mut server, mut client) = Connection::pair()?;
//! let t = std::thread::spawn(move || -> mproc_ipc::Result<()> {
//!     deliver_challenge(&mut server, b"key")?;
//!     answer_challenge(&mut server, b"key")
//! });
//! answer_challenge(&mut client, b"key")?;
//! deliver_challenge(&mut client, b"key")?;
//! t.join().unwrap()?;
//! # Ok::<(), mproc_ipc::IpcError>(())
//! ```
//!
//! As CPython 3.12's `multiprocessing.connection` does it:
//! `deliver_challenge`, `answer_challenge`, `_create_response`,
//! `_verify_challenge`.

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

#[cfg(feature = "tokio")]
#[path = "asyncio/auth.rs"]
mod asyncio;
#[cfg(feature = "tokio")]
pub use asyncio::{answer_challenge_async, deliver_challenge_async};

use crate::connection::Connection;
use crate::error::{IpcError, Result};

/// Prefix of the challenge message.
pub const CHALLENGE: &[u8] = b"#CHALLENGE#";
/// Sent when the answer was right.
pub const WELCOME: &[u8] = b"#WELCOME#";
/// Sent when the answer was wrong.
pub const FAILURE: &[u8] = b"#FAILURE#";
/// Random bytes in a modern challenge (CPython's `MESSAGE_LENGTH`).
pub const MESSAGE_LENGTH: usize = 40;
/// The largest handshake message either side reads.
pub(crate) const HANDSHAKE_MAX: usize = 256;
/// Length of a legacy challenge payload (CPython ≤ 3.11).
const MD5ONLY_MESSAGE_LENGTH: usize = 20;
/// Length of a raw HMAC-MD5 reply (CPython ≤ 3.11).
const MD5_DIGEST_LEN: usize = 16;
/// Longest digest name CPython allows (`sha3_256`).
const MAX_DIGEST_NAME: usize = 8;

/// A MAC algorithm of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Md5,
    Sha256,
    Sha384,
}

impl Digest {
    fn name(self) -> &'static str {
        match self {
            Digest::Md5 => "md5",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
        }
    }

    fn mac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
            // HMAC accepts keys of any length: this cannot fail.
            let mut m = <M as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, msg),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, msg),
        }
    }
}

/// Splits a challenge payload or a reply into its digest (`None` for the legacy
/// unprefixed form) and the rest. CPython's `_get_digest_name_and_payload`.
fn digest_and_payload(message: &[u8]) -> Result<(Option<Digest>, &[u8])> {
    if message.len() == MD5ONLY_MESSAGE_LENGTH || message.len() == MD5_DIGEST_LEN {
        return Ok((None, message));
    }
    if message.first() == Some(&b'{') {
        let window = &message[1..message.len().min(MAX_DIGEST_NAME + 2)];
        if let Some(close) = window.iter().position(|&b| b == b'}') {
            let name = &window[..close];
            let rest = &message[close + 2..];
            return match name {
                b"md5" => Ok((Some(Digest::Md5), rest)),
                b"sha256" => Ok((Some(Digest::Sha256), rest)),
                b"sha384" => Ok((Some(Digest::Sha384), rest)),
                b"sha3_256" | b"sha3_384" => Err(auth(format!(
                    "peer asked for digest {:?}, which mproc does not implement (it offers md5, sha256, sha384)",
                    String::from_utf8_lossy(name)
                ))),
                _ => Err(auth(format!("unsupported digest {:?}", String::from_utf8_lossy(name)))),
            };
        }
    }
    Err(auth(format!(
        "unsupported message length {}, missing digest prefix, or unsupported digest: {:?}",
        message.len(),
        String::from_utf8_lossy(&message[..message.len().min(24)])
    )))
}

pub(crate) fn auth(reason: impl Into<String>) -> IpcError {
    IpcError::Authentication { reason: reason.into() }
}

/// The reply to a challenge payload: CPython's `_create_response`.
fn create_response(authkey: &[u8], message: &[u8]) -> Result<Vec<u8>> {
    match digest_and_payload(message)?.0 {
        None => Ok(Digest::Md5.mac(authkey, message)),
        Some(d) => {
            let mut out = format!("{{{}}}", d.name()).into_bytes();
            out.extend(d.mac(authkey, message));
            Ok(out)
        }
    }
}

/// Checks a reply against the challenge payload we sent: CPython's
/// `_verify_challenge`, with a constant-time comparison.
pub(crate) fn verify_response(authkey: &[u8], message: &[u8], response: &[u8]) -> Result<()> {
    let (digest, mac) = digest_and_payload(response)?;
    let digest = digest.unwrap_or(Digest::Md5);
    let expected = digest.mac(authkey, message);
    if expected.len() != mac.len() {
        return Err(auth(format!(
            "expected a {} MAC of {} bytes, got {} bytes",
            digest.name(),
            expected.len(),
            mac.len()
        )));
    }
    if bool::from(expected.ct_eq(mac)) {
        Ok(())
    } else {
        Err(auth("digest received was wrong (the peer's authkey differs)"))
    }
}

/// Sends a challenge and checks the peer's answer; tells the peer
/// `#WELCOME#` or `#FAILURE#`. CPython's `deliver_challenge` with its default
/// digest, `sha256`.
///
/// A wrong answer is an [`IpcError::Authentication`] here, after `#FAILURE#`
/// has been sent, so the peer fails with the same error.
pub fn deliver_challenge(conn: &mut Connection, authkey: &[u8]) -> Result<()> {
    let (message, framed) = new_challenge()?;
    conn.send_bytes(&framed)?;
    let response = conn.recv_bytes_max(HANDSHAKE_MAX).map_err(handshake_io)?;
    match verify_response(authkey, &message, &response) {
        Ok(()) => conn.send_bytes(WELCOME),
        Err(e) => {
            // The peer may already be gone; the authentication error is what matters.
            let _ = conn.send_bytes(FAILURE);
            Err(e)
        }
    }
}

/// A fresh challenge: the message the answer's MAC covers, and the frame
/// payload that carries it (`#CHALLENGE#` + message).
pub(crate) fn new_challenge() -> Result<(Vec<u8>, Vec<u8>)> {
    let mut random = [0u8; MESSAGE_LENGTH];
    mproc_shm::sys::random_bytes(&mut random).map_err(|e| IpcError::os("getrandom", "handshake challenge", e))?;
    let mut message = b"{sha256}".to_vec();
    message.extend_from_slice(&random);
    let mut framed = CHALLENGE.to_vec();
    framed.extend_from_slice(&message);
    Ok((message, framed))
}

/// Answers the peer's challenge and reads its verdict. CPython's
/// `answer_challenge`. A `#FAILURE#` verdict is an [`IpcError::Authentication`].
pub fn answer_challenge(conn: &mut Connection, authkey: &[u8]) -> Result<()> {
    let challenge = conn.recv_bytes_max(HANDSHAKE_MAX).map_err(handshake_io)?;
    let response = answer(authkey, &challenge)?;
    conn.send_bytes(&response)?;
    let verdict = conn.recv_bytes_max(HANDSHAKE_MAX).map_err(handshake_io)?;
    check_verdict(&verdict)
}

/// The reply to a received challenge frame (`#CHALLENGE#` + message).
pub(crate) fn answer(authkey: &[u8], challenge: &[u8]) -> Result<Vec<u8>> {
    let Some(message) = challenge.strip_prefix(CHALLENGE) else {
        return Err(auth(format!(
            "protocol error: expected a challenge, got {:?}",
            String::from_utf8_lossy(&challenge[..challenge.len().min(24)])
        )));
    };
    if message.len() < MD5ONLY_MESSAGE_LENGTH {
        return Err(auth(format!("challenge too short: {} bytes", message.len())));
    }
    create_response(authkey, message)
}

/// `Ok` for `#WELCOME#`; an [`IpcError::Authentication`] for anything else.
pub(crate) fn check_verdict(verdict: &[u8]) -> Result<()> {
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

/// An oversized or malformed handshake frame means the peer does not speak
/// the protocol: report it as an authentication failure.
fn handshake_io(e: IpcError) -> IpcError {
    match e {
        IpcError::MessageTooLarge { .. } | IpcError::BadHeader { .. } | IpcError::TruncatedMessage { .. } => {
            auth(format!("protocol error during the handshake: {e}"))
        }
        IpcError::Eof => auth("the peer closed the connection during the handshake"),
        IpcError::Os { ref source, .. }
            if matches!(source.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
        {
            auth(format!("the peer did not complete the handshake in time ({e})"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_prefix_parsing_follows_cpython() {
        assert_eq!(digest_and_payload(&[7u8; 20]).unwrap().0, None);
        assert_eq!(digest_and_payload(&[7u8; 16]).unwrap().0, None);
        let (d, rest) = digest_and_payload(b"{sha256}abcdefghijklmnopqrstuvwxyz").unwrap();
        assert_eq!(d, Some(Digest::Sha256));
        assert_eq!(rest, b"abcdefghijklmnopqrstuvwxyz");
        assert!(digest_and_payload(b"{sha3_256}abcdefghijklmnopqrstuvwxyz").is_err());
        assert!(digest_and_payload(b"{sha1}abcdefghijklmnopqrstuvwxyz").is_err());
        assert!(digest_and_payload(b"no prefix and not a legacy length").is_err());
        assert!(digest_and_payload(b"").is_err());
    }

    #[test]
    fn response_is_prefixed_mac_over_whole_message() {
        // HMAC-SHA256 test vector from RFC 4231 case 2 (key "Jefe").
        let msg = b"what do ya want for nothing?";
        let mac = Digest::Sha256.mac(b"Jefe", msg);
        assert_eq!(
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let challenge = b"{sha256}0123456789012345678901234567890123456789";
        let r = create_response(b"key", challenge).unwrap();
        assert_eq!(&r[..8], b"{sha256}");
        assert_eq!(&r[8..], &Digest::Sha256.mac(b"key", challenge)[..]);
        verify_response(b"key", challenge, &r).unwrap();
        assert!(verify_response(b"other", challenge, &r).is_err());
        // A legacy 3.11 answer: raw HMAC-MD5 over the whole prefixed message.
        let legacy = Digest::Md5.mac(b"key", challenge);
        assert_eq!(legacy.len(), 16);
        verify_response(b"key", challenge, &legacy).unwrap();
        // A legacy challenge gets a raw MD5 answer.
        assert_eq!(create_response(b"key", &[1u8; 20]).unwrap(), Digest::Md5.mac(b"key", &[1u8; 20]));
    }
}
