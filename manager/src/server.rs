//! [`Server`]: a bound manager server and its accept loop, run in this process by
//! [`Server::serve_forever`] (the tutorial's `task_master`), or in a child by
//! `ManagerBuilder::start`.

use std::sync::Arc;
use std::time::Duration;

use mproc_ipc::auth::{answer_challenge, deliver_challenge};
use mproc_ipc::{Listener, DEFAULT_HANDSHAKE_TIMEOUT};

use crate::error::Result;
use crate::net::{poke, set_timeouts, Address};
use crate::state::ServerState;
use crate::wire::MAX_FRAME;

/// A bound manager server, ready to [`serve_forever`](Server::serve_forever).
pub struct Server {
    pub(crate) state: Arc<ServerState>,
    pub(crate) listener: Listener,
    pub(crate) address: Address,
    pub(crate) authkey: Arc<[u8]>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("address", &self.address).finish()
    }
}

impl Server {
    /// The bound address (with the real port when bound to port 0).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The server's counters.
    pub fn stats(&self) -> crate::ServerStats {
        self.state.stats()
    }

    /// Serves clients — one thread each, authenticated first, local Rust clients moved
    /// to a shared-memory pipe (see [`ClientTransport`](crate::ClientTransport)) — until a client sends
    /// `Shutdown` ([`Manager::shutdown`](crate::Manager::shutdown)). Threads of clients
    /// still connected then are left to end when their clients hang up.
    pub fn serve_forever(self) -> Result<()> {
        let address = self.address.clone();
        self.state.set_on_shutdown(Box::new(move || poke(&address)));
        loop {
            // The listener has no key: the handshake runs on the connection's own
            // thread, so a client that connects and stalls cannot stall `accept`.
            let conn = self.listener.accept();
            if self.state.is_shut_down() {
                return Ok(());
            }
            let Ok(mut conn) = conn else {
                // Out of fds or similar: do not spin; the condition may pass.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let (state, authkey) = (self.state.clone(), self.authkey.clone());
            let spawned = std::thread::Builder::new().name("mproc-manager-conn".into()).spawn(move || {
                conn.set_max_frame(MAX_FRAME);
                set_timeouts(&conn, Some(DEFAULT_HANDSHAKE_TIMEOUT));
                // Server side: challenge first, then answer.
                if deliver_challenge(&mut conn, &authkey).is_err() || answer_challenge(&mut conn, &authkey).is_err() {
                    return;
                }
                set_timeouts(&conn, None);
                crate::local::serve_socket(&state, conn);
            });
            // Out of threads: the connection is dropped (the client sees Disconnected).
            drop(spawned);
        }
    }
}
