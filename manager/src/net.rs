//! Sockets: connecting to a server, and running one (placeholder until mproc-ipc lands).

use std::path::PathBuf;
use std::time::Duration;

use crate::client::Conn;
use crate::error::{ManagerError, Result};

/// A server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(std::net::SocketAddr),
}

pub(crate) fn connect(_address: &Address, _authkey: &[u8]) -> Result<Conn> {
    Err(ManagerError::Io("not yet".into()))
}

/// A server process this handle started.
pub(crate) struct ServerProcess {}

impl ServerProcess {
    pub fn stop(self, _grace: Duration) -> Result<()> {
        Ok(())
    }
}

/// Builds a manager server.
pub struct ManagerBuilder {}

impl ManagerBuilder {
    /// New.
    pub fn new() -> Self {
        ManagerBuilder {}
    }
    /// Start.
    pub fn start(self) -> Result<crate::Manager> {
        Err(ManagerError::Io("not yet".into()))
    }
}
