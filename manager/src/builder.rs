//! [`ManagerBuilder`]: picks the registry, address and authkey of a manager server, and
//! binds it here ([`ManagerBuilder::bind`]) or starts it in a child
//! ([`ManagerBuilder::start`], [`Manager::start`]).

use std::sync::Arc;

use mproc_ipc::Listener;

use crate::client::{remember, Endpoint, Target};
use crate::error::{ManagerError, Result};
use crate::launcher::{launch, plan_address};
use crate::local::ClientTransport;
use crate::manager::Manager;
use crate::net::Address;
use crate::registry::Registry;
use crate::server::Server;
use crate::state::ServerState;

/// Configures and starts a manager server: registry (default: the `SyncManager`
/// built-ins), address and authkey.
#[derive(Debug, Clone)]
pub struct ManagerBuilder {
    registry: Registry,
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    transport: ClientTransport,
}

impl Default for ManagerBuilder {
    fn default() -> Self {
        ManagerBuilder::new()
    }
}

impl Manager {
    /// Starts a `SyncManager` server in a child process (Python's `Manager()`).
    #[doc(alias = "SyncManager")]
    pub fn start() -> Result<Manager> {
        ManagerBuilder::new().start()
    }
}

impl ManagerBuilder {
    /// A `SyncManager` on a private Unix socket with this process tree's authkey.
    pub fn new() -> Self {
        ManagerBuilder { registry: Registry::sync(), address: None, authkey: None, transport: ClientTransport::Auto }
    }

    /// Serves `registry` instead (a `BaseManager`: `Registry::new()` plus registrations).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Listens on `address` (e.g. `Address::Tcp("127.0.0.1:5000".parse()?)`).
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }

    /// How the returned [`Manager`]'s connections reach the server: by default
    /// ([`ClientTransport::Auto`]) a shared-memory pipe when the server listens on a
    /// Unix socket, the socket otherwise. Proxies decoded in other processes choose
    /// for themselves.
    ///
    /// ```no_run
    /// use mproc_manager::{ClientTransport, ManagerBuilder};
    ///
    /// // Calls over the Unix socket, as a CPython client makes them.
    /// let manager = ManagerBuilder::new().client_transport(ClientTransport::Socket).start()?;
    /// assert_eq!(manager.stats()?.shared_memory, 0);
    /// # Ok::<(), mproc_manager::ManagerError>(())
    /// ```
    pub fn client_transport(mut self, transport: ClientTransport) -> Self {
        self.transport = transport;
        self
    }

    /// Uses `authkey` instead of the process tree's.
    pub fn authkey(mut self, authkey: &[u8]) -> Self {
        self.authkey = Some(authkey.to_vec());
        self
    }

    /// The authkey given, else this process's (`mproc_process::authkey()`,
    /// Python's `current_process().authkey`), which every process of the tree
    /// shares: so any of them can connect and decode this manager's proxies.
    fn authkey_or_tree(&self) -> Arc<[u8]> {
        match &self.authkey {
            Some(k) => k.as_slice().into(),
            None => mproc_process::authkey().into(),
        }
    }

    /// Binds the server in this process; run it with [`Server::serve_forever`].
    /// Without an address, binds TCP `127.0.0.1` on a free port.
    pub fn bind(self) -> Result<Server> {
        let authkey = self.authkey_or_tree();
        let address = self.address.clone().unwrap_or(Address::loopback(0));
        let listener = Listener::bind(address.clone(), None)
            .map_err(|e| ManagerError::Io { op: format!("bind {address}"), reason: e.to_string() })?;
        let address = listener.address().clone();
        Ok(Server { state: ServerState::new(self.registry), listener, address, authkey })
    }

    /// Starts the server in a forked child process and returns a handle that owns it:
    /// `shutdown` (or drop) stops and reaps it. Without an address, listens on a Unix
    /// socket (mode 0600) in a fresh private directory (mode 0700).
    ///
    /// The child is a daemon (`mproc_process::Builder::daemon`): the kernel kills it
    /// when this process dies, even by SIGKILL. Daemons are forked from this process's
    /// long-lived daemon-starter thread (not the calling thread), so a manager started
    /// from a short-lived thread lives as long as this process, or until `shutdown` /
    /// drop of the returned handle.
    pub fn start(self) -> Result<Manager> {
        let authkey = self.authkey_or_tree();
        let (address, dir) = plan_address(self.address.clone())?;
        let transport = self.transport;
        let builder = ManagerBuilder { address: Some(address), authkey: Some(authkey.to_vec()), ..self };
        let (address, server) = launch(move || builder.bind(), dir)?;
        let target = Target::with_transport(Endpoint::Socket { address, authkey }, transport);
        remember(&target);
        Ok(Manager { target, server: Some(server) })
    }
}
