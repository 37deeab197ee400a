//! Property tests of the handshake against a hostile peer: whatever frames it
//! sends, both roles end in `Ok` only when the peer knew the key, never panic,
//! and otherwise fail with a typed error.

use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use mproc_ipc::auth::{answer_challenge, deliver_challenge};
use mproc_ipc::{Connection, IpcError};
use proptest::prelude::*;

fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend((m.len() as i32).to_be_bytes());
        out.extend(m);
    }
    out
}

/// A message that is sometimes plausible: random, or a challenge/verdict
/// prefix followed by random bytes.
fn message() -> impl Strategy<Value = Vec<u8>> {
    let tail = prop::collection::vec(any::<u8>(), 0..80);
    prop_oneof![
        tail.clone(),
        tail.clone().prop_map(|t| [b"#CHALLENGE#".to_vec(), t].concat()),
        tail.clone().prop_map(|t| [b"#CHALLENGE#{sha256}".to_vec(), t].concat()),
        tail.clone().prop_map(|t| [b"{sha256}".to_vec(), t].concat()),
        tail.prop_map(|t| [b"{md5}".to_vec(), t].concat()),
        Just(b"#WELCOME#".to_vec()),
        Just(b"#FAILURE#".to_vec()),
    ]
}

/// Our end, with the peer's script already queued. The peer's writing side
/// is shut, so every read past the script is an EOF, not a hang; its reading
/// side stays open, so our sends succeed and the script is really consumed.
fn peer(script: &[u8], raw_tail: &[u8]) -> (UnixStream, Connection) {
    let (mut raw, ours) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(script).unwrap();
    raw.write_all(raw_tail).unwrap();
    raw.shutdown(Shutdown::Write).unwrap();
    (raw, Connection::from_unix(ours))
}

fn typed_failure(r: Result<(), IpcError>) -> Result<(), TestCaseError> {
    match r {
        Err(IpcError::Authentication { .. }) => Ok(()),
        other => Err(TestCaseError::fail(format!("expected a typed failure, got {other:?}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hostile_peer_never_authenticates(
        msgs in prop::collection::vec(message(), 0..4),
        tail in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let script = framed(&msgs);
        // The peer cannot know the 40 random bytes of our challenge, so it
        // can never produce the right MAC: delivering must fail.
        let (_raw, mut c) = peer(&script, &tail);
        typed_failure(deliver_challenge(&mut c, b"key"))?;
        // Answering: the scripted peer has no key, so no reply of ours can
        // earn a #WELCOME# unless the script happens to say it; then Ok is
        // right (the answerer trusts the verdict; mutuality comes from the
        // second round, tested above).
        let (_raw, mut c) = peer(&script, &tail);
        let r = answer_challenge(&mut c, b"key");
        let says_welcome = msgs.len() >= 2 && msgs[1] == b"#WELCOME#";
        if r.is_ok() {
            prop_assert!(says_welcome, "answered OK without a #WELCOME#");
        } else {
            typed_failure(r)?;
        }
    }
}
