//! An in-memory transport for unit tests: a connection is a pair of channels and a
//! server thread running `python::serve_connection`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use crate::error::{ManagerError, Result};
use crate::net::{Conn, Transport};
use crate::state::ServerState;
use crate::wire::MAX_FRAME;

pub(crate) struct MemConn {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    /// Set by our drop; the peer's `alive` reads it.
    closed: Arc<AtomicBool>,
    peer_closed: Arc<AtomicBool>,
}

impl Drop for MemConn {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

impl Transport for MemConn {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        self.tx.send(frame.to_vec()).map_err(|_| ManagerError::Disconnected { reason: "peer closed".into() })
    }
    fn recv(&mut self) -> Result<Vec<u8>> {
        let f = self.rx.recv().map_err(|_| ManagerError::Disconnected { reason: "peer closed".into() })?;
        if f.len() > MAX_FRAME {
            return Err(ManagerError::FrameTooLarge { len: f.len() as u64, max: MAX_FRAME as u64 });
        }
        Ok(f)
    }
    fn alive(&self) -> bool {
        !self.peer_closed.load(Ordering::SeqCst)
    }
}

/// A connected pair.
pub(crate) fn pair() -> (MemConn, MemConn) {
    let (tx_a, rx_b) = channel();
    let (tx_b, rx_a) = channel();
    let (ca, cb) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    (
        MemConn { tx: tx_a, rx: rx_a, closed: ca.clone(), peer_closed: cb.clone() },
        MemConn { tx: tx_b, rx: rx_b, closed: cb, peer_closed: ca },
    )
}

/// Opens a connection to an in-process server.
pub(crate) fn connect(state: Arc<ServerState>) -> Conn {
    let (client, mut server) = pair();
    std::thread::spawn(move || crate::python::serve_connection(&state, &mut server));
    Box::new(client)
}
