//! `Share`: how a handle crosses into a child process.
//!
//! On **fork** a handle is simply moved into the child's closure: the child
//! inherits every mapping and fd, so nothing needs doing.
//!
//! On **spawn** (a fresh exec of the current binary) the parent calls
//! [`Share::export`], which returns a serialisable token and records in
//! [`Exports`] the fds the child must inherit; the spawner keeps those fds open
//! across `exec` at the same numbers; the child calls [`Share::import`] on the
//! token. Anonymous segments travel as an inherited fd checked by inode, named
//! segments by name. Everything shareable reduces to segments and fds, so every
//! mproc crate implements this trait without depending on `mproc-process`.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Result;

/// A handle that can be sent to a spawned child process.
pub trait Share: Sized {
    /// The serialisable form of the handle.
    type Token: Serialize + DeserializeOwned;

    /// Describes this handle for a child, recording the fds it must inherit.
    fn export(&self, exports: &mut Exports) -> Result<Self::Token>;

    /// Rebuilds the handle in the child from its token. A token that does not
    /// match what the child inherited is a [`ShmError::BadToken`](crate::ShmError::BadToken).
    fn import(token: Self::Token) -> Result<Self>;
}

/// The fds a spawned child must inherit, at the same numbers.
#[derive(Debug, Default, Clone)]
pub struct Exports {
    fds: Vec<RawFd>,
}

impl Exports {
    /// An empty set.
    pub fn new() -> Exports {
        Exports::default()
    }

    /// Asks that `fd` be kept open, at the same number, in the child.
    pub fn inherit(&mut self, fd: BorrowedFd<'_>) {
        let raw = fd.as_raw_fd();
        if !self.fds.contains(&raw) {
            self.fds.push(raw);
        }
    }

    /// The fds to keep open across `exec`.
    pub fn fds(&self) -> &[RawFd] {
        &self.fds
    }
}
