//! Helpers the blocking and async listener tests share.

#![allow(dead_code)]

use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use mproc_ipc::{Address, Listener};

/// A keyed TCP listener with `handshake_timeout`, and a thread connecting
/// `n` peers to it that never say anything (join it for their streams; it
/// finishes once the listener has taken enough of them off its backlog, since
/// past the kernel's backlog a connect waits for an accept).
pub fn listener_with_silent_peers(n: usize, handshake_timeout: Duration) -> (Listener, JoinHandle<Vec<TcpStream>>) {
    let mut l = Listener::bind(Address::loopback(0), Some(b"key")).unwrap();
    l.set_handshake_timeout(Some(handshake_timeout));
    let Address::Tcp(sa) = l.address().clone() else { unreachable!() };
    let silent = std::thread::spawn(move || (0..n).map(|_| TcpStream::connect(sa).unwrap()).collect::<Vec<_>>());
    (l, silent)
}
